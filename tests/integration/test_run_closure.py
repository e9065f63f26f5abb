"""One Run, one workflow that closes with it: schedules on time, follow-ups reopen the Run in
its kept DevBox, release, newest-first lists, dead containers and lost hosts, the reaper."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.integration.conftest import CAN_FLAGS, containers_of
from tests.integration.harness import ROOT, FerryStack


def describe(stack: FerryStack, workflow_id: str) -> dict:
    """`temporal workflow describe`, as someone debugging in a terminal sees it."""
    out = subprocess.run(
        [str(ROOT / ".venv/bin/temporal"), "workflow", "describe", "-w", workflow_id,
         "--address", stack.settings.effective_temporal_address, "-o", "json"],
        capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def temporal_status(stack: FerryStack, workflow_id: str) -> str:
    info = describe(stack, workflow_id)["workflowExecutionInfo"]
    return info["status"]


def test_interval_schedule_fires_on_time_with_default_keep_alive(stack: FerryStack) -> None:
    """Runs that keep their DevBox for 30 minutes (the product's default keep-alive, asked
    for here since scheduled Runs keep none unless asked), yet each Run's workflow closes
    when it completes, so `overlap: skip` never skips a firing."""
    name = f"tick-{uuid.uuid4().hex[:6]}"
    with stack.client() as c:
        r = c.post("/schedules", json={"name": name, "spec": {"interval": {"every": "2s"}},
                                       "run": {"instructions": "date", "keep_alive": "30m",
                                               "target": stack.settings.worker_host}})
        assert r.status_code == 201, r.text
        time.sleep(7.5)
        c.post(f"/schedules/{name}/pause")
        runs = c.get("/runs", params={"schedule": name, "limit": 100}).json()["runs"]
        c.delete(f"/schedules/{name}")
    assert len(runs) >= 3, runs
    first = stack.wait_status(runs[-1]["id"], {"completed"})
    assert first["keep_alive_seconds"] == 1800 and first["keep_alive_until"]


def test_completed_run_closes_and_a_follow_up_reopens_it_in_the_same_devbox(
        stack: FerryStack, docker_client) -> None:
    run = stack.create_run("cd /tmp && export GREETING=kept-shell\necho first > note.txt")
    done = stack.wait_status(run["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    closed_by = time.monotonic() + 2
    while temporal_status(stack, f"run-{run['id']}") != "WORKFLOW_EXECUTION_STATUS_COMPLETED":
        assert time.monotonic() < closed_by, "the Run's workflow is still open 2 s after"
        time.sleep(0.1)
    # The DevBox is kept (default keep-alive) by its keeper, not by the Run's workflow.
    assert done["keep_alive_until"] and done["devboxes"][0]["removed_at"] is None
    assert temporal_status(stack, f"devbox-{run['id']}") == "WORKFLOW_EXECUTION_STATUS_RUNNING"
    container = done["devboxes"][0]["container_id"]
    with stack.client() as c:
        # Cancelling a finished Run is a conflict that says how to release its DevBox.
        r = c.post(f"/runs/{run['id']}/cancel")
        assert r.status_code == 409 and f"ferry release {run['id']}" in r.json()["detail"]
        r = c.post(f"/runs/{run['id']}/messages", json={"text": 'echo "$GREETING in $PWD"\n'
                                                                "cat note.txt"})
        assert r.status_code == 202, r.text
    again = stack.wait_status(run["id"], {"completed", "failed"})
    assert again["status"] == "completed", again
    execs = [s["payload"] for s in stack.timeline(run["id"]) if s["kind"] == "exec"]
    assert [e["output_excerpt"] for e in execs[-2:]] == ["kept-shell in /tmp\n", "first\n"]
    assert [d["container_id"] for d in again["devboxes"]] == [container]
    assert [c.id for c in containers_of(docker_client, run["id"])] == [container]
    seqs = [s["seq"] for s in stack.timeline(run["id"])]
    assert seqs == list(range(1, len(seqs) + 1))  # one timeline, no gap, no repeat
    assert temporal_status(stack, f"run-{run['id']}") == "WORKFLOW_EXECUTION_STATUS_COMPLETED"
    with stack.client() as c:
        r = c.delete(f"/runs/{run['id']}/devbox")
        assert r.status_code == 202, r.text
    stack.wait_until(lambda: containers_of(docker_client, run["id"]) == [], 15, "the release")
    stack.wait_until(lambda: stack.get_run(run["id"])["devboxes"][0]["removed_at"] is not None,
                     10, "the removal recorded")
    assert stack.get_run(run["id"])["keep_alive_until"] is None
    with stack.client() as c:
        assert c.delete(f"/runs/{run['id']}/devbox").status_code == 409
        r = c.post(f"/runs/{run['id']}/messages", json={"text": "echo late"})
        assert r.status_code == 409 and "from_run" in r.json()["detail"]


def test_a_failed_or_cancelled_follow_up_keeps_the_devbox_and_its_work(
        stack: FerryStack, docker_client) -> None:
    """After a completion the DevBox holds work: a follow-up that fails, or one cancelled,
    ends the Run so but keeps the DevBox for another follow-up (or a review)."""
    run = stack.create_run("echo first > /workspace/kept.txt")
    done = stack.wait_status(run["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    container = done["devboxes"][0]["container_id"]
    with stack.client() as c:
        assert c.post(f"/runs/{run['id']}/messages", json={"text": "exit 3"}).status_code == 202
    failed = stack.wait_status(run["id"], {"failed", "completed"})
    assert failed["status"] == "failed" and failed["keep_alive_until"], failed
    assert failed["devboxes"][0]["removed_at"] is None
    with stack.client() as c:
        assert c.post(f"/runs/{run['id']}/messages",
                      json={"text": "sleep 600"}).status_code == 202
    stack.wait_until(lambda: (stack.get_run(run["id"]).get("running") or {}).get("command")
                     == "sleep 600", 30, "the follow-up to start")
    with stack.client() as c:
        assert c.post(f"/runs/{run['id']}/cancel").status_code == 202
    cancelled = stack.wait_status(run["id"], {"cancelled", "failed", "completed"})
    assert cancelled["status"] == "cancelled" and cancelled["keep_alive_until"], cancelled
    with stack.client() as c:
        r = c.post(f"/runs/{run['id']}/messages", json={"text": "cat /workspace/kept.txt"})
        assert r.status_code == 202, r.text
    again = stack.wait_status(run["id"], {"completed", "failed"})
    assert again["status"] == "completed", again
    # Only the new message ran: not the cancelled `sleep 600` again.
    execs = [s["payload"] for s in stack.timeline(run["id"]) if s["kind"] == "exec"]
    commands = [e["command"] for e in execs]
    assert commands[-1] == "cat /workspace/kept.txt" and commands.count("sleep 600") <= 1
    assert all(e["exit_code"] != 0 for e in execs if e["command"] == "sleep 600")
    assert execs[-1]["output_excerpt"] == "first\n"
    assert [c.id for c in containers_of(docker_client, run["id"])] == [container]
    # The cancelled `sleep 600` did not survive into the kept DevBox.
    top = docker_client.containers.get(container).top(ps_args="-eo pid,args")["Processes"] or []
    assert not any("sleep 600" in " ".join(p) for p in top), top


def test_two_follow_ups_at_once_both_reach_the_reopened_run(stack: FerryStack) -> None:
    """Both race to reopen the closed Run: one claims the DevBox, the other must find the
    reopened Run and be delivered there, not be told the DevBox is gone."""
    run = stack.create_run("echo first")
    assert stack.wait_status(run["id"], {"completed", "failed"})["status"] == "completed"
    for _ in range(3):  # the race has more than one shape; try it a few times
        texts = [f"echo {uuid.uuid4().hex[:8]}" for _ in range(2)]
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda t: _post_message(stack, run["id"], t), texts))
        assert [code for code, _ in answers] == [202, 202], answers
        wanted = set(texts)
        stack.wait_until(lambda w=wanted: {s["payload"]["command"]  # type: ignore[misc]
                                           for s in stack.timeline(run["id"])
                                           if s["kind"] == "exec"} >= w
                         and stack.get_run(run["id"])["status"] == "completed", 60,
                         "both follow-ups to run")


def _post_message(stack: FerryStack, run_id: str, text: str) -> tuple[int, str]:
    with stack.client() as c:
        r = c.post(f"/runs/{run_id}/messages", json={"text": text})
        return r.status_code, r.text


def test_release_from_the_cli(stack: FerryStack, docker_client) -> None:
    run = stack.create_run("echo hi")
    stack.wait_status(run["id"], {"completed"})
    out = stack.cli("release", run["id"])
    assert out.returncode == 0, out.stderr
    assert "being removed" in out.stdout
    stack.wait_until(lambda: containers_of(docker_client, run["id"]) == [], 15, "the release")
    out = stack.cli("release", run["id"])
    assert out.returncode != 0 and "no DevBox kept" in out.stderr + out.stdout
    assert "Traceback" not in out.stderr


def test_runs_list_newest_first_across_open_and_closed(stack: FerryStack) -> None:
    tag = uuid.uuid4().hex[:6]
    first = stack.create_run("sleep 30", title=f"{tag} oldest, still open")
    second = stack.create_run("echo closes", title=f"{tag} closes first")
    third = stack.create_run("sleep 30", title=f"{tag} newest, open")
    stack.wait_status(second["id"], {"completed"})
    mine = {first["id"], second["id"], third["id"]}
    want = [third["id"], second["id"], first["id"]]
    with stack.client() as c:
        listed = [r["id"] for r in c.get("/runs", params={"limit": 500}).json()["runs"]]
        assert [i for i in listed if i in mine] == want
        created = [r["created_at"] for r in c.get("/runs", params={"limit": 500}).json()["runs"]]
        assert created == sorted(created, reverse=True)
        # Page by page, one at a time: the same order, nothing twice.
        paged: list[str] = []
        token = None
        while len([i for i in paged if i in mine]) < 3:
            params = {"limit": 1, **({"page_token": token} if token else {})}
            body = c.get("/runs", params=params).json()
            paged += [r["id"] for r in body["runs"]]
            token = body["next_page_token"]
            assert token or len([i for i in paged if i in mine]) == 3
        assert [i for i in paged if i in mine] == want
        assert len(paged) == len(set(paged))
        for r in (first, third):
            c.post(f"/runs/{r['id']}/cancel")
        # Closing the older ones does not reorder the list.
        stack.wait_status(first["id"], {"cancelled"})
        listed = [r["id"] for r in c.get("/runs", params={"limit": 500}).json()["runs"]]
        assert [i for i in listed if i in mine] == want


def test_a_killed_devbox_fails_its_run_within_seconds(stack: FerryStack, docker_client) -> None:
    run = stack.create_run("sleep 60", keep_alive="0s")
    stack.wait_until(lambda: (stack.get_run(run["id"]).get("running") or {}).get("command")
                     == "sleep 60", 30, "sleep 60 to start")
    containers_of(docker_client, run["id"])[0].kill()
    t0 = time.monotonic()
    done = stack.wait_status(run["id"], {"failed", "completed"}, timeout=20)
    assert time.monotonic() - t0 < 15
    assert done["status"] == "failed"
    assert "the DevBox container stopped unexpectedly (exit 137) while running `sleep 60`" \
        in done["error"], done
    stack.wait_until(lambda: containers_of(docker_client, run["id"]) == [], 15, "removal")


@pytest.fixture
def lost_host_stack(tmp_path: Path, docker_client) -> Iterator[FerryStack]:
    s = FerryStack(tmp_path / "data", env={"FERRY_HOST_LOST_AFTER": "5s",
                                           "FERRY_REAP_INTERVAL": "2s"}, server_flags=CAN_FLAGS)
    try:
        s.start()
        yield s
    finally:
        s.stop()


def test_a_lost_host_fails_its_runs_and_cancel_does_not_wait_for_it(
        lost_host_stack: FerryStack) -> None:
    stack = lost_host_stack
    host = stack.settings.worker_host
    ask = 'echo before\nferry-ask "Go on?" --id go --options yes,no\necho after'
    waiting = stack.create_run(ask, target=host)
    doomed = stack.create_run(ask, target=host)
    for r in (waiting, doomed):
        stack.wait_status(r["id"], {"waiting_for_input"}, timeout=60)
    stack.stop_proc("worker", signal.SIGKILL)
    stack.start_worker("worker2", env={"FERRY_WORKER_HOST": f"other-{uuid.uuid4().hex[:4]}"})
    with stack.client() as c:
        t0 = time.monotonic()
        r = c.post(f"/runs/{waiting['id']}/answers", json={"answers": {"go": "yes"}})
        assert r.status_code == 200, r.text
        done = stack.wait_status(waiting["id"], {"failed", "completed"}, timeout=30)
        # The 5 s limit, plus the turn's 10 s heartbeat timeout when the dead worker's last
        # long-poll had already taken the task; nothing else waits on the host.
        assert time.monotonic() - t0 < 5 + 10 + 4
        assert done["status"] == "failed"
        assert f"host {host} is gone" in done["error"], done
        t0 = time.monotonic()
        assert c.post(f"/runs/{doomed['id']}/cancel").status_code == 202
        stack.wait_status(doomed["id"], {"cancelled"}, timeout=5)
        assert time.monotonic() - t0 < 5
    # Nobody could remove its DevBox: the Run says so, in the API and in `ferry show`.
    stack.wait_until(lambda: stack.get_run(doomed["id"])["devbox_note"], 30, "the note")
    note = stack.get_run(doomed["id"])["devbox_note"]
    assert f"host {host} did not remove the DevBox" in note and "reaper" in note
    assert note in stack.cli("show", doomed["id"]).stdout


def test_the_reaper_removes_what_a_terminated_run_left(lost_host_stack: FerryStack,
                                                       docker_client) -> None:
    stack = lost_host_stack
    run = stack.create_run("sleep 120")
    stack.wait_until(lambda: (stack.get_run(run["id"]).get("running") or {}).get("command")
                     == "sleep 120", 30, "sleep 120 to start")
    host_dir = stack.data_dir / "devboxes" / run["id"]
    assert host_dir.is_dir() and containers_of(docker_client, run["id"])
    out = subprocess.run(
        [str(ROOT / ".venv/bin/temporal"), "workflow", "terminate", "-w", f"run-{run['id']}",
         "--address", stack.settings.effective_temporal_address, "--reason", "test"],
        capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    shown = stack.get_run(run["id"])
    assert shown["status"] == "failed" and "terminated outside Ferry" in shown["error"]
    with stack.client() as c:
        listed = {r["id"]: r for r in c.get("/runs").json()["runs"]}
        assert listed[run["id"]]["status"] == "failed"
    # Closed moments ago: the reaper leaves a grace, then removes both on a pass.
    stack.wait_until(lambda: not containers_of(docker_client, run["id"])
                     and not host_dir.exists(), 40, "the reaper's pass")


def test_a_follow_up_terminated_in_temporal_reads_as_failed_and_is_reaped(
        lost_host_stack: FerryStack, docker_client) -> None:
    """The record the Run wrote when it first closed describes that execution, not the
    reopened one a person then terminated in Temporal."""
    stack = lost_host_stack
    run = stack.create_run("echo one")
    assert stack.wait_status(run["id"], {"completed", "failed"})["status"] == "completed"
    with stack.client() as c:
        assert c.post(f"/runs/{run['id']}/messages",
                      json={"text": "sleep 120"}).status_code == 202
    stack.wait_until(lambda: (stack.get_run(run["id"]).get("running") or {}).get("command")
                     == "sleep 120", 30, "the follow-up to start")
    out = subprocess.run(
        [str(ROOT / ".venv/bin/temporal"), "workflow", "terminate", "-w", f"run-{run['id']}",
         "--address", stack.settings.effective_temporal_address, "--reason", "test"],
        capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    shown = stack.get_run(run["id"])
    assert shown["status"] == "failed" and "terminated outside Ferry" in shown["error"], shown
    assert shown["keep_alive_until"] is None
    with stack.client() as c:
        r = c.post(f"/runs/{run['id']}/messages", json={"text": "echo again"})
        assert r.status_code == 409 and "DevBox is gone" in r.json()["detail"], r.text
    stack.wait_until(lambda: not containers_of(docker_client, run["id"]), 40,
                     "the reaper's pass")
