"""The `codex` engine: `codex exec --json`, resumed with `codex exec … resume <thread_id>`.

Stream format (reference/engines.md): `thread.started` (thread id), `turn.started`,
`item.started` / `item.updated` / `item.completed` with typed items, and a terminal
`turn.completed` (usage) or `turn.failed`. `error` events are retries being reported
(the last one is the turn's error if no terminal event follows). The exit code is not
the outcome.
"""

from __future__ import annotations

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

# The DevBox is the isolation; Codex's own Landlock/bwrap sandbox fails inside containers.
SANDBOX = "danger-full-access"
GATEWAY_KEY_ENV = "CODEX_API_KEY"


class CodexParser(StreamParser):
    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        t = self.turn
        kind = event.get("type")
        if kind == "thread.started":
            t.session_id = event["thread_id"]
            return []
        if kind in ("turn.started", "item.started", "item.updated"):
            return []
        if kind == "turn.completed":
            t.terminal_seen, t.ok, t.error = True, True, None
            usage = event.get("usage") or {}
            t.input_tokens = int(usage.get("input_tokens") or 0)
            t.output_tokens = int(usage.get("output_tokens") or 0)
            return []
        if kind == "turn.failed":
            t.terminal_seen, t.ok = True, False
            t.error = f"codex turn failed: {(event.get('error') or {}).get('message', 'no message')}"
            return []
        if kind == "error":
            # Not the end: codex reports each retry ("Reconnecting... 2/5") this way and
            # carries on. It is the turn's error only if no turn.completed/failed follows.
            message = str(event.get("message", "no message"))
            t.error = f"codex error: {message}"
            return [step("message", {"role": "system", "text": excerpt(message)})]
        if kind == "item.completed":
            return self.item(event["item"])
        return [raw_step(excerpt(event), f"unknown event type {kind!r}")]

    def item(self, item: dict[str, Any]) -> list[dict[str, Any]]:
        itype = item.get("type") or item.get("item_type")
        if itype in ("agent_message", "assistant_message"):
            self.turn.final_text = item.get("text")
            return [step("message", {"role": "assistant", "text": item.get("text", "")})]
        if itype == "reasoning":
            return [step("thought", {"text": item.get("text", "")})]
        if itype == "command_execution":
            return [step("tool", {"name": "command", "input": {"command": item.get("command")},
                                  "exit_code": item.get("exit_code"),
                                  "output_excerpt": excerpt(item.get("aggregated_output") or ""),
                                  "is_error": item.get("exit_code") not in (0, None)})]
        if itype == "file_change":
            return [step("file_change", {"changes": item.get("changes") or [],
                                         "status": item.get("status")})]
        if itype == "mcp_tool_call":
            return [step("tool", {"name": f"{item.get('server')}.{item.get('tool')}",
                                  "input": item.get("arguments"),
                                  "output_excerpt": excerpt(item.get("result") or ""),
                                  "is_error": bool(item.get("error"))})]
        if itype == "todo_list":
            return [step("todo_list", {"items": item.get("items") or []})]
        if itype == "error":
            return [step("message", {"role": "system", "text": item.get("message", "")})]
        return [raw_step(excerpt(item), f"unknown item type {itype!r}")]


class Codex(EngineAdapter):
    name = "codex"
    binary = "codex"
    credentials = ("CODEX_API_KEY", "OPENAI_API_KEY")

    def gateway_env(self, token: str, gateway: str) -> dict[str, str]:
        return {GATEWAY_KEY_ENV: token}

    def command(self, turn: EngineTurn) -> list[str]:
        prompt = turn.prompt if turn.session_id else f"{FERRY_ASK_PROMPT}\n\n{turn.prompt}"
        argv = [self.binary, "exec", "--json", "--skip-git-repo-check"]
        if turn.gateway:
            # codex ignores OPENAI_BASE_URL: the endpoint is a model provider of its own
            # (the built-in `openai` one insists on WebSockets first, retried five times
            # before it falls back), speaking Responses over HTTP+SSE to the gateway.
            argv += ["-c", "model_providers.ferry={" + ",".join([
                         'name="Ferry gateway"', f'base_url="{turn.gateway}/openai/v1"',
                         f'env_key="{GATEWAY_KEY_ENV}"', 'wire_api="responses"',
                         "supports_websockets=false"]) + "}",
                     "-c", 'model_provider="ferry"',
                     # No update check, analytics or plugin catalogue (api.github.com,
                     # chatgpt.com): calls the egress proxy would refuse, each shown as an
                     # egress_denied step the agent never asked for.
                     "-c", "check_for_update_on_startup=false",
                     "-c", "analytics.enabled=false", "-c", "features.plugins=false"]
        if turn.session_id:
            # `resume` rejects --sandbox: pass the sandbox mode as config instead.
            argv += ["-c", f'sandbox_mode="{SANDBOX}"']
        else:
            argv += ["--sandbox", SANDBOX]
        if turn.model:
            argv += ["-m", turn.model]
        if turn.effort:
            argv += ["-c", f'model_reasoning_effort="{turn.effort}"']
        if turn.session_id:
            argv += ["resume", turn.session_id]
        # After `--`, a prompt that starts with a dash (a ticket, a payload) is not a flag.
        return [*argv, "--", prompt]

    def parser(self) -> StreamParser:
        return CodexParser()
