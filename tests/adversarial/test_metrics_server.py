"""The worker's unauthenticated /metrics server (worker/metrics.py): idle connections must
not pin the worker's threads (a socket timeout and a connection cap), whoever reaches the
port (a `network: open` DevBox where the worker listens on 0.0.0.0, say)."""

from __future__ import annotations

import socket
import threading
import time

from tests.integration.harness import free_port
from worker.metrics import serve_metrics

IDLE = 200


class NoDevBoxes:
    def devbox_counts(self) -> dict[str, int]:
        return {}


def test_idle_connections_do_not_pin_worker_threads() -> None:
    port = free_port()
    server = serve_metrics("127.0.0.1", port, NoDevBoxes())  # type: ignore[arg-type]
    assert server is not None
    socks: list[socket.socket] = []
    try:
        before = threading.active_count()
        for _ in range(IDLE):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /metrics HTTP/1.1\r\n")  # ... and never finish the head
            socks.append(s)
        time.sleep(2)
        pinned = threading.active_count() - before
        assert pinned < 50, (f"{IDLE} idle connections hold {pinned} worker threads "
                             "(no socket timeout, no connection cap)")
    finally:
        for s in socks:
            s.close()
        server.shutdown()
        server.server_close()
