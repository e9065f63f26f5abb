"""Attacks from inside a DevBox, against a real stack (Temporal, worker, API, Docker).

Each test plays the DevBox as the adversary (docs/security.md): it plants what a hostile
agent could, then checks the host did not run, follow, or trust any of it, that the Run
ended with a clear status, and that honest Runs still work.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import docker_client  # noqa: F401  (the shared fixture)
from tests.integration.harness import FerryStack


@pytest.fixture(scope="module")
def astack(tmp_path_factory: pytest.TempPathFactory, docker_client) -> Iterator[FerryStack]:  # noqa: F811
    s = FerryStack(tmp_path_factory.mktemp("adversarial"), env={"FERRY_TURN_SLICE_SECONDS": "4"})
    try:
        s.start()
        yield s
    finally:
        s.stop()


class HostWatch:
    """Files on the host the DevBox must neither change nor read, and marker paths that a
    program run on the host would create."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.secret_text = "HOST-SECRET-" + secrets.token_hex(12)
        self.secret = root / "secret.txt"
        self.secret.write_text(self.secret_text + "\n")
        self.victim_dir = root / "victim"
        self.victim_dir.mkdir()
        (self.victim_dir / "keep.txt").write_text("keep me\n")
        self.markers = root / "markers"
        self.markers.mkdir()
        self._before = self.fingerprint()

    def marker(self, name: str) -> str:
        return str(self.markers / name)

    def fingerprint(self) -> dict[str, str]:
        return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(self.root.rglob("*")) if p.is_file()}

    def assert_untouched(self) -> None:
        assert list(self.markers.iterdir()) == [], "a DevBox-chosen program ran on the host"
        assert self.fingerprint() == self._before, "a host file outside the Run changed"

    def assert_not_leaked(self, *texts: str) -> None:
        for text in texts:
            assert self.secret_text not in text, "a host file was read into the Run"


@pytest.fixture
def host(tmp_path: Path) -> HostWatch:
    return HostWatch(tmp_path / "host")


def everything_about(stack: FerryStack, run_id: str) -> list[str]:
    """Every text the API serves about a Run: details, timeline, logs, diff, artifacts."""
    with stack.client() as c:
        texts = [c.get(f"/runs/{run_id}").text, c.get(f"/runs/{run_id}/timeline").text,
                 c.get(f"/runs/{run_id}/logs").text, c.get(f"/runs/{run_id}/diff").text]
        listing = c.get(f"/runs/{run_id}/artifacts")
        texts.append(listing.text)
        if listing.status_code == 200:
            for item in listing.json()["artifacts"]:
                texts.append(c.get(f"/runs/{run_id}/artifacts/{item['path']}").text)
    return texts
