"""Resource attacks: a DevBox that fills its disk, floods output, or forks without end.

The stack here has a small disk quota and output cap (set for this test, as a user would
for small DevBoxes) so the limits are reached quickly.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from tests.integration.harness import FerryStack

DISK = 300 * 1000 * 1000


@pytest.fixture(scope="module")
def lstack(tmp_path_factory, docker_client) -> Iterator[FerryStack]:
    s = FerryStack(tmp_path_factory.mktemp("limits"), env={
        "FERRY_DEVBOX_DISK": str(DISK), "FERRY_MAX_OUTPUT_PER_RUN": "1MiB",
        "FERRY_DEVBOX_CPUS": "0.5", "FERRY_DEVBOX_PIDS": "256"})
    try:
        s.start()
        yield s
    finally:
        s.stop()


def execs(stack: FerryStack, run_id: str) -> list[dict]:
    return [s["payload"] for s in stack.timeline(run_id) if s["kind"] == "exec"]


def test_a_disk_filler_fills_only_its_own_disk(lstack: FerryStack) -> None:
    run = lstack.create_run("\n".join([
        "dd if=/dev/zero of=/workspace/fill bs=1M count=2000 2>&1 || true",
        "dd if=/dev/zero of=/tmp/fill bs=1M count=10 2>&1 || true",
        "touch /fill 2>&1 || true",
        "sleep 6",
    ]), keep_alive="0s")
    lstack.wait_until(lambda: len(execs(lstack, run["id"])) >= 3, 60, "the fillers to run")
    image = next((lstack.data_dir / "devboxes").glob(f"{run['id']}/disk.img"))
    used = os.stat(image).st_blocks * 512
    assert used <= DISK * 1.1, f"the DevBox wrote {used} bytes to the host for a {DISK} quota"
    out = [e["output_excerpt"] for e in execs(lstack, run["id"])]
    assert "No space left on device" in out[0] and "No space left on device" in out[1]
    assert "Read-only file system" in out[2]  # nothing outside its own disk is writable
    done = lstack.wait_status(run["id"], {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed"
    assert done["devboxes"][0]["disk_bytes"] == DISK
    # Removed with the DevBox: nothing stays behind on the host.
    lstack.wait_until(lambda: not image.exists(), 30, "the DevBox's disk to be removed")


def test_output_beyond_the_runs_cap_is_not_stored(lstack: FerryStack) -> None:
    run = lstack.create_run("head -c 3000000 /dev/zero | tr '\\0' y\necho small")
    done = lstack.wait_status(run["id"], {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed", done
    big, small = execs(lstack, run["id"])
    assert big["output_bytes"] == 3_000_000 and big["output_truncated"] is True
    with lstack.client() as c:
        stored = c.get(f"/runs/{run['id']}/artifacts/{big['output_path']}").content
        logs = c.get(f"/runs/{run['id']}/logs").text
    assert len(stored) == 1024 * 1024
    assert "stored output truncated" in logs
    assert "output_path" not in small or small.get("output_truncated")  # the budget is spent


def test_a_fork_bomb_ends_its_run_and_nothing_else(lstack: FerryStack) -> None:
    # The bomb fills the DevBox's process table; whether the runner still finds a free
    # slot for the next command is a race, so the Run may complete or fail — but it ends,
    # clearly, and an honest Run next to it (while the bomb still runs) is unaffected.
    started = time.monotonic()
    run = lstack.create_run(":(){ :|:& };:\nsleep 2\necho after", keep_alive="60s")
    done = lstack.wait_status(run["id"], {"completed", "failed"}, timeout=120)
    assert time.monotonic() - started < 120
    if done["status"] == "failed":
        assert "process limit" in done["error"] or "exited with" in done["error"], done["error"]
    honest = lstack.create_run("echo still-fine")
    again = lstack.wait_status(honest["id"], {"completed", "failed"}, timeout=60)
    assert again["status"] == "completed"
    assert execs(lstack, honest["id"])[0]["output_excerpt"] == "still-fine\n"


def test_an_images_healthcheck_and_volumes_are_neutralised(lstack: FerryStack, docker_client) -> None:
    import io
    import tarfile

    dockerfile = (b"FROM ferry-devbox\n"
                  b"HEALTHCHECK --interval=1s CMD touch /tmp/healthcheck-ran\n"
                  b"VOLUME /data\n")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    buf.seek(0)
    docker_client.images.build(fileobj=buf, custom_context=True, tag="ferry-test-hcvol",
                               rm=True, pull=False)
    volumes_before = {v.name for v in docker_client.volumes.list()}
    run = lstack.create_run("sleep 3\ntest ! -e /tmp/healthcheck-ran && echo no-healthcheck\n"
                            "dd if=/dev/zero of=/data/fill bs=1M count=400 2>&1 || true",
                            image="ferry-test-hcvol")
    lstack.wait_until(lambda: len(execs(lstack, run["id"])) >= 3, 60, "the commands")
    out = [e["output_excerpt"] for e in execs(lstack, run["id"])]
    assert out[1] == "no-healthcheck\n"
    assert "No space left on device" in out[2]  # /data is on the DevBox's own disk
    lstack.wait_status(run["id"], {"completed", "failed"}, timeout=60)
    assert {v.name for v in docker_client.volumes.list()} == volumes_before


def test_artifacts_are_capped_in_number(lstack: FerryStack) -> None:
    run = lstack.create_run("mkdir -p .ferry/artifacts && cd .ferry/artifacts && "
                            "for i in $(seq 1 1200); do echo $i > f$i; done")
    done = lstack.wait_status(run["id"], {"completed", "failed"}, timeout=90)
    assert done["status"] == "completed", done
    attempt = done["attempts"][0]
    assert len(attempt["artifacts"]) == 1000
    assert any("200 artifact entries were skipped" in n for n in attempt["notes"]), attempt["notes"]
