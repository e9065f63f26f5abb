"""Attacks on the Run lifecycle from inside a DevBox: stopping its own container, and
claiming a warm DevBox after it was used — nothing a DevBox does reaches the host or
another Run, and the Run ends with a plain message."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.adversarial.conftest import HostWatch, everything_about
from tests.integration.harness import FerryStack


def test_a_devbox_that_stops_its_own_container_fails_its_run_plainly(
        astack: FerryStack, host: HostWatch, docker_client) -> None:
    # A root turn kills the container's main process (PID 1's only child): the container
    # exits under the turn's feet. The host reads only Docker's view of it.
    run = astack.create_run("echo started\nkill -KILL $(pgrep -x sleep)\nsleep 30",
                            run_as_root=True)
    done = astack.wait_status(run["id"], {"failed", "completed"}, timeout=30)
    assert done["status"] == "failed"
    assert done["error"].startswith("the DevBox container stopped unexpectedly (exit "), done
    assert done["keep_alive_until"] is None  # a failed Run keeps nothing
    astack.wait_until(lambda: not docker_client.containers.list(
        all=True, sparse=True, filters={"label": f"ferry.run={run['id']}"}), 15, "removal")
    astack.wait_until(lambda: not (astack.data_dir / "devboxes" / run["id"]).exists(), 10,
                      "the host directory")
    host.assert_not_leaked(*everything_about(astack, run["id"]))
    host.assert_untouched()


@pytest.fixture
def warm_astack(tmp_path: Path, docker_client) -> Iterator[FerryStack]:
    s = FerryStack(tmp_path / "data", env={"FERRY_WARM_POOL": "1"})
    try:
        s.start()
        yield s
    finally:
        s.stop()


def test_what_a_run_leaves_in_a_warm_devbox_never_reaches_the_next_run(
        warm_astack: FerryStack, docker_client: docker.DockerClient) -> None:
    # The first Run claims the warm DevBox and plants things for whoever comes next: in its
    # workspace, home, /tmp and a process left running. The next Run gets a fresh one.
    stack = warm_astack
    first = stack.create_run("echo planted > /workspace/planted; echo planted > ~/planted\n"
                             "echo planted > /tmp/planted; (setsid sleep 600 &) ; echo ok",
                             keep_alive="0s")
    done = stack.wait_status(first["id"], {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed", done
    stack.wait_until(lambda: len(docker_client.containers.list(sparse=True, filters={
        "label": [f"ferry.host={stack.settings.worker_host}", "ferry.warm"]})) >= 1, 60,
        "a warm DevBox again")
    second = stack.create_run("ls /workspace ~ /tmp; cat /proc/[0-9]*/comm | grep -c '^sleep$'",
                              keep_alive="0s")
    done2 = stack.wait_status(second["id"], {"completed", "failed"}, timeout=60)
    assert done2["status"] == "completed", done2
    assert done2["devboxes"][0]["container_id"] != done["devboxes"][0]["container_id"]
    listing, sleeps = [s["payload"]["output_excerpt"] for s in stack.timeline(second["id"])
                       if s["kind"] == "exec"]
    assert "planted" not in listing
    assert sleeps == "1\n"  # only the DevBox's own `sleep infinity`


def _warm(client: docker.DockerClient, host: str) -> list:
    return client.containers.list(sparse=True, filters={
        "label": [f"ferry.host={host}", "ferry.warm"]})


def test_a_run_named_like_the_pool_is_never_taken_for_a_warm_devbox(
        warm_astack: FerryStack, docker_client: docker.DockerClient) -> None:
    # Whoever names a schedule picks the start of its Runs' ids. A schedule called `warm-…`
    # once made Runs that passed for the pool's: a new Run claimed the scheduled Run's
    # DevBox (its workspace and all), and the pool pruned it.
    stack = warm_astack
    host = stack.settings.worker_host
    with stack.client() as c:
        r = c.post("/schedules", json={
            "name": "warm-x", "spec": {"interval": {"every": "1h"}}, "paused": True,
            "run": {"instructions": "echo secret-of-warm-x > /workspace/mine.txt",
                    "target": host, "keep_alive": "10m"}})
        assert r.status_code == 201, r.text
        assert c.post("/schedules/warm-x/trigger").status_code in (200, 202)
        stack.wait_until(lambda: c.get("/runs", params={"schedule": "warm-x"}).json()["runs"],
                         30, "the scheduled Run")
        scheduled = c.get("/runs", params={"schedule": "warm-x"}).json()["runs"][0]
    assert scheduled["id"].startswith("warm-x")
    done = stack.wait_status(scheduled["id"], {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed" and done["keep_alive_until"], done
    kept = done["devboxes"][0]["container_id"]
    stack.wait_until(lambda: len(_warm(docker_client, host)) >= 2, 60, "the pool to refill")
    other = stack.create_run("cat /workspace/mine.txt 2>/dev/null || echo fresh", keep_alive="0s")
    done2 = stack.wait_status(other["id"], {"completed", "failed"}, timeout=60)
    assert done2["devboxes"][0]["container_id"] != kept
    out = [s["payload"]["output_excerpt"] for s in stack.timeline(other["id"])
           if s["kind"] == "exec"]
    assert out == ["fresh\n"], out
    # The scheduled Run's kept DevBox is still its own: a follow-up finds its file.
    time.sleep(2)  # a pool prune and refill cycle
    assert docker_client.containers.get(kept).status == "running"
    with stack.client() as c:
        c.delete("/schedules/warm-x")
        assert c.post(f"/runs/{scheduled['id']}/messages",
                      json={"text": "cat /workspace/mine.txt"}).status_code == 202
    again = stack.wait_status(scheduled["id"], {"completed", "failed"}, timeout=60)
    last = [s["payload"] for s in stack.timeline(scheduled["id"]) if s["kind"] == "exec"][-1]
    assert again["status"] == "completed" and last["output_excerpt"] == "secret-of-warm-x\n"


def test_a_warm_devbox_still_starting_is_not_claimed(
        warm_astack: FerryStack, docker_client: docker.DockerClient) -> None:
    # A warm DevBox is claimable only once the worker has initialised it: take the mark
    # away (as if its start were still under way) and a new Run starts its own DevBox.
    stack = warm_astack
    host = stack.settings.worker_host
    stack.wait_until(lambda: len(_warm(docker_client, host)) == 1, 60, "a warm DevBox")
    [box] = _warm(docker_client, host)
    key = (box.attrs.get("Names") or ["/"])[0].lstrip("/").removeprefix("ferry-")
    assert key.startswith("warm.")
    (stack.data_dir / "devboxes" / key / "warm-ready").unlink()
    run = stack.create_run("echo own", keep_alive="0s")
    done = stack.wait_status(run["id"], {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed", done
    assert done["devboxes"][0]["container_id"] != box.id
    assert docker_client.containers.get(box.id).name == f"ferry-{key}"
