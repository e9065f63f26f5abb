"""Where the gateway's sockets live, on the worker host and inside a DevBox."""

from __future__ import annotations

from pathlib import Path

from ferry.settings import Settings

MODEL_SOCKET, PROXY_SOCKET = "model.sock", "egress.sock"
# Inside a DevBox, the runner forwards these loopback ports to the sockets.
MODEL_PORT, PROXY_PORT = 4180, 4181
DEVBOX_SOCKET_DIR = "/ferry/gateway"


def socket_dir(settings: Settings) -> Path:
    return settings.data_path / "gateway" / "sock"
