"""Runs survive a killed worker and a restarted Temporal dev server."""

from __future__ import annotations

import signal
import time

from tests.integration.conftest import containers_of
from tests.integration.harness import FerryStack


def test_worker_sigkill_mid_command_reattaches_without_rerunning(own_stack: FerryStack,
                                                                 docker_client) -> None:
    s = own_stack
    run = s.create_run("echo before\necho ran >> /workspace/marks; sleep 5\ncat /workspace/marks\n"
                       "echo after", keep_alive="0s")
    s.wait_until(lambda: (s.get_run(run["id"]).get("running") or {}).get("command")
                 == "sleep 5", 20, "the sleeping command to start")
    s.stop_proc("worker", sig=signal.SIGKILL)
    time.sleep(0.5)
    s.start_worker()
    done = s.wait_status(run["id"], {"completed", "failed"}, timeout=90)
    assert done["status"] == "completed", done
    steps = s.timeline(run["id"])
    assert [x["seq"] for x in steps] == list(range(1, len(steps) + 1))
    execs = [x["payload"] for x in steps if x["kind"] == "exec"]
    assert [e["command"] for e in execs] == [
        "echo before", "echo ran >> /workspace/marks", "sleep 5", "cat /workspace/marks",
        "echo after"]
    assert [e["index"] for e in execs] == [1, 2, 3, 4, 5]
    # The command ran exactly once: one mark in the file.
    assert execs[3]["output_excerpt"] == "ran\n"
    assert [x["kind"] for x in steps].count("launch_devbox") == 1
    s.wait_until(lambda: containers_of(docker_client, run["id"]) == [], 10, "removal")


def test_dev_server_restart_keeps_finished_and_running_runs(own_stack: FerryStack) -> None:
    s = own_stack
    finished = s.create_run("echo finished-run")
    s.wait_status(finished["id"], {"completed"})
    running = s.create_run("echo first\nsleep 6\necho second")
    s.wait_until(lambda: s.get_run(running["id"]).get("running") is not None, 20,
                 "the running Run to start its command")
    s.stop_proc("temporal")
    s.start_temporal()
    # Both are still listed and both timelines are intact.
    with s.client() as c:
        def listed() -> set[str]:
            return {r["id"] for r in c.get("/runs", params={"limit": 100}).json()["runs"]}
        s.wait_until(lambda: {finished["id"], running["id"]} <= listed(), 30, "both Runs listed")
    steps = s.timeline(finished["id"])
    assert [x["kind"] for x in steps] == ["message", "launch_devbox", "exec", "report_result"]
    assert steps[2]["payload"]["output_excerpt"] == "finished-run\n"
    done = s.wait_status(running["id"], {"completed", "failed"}, timeout=90)
    assert done["status"] == "completed", done
    outputs = [x["payload"]["output_excerpt"] for x in s.timeline(running["id"])
               if x["kind"] == "exec"]
    assert outputs == ["first\n", "", "second\n"]


def test_paused_run_survives_worker_kill_and_server_restart(own_stack: FerryStack,
                                                           docker_client) -> None:
    s = own_stack
    run = s.create_run("echo before > /workspace/f.txt\n"
                       'ferry-ask "Proceed?" --id go --options yes,no --default yes\n'
                       "cat /workspace/f.txt", keep_alive="0s")
    s.wait_status(run["id"], {"waiting_for_input"})
    s.stop_proc("worker", sig=signal.SIGKILL)
    s.stop_proc("temporal")
    s.start_temporal()
    s.start_worker()
    assert s.get_run(run["id"])["status"] == "waiting_for_input"
    with s.client() as c:
        r = c.post(f"/runs/{run['id']}/answers", json={"answers": {"go": "yes"}})
        assert r.status_code == 200, r.text
    done = s.wait_status(run["id"], {"completed", "failed"}, timeout=90)
    assert done["status"] == "completed", done
    steps = s.timeline(run["id"])
    assert [x["kind"] for x in steps].count("question") == 1
    assert [x["kind"] for x in steps].count("answer") == 1
    last = [x for x in steps if x["kind"] == "exec"][-1]
    assert last["payload"]["output_excerpt"] == "before\n"
    s.wait_until(lambda: containers_of(docker_client, run["id"]) == [], 10, "removal")
