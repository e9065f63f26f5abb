"""A FastAPI app served by uvicorn in a thread on a loopback port, for stand-in services."""

from __future__ import annotations

import threading
import time
from typing import Self

import uvicorn
from fastapi import FastAPI


class LoopbackServer:
    def __init__(self, app: FastAPI, port: int) -> None:
        self.port = port
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> Self:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
