"""The worker's `/metrics`: Ferry's series, this host's DevBoxes, and the Temporal SDK's.

Also the activity interceptor that times queue waits and counts activity errors by kind.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from activities.devbox import DevBoxBackend
from ferry.metrics import CONTENT_TYPE_LATEST, ERRORS, QUEUE_WAIT, metrics_text

log = logging.getLogger("ferry.worker")


class DevBoxCollector(Collector):
    """`ferry_devboxes{state}`: read from Docker at scrape time, so it is never stale."""

    def __init__(self, backend: DevBoxBackend) -> None:
        self.backend = backend

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("ferry_devboxes", "DevBoxes on this host, by state.",
                                   labels=["state"])
        try:
            counts = self.backend.devbox_counts()
        except Exception as e:  # Docker away: no figure rather than a failed scrape
            log.warning("DevBox counts unavailable: %s", e)
            counts = {}
        for state, n in counts.items():
            family.add_metric([state], n)
        yield family


class _Activities(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        scheduled = info.current_attempt_scheduled_time
        if scheduled is not None:
            wait = (datetime.now(UTC) - scheduled).total_seconds()
            queue = "host" if info.task_queue.startswith("ferry-host-") else "shared"
            QUEUE_WAIT.labels(info.activity_type, queue).observe(max(wait, 0.0))
        try:
            return await self.next.execute_activity(input)
        except BaseException as e:
            kind = (e.type if isinstance(e, ApplicationError) and e.type else type(e).__name__)
            ERRORS.labels(f"activity:{info.activity_type}", kind[:80]).inc()
            raise


class MetricsInterceptor(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Activities(next)


class _Handler(BaseHTTPRequestHandler):
    timeout = 1.0  # a scrape sends its request at once; an idle connection is dropped

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        if self.path.split("?")[0] != "/metrics":
            self.send_error(404, "only /metrics here")
            return
        body = metrics_text()
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return  # scrapes every few seconds would drown the worker's log


class _Server(ThreadingHTTPServer):
    """At most MAX_CONNECTIONS at once: more are closed unanswered (a scraper needs one)."""

    daemon_threads = True
    slots = threading.BoundedSemaphore(MAX_CONNECTIONS := 8)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


_collector: DevBoxCollector | None = None


def serve_metrics(host: str, port: int, backend: DevBoxBackend) -> ThreadingHTTPServer | None:
    """Start `/metrics` on host:port in a thread; None (with a warning) if it cannot bind."""
    global _collector
    if _collector is not None:
        REGISTRY.unregister(_collector)
    _collector = DevBoxCollector(backend)
    REGISTRY.register(_collector)
    try:
        server = _Server((host, port), _Handler)
    except OSError as e:
        log.warning("metrics not served: %s:%s: %s", host, port, e)
        return None
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
