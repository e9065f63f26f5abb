"""A loopback stand-in for an OpenAI-compatible Chat Completions server, scripted per test.

It speaks the real wire format (`POST /v1/chat/completions` with `tools`, responses with
`choices[0].message.tool_calls[].function.arguments` as JSON strings, `finish_reason`,
`usage`) and records every request it gets.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request

from tests.integration.loopback import LoopbackServer

Scenario = Callable[[list[dict[str, Any]]], dict[str, Any]]


def tool_call(name: str, arguments: Any, call_id: str | None = None) -> dict[str, Any]:
    return {"id": call_id or f"call_{uuid.uuid4().hex[:8]}", "type": "function",
            "function": {"name": name, "arguments": arguments}}


def reply(tool_calls: list[dict[str, Any]] | None = None, content: str | None = None,
          finish_reason: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {"id": "chatcmpl-" + uuid.uuid4().hex[:8], "object": "chat.completion",
            "created": int(time.time()), "model": "fake-model",
            "choices": [{"index": 0, "message": message,
                         "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop")}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}


class FakeOpenAI(LoopbackServer):
    def __init__(self, port: int) -> None:
        self.requests: list[dict[str, Any]] = []
        self.scenarios: dict[str, Scenario] = {}
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def completions(request: Request) -> dict[str, Any]:
            body = await request.json()
            self.requests.append({"body": body, "auth": request.headers.get("authorization")})
            first_user = next(m["content"] for m in body["messages"] if m["role"] == "user")
            for key, scenario in self.scenarios.items():
                if key in first_user:
                    return scenario(body["messages"])
            return reply(content=f"no scenario for {first_user!r}")

        super().__init__(app, port)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"



def assistant_turns(messages: list[dict[str, Any]]) -> int:
    return sum(1 for m in messages if m["role"] == "assistant")


def last_user(messages: list[dict[str, Any]]) -> str:
    return next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")


def dumps(obj: Any) -> str:
    return json.dumps(obj)
