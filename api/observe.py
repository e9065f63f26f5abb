"""What the API tells Prometheus and OpenTelemetry about requests: errors counted by kind,
and (with tracing on) a server span per request that the Run's workflow trace hangs from."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from opentelemetry import trace

from ferry.metrics import ERRORS
from ferry.tracing import tracing_on

KINDS = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 409: "conflict", 413: "too_large",
         422: "invalid_input", 429: "throttled", 503: "unavailable"}


def route_of(request: Request) -> str:
    """The matched route's template (`/runs/{run_id}`), never the raw path: ids would make
    a span name per Run. Known once the router has run."""
    route = request.scope.get("route")
    return str(getattr(route, "path", None) or "unmatched")


def install(app: FastAPI) -> None:
    @app.middleware("http")
    async def observe(request: Request, call_next) -> Response:
        if tracing_on():
            tracer = trace.get_tracer("ferry.api")
            with tracer.start_as_current_span(request.method, kind=trace.SpanKind.SERVER) as span:
                response = await call_next(request)
                span.update_name(f"{request.method} {route_of(request)}")
                span.set_attribute("http.request.method", request.method)
                span.set_attribute("http.response.status_code", response.status_code)
        else:
            response = await call_next(request)
        if response.status_code >= 400:
            kind = KINDS.get(response.status_code, f"http_{response.status_code}")
            ERRORS.labels("api", kind).inc()
        return response
