"""The FastAPI application: lifespan (Temporal client), auth, routers, web UI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html import escape
from importlib import resources

from fastapi import FastAPI, Request, Response
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError

from api import observe, security
from api.routes import engines, health, metrics, runs, schedules, targets
from api.run_service import InvalidRun, RunConflict, RunNotFound, RunService
from api.schedule_service import ScheduleService, TriggerService, TriggerStore
from ferry import __version__
from ferry.artifact_backends import StoreUnavailable
from ferry.artifact_store import (
    StoreProblem,
    UnsafePath,
    check_store,
    open_store,
    open_trigger_blobs,
)
from ferry.settings import LOOPBACK_HOSTS, Settings, SettingsError, get_settings
from ferry.temporal_client import connect
from ferry.tracing import setup_tracing


class UnsafeBind(Exception):
    pass


def check_bind(settings: Settings) -> None:
    """Refuse to listen beyond loopback without an API token."""
    if settings.api_host not in LOOPBACK_HOSTS and not settings.api_token:
        raise UnsafeBind(
            f"refusing to bind the API to {settings.api_host}: set FERRY_API_TOKEN "
            "(then every request needs 'Authorization: Bearer <token>')"
        )


def add_error_handlers(app: FastAPI) -> None:
    """Domain errors from the RunService become 404/409/422/400 with a clear message."""

    async def not_found(request: Request, exc: Exception) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    async def conflict(request: Request, exc: Exception) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, InvalidRun)
        return JSONResponse({"detail": [{"loc": [*exc.where.split("."), exc.field], "msg": str(exc),
                                         "type": "value_error"}]}, status_code=422)

    async def unsafe_path(request: Request, exc: Exception) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    async def store_unavailable(request: Request, exc: Exception) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    async def temporal_unavailable(request: Request, exc: Exception) -> Response:
        return JSONResponse({"detail": f"Temporal could not answer: {exc}"}, status_code=503)

    app.add_exception_handler(RPCError, temporal_unavailable)
    app.add_exception_handler(WorkflowQueryFailedError, temporal_unavailable)
    app.add_exception_handler(RunNotFound, not_found)
    app.add_exception_handler(RunConflict, conflict)
    app.add_exception_handler(InvalidRun, invalid)
    app.add_exception_handler(UnsafePath, unsafe_path)
    app.add_exception_handler(StoreUnavailable, store_unavailable)


DOCS_ASSETS = "/docs-assets"


def ui_shell(html: str, settings: Settings) -> str:
    """The UI page with this deployment's links (the Temporal UI) as data attributes."""
    config = {"temporalUi": settings.effective_temporal_ui_url or "",
              "namespace": settings.temporal_namespace,
              "enginePriority": settings.engine_priority, "version": __version__}
    attrs = " ".join(f'data-{k.lower()}="{escape(v, quote=True)}"' for k, v in config.items())
    return html.replace("<body>", f"<body {attrs}>", 1)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        setup_tracing("ferry-api")
        client = await connect(settings)
        store = open_store(settings)
        app.state.client = client
        app.state.store = store
        app.state.runs = RunService(client, settings, store)
        app.state.schedules = ScheduleService(app.state.runs)
        app.state.triggers = TriggerService(app.state.runs,
                                            TriggerStore(open_trigger_blobs(settings)))
        yield

    app = FastAPI(
        title="Ferry",
        version=__version__,
        description="Run AI coding agents on real work: durable Runs in DevBoxes on Temporal.",
        lifespan=lifespan,
        docs_url=None,  # served below from the package's own assets: no CDN
        redoc_url=None,
    )
    app.state.settings = settings

    # A middleware, not a dependency, so /docs and /openapi.json are covered too.
    security.install(app, settings)
    observe.install(app)
    add_error_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(runs.router)
    app.include_router(targets.router)
    app.include_router(engines.router)
    app.include_router(schedules.schedules)
    app.include_router(schedules.triggers)
    app.include_router(schedules.hooks)

    static = resources.files("api") / "static"
    shell = ui_shell((static / "index.html").read_text(), settings)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/ui/runs", status_code=307)

    @app.get("/ui", include_in_schema=False, response_class=HTMLResponse)
    @app.get("/ui/{page:path}", include_in_schema=False, response_class=HTMLResponse)
    async def web_ui() -> HTMLResponse:
        """The web UI: one page whose modules route `/ui/...` in the browser."""
        return HTMLResponse(shell)

    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    docs_assets = resources.files("fastapi_offline") / "static"
    # ReDoc's bundle shows a logo from its CDN: pointed at a local image instead.
    redoc_js = (docs_assets / "redoc.standalone.js").read_text().replace(
        "https://cdn.redoc.ly/redoc/logo-mini.svg", f"{DOCS_ASSETS}/favicon.png")

    @app.get(f"{DOCS_ASSETS}/redoc.standalone.js", include_in_schema=False)
    async def redoc_bundle() -> Response:
        return Response(redoc_js, media_type="text/javascript",
                        headers={"Cache-Control": "max-age=3600"})

    app.mount(DOCS_ASSETS, StaticFiles(directory=str(docs_assets)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="Ferry API",
                                   swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png")

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title="Ferry API",
                              redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
                              redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png", with_google_fonts=False)

    return app


def main() -> None:
    import sys

    import uvicorn

    try:
        settings = get_settings()
    except SettingsError as e:
        print(f"ferry api: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        check_bind(settings)
        check_store(settings, "api")
    except (UnsafeBind, StoreProblem) as e:
        print(f"ferry api: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port,
                log_level="warning")


if __name__ == "__main__":
    main()
