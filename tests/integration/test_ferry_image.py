"""The Dockerfile builds Ferry's own image, and the image runs `ferry`.

No registry is needed: the base is `python:3.11-slim` when the engine has it, else the
local `ferry-devbox` image (Debian bookworm with python3-venv); pip reaches PyPI from the
build. The host's CA bundle goes into the build context as `.build-ca.crt` (for a
TLS-intercepting proxy) and must not reach the final image."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import docker
import pytest

ROOT = Path(__file__).resolve().parents[2]
TAG = "ferry:test"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")


def build_context(dest: Path) -> Path:
    """The working tree's files (tracked, or new and not ignored), as `docker build` sees them."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout.decode()
    for name in filter(None, listed.split("\0")):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    if HOST_CA.is_file():
        shutil.copy(HOST_CA, dest / ".build-ca.crt")
    return dest


def base_image(client: docker.DockerClient) -> str:
    for name in ("python:3.11-slim", "ferry-devbox"):
        try:
            client.images.get(name)
            return name
        except docker.errors.ImageNotFound:
            continue
    pytest.fail("no base image for Ferry's image: neither python:3.11-slim nor ferry-devbox")


@pytest.mark.slow
def test_dockerfile_builds_an_image_that_runs_ferry(tmp_path: Path, docker_client) -> None:
    context = build_context(tmp_path)
    # One copy at a time: the last build's image and its build stage go first.
    try:
        docker_client.images.remove(TAG)
    except docker.errors.ImageNotFound:
        pass
    try:
        docker_client.images.build(path=str(context), tag=TAG, rm=True, forcerm=True, pull=False,
                                   buildargs={"BASE": base_image(docker_client)}, timeout=600)
    except docker.errors.BuildError as e:
        log = "".join(str(chunk.get("stream", chunk.get("error", ""))) for chunk in e.build_log)
        pytest.fail(f"docker build failed: {e}\n{log[-3000:]}")
    finally:
        docker_client.images.prune(filters={"dangling": True, "label": "ferry.build-stage=1"})

    def run(*cmd: str) -> str:
        return docker_client.containers.run(TAG, list(cmd), remove=True).decode()

    out = run("ferry", "--help")
    for command in ("api", "worker", "run"):
        assert f" {command} " in out, out
    # Both roles import (their dependencies and package data are in the image) ...
    assert run("python", "-c", "import api.main, worker.main; print('ok')").strip() == "ok"
    for tool in ("git", "mkfs.ext4", "mount"):  # the worker's host-side tools
        assert run("sh", "-c", f"command -v {tool}").strip(), tool
    # ... and nothing of the build stage is: no sources, no build-time CA bundle.
    assert run("sh", "-c", "ls -d /src /app /.build-ca.crt 2>/dev/null | wc -l").strip() == "0"
    config = docker_client.images.get(TAG).attrs["Config"]
    assert "FERRY_API_HOST=0.0.0.0" in config["Env"]
