"""The warm pool: pre-started DevBoxes a new Run claims, refilled in the background."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.integration.harness import FerryStack


def warm_names(client: docker.DockerClient, host: str) -> list[str]:
    boxes = client.containers.list(all=True, sparse=True, filters={
        "label": [f"ferry.host={host}", "ferry.warm"]})
    return sorted(n for c in boxes for n in [(c.attrs.get("Names") or ["/"])[0].lstrip("/")]
                  if n.startswith("ferry-warm."))


@pytest.fixture
def warm_stack(tmp_path: Path, docker_client) -> Iterator[FerryStack]:
    s = FerryStack(tmp_path / "data", env={"FERRY_WARM_POOL": "1"})
    try:
        s.start()
        yield s
    finally:
        s.stop()


def test_a_run_claims_a_warm_devbox_which_hibernates_wakes_and_is_replaced(
        warm_stack: FerryStack, docker_client) -> None:
    stack = warm_stack
    host = stack.settings.worker_host
    stack.wait_until(lambda: len(warm_names(docker_client, host)) == 1, 60, "a warm DevBox")
    [warm] = warm_names(docker_client, host)
    warm_id = docker_client.containers.get(warm).id
    run = stack.create_run("echo kept > /workspace/kept.txt && cd /tmp && export X=warm\n"
                           'ferry-ask "Go on?" --id go --options yes,no\n'
                           'cat /workspace/kept.txt; echo "$X in $PWD"', idle_timeout="2s")
    waiting = stack.wait_status(run["id"], {"waiting_for_input"}, timeout=30)
    # The Run took the warm container: same container, now under the Run's name.
    assert waiting["devboxes"][0]["container_id"] == warm_id
    assert docker_client.containers.get(f"ferry-{run['id']}").id == warm_id
    assert (stack.data_dir / "devboxes" / run["id"]).is_dir()
    # The pool starts another one.
    stack.wait_until(lambda: len(warm_names(docker_client, host)) == 1
                     and warm_names(docker_client, host) != [warm], 60, "the pool to refill")
    # Hibernated (stopped) and woken (started again): its mounts are found again.
    stack.wait_until(lambda: docker_client.containers.get(warm_id).status == "exited", 30,
                     "hibernation")
    with stack.client() as c:
        r = c.post(f"/runs/{run['id']}/answers", json={"answers": {"go": "yes"}})
        assert r.status_code == 200, r.text
    done = stack.wait_status(run["id"], {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed", done
    execs = [s["payload"] for s in stack.timeline(run["id"]) if s["kind"] == "exec"]
    assert [e["output_excerpt"] for e in execs[-2:]] == ["kept\n", "warm in /tmp\n"], execs
    # Released: container, host directory and the warm name's link all go.
    with stack.client() as c:
        assert c.delete(f"/runs/{run['id']}/devbox").status_code == 202
    stack.wait_until(lambda: not [c for c in docker_client.containers.list(all=True)
                                  if c.id == warm_id], 20, "removal")
    devboxes = stack.data_dir / "devboxes"
    stack.wait_until(lambda: not (devboxes / run["id"]).exists(), 10, "the host directory")
    assert not [p for p in devboxes.iterdir() if p.is_symlink()]


def test_runs_the_pool_cannot_serve_start_their_own_and_stopping_drains_it(
        warm_stack: FerryStack, docker_client) -> None:
    stack = warm_stack
    host = stack.settings.worker_host
    stack.wait_until(lambda: len(warm_names(docker_client, host)) == 1, 60, "a warm DevBox")
    [warm] = warm_names(docker_client, host)
    run = stack.create_run("id -u", run_as_root=True, keep_alive="0s")
    done = stack.wait_status(run["id"], {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed", done
    assert done["devboxes"][0]["container_id"] != docker_client.containers.get(warm).id
    assert warm_names(docker_client, host) == [warm]
    stack.stop_proc("worker", signal.SIGTERM)
    deadline = time.monotonic() + 20
    while warm_names(docker_client, host) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert warm_names(docker_client, host) == []
    assert not [p for p in (stack.data_dir / "devboxes").iterdir() if p.name.startswith("warm-")]
