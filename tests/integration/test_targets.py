"""Targets: worker hosts listed at GET /targets; interactive Runs ask which one when several."""

from __future__ import annotations

from tests.integration.harness import FerryStack


def test_single_target_is_used_without_asking(stack: FerryStack) -> None:
    with stack.client() as c:
        targets = c.get("/targets").json()
    host = stack.settings.worker_host
    assert [t["host"] for t in targets] == [host]
    assert targets[0]["healthy"] and targets[0]["task_queue"] == f"ferry-host-{host}"
    assert "ferry-devbox" in targets[0]["images"] and targets[0]["backend"] == "docker"
    run = stack.create_run("echo one-target")
    done = stack.wait_status(run["id"], {"completed", "failed"})
    assert done["target"] == host and done["devboxes"][0]["host"] == host
    assert not any(s["kind"] == "question" for s in stack.timeline(run["id"]))


def test_two_targets_ask_which_and_launch_on_the_chosen(own_stack: FerryStack) -> None:
    s = own_stack
    first = s.settings.worker_host
    second = "zz-second-host"
    s.start_worker("worker-2", env={"FERRY_WORKER_HOST": second})

    def both_listed() -> bool:
        with s.client() as c:
            hosts = {t["host"] for t in c.get("/targets").json() if t["healthy"]}
        return hosts == {first, second}

    s.wait_until(both_listed, 30, "both targets to report in")
    run = s.create_run("echo where-am-i")
    waiting = s.wait_status(run["id"], {"waiting_for_input", "completed", "failed"})
    assert waiting["status"] == "waiting_for_input", waiting
    question = waiting["questions"]["questions"][0]
    assert question["id"] == "target" and question["kind"] == "single"
    assert question["options"] == [f"{first} (ferry-devbox)", f"{second} (ferry-devbox)"]
    assert question["default"] == question["options"][0]
    assert waiting["devboxes"] == []
    with s.client() as c:
        r = c.post(f"/runs/{run['id']}/answers", json={"answers": {"target": question["options"][1]}})
        assert r.status_code == 200, r.text
    done = s.wait_status(run["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    assert done["target"] == second
    assert done["devboxes"][0]["host"] == second
    assert done["devboxes"][0]["task_queue"] == f"ferry-host-{second}"
    # The Temporal UI (and GET /runs) see where it ran.
    with s.client() as c:
        listed = {r["id"]: r for r in c.get("/runs").json()["runs"]}
    assert listed[run["id"]]["target"] == second
