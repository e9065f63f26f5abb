"""All engine adapters by name."""

from __future__ import annotations

from activities.engines.base import EngineAdapter
from activities.engines.claude_code import ClaudeCode, ClaudeCodeApi, ClaudeCodeSubscription
from activities.engines.codex import Codex

ADAPTERS: dict[str, EngineAdapter] = {a.name: a for a in (
    ClaudeCode(), ClaudeCodeSubscription(), ClaudeCodeApi(), Codex())}
