"""Loopback stand-ins for the model APIs the real agent CLIs call, scripted per test.

`FakeAnthropic` speaks Anthropic Messages (`POST /v1/messages`, streamed as SSE:
message_start, content_block_start/delta/stop for thinking, text and tool_use blocks,
message_delta with usage, message_stop). `FakeResponses` speaks OpenAI Responses
(`POST /v1/responses`, SSE: response.created, output_item.added/done, response.completed
with usage). A test gives each a `responder`: the request body in, a list of blocks out:
("thinking", text), ("text", text) or ("tool", name, input) — or an `ApiError(status,
message)`, answered as the real API answers errors, or (Responses only) a list ending in
("disconnect",): the stream stops before `response.completed`. Every request is recorded.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from tests.integration.loopback import LoopbackServer

Block = tuple


class ApiError:
    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message


Responder = Callable[[dict[str, Any]], "list[Block] | ApiError"]
USAGE_IN, USAGE_OUT = 1000, 50


def last_user_text(body: dict[str, Any]) -> str:
    """The text of the newest user message (tool results included), for responders."""
    for message in reversed(body.get("messages") or body.get("input") or []):
        if message.get("role") != "user" and message.get("type") != "function_call_output":
            continue
        content = message.get("content", message.get("output"))
        if isinstance(content, str):
            return content
        parts = []
        for block in content or []:
            if isinstance(block, dict):
                inner = block.get("content")
                if isinstance(inner, list):
                    parts += [c.get("text", "") for c in inner if isinstance(c, dict)]
                parts.append(str(block.get("text") or (inner if isinstance(inner, str) else "")))
        return "\n".join(parts)
    return ""


def has_tool_result(body: dict[str, Any]) -> bool:
    last = (body.get("messages") or [{}])[-1]
    content = last.get("content")
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content)


def responses_tool_output(body: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
    """For a Responses request that ends with a tool's output: (the call's arguments,
    the output text); None when the newest input is not a tool output."""
    items = body.get("input") or []
    if not items or items[-1].get("type") != "function_call_output":
        return None
    call_id = items[-1].get("call_id")
    call = next((i for i in items if i.get("type") == "function_call"
                 and i.get("call_id") == call_id), {})
    try:
        args = json.loads(call.get("arguments") or "{}")
    except ValueError:
        args = {}
    output = items[-1].get("output")
    if isinstance(output, list):
        output = "".join(str(o.get("text", "")) for o in output if isinstance(o, dict))
    return args, str(output)


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


class FakeAnthropic(LoopbackServer):
    def __init__(self, port: int) -> None:
        self.requests: list[dict[str, Any]] = []
        self.responder: Responder = lambda body: [("text", "ok")]
        app = FastAPI()

        @app.post("/v1/messages")
        async def messages(request: Request):
            body = await request.json()
            self.requests.append({"body": body, "headers": dict(request.headers),
                                  "path": request.url.path})
            blocks = self.responder(body)
            if isinstance(blocks, ApiError):
                kind = "invalid_request_error" if blocks.status == 400 else "api_error"
                return JSONResponse({"type": "error", "error": {"type": kind,
                                                                "message": blocks.message}},
                                    status_code=blocks.status)
            model = body.get("model", "claude-sonnet-4-5")
            if not body.get("stream"):
                return JSONResponse(self._message(model, blocks))
            return StreamingResponse(self._stream(model, blocks), media_type="text/event-stream")

        @app.post("/v1/messages/count_tokens")
        async def count(request: Request):
            return {"input_tokens": 100}

        super().__init__(app, port)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def main_requests(self) -> list[dict[str, Any]]:
        """Requests of the agent loop itself (they carry tools), not side calls."""
        return [r for r in self.requests if r["body"].get("tools")]

    @staticmethod
    def _content(blocks: list[Block]) -> list[dict[str, Any]]:
        out = []
        for b in blocks:
            if b[0] == "thinking":
                out.append({"type": "thinking", "thinking": b[1], "signature": "sig"})
            elif b[0] == "text":
                out.append({"type": "text", "text": b[1]})
            else:
                out.append({"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:12]}",
                            "name": b[1], "input": b[2]})
        return out

    def _message(self, model: str, blocks: list[Block]) -> dict[str, Any]:
        content = self._content(blocks)
        stop = "tool_use" if any(c["type"] == "tool_use" for c in content) else "end_turn"
        return {"id": f"msg_{uuid.uuid4().hex[:12]}", "type": "message", "role": "assistant",
                "model": model, "content": content, "stop_reason": stop, "stop_sequence": None,
                "usage": {"input_tokens": USAGE_IN, "output_tokens": USAGE_OUT,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}

    def _stream(self, model: str, blocks: list[Block]) -> Iterator[bytes]:
        msg = self._message(model, blocks)
        start = {**msg, "content": [], "stop_reason": None,
                 "usage": {**msg["usage"], "output_tokens": 1}}
        yield _sse("message_start", {"type": "message_start", "message": start})
        for i, c in enumerate(msg["content"]):
            if c["type"] == "thinking":
                yield _sse("content_block_start", {"type": "content_block_start", "index": i,
                           "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
                yield _sse("content_block_delta", {"type": "content_block_delta", "index": i,
                           "delta": {"type": "thinking_delta", "thinking": c["thinking"]}})
                yield _sse("content_block_delta", {"type": "content_block_delta", "index": i,
                           "delta": {"type": "signature_delta", "signature": "sig"}})
            elif c["type"] == "text":
                yield _sse("content_block_start", {"type": "content_block_start", "index": i,
                           "content_block": {"type": "text", "text": ""}})
                yield _sse("content_block_delta", {"type": "content_block_delta", "index": i,
                           "delta": {"type": "text_delta", "text": c["text"]}})
            else:
                yield _sse("content_block_start", {"type": "content_block_start", "index": i,
                           "content_block": {**c, "input": {}}})
                yield _sse("content_block_delta", {"type": "content_block_delta", "index": i,
                           "delta": {"type": "input_json_delta",
                                     "partial_json": json.dumps(c["input"])}})
            yield _sse("content_block_stop", {"type": "content_block_stop", "index": i})
        yield _sse("message_delta", {"type": "message_delta",
                                     "delta": {"stop_reason": msg["stop_reason"],
                                               "stop_sequence": None},
                                     "usage": {"output_tokens": USAGE_OUT}})
        yield _sse("message_stop", {"type": "message_stop"})


class FakeResponses(LoopbackServer):
    """OpenAI Responses API (what codex calls), streamed."""

    def __init__(self, port: int) -> None:
        self.requests: list[dict[str, Any]] = []
        self.responder: Responder = lambda body: [("text", "ok")]
        app = FastAPI()

        @app.post("/v1/responses")
        async def responses(request: Request):
            body = await request.json()
            self.requests.append({"body": body, "headers": dict(request.headers),
                                  "path": request.url.path})
            blocks = self.responder(body)
            if isinstance(blocks, ApiError):
                return JSONResponse({"error": {"message": blocks.message, "type":
                                               "invalid_request_error", "code": None}},
                                    status_code=blocks.status)
            return StreamingResponse(self._stream(body.get("model", "gpt-5"), blocks),
                                     media_type="text/event-stream")

        super().__init__(app, port)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _stream(self, model: str, blocks: list[Block]) -> Iterator[bytes]:
        rid = f"resp_{uuid.uuid4().hex[:12]}"
        base = {"id": rid, "object": "response", "created_at": 1700000000, "model": model,
                "output": []}
        yield _sse("response.created", {"type": "response.created",
                                        "response": {**base, "status": "in_progress"}})
        items = []
        for i, b in enumerate(blocks):
            if b[0] == "disconnect":
                return
            if b[0] == "thinking":
                item = {"id": f"rs_{i}", "type": "reasoning",
                        "summary": [{"type": "summary_text", "text": b[1]}]}
            elif b[0] == "text":
                item = {"id": f"msg_{i}", "type": "message", "status": "completed",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": b[1], "annotations": []}]}
            else:
                item = {"id": f"fc_{i}", "type": "function_call", "status": "completed",
                        "call_id": f"call_{uuid.uuid4().hex[:8]}", "name": b[1],
                        "arguments": json.dumps(b[2])}
            items.append(item)
            yield _sse("response.output_item.added", {"type": "response.output_item.added",
                                                      "output_index": i, "item": item})
            yield _sse("response.output_item.done", {"type": "response.output_item.done",
                                                     "output_index": i, "item": item})
        usage = {"input_tokens": USAGE_IN, "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": USAGE_OUT, "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": USAGE_IN + USAGE_OUT}
        yield _sse("response.completed", {"type": "response.completed", "response": {
            **base, "status": "completed", "output": items, "usage": usage}})
