"""Optional hardening: DevBoxes under gVisor (`FERRY_DEVBOX_RUNTIME=runsc`), when present.

`scripts/setup.sh` installs Debian's runsc and registers it with Docker where it can; on a
host without it this test is skipped (gVisor is an option, not a requirement).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import docker
import pytest

from tests.integration.harness import FerryStack
from tests.integration.test_repos_review import make_origin


def runsc_registered() -> bool:
    try:
        return "runsc" in (docker.from_env().info().get("Runtimes") or {})
    except docker.errors.DockerException:
        return False


pytestmark = pytest.mark.skipif(not runsc_registered(),
                                reason="gVisor (runsc) is not registered with Docker here")


@pytest.fixture(scope="module")
def gstack(tmp_path_factory, docker_client) -> Iterator[FerryStack]:
    s = FerryStack(tmp_path_factory.mktemp("gvisor"), env={"FERRY_DEVBOX_RUNTIME": "runsc"})
    try:
        s.start()
        yield s
    finally:
        s.stop()


def test_a_run_under_gvisor_keeps_every_rule(gstack: FerryStack, tmp_path) -> None:
    origin = make_origin(tmp_path)
    run = gstack.create_run("uname -r\nid -u\necho gvisor > new.txt\n"
                            "echo forged >> /ferry/out/turns/t1/events.jsonl 2>/dev/null || "
                            "echo refused", repo=str(origin), keep_alive="60s")
    done = gstack.wait_status(run["id"], {"completed", "failed"}, timeout=120)
    assert done["status"] == "completed", done
    out = [s["payload"]["output_excerpt"].strip().split("\n")[-1]
           for s in gstack.timeline(run["id"]) if s["kind"] == "exec"]
    assert out[0] != os.uname().release  # gVisor's own kernel, not the host's
    assert out[1] == "1000" and out[3] == "refused"
    assert [f["path"] for f in done["attempts"][0]["files"]] == ["new.txt"]
    box = docker.from_env().containers.get(done["devboxes"][0]["name"])
    assert box.attrs["HostConfig"]["Runtime"] == "runsc"
