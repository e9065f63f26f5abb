"""The `openai` engine: Ferry's own agent loop over any OpenAI-compatible Chat Completions API.

Each model call is one activity (and one turn boundary: steering lands between calls).
The conversation lives in the artifact store (`openai/call-NNNN.json` snapshots), not in
workflow history; a retried call with the same number returns the saved result instead
of calling the model (and running its tools) again. Tools run in the DevBox.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shlex
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.devbox import DevBoxBackend
from activities.devbox.budget import exec_budget
from activities.engines.base import cap_payload, excerpt
from activities.gateway.metering import Meter
from activities.secrets import redact
from ferry.artifact_store import ArtifactStore
from ferry.metrics import count_model_call
from ferry.models.activity_io import ModelCallInput, ModelCallResult
from ferry.models.steps import CallUsage, StepIn, TurnOutcome, Usage
from ferry.questions import QuestionSet
from ferry.settings import Settings

SYSTEM_PROMPT = (
    "You are a coding agent working in a Linux sandbox (a DevBox) whose workspace is the "
    "current directory. Use the tools to inspect and change files and run commands. When you "
    "need a decision from the person who gave you the task, call ask_user (then stop and wait). "
    "When the task is done, call finish with a short summary."
)

WRITE_CHUNK = 64 * 1024
_QUESTION_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string"}, "kind": {"type": "string", "enum": ["single", "multi", "text"]},
        "text": {"type": "string"}, "options": {"type": "array", "items": {"type": "string"}},
        "default": {}, "allow_other": {"type": "boolean"}, "required": {"type": "boolean"},
    },
    "required": ["id", "kind", "text"],
}


def _tool(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict:
    return {"type": "function", "function": {"name": name, "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required}}}


TOOLS = [
    _tool("exec", "Run a shell command in the workspace; returns exit code and output.",
          {"command": {"type": "string"}}, ["command"]),
    _tool("read_file", "Read a text file.", {"path": {"type": "string"}}, ["path"]),
    _tool("write_file", "Write a text file (creating directories).",
          {"path": {"type": "string"}, "content": {"type": "string"}}, ["path", "content"]),
    _tool("list_files", "List a directory.", {"path": {"type": "string"}}, []),
    _tool("ask_user", "Ask the person one or several questions; then stop and wait.",
          {"questions": {"type": "array", "items": _QUESTION_SCHEMA}}, ["questions"]),
    _tool("finish", "Finish the task.", {"summary": {"type": "string"}}, ["summary"]),
]


def _now() -> datetime:
    return datetime.now(UTC)


class ModelCallActivities:
    def __init__(self, settings: Settings, backend: DevBoxBackend, store: ArtifactStore,
                 secret_values: list[str]) -> None:
        self.settings = settings
        self.backend = backend
        self.store = store
        self.secret_values = secret_values
        self.prices = settings.price_table

    def _path(self, call: int) -> str:
        return f"openai/call-{call:04d}.json"

    def _load(self, run_id: str, call: int) -> dict[str, Any] | None:
        data = self.store.read_bytes(run_id, self._path(call))
        return json.loads(data) if data is not None else None

    @activity.defn(name="model_call")
    async def model_call(self, inp: ModelCallInput) -> ModelCallResult:
        saved = self._load(inp.run_id, inp.call)
        if saved is not None:  # a retry after the call was made: do not call again
            return ModelCallResult.model_validate(saved["result"])
        if not self.settings.openai_base_url:
            raise ApplicationError("the openai engine needs FERRY_OPENAI_BASE_URL on the worker",
                                   type="EngineNotConfigured", non_retryable=True)
        previous = self._load(inp.run_id, inp.call - 1) if inp.call > 1 else None
        messages = previous["messages"] if previous else [{"role": "system",
                                                           "content": SYSTEM_PROMPT}]
        if inp.prompt:
            messages.append({"role": "user", "content": inp.prompt})
        steps: list[StepIn] = []
        response = await self._call(messages, inp)
        choice = (response.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        messages.append({k: v for k, v in message.items() if k in ("role", "content", "tool_calls")}
                        | {"role": "assistant"})
        if message.get("content"):
            steps.append(self._step("message", {"role": "assistant", "text": message["content"]}))
        outcome = self._priced(response, inp)
        done = False
        calls = message.get("tool_calls") or []
        for call in calls:
            name, args = self._parse_call(call)
            result, step, extra = await self._run_tool(inp, name, args)
            steps.append(step)
            messages.append({"role": "tool", "tool_call_id": call.get("id") or name,
                             "content": result})
            if extra.get("questions") is not None:
                outcome.asked = extra["questions"]
            if extra.get("finish") is not None:
                outcome.final_text = redact(extra["finish"], self.secret_values)
                done = True
        if not calls:
            # No tool call: the model answered in prose (finish_reason stop/length/…).
            outcome.final_text = redact(message.get("content") or "", self.secret_values)
            done = True
        called = ModelCallResult(steps=steps, outcome=outcome, done=done and outcome.asked is None)
        self.store.write_bytes(inp.run_id, self._path(inp.call), json.dumps(redact({
            "messages": messages, "result": called.model_dump(mode="json")},
            self.secret_values)).encode())
        return called

    def _priced(self, response: dict[str, Any], inp: ModelCallInput) -> TurnOutcome:
        """The call's tokens and cost, read and priced as the gateway does for the CLIs."""
        meter = Meter(inp.model or self.settings.openai_model, streaming=False)
        meter.absorb(response)
        used = meter.usage
        cost = round(used.cost(self.prices), 6)
        count_model_call("openai", used, cost, 200, self.prices)
        call = CallUsage(model=used.model, input_tokens=used.input, output_tokens=used.output,
                         cache_read_tokens=used.cache_read, cost_usd=cost)
        return TurnOutcome(ok=True, num_turns=1, calls=[call], usage=Usage(
            input_tokens=used.input + used.cache_read, output_tokens=used.output, cost_usd=cost))

    async def _call(self, messages: list[dict[str, Any]], inp: ModelCallInput) -> dict[str, Any]:
        body: dict[str, Any] = {"model": inp.model or self.settings.openai_model,
                                "messages": messages, "tools": TOOLS, "tool_choice": "auto"}
        if inp.effort:
            body["reasoning_effort"] = inp.effort
        headers = {}
        if self.settings.openai_api_key:
            headers["Authorization"] = f"Bearer {self.settings.openai_api_key}"
        url = (self.settings.openai_base_url or "").rstrip("/") + "/chat/completions"
        try:
            async with httpx.AsyncClient(timeout=self.settings.openai_timeout) as client:
                r = await client.post(url, json=body, headers=headers)
        except httpx.HTTPError as e:
            raise ApplicationError(f"model API unreachable at {url}: {e.__class__.__name__}",
                                   type="ModelApiError") from e
        if r.status_code >= 400:
            detail = redact(r.text[:300], self.secret_values)
            raise ApplicationError(f"model API answered HTTP {r.status_code} at {url}: {detail}",
                                   type="ModelApiError", non_retryable=r.status_code in (400, 401,
                                                                                         403, 404))
        return r.json()

    @staticmethod
    def _parse_call(call: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        fn = call.get("function") or {}
        raw = fn.get("arguments")
        if isinstance(raw, dict):
            return fn.get("name", ""), raw
        try:
            args = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            args = {"__invalid__": raw}
        return fn.get("name", ""), args if isinstance(args, dict) else {"__invalid__": raw}

    def _step(self, kind: str, payload: dict[str, Any]) -> StepIn:
        return StepIn(kind=kind, started_at=_now(), ended_at=_now(),  # type: ignore[arg-type]
                      payload=redact(cap_payload(payload), self.secret_values))

    async def _sh(self, inp: ModelCallInput, command: str) -> tuple[int, str]:
        return await asyncio.to_thread(self.backend.exec, inp.devbox, ["sh", "-c", command],
                                       exec_budget())

    async def _run_tool(self, inp: ModelCallInput, name: str,
                        args: dict[str, Any]) -> tuple[str, StepIn, dict[str, Any]]:
        if "__invalid__" in args:
            text = f"error: arguments are not valid JSON: {args['__invalid__']!r}"
            return text, self._step("tool", {"name": name, "input": args, "output_excerpt": text,
                                             "is_error": True}), {}
        if name == "exec":
            code, output = await self._sh(inp, str(args.get("command", "")))
            text = f"exit code {code}\n{output}"
            return text, self._step("tool", {"name": "exec", "input": args, "exit_code": code,
                                             "output_excerpt": excerpt(output),
                                             "is_error": code != 0}), {}
        if name == "read_file":
            code, output = await self._sh(inp, f"cat -- {shlex.quote(str(args.get('path', '')))}")
            return output, self._step("tool", {"name": name, "input": args,
                                               "output_excerpt": excerpt(output),
                                               "is_error": code != 0}), {}
        if name == "write_file":
            path = shlex.quote(str(args.get("path", "")))
            data = base64.b64encode(str(args.get("content", "")).encode()).decode()
            tmp = shlex.quote(f"/tmp/ferry-write-{inp.call}.b64")
            code, output = await self._sh(inp, f"mkdir -p \"$(dirname -- {path})\" && : > {tmp}")
            # In chunks: one shell argument cannot hold a large file (E2BIG).
            for i in range(0, len(data), WRITE_CHUNK):
                if code != 0:
                    break
                code, output = await self._sh(inp, f"printf %s {data[i:i + WRITE_CHUNK]} >> {tmp}")
            if code == 0:
                code, output = await self._sh(inp, f"base64 -d {tmp} > {path}; rc=$?; rm -f {tmp}; "
                                                   "exit $rc")
            text = "written" if code == 0 else f"error: {output}"
            return text, self._step("tool", {"name": name, "input": {"path": args.get("path")},
                                             "output_excerpt": text, "is_error": code != 0}), {}
        if name == "list_files":
            path = shlex.quote(str(args.get("path") or "."))
            code, output = await self._sh(inp, f"ls -la -- {path}")
            return output, self._step("tool", {"name": name, "input": args,
                                               "output_excerpt": excerpt(output),
                                               "is_error": code != 0}), {}
        if name == "ask_user":
            try:
                qs = QuestionSet.model_validate({"questions": args.get("questions")})
            except ValidationError as e:
                text = f"error: invalid questions: {e}"
                return text, self._step("tool", {"name": name, "input": args,
                                                 "output_excerpt": excerpt(text),
                                                 "is_error": True}), {}
            text = "The questions were sent to the person; their answers arrive in the next message."
            return text, self._step("tool", {"name": name, "input": args, "output_excerpt": text,
                                             "is_error": False}), {"questions": qs}
        if name == "finish":
            summary = str(args.get("summary", ""))
            return "ok", self._step("tool", {"name": name, "input": args, "output_excerpt": "ok",
                                             "is_error": False}), {"finish": summary}
        text = f"error: unknown tool {name!r}"
        return text, self._step("tool", {"name": name, "input": args, "output_excerpt": text,
                                         "is_error": True}), {}
