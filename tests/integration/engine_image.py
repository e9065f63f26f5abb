"""A DevBox image without the agent CLIs (built offline from the local ferry-devbox)."""

from __future__ import annotations

import io

import docker

BARE = "ferry-devbox-bare:test"


def build_bare_image(client: docker.DockerClient) -> str:
    dockerfile = b"FROM ferry-devbox\nRUN rm -f /usr/local/bin/claude /usr/local/bin/codex\n"
    client.images.build(fileobj=io.BytesIO(dockerfile), tag=BARE, rm=True, pull=False)
    return BARE
