"""HTTP-level protections: Host check, API token, security headers, quiet validation errors.

- Host check: a page on another site can point a DNS name at 127.0.0.1 (DNS rebinding)
  and drive a tokenless loopback API from the victim's browser; such requests carry that
  name in `Host`, so only configured names are answered (400 otherwise).
- Token: with FERRY_API_TOKEN every request needs `Authorization: Bearer`, except the web
  UI's own files (they hold no data; the page asks for the token) and webhooks (HMAC).
- Headers: `nosniff` everywhere, no framing, no referrer; a strict CSP on the web UI;
  DevBox-produced files are served by routes that add `attachment` and a sandbox CSP.
- 422 bodies never echo what was sent (a rejected answer may be megabytes, or a secret).
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.deps import UNAUTHORIZED_DETAIL, token_ok
from ferry.settings import Settings

UI_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
          "img-src 'self' data: blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
# The API docs pages (Swagger UI, ReDoc) run inline scripts; nothing may leave the origin
# (ReDoc's footer logo points at a CDN: blocked, so the docs work with no internet).
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
            "frame-ancestors 'none'")
# For anything a DevBox produced: never a document that runs or embeds anything.
INERT_CSP = "default-src 'none'; sandbox; frame-ancestors 'none'"
PUBLIC_PREFIXES = ("/hooks/", "/static/", "/ui/", "/docs-assets/")
PUBLIC_PATHS = {"/", "/ui", "/favicon.ico"}


def host_name(header: str) -> str:
    """The host part of a Host header, lower-cased, without port or IPv6 brackets."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def host_allowed(header: str, allowed: set[str]) -> bool:
    name = host_name(header)
    for pattern in allowed:
        if pattern.startswith("*.") and name.endswith(pattern[1:]):
            return True
        if name == pattern.strip("[]"):
            return True
    return False


def install(app: FastAPI, settings: Settings) -> None:
    allowed = settings.api_allowed_hosts
    token = settings.api_token

    @app.middleware("http")
    async def guard(request: Request, call_next) -> Response:
        host = request.headers.get("host", "")
        if allowed is not None and not host_allowed(host, allowed):
            return JSONResponse({"detail": f"Host {host[:100]!r} is not allowed here (add it to "
                                           "FERRY_ALLOWED_HOSTS)"}, status_code=400)
        path = request.url.path
        public = path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
        if token and not public and not token_ok(request.headers.get("authorization", ""), token):
            response: Response = JSONResponse({"detail": UNAUTHORIZED_DETAIL}, status_code=401,
                                              headers={"WWW-Authenticate": "Bearer"})
        else:
            response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if path in ("/", "/ui") or path.startswith(("/static/", "/ui/")):
            response.headers.setdefault("Content-Security-Policy", UI_CSP)
        elif path in ("/docs", "/redoc"):
            response.headers.setdefault("Content-Security-Policy", DOCS_CSP)
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"loc": list(e.get("loc", ())),
                   "msg": str(e.get("msg", "")).removeprefix("Value error, ")[:500],
                   "type": e.get("type", "value_error")} for e in exc.errors()[:20]]
        return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)
