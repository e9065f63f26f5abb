"""DevBox backends: where a Run's commands execute (Docker container or a local directory)."""

from __future__ import annotations

from activities.devbox.base import DevBoxBackend, DevBoxError
from ferry.settings import Settings


def get_backend(settings: Settings) -> DevBoxBackend:
    """The backend this worker host is configured for (`FERRY_DEVBOX_BACKEND`)."""
    if settings.devbox_backend == "docker":
        from activities.devbox.docker_backend import DockerBackend

        return DockerBackend(settings)
    if settings.devbox_backend == "local":
        from activities.devbox.local_backend import LocalBackend

        return LocalBackend(settings)
    raise DevBoxError(f"unknown FERRY_DEVBOX_BACKEND {settings.devbox_backend!r} (docker|local)")


__all__ = ["DevBoxBackend", "DevBoxError", "get_backend"]
