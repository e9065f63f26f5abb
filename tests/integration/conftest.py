"""Fixtures: a shared real stack (Temporal dev server + worker + API + Docker) per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.integration.harness import FerryStack

# Low enough that long Runs really continue-as-new during the suite.
CAN_FLAGS = ["--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=300"]


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as e:
        pytest.fail(f"these tests need a Docker engine (run `make setup`): {e}")
    try:
        client.images.get("ferry-devbox")
    except docker.errors.ImageNotFound:
        pytest.fail("the ferry-devbox image is missing (run `ferry devbox build-image`)")
    return client


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, docker_client) -> Iterator[FerryStack]:
    s = FerryStack(tmp_path_factory.mktemp("ferry-data"), env={"FERRY_TURN_SLICE_SECONDS": "4"},
                  server_flags=CAN_FLAGS)
    try:
        s.start()
        yield s
    finally:
        s.stop()


@pytest.fixture
def own_stack(tmp_path: Path, docker_client) -> Iterator[FerryStack]:
    """A stack of the test's own, for tests that kill or restart its parts."""
    s = FerryStack(tmp_path / "data", env={"FERRY_TURN_SLICE_SECONDS": "4"}, server_flags=CAN_FLAGS)
    try:
        s.start()
        yield s
    finally:
        s.stop()


def containers_of(client: docker.DockerClient, run_id: str) -> list:
    return client.containers.list(all=True, sparse=True,
                                  filters={"label": f"ferry.run={run_id}"})
