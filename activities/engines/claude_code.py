"""The `claude-code` engine: Claude Code CLI in print mode with stream-json output.

Stream format (reference/engines.md): `system/init` (session id), `assistant` messages
whose content holds `text`, `thinking` and `tool_use` blocks, `user` messages carrying
`tool_result` blocks, and a final `result` with cost, usage and num_turns.
"""

from __future__ import annotations

import re
from typing import Any

from activities.engines.base import (
    FERRY_ASK_PROMPT,
    EngineAdapter,
    EngineTurn,
    StreamParser,
    excerpt,
    raw_step,
    step,
)

# Progress notices of the CLI itself: nothing for the timeline.
QUIET_SYSTEM = {"init", "thinking_tokens", "status", "compact_boundary", "informational"}
QUIET_EVENTS = {"rate_limit_event", "stream_event", "keep_alive"}


def _turn_cost(event: dict[str, Any]) -> float:
    """This turn's cost: `total_cost_usd` is the whole session's (it grows across
    `--resume`); `model_usage_since_last_result` holds what this turn added."""
    since = event.get("model_usage_since_last_result")
    if isinstance(since, dict):
        costs = [m.get("costUSD") for m in since.values() if isinstance(m, dict)]
        return float(sum(c for c in costs if isinstance(c, int | float)))
    return float(event.get("total_cost_usd") or 0.0)


def _command_result(result: Any, text: str, is_error: bool) -> dict[str, Any]:
    """Exit status and output of a Bash call, from the stream's `tool_use_result`."""
    if not isinstance(result, dict) or not ({"stdout", "stderr"} & result.keys()):
        return {}
    out = "\n".join(str(result.get(k) or "") for k in ("stdout", "stderr")).strip()
    exit_code = 0
    if is_error:
        m = re.search(r"[Ee]xit code (\d+)", text)
        exit_code = int(m.group(1)) if m else 1
    if result.get("interrupted"):
        exit_code = -1
    return {"exit_code": exit_code, "output_excerpt": excerpt(out or text)}


class ClaudeParser(StreamParser):
    def __init__(self) -> None:
        super().__init__()
        self.pending_tools: dict[str, dict[str, Any]] = {}

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        t = self.turn
        kind = event.get("type")
        if event.get("session_id"):
            t.session_id = event["session_id"]
        if kind == "system":
            subtype = event.get("subtype")
            if subtype in QUIET_SYSTEM or str(subtype).startswith("hook_"):
                return []
            if subtype == "api_retry":
                return [step("message", {"role": "system", "text": (
                    f"API call failed, retrying (attempt {event.get('attempt')}"
                    f" of {event.get('max_retries')}): {excerpt(event.get('error') or '', 300)}")})]
            return [step("raw", {"event": "system", "subtype": subtype,
                                 "data": excerpt(event)})]
        if kind in QUIET_EVENTS:
            return []
        if kind == "assistant":
            out: list[dict[str, Any]] = []
            for block in event["message"].get("content") or []:
                btype = block.get("type")
                if btype == "text" and block.get("text", "").strip():
                    out.append(step("message", {"role": "assistant", "text": block["text"]}))
                elif btype == "thinking":
                    out.append(step("thought", {"text": block.get("thinking") or block.get("text", "")}))
                elif btype == "tool_use":
                    self.pending_tools[block["id"]] = {"id": block["id"], "name": block.get("name"),
                                                       "input": block.get("input")}
                else:
                    out.append(raw_step(excerpt(block), f"unknown content block {btype!r}"))
            return out
        if kind == "user":
            out = []
            content = event["message"].get("content")
            for block in content if isinstance(content, list) else []:
                if block.get("type") != "tool_result":
                    continue
                call = self.pending_tools.pop(block.get("tool_use_id"), None) or {
                    "id": block.get("tool_use_id"), "name": None, "input": None}
                result = block.get("content")
                if isinstance(result, list):
                    result = "\n".join(str(c.get("text", c)) if isinstance(c, dict) else str(c)
                                       for c in result)
                is_error = bool(block.get("is_error"))
                payload = {**call, "output_excerpt": excerpt(result or ""), "is_error": is_error}
                payload.update(_command_result(event.get("tool_use_result"), str(result or ""),
                                               is_error))
                out.append(step("tool", payload))
            return out
        if kind == "result":
            t.terminal_seen = True
            t.final_text = event.get("result")
            t.cost_usd = _turn_cost(event)
            usage = event.get("usage") or {}
            t.input_tokens = int(usage.get("input_tokens") or 0) + int(
                usage.get("cache_creation_input_tokens") or 0) + int(
                usage.get("cache_read_input_tokens") or 0)
            t.output_tokens = int(usage.get("output_tokens") or 0)
            t.num_turns = event.get("num_turns")
            subtype = event.get("subtype")
            # An API error can arrive as subtype "success" with is_error: true (and exit 0).
            t.ok = subtype == "success" and not event.get("is_error")
            if not t.ok:
                why = "" if subtype == "success" else f" ({subtype})"
                t.error = f"claude-code turn failed{why}: {excerpt(event.get('result') or '', 300)}"
            return []
        return [raw_step(excerpt(event), f"unknown event type {kind!r}")]

    def finish(self, exit_code: int, stderr_tail: str):
        turn, _ = super().finish(exit_code, stderr_tail)
        leftovers = [step("tool", {**call, "output_excerpt": None, "is_error": None})
                     for call in self.pending_tools.values()]
        self.pending_tools.clear()
        return turn, leftovers


PLAN_SETTINGS = '{"disableAllHooks": true}'


class ClaudeCode(EngineAdapter):
    name = "claude-code"
    binary = "claude"
    credentials: tuple[str, ...] = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN")
    permission_mode = "bypassPermissions"

    def gateway_env(self, token: str, gateway: str) -> dict[str, str]:
        return {"ANTHROPIC_BASE_URL": f"{gateway}/anthropic", "ANTHROPIC_API_KEY": token,
                # A sealed box: no telemetry, update checks or error reports.
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1"}

    def command(self, turn: EngineTurn) -> list[str]:
        argv = [self.binary, "-p", "--output-format", "stream-json", "--verbose",
                "--permission-mode", turn.permission_mode or self.permission_mode,
                "--append-system-prompt", FERRY_ASK_PROMPT]
        if turn.permission_mode == "plan":
            # Read-only must hold against the repository too: its .claude/settings.json
            # hooks and .mcp.json servers would run commands whatever the mode.
            argv += ["--setting-sources", "user", "--settings", PLAN_SETTINGS,
                     "--strict-mcp-config"]
        if turn.session_id:
            argv += ["--resume", turn.session_id]
        if turn.model:
            argv += ["--model", turn.model]
        if turn.max_turns:
            argv += ["--max-turns", str(turn.max_turns)]
        # After `--`, a prompt that starts with a dash (a ticket, a payload) is not a flag.
        return [*argv, "--", turn.prompt]

    def parser(self) -> StreamParser:
        return ClaudeParser()


class ClaudeCodeSubscription(ClaudeCode):
    """"Claude Code — Plan": paid by a Claude subscription (the OAuth token from
    `claude setup-token`), not by metered API credits."""

    name = "claude-code-plan"
    credentials = ("CLAUDE_CODE_OAUTH_TOKEN",)


class ClaudeCodeApi(ClaudeCode):
    """"Claude Code — API credits": paid by an Anthropic API key."""

    name = "claude-code-api"
    credentials = ("ANTHROPIC_API_KEY",)
