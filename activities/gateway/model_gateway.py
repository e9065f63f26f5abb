"""The model gateway: DevBox CLIs call it with a per-turn token; it calls the model API
with the worker's real key, streams the answer back unbuffered, and meters every call.

Paths: `/anthropic/<path>` goes to `ANTHROPIC_BASE_URL` (default https://api.anthropic.com)
and `/openai/v1/<path>` to `OPENAI_BASE_URL` (default https://api.openai.com/v1), both
read from the worker's environment. A call with an unknown or ended token is a 401; once
the Run's cost budget is spent, a 400 whose message names the budget (the CLIs show it
and stop; the turn is ended by the worker).
"""

from __future__ import annotations

import json
import logging
import os

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from activities.gateway.grants import GrantBook
from activities.gateway.metering import Meter

log = logging.getLogger("ferry.gateway")
MAX_REQUEST = 32 * 1024 * 1024
# Hop-by-hop and credential headers never cross the gateway.
DROP_REQUEST = {"host", "content-length", "authorization", "x-api-key", "connection",
                "proxy-authorization", "accept-encoding", "transfer-encoding", "keep-alive",
                "upgrade", "te", "cookie"}
DROP_RESPONSE = {"content-length", "transfer-encoding", "connection", "keep-alive",
                 "content-encoding", "set-cookie"}
OAUTH_BETA = "oauth-2025-04-20"


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


def credential_headers(provider: str, secrets: dict[str, str],
                       only: list[str] | None = None) -> dict[str, str] | None:
    """The real credential, as the provider expects it (None: the worker has none). `only`:
    the credentials the turn's engine may be paid with, in order."""
    if provider == "anthropic":
        for name in only if only is not None else list(ANTHROPIC_HEADERS):
            if name in ANTHROPIC_HEADERS and secrets.get(name):
                return ANTHROPIC_HEADERS[name](secrets[name])
        return None
    key = secrets.get("CODEX_API_KEY") or secrets.get("OPENAI_API_KEY")
    return {"authorization": f"Bearer {key}"} if key else None


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
        refusal = self.book.refusal(grant)
        if refusal:
            return _error(provider, 400, "invalid_request_error",
                          f"Ferry gateway refused the call: {refusal}")
        body = await _capped_body(request)
        if body is None:
            return _error(provider, 413, "request_too_large", "Ferry gateway: request too large")
        creds = credential_headers(provider, self.secrets, grant.credentials)
        if creds is None:
            which = " or ".join(grant.credentials) if grant.credentials else f"{provider} credential"
            return _error(provider, 401, "authentication_error",
                          f"Ferry gateway: the worker has no {which}")
        model, streaming = _peek(body)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in DROP_REQUEST}
        headers["accept-encoding"] = "identity"  # metering reads the body as it passes
        if "anthropic-beta" in creds and headers.get("anthropic-beta"):
            creds = {**creds, "anthropic-beta": f"{headers['anthropic-beta']},{OAUTH_BETA}"}
        headers.update(creds)
        url = f"{self.bases[provider]}/{request.path_params['path']}"
        if request.url.query:
            url += f"?{request.url.query}"
        try:
            upstream = await self.client.send(
                self.client.build_request(request.method, url, headers=headers, content=body),
                stream=True)
        except httpx.HTTPError as e:
            log.warning("gateway: %s unreachable: %s", url, e)
            return _error(provider, 502, "api_error",
                          f"Ferry gateway: the {provider} API did not answer ({type(e).__name__})")
        ctype = upstream.headers.get("content-type", "")
        meter = Meter(model, streaming="event-stream" in ctype or streaming)
        out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in DROP_RESPONSE}

        async def relay():
            try:
                async for chunk in upstream.aiter_bytes():
                    meter.feed(chunk)
                    yield chunk
            finally:
                await upstream.aclose()
                self.book.charge(grant, provider, meter.close(), upstream.status_code)

        return StreamingResponse(relay(), status_code=upstream.status_code, headers=out_headers)

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
