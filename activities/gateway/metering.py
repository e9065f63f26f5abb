"""Token usage read from a model response as it streams through the gateway.

Understands the three wire formats the engines use: Anthropic Messages (SSE events
`message_start` / `message_delta`, or one JSON body), OpenAI Responses (`response.completed`)
and Chat Completions (a final chunk with `usage`, or one JSON body). The body passes
through untouched; only `data:` lines are looked at, and a line or body beyond the cap
is skipped rather than buffered.
"""

from __future__ import annotations

import json
from typing import Any

from ferry.pricing import Usage

MAX_LINE = 1024 * 1024
MAX_JSON_BODY = 8 * 1024 * 1024


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


class Meter:
    """Feed it the response's bytes; `usage` holds what they said about tokens."""

    def __init__(self, request_model: str | None, streaming: bool) -> None:
        self.usage = Usage(model=request_model)
        self.streaming = streaming
        self.buf = bytearray()
        self.overflow = False

    def feed(self, chunk: bytes) -> None:
        if self.overflow:
            if not self.streaming or b"\n" not in chunk:
                return
            chunk = chunk[chunk.index(b"\n") + 1:]
            self.overflow = False
        self.buf += chunk
        if not self.streaming:
            if len(self.buf) > MAX_JSON_BODY:
                self.buf.clear()
                self.overflow = True
            return
        while (nl := self.buf.find(b"\n")) >= 0:
            line = bytes(self.buf[:nl]).strip()
            del self.buf[:nl + 1]
            if line.startswith(b"data:"):
                self._event(line[5:].strip())
        if len(self.buf) > MAX_LINE:
            self.buf.clear()
            self.overflow = True

    def close(self) -> Usage:
        if self.buf:
            data = bytes(self.buf).strip()
            self.buf.clear()
            if self.streaming and data.startswith(b"data:"):
                data = data[5:].strip()
            self._event(data)
        return self.usage

    def _event(self, data: bytes) -> None:
        if not data or data == b"[DONE]":
            return
        try:
            event = json.loads(data)
        except ValueError:
            return
        if isinstance(event, dict):
            self.absorb(event)

    def absorb(self, event: dict[str, Any]) -> None:
        for holder in (event, event.get("message"), event.get("response")):
            if not isinstance(holder, dict):
                continue
            if isinstance(holder.get("model"), str):
                self.usage.model = holder["model"][:200]
            usage = holder.get("usage")
            if isinstance(usage, dict):
                self._usage(usage)

    def _usage(self, u: dict[str, Any]) -> None:
        us = self.usage
        # Streams repeat counts (Anthropic's output_tokens is cumulative): keep the largest.
        if "prompt_tokens" in u or "completion_tokens" in u:  # Chat Completions
            cached = _int((u.get("prompt_tokens_details") or {}).get("cached_tokens"))
            us.input = max(us.input, _int(u.get("prompt_tokens")) - cached)
            us.cache_read = max(us.cache_read, cached)
            us.output = max(us.output, _int(u.get("completion_tokens")))
        elif "input_tokens_details" in u or "total_tokens" in u:  # OpenAI Responses
            cached = _int((u.get("input_tokens_details") or {}).get("cached_tokens"))
            us.input = max(us.input, _int(u.get("input_tokens")) - cached)
            us.cache_read = max(us.cache_read, cached)
            us.output = max(us.output, _int(u.get("output_tokens")))
        else:  # Anthropic: input_tokens already excludes the cache
            us.input = max(us.input, _int(u.get("input_tokens")))
            us.output = max(us.output, _int(u.get("output_tokens")))
            us.cache_read = max(us.cache_read, _int(u.get("cache_read_input_tokens")))
            us.cache_write = max(us.cache_write, _int(u.get("cache_creation_input_tokens")))
        cost = u.get("cost")
        if isinstance(cost, int | float) and not isinstance(cost, bool) and 0 <= cost < 1e6:
            us.reported_cost = float(cost)
