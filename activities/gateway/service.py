"""The gateway service of one worker: the grant book, the model gateway and the egress
proxy, each on a Unix socket in `<data>/gateway/sock/`.

That directory is bind-mounted read-only into DevBoxes whose network is `gateway` or
`open`; inside, the turn runner forwards 127.0.0.1:MODEL_PORT and 127.0.0.1:PROXY_PORT to
the sockets, so a DevBox without any network interface reaches both. The sockets accept
anyone who can connect: every request must carry a live turn token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess

import uvicorn

from activities.gateway.egress_proxy import EgressProxy
from activities.gateway.grants import GrantBook
from activities.gateway.model_gateway import ModelGateway
from activities.gateway.paths import MODEL_SOCKET, PROXY_SOCKET, socket_dir
from activities.secrets import load_secrets
from ferry.settings import Settings

log = logging.getLogger("ferry.gateway")

class GatewayService:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.book = GrantBook(settings.data_path / "gateway" / "grants",
                              settings.price_table)
        self.model = ModelGateway(self.book, load_secrets(settings))
        self.egress = EgressProxy(self.book)
        self.dir = socket_dir(settings)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task | None = None
        self._proxy: asyncio.AbstractServer | None = None

    def _own_filesystem(self) -> None:
        """A small tmpfs of its own under the socket dir: inside a DevBox, the mount then
        shows as `/` of a tmpfs, never as a path of the worker host (mountinfo)."""
        if os.geteuid() != 0 or os.path.ismount(self.dir):
            return
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755,nosuid,nodev,noexec",
                               "ferry-gateway", str(self.dir)], capture_output=True, text=True)
        if proc.returncode != 0:
            log.warning("gateway sockets stay on the data dir's filesystem: %s", proc.stderr.strip())

    async def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self._own_filesystem)
        self.dir.chmod(0o755)
        model_path, proxy_path = self.dir / MODEL_SOCKET, self.dir / PROXY_SOCKET
        for path in (model_path, proxy_path):
            path.unlink(missing_ok=True)
        config = uvicorn.Config(self.model.app, uds=str(model_path), log_level="warning",
                                access_log=False, lifespan="off", timeout_keep_alive=30)
        self._server = uvicorn.Server(config)
        # The worker owns SIGINT/SIGTERM: uvicorn must not take them over.
        self._server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        self._task = asyncio.create_task(self._server.serve())
        self._proxy = await asyncio.start_unix_server(self.egress.handle, path=str(proxy_path),
                                                      limit=64 * 1024)
        for _ in range(100):
            if self._server.started:
                break
            await asyncio.sleep(0.05)
        # DevBox users (uid 1000) must be able to connect; the token is the access control.
        for path in (model_path, proxy_path):
            os.chmod(path, 0o666)
        log.info("model gateway and egress proxy on %s", self.dir)

    async def stop(self) -> None:
        if self._proxy is not None:
            self._proxy.close()
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 10)
        await self.model.aclose()
