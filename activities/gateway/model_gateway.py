"""The model gateway: DevBox CLIs call it with a per-turn token; it calls the model API
with the worker's real key, streams the answer back unbuffered, and meters every call.

Paths: `/anthropic/<path>` goes to `ANTHROPIC_BASE_URL` (default https://api.anthropic.com)
and `/openai/v1/<path>` to `OPENAI_BASE_URL` (default https://api.openai.com/v1), both
read from the worker's environment. A call with an unknown or ended token is a 401; once
the Run's cost budget is spent, a 400 whose message names the budget (the CLIs show it
and stop; the turn is ended by the worker).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from activities.gateway.grants import Grant, GrantBook
from activities.gateway.metering import Meter

log = logging.getLogger("ferry.gateway")
MAX_REQUEST = 32 * 1024 * 1024
# Hop-by-hop and credential headers never cross the gateway.
DROP_REQUEST = {"host", "content-length", "authorization", "x-api-key", "connection",
                "proxy-authorization", "accept-encoding", "transfer-encoding", "keep-alive",
                "upgrade", "te", "cookie"}
# A DevBox must not choose which organisation or project pays.
DROP_REQUEST |= {"openai-organization", "openai-project", "anthropic-organization-id"}
DROP_RESPONSE = {"content-length", "transfer-encoding", "connection", "keep-alive",
                 "content-encoding", "set-cookie",
                 # which account the key belongs to is the worker's business
                 "anthropic-organization-id", "openai-organization", "openai-project"}
OAUTH_BETA = "oauth-2025-04-20"
LOCK_WAIT_SECONDS = 300
MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,200}")
DRAIN_SECONDS = 600


def upstream_base(provider: str, environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    if provider == "anthropic":
        return (env.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com").rstrip("/")
    return (env.get("OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip("/")


ANTHROPIC_HEADERS = {
    "ANTHROPIC_API_KEY": lambda v: {"x-api-key": v},
    "ANTHROPIC_AUTH_TOKEN": lambda v: {"authorization": f"Bearer {v}"},
    "CLAUDE_CODE_OAUTH_TOKEN": lambda v: {"authorization": f"Bearer {v}", "anthropic-beta": OAUTH_BETA},
}


OPENAI_HEADERS = {
    "CODEX_API_KEY": lambda v: {"authorization": f"Bearer {v}"},
    "OPENAI_API_KEY": lambda v: {"authorization": f"Bearer {v}"},
}
PROVIDER_HEADERS = {"anthropic": ANTHROPIC_HEADERS, "openai": OPENAI_HEADERS}
# Paid per call (metered in dollars); a subscription's calls are counted in tokens only.
UNBILLED = {"CLAUDE_CODE_OAUTH_TOKEN"}

# What a DevBox may call with the worker's credential: model calls and model listings.
# Anything else (files, batches, fine-tuning, an account's OAuth endpoints) would act on the
# account itself, unmetered and beyond the turn: a 404 from the gateway.
ALLOWED_CALLS = {
    "anthropic": {("POST", "v1/messages"), ("POST", "v1/messages/count_tokens"),
                  ("GET", "v1/models")},
    "openai": {("POST", "responses"), ("POST", "chat/completions"), ("GET", "models")},
}


def call_allowed(provider: str, method: str, path: str) -> bool:
    path = path.strip("/")
    if (method, path) in ALLOWED_CALLS[provider]:
        return True
    # One model's description: models/<id>, an id of plain characters (nothing an upstream
    # or a proxy before it could decode into another path).
    head, _, rest = path.rpartition("/")
    return method == "GET" and (provider, head) in (("anthropic", "v1/models"),
                                                    ("openai", "models")) \
        and MODEL_ID.fullmatch(rest) is not None


def credential_headers(provider: str, secrets: dict[str, str],
                       only: list[str] | None) -> tuple[str, dict[str, str]] | None:
    """(the credential's name, its headers as the provider expects them) for the first of
    `only` — the credentials the turn's engine may be paid with, in order — that the worker
    has; None if it has none of them. None or [] for `only` allows nothing."""
    table = PROVIDER_HEADERS.get(provider, {})
    for name in only or []:
        if name in table and secrets.get(name):
            return name, table[name](secrets[name])
    return None


def _error(provider: str, status: int, kind: str, message: str) -> JSONResponse:
    if provider == "anthropic":
        body = {"type": "error", "error": {"type": kind, "message": message}}
    else:
        body = {"error": {"type": kind, "code": kind, "message": message}}
    return JSONResponse(body, status_code=status)


def _token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key")


class ModelGateway:
    def __init__(self, book: GrantBook, secrets: dict[str, str],
                 environ: dict[str, str] | None = None) -> None:
        self.book = book
        self.secrets = secrets
        self.bases = {p: upstream_base(p, environ) for p in ("anthropic", "openai")}
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(600, connect=30), follow_redirects=False)
        self.app = Starlette(routes=[
            Route("/anthropic/{path:path}", self.proxy, methods=["GET", "POST", "DELETE"]),
            Route("/openai/v1/{path:path}", self.proxy, methods=["GET", "POST", "DELETE"]),
        ])

    async def proxy(self, request: Request) -> Response:
        provider = request.url.path.split("/")[1]
        grant = self.book.lookup(_token(request))
        if grant is None:
            return _error(provider, 401, "authentication_error",
                          "Ferry gateway: this token is not valid (it belongs to a turn that "
                          "has ended, or to none)")
        path = request.path_params["path"]
        if not call_allowed(provider, request.method, path):
            return _error(provider, 404, "not_found_error",
                          f"Ferry gateway: {request.method} {path[:200]!r} is not a model call "
                          "this gateway forwards")
        body = await _capped_body(request)
        if body is None:
            return _error(provider, 413, "request_too_large", "Ferry gateway: request too large")
        paid_by = [n for n in grant.credentials or [] if n in PROVIDER_HEADERS[provider]]
        found = credential_headers(provider, self.secrets, paid_by)
        if found is None:
            if not paid_by:
                return _error(provider, 403, "permission_error",
                              f"Ferry gateway: this Run's engine is not paid through {provider}")
            missing = f"the worker has no {' or '.join(paid_by)}"
            # The CLIs retry a 401 for minutes; nothing will change within this turn, so
            # the turn ends now with the reason (the worker reads it from the grant).
            grant.exhausted = grant.exhausted or f"the model gateway cannot pay: {missing}"
            return _error(provider, 401, "authentication_error", f"Ferry gateway: {missing}")
        name, creds = found
        # With a budget, one call at a time: each starts only once the last one is charged,
        # so calls in parallel cannot all pass the check before any is paid for.
        lock = self.book.lock(grant) if grant.max_cost_usd is not None else None
        if lock is not None:
            try:
                await asyncio.wait_for(lock.acquire(), LOCK_WAIT_SECONDS)
            except TimeoutError:
                return _error(provider, 429, "rate_limit_error",
                              "Ferry gateway: this Run's calls go one at a time under its "
                              "budget, and the one before is still running")
        call = _Call(self.book, grant, provider, name, lock)
        refusal = self.book.refusal(grant)
        if refusal:
            await call.finish()
            return _error(provider, 400, "invalid_request_error",
                          f"Ferry gateway refused the call: {refusal}")
        try:
            return await self._forward(request, provider, path, body, creds, call)
        except BaseException:
            await call.finish()
            raise

    async def _forward(self, request: Request, provider: str, path: str, body: bytes,
                       creds: dict[str, str], call: _Call) -> Response:
        model, streaming = _peek(body)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in DROP_REQUEST}
        headers["accept-encoding"] = "identity"  # metering reads the body as it passes
        if "anthropic-beta" in creds and headers.get("anthropic-beta"):
            creds = {**creds, "anthropic-beta": f"{headers['anthropic-beta']},{OAUTH_BETA}"}
        headers.update(creds)
        url = f"{self.bases[provider]}/{path}"
        if request.url.query:
            url += f"?{request.url.query}"
        send = asyncio.ensure_future(self.client.send(
            self.client.build_request(request.method, url, headers=headers, content=body),
            stream=True))
        ended = asyncio.ensure_future(self.book.ended(call.grant).wait())
        try:
            await asyncio.wait({send, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
        if not send.done():  # the turn ended (and its grace passed) before the answer came
            send.cancel()
            await call.finish()
            return _error(provider, 504, "api_error",
                          "Ferry gateway: the turn this call belongs to has ended; the call "
                          "was cut off")
        try:
            upstream = send.result()
        except httpx.HTTPError as e:
            log.warning("gateway: %s unreachable: %s", url, e)
            await call.finish()
            return _error(provider, 502, "api_error",
                          f"Ferry gateway: the {provider} API did not answer ({type(e).__name__})")
        ctype = upstream.headers.get("content-type", "")
        call.upstream = upstream
        call.meter = Meter(model, streaming="event-stream" in ctype or streaming)
        out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in DROP_RESPONSE}
        return _Relay(call, status_code=upstream.status_code, headers=out_headers)

    async def aclose(self) -> None:
        await self.client.aclose()


async def _capped_body(request: Request) -> bytes | None:
    """The request body, or None past MAX_REQUEST (never buffered beyond it)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REQUEST:
            return None
    return bytes(body)


def _peek(body: bytes) -> tuple[str | None, bool]:
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        return None, False
    if not isinstance(data, dict):
        return None, False
    model = data.get("model")
    return (model[:200] if isinstance(model, str) else None), data.get("stream") is True


class _Call:
    """One forwarded call: counted in flight from its checks until it is charged, exactly
    once, whether its answer was read to the end, cut off, or never sent (client gone)."""

    def __init__(self, book: GrantBook, grant: Grant, provider: str, credential: str,
                 lock: asyncio.Lock | None) -> None:
        self.book, self.grant, self.provider, self.lock = book, grant, provider, lock
        self.billed = credential not in UNBILLED
        self.upstream: httpx.Response | None = None
        self.meter: Meter | None = None
        self.finished = False
        book.begin_call(grant)

    async def chunks(self) -> AsyncIterator[bytes]:
        assert self.upstream is not None and self.meter is not None
        async for chunk in self.upstream.aiter_bytes():
            self.meter.feed(chunk)
            yield chunk
            if self.grant.closed:  # the turn ended: its calls end with it
                break

    async def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        try:
            if self.upstream is not None and self.meter is not None:
                if not self.upstream.is_closed and not self.grant.closed:
                    # Nobody read it (the client left): read it anyway, so it is paid for.
                    try:
                        async with asyncio.timeout(DRAIN_SECONDS):
                            async for chunk in self.upstream.aiter_bytes():
                                self.meter.feed(chunk)
                    except (TimeoutError, httpx.HTTPError, RuntimeError):
                        pass
                await self.upstream.aclose()
                self.book.charge(self.grant, self.provider, self.meter.close(),
                                 self.upstream.status_code, billed=self.billed)
        finally:
            self.book.end_call(self.grant)
            if self.lock is not None:
                self.lock.release()


class _Relay(StreamingResponse):
    """The answer, streamed unbuffered; the call is finished however the response ends."""

    def __init__(self, call: _Call, status_code: int, headers: dict[str, str]) -> None:
        self.call = call
        super().__init__(call.chunks(), status_code=status_code, headers=headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.call.finish()
