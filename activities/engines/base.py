"""The engine contract: build a turn's command line, parse its event stream into steps.

An engine CLI runs detached inside the DevBox (by the turn runner); every line it prints
reaches the worker as an `engine_line` event. The adapter's parser turns lines into
timeline steps and, at the end, classifies the turn from the engine's own terminal event
(never from the exit code alone). Lines that are not JSON, or events nobody knows, become
`raw` steps: a stream never crashes a Run.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel

EXCERPT = 2000
# The only step kinds an engine's stream may produce; Ferry's own (exec, question, answer,
# review, report_result, ...) come from the runner and the workflow alone.
STEP_KINDS_FROM_ENGINES = frozenset({"message", "thought", "tool", "file_change", "todo_list",
                                     "raw"})

# Taught to every CLI agent: how to ask the person behind the Run.
FERRY_ASK_PROMPT = (
    "You are running inside Ferry. When you need a decision from the person who gave you "
    "this task, run the shell command `ferry-ask` (see `ferry-ask --help`), for example "
    "`ferry-ask \"Which database?\" --id db --options postgres,sqlite --default postgres`, "
    "then end your turn immediately with a short note. The answers arrive in your next turn "
    "and in the JSON file named by $FERRY_ANSWERS. Do not ask questions any other way."
)


def _plain_session(value: str | None) -> str | None:
    return value if value is None or re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,199}", value) \
        else None


class EngineTurn(BaseModel):
    """What one engine turn needs to build its command line."""

    prompt: str
    # Session ids come back from the engine's own stream: only a plain token is reused.
    session_id: Annotated[str | None, AfterValidator(_plain_session)] = None
    model: str | None = None
    effort: str | None = None
    max_turns: int | None = None
    permission_mode: str | None = None  # Claude Code's; None: the engine's own default
    # The model gateway as the DevBox sees it (http://127.0.0.1:PORT); None: no gateway.
    gateway: str | None = None


@dataclass
class ParsedTurn:
    """What the parser learned from a whole turn."""

    ok: bool = False
    error: str | None = None
    session_id: str | None = None
    final_text: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    num_turns: int | None = None
    terminal_seen: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def now() -> datetime:
    return datetime.now(UTC)


def excerpt(value: Any, limit: int = EXCERPT) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit // 2] + "\n[... truncated ...]\n" + text[-limit // 2:]


def cap_payload(payload: dict[str, Any], text_limit: int = 8000,
                json_limit: int = 16000) -> dict[str, Any]:
    """Keep any one step small (it travels in a signal and lives in history)."""
    out: dict[str, Any] = {}
    for key, value in payload.items():
        if isinstance(value, str) and len(value) > text_limit:
            out[key] = excerpt(value, text_limit)
        elif isinstance(value, dict | list) and len(json.dumps(value, default=str)) > json_limit:
            out[key] = {"truncated": excerpt(value, json_limit)}
        else:
            out[key] = value
    return out


def step(kind: str, payload: dict[str, Any], started_at: datetime | None = None) -> dict[str, Any]:
    return {"kind": kind, "payload": cap_payload(payload), "started_at": started_at or now()}


def raw_step(raw: str, why: str) -> dict[str, Any]:
    return step("raw", {"raw": excerpt(raw), "why": why})


class StreamParser(ABC):
    def __init__(self) -> None:
        self.turn = ParsedTurn()

    def feed_line(self, raw: str) -> list[dict[str, Any]]:
        """Steps for one line of the engine's stdout."""
        text = raw.strip()
        if not text:
            return []
        try:
            event = json.loads(text)
        except json.JSONDecodeError:
            return [raw_step(raw, "not JSON")]
        if not isinstance(event, dict):
            return [raw_step(raw, "not a JSON object")]
        try:
            return self.feed(event)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            return [raw_step(raw, f"unexpected shape: {e}")]

    @abstractmethod
    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Steps for one JSON event."""

    def finish(self, exit_code: int, stderr_tail: str) -> tuple[ParsedTurn, list[dict[str, Any]]]:
        """Classify the turn once the process has exited; may add last steps."""
        t = self.turn
        if not t.terminal_seen:
            t.ok = False
            detail = f": {stderr_tail.strip()[-300:]}" if stderr_tail.strip() else ""
            t.error = t.error or f"the engine exited with code {exit_code} without a final event{detail}"
        return t, []


class EngineAdapter(ABC):
    name: str
    binary: str
    # Any one of these env vars (on the worker) is enough to authenticate.
    credentials: tuple[str, ...] = ()

    @abstractmethod
    def command(self, turn: EngineTurn) -> list[str]:
        """argv of one turn (stdin is closed by the runner)."""

    @abstractmethod
    def parser(self) -> StreamParser:
        """A fresh parser for one turn's stream."""

    def gateway_env(self, token: str, gateway: str) -> dict[str, str]:
        """Environment that points the CLI at the model gateway with the turn's token."""
        return {}
