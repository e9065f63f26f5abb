"""The test DevBox image with stand-in `claude` and `codex` CLIs (built from ferry-devbox)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import docker

FAKES = Path(__file__).resolve().parents[1] / "fakes"
IMAGE = "ferry-devbox-agents:test"

DOCKERFILE = b"""FROM ferry-devbox
RUN rm -f /usr/local/bin/claude /usr/local/bin/codex
COPY claude codex /usr/local/bin/
RUN chmod 755 /usr/local/bin/claude /usr/local/bin/codex
"""


BARE = "ferry-devbox-bare:test"


def build_bare_image(client: docker.DockerClient) -> str:
    """ferry-devbox without the agent CLIs (offline: the base is local)."""
    dockerfile = b"FROM ferry-devbox\nRUN rm -f /usr/local/bin/claude /usr/local/bin/codex\n"
    client.images.build(fileobj=io.BytesIO(dockerfile), tag=BARE, rm=True, pull=False)
    return BARE


def build_engine_image(client: docker.DockerClient) -> str:
    """Build (offline: the base is local) and return the image name."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(DOCKERFILE)
        tar.addfile(info, io.BytesIO(DOCKERFILE))
        for name in ("claude", "codex"):
            tar.add(FAKES / name, arcname=name)
    buf.seek(0)
    client.images.build(fileobj=buf, custom_context=True, tag=IMAGE, rm=True, pull=False)
    return IMAGE
