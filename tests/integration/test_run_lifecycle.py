"""A script Run end to end in a Docker DevBox: timeline, liveness, SSE, cancel, parallel, long Runs."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx

from tests.integration.conftest import containers_of
from tests.integration.harness import FerryStack, history_facts


def test_script_run_completes_with_full_timeline_and_container_removed(stack: FerryStack,
                                                                       docker_client) -> None:
    run = stack.create_run("echo hello\nls /workspace && echo listed\nexit 0", title="hello",
                           keep_alive="0s")
    assert run["status"] in ("pending", "in_progress")
    assert run["title"] == "hello"
    done = stack.wait_status(run["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    assert done["summary"] == "Ran 3 commands; all succeeded."
    assert done["completed_at"] and done["started_at"] and done["duration_seconds"] > 0
    assert done["devboxes"][0]["backend"] == "docker"
    # The Run's workflow has closed; its keeper removes the DevBox right after (no window).
    stack.wait_until(lambda: stack.get_run(run["id"])["devboxes"][0]["removed_at"] is not None,
                     10, "the DevBox to be removed")

    steps = stack.timeline(run["id"])
    kinds = [s["kind"] for s in steps]
    assert kinds == ["message", "launch_devbox", "exec", "exec", "exec", "report_result"]
    assert [s["seq"] for s in steps] == list(range(1, 7))
    execs = [s for s in steps if s["kind"] == "exec"]
    assert [e["payload"]["command"] for e in execs] == [
        "echo hello", "ls /workspace && echo listed", "exit 0"]
    assert all(e["payload"]["exit_code"] == 0 for e in execs)
    assert execs[0]["payload"]["output_excerpt"] == "hello\n"
    assert all(s["started_at"] for s in steps)
    # Full output is stored as a file the step points to.
    with stack.client() as c:
        r = c.get(f"/runs/{run['id']}/artifacts/{execs[0]['payload']['output_path']}")
        assert r.status_code == 200 and r.text == "hello\n"
    stack.wait_until(lambda: containers_of(docker_client, run["id"]) == [], 10, "removal")


def test_failing_command_fails_the_run_naming_the_step(stack: FerryStack) -> None:
    run = stack.create_run("echo one\nsh -c 'echo oops >&2; exit 3'\necho never")
    done = stack.wait_status(run["id"], {"completed", "failed"})
    assert done["status"] == "failed"
    assert "command 2" in done["error"] and "exited with 3" in done["error"]
    assert "exit 3" in done["error"]
    steps = stack.timeline(run["id"])
    execs = [s for s in steps if s["kind"] == "exec"]
    assert len(execs) == 2  # the third command never ran
    assert execs[1]["payload"]["exit_code"] == 3
    assert execs[1]["payload"]["output_excerpt"] == "oops\n"
    report = steps[-1]
    assert report["kind"] == "report_result"
    assert report["payload"]["status"] == "failed"
    assert report["payload"]["failed_step"]["index"] == 2
    with stack.client() as c:
        listed = c.get("/runs", params={"status": "failed"}).json()["runs"]
    assert run["id"] in [r["id"] for r in listed]


def test_large_output_is_excerpted_and_stored_in_full(stack: FerryStack) -> None:
    run = stack.create_run("seq 1 20000")
    stack.wait_status(run["id"], {"completed"})
    step = [s for s in stack.timeline(run["id"]) if s["kind"] == "exec"][0]
    excerpt = step["payload"]["output_excerpt"]
    assert len(excerpt) < 3000 and "truncated" in excerpt
    assert excerpt.startswith("1\n2\n") and excerpt.endswith("19999\n20000\n")
    with stack.client() as c:
        full = c.get(f"/runs/{run['id']}/artifacts/{step['payload']['output_path']}").text
        logs = c.get(f"/runs/{run['id']}/logs").text
    assert full.splitlines() == [str(i) for i in range(1, 20001)]
    assert logs.startswith("$ seq 1 20000\n1\n2\n") and "[exit 0," in logs


def test_shell_state_carries_across_commands(stack: FerryStack) -> None:
    run = stack.create_run("mkdir -p sub && cd sub\nexport A=1; B=2\nf() { echo f$A$B; }\n"
                           "pwd && f")
    stack.wait_status(run["id"], {"completed"})
    last = [s for s in stack.timeline(run["id"]) if s["kind"] == "exec"][-1]
    assert last["payload"]["output_excerpt"] == "/workspace/sub\nf12\n"


def test_steps_are_visible_while_the_turn_runs(stack: FerryStack) -> None:
    """Liveness: the first exec step shows up (timeline and SSE) before `sleep 3` ends."""
    run = stack.create_run("echo a; sleep 3; echo b")
    t0 = time.monotonic()
    sse_seen: dict[str, float] = {}

    def follow() -> None:
        for event, _id, data in stack.sse(run["id"]):
            if event == "step" and data["kind"] == "exec" and data["payload"]["command"] == "echo a":
                sse_seen["at"] = time.monotonic()
            if event == "end":
                sse_seen["end"] = time.monotonic()
                return

    t = threading.Thread(target=follow, daemon=True)
    t.start()

    def first_exec_visible() -> bool:
        return any(s["kind"] == "exec" for s in stack.timeline(run["id"]))

    stack.wait_until(first_exec_visible, 10, "first exec step in the timeline")
    seen_in_timeline = time.monotonic()
    steps = stack.timeline(run["id"])
    assert [s["payload"]["command"] for s in steps if s["kind"] == "exec"] == ["echo a"]
    running = stack.get_run(run["id"])
    assert running["status"] == "in_progress"
    assert running["running"]["command"] == "sleep 3"
    stack.wait_until(lambda: "at" in sse_seen, 10, "first exec step over SSE")
    # `sleep 3` was still running when both saw the first step.
    assert stack.get_run(run["id"])["status"] == "in_progress"
    assert sse_seen["at"] - t0 < 3.0 and seen_in_timeline - t0 < 3.0
    t.join(20)
    assert "end" in sse_seen
    assert stack.get_run(run["id"])["status"] == "completed"


def test_sse_resumes_after_last_event_id(stack: FerryStack) -> None:
    run = stack.create_run("echo 1\necho 2\necho 3")
    stack.wait_status(run["id"], {"completed"})
    all_events = list(stack.sse(run["id"]))
    step_ids = [int(i) for e, i, _ in all_events if e == "step"]
    assert step_ids == list(range(1, len(step_ids) + 1))
    assert all_events[-1][0] == "end" and all_events[-1][2]["status"] == "completed"
    resumed = list(stack.sse(run["id"], headers={"Last-Event-ID": "3"}))
    assert [int(i) for e, i, _ in resumed if e == "step"] == step_ids[3:]


def test_cancel_stops_process_and_container_quickly(stack: FerryStack, docker_client) -> None:
    run = stack.create_run("echo start\nsleep 60\necho never")
    stack.wait_until(lambda: (stack.get_run(run["id"]).get("running") or {}).get("command")
                     == "sleep 60", 20, "sleep 60 to start")
    container = containers_of(docker_client, run["id"])[0]
    assert "sleep 60" in container.exec_run(["ps", "-eo", "args"]).output.decode()
    t0 = time.monotonic()
    with stack.client() as c:
        r = c.post(f"/runs/{run['id']}/cancel")
        assert r.status_code == 202, r.text
    stack.wait_status(run["id"], {"cancelled"}, timeout=3)
    assert time.monotonic() - t0 < 3.0
    stack.wait_until(lambda: containers_of(docker_client, run["id"]) == [], 3, "container removal")
    assert time.monotonic() - t0 < 3.5
    steps = stack.timeline(run["id"])
    assert not any(s["kind"] == "exec" and s["payload"]["command"] == "echo never" for s in steps)
    with stack.client() as c:
        again = c.post(f"/runs/{run['id']}/cancel")
        assert again.status_code == 409 and "already finished" in again.json()["detail"]
        listed = c.get("/runs", params={"status": "cancelled"}).json()["runs"]
    assert run["id"] in [r["id"] for r in listed]


def test_ten_runs_at_once_all_complete(stack: FerryStack) -> None:
    with httpx.Client(base_url=stack.api_url, timeout=30) as c:
        def submit(i: int, out: list) -> None:
            r = c.post("/runs", json={"instructions": f"echo run {i}\nsleep 1"})
            out.append(r)

        responses: list[httpx.Response] = []
        threads = [threading.Thread(target=submit, args=(i, responses)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert [r.status_code for r in responses] == [201] * 10
    ids = {r.json()["id"] for r in responses}
    for run_id in ids:
        assert stack.wait_status(run_id, {"completed", "failed"}, timeout=120)["status"] == "completed"

    def all_listed() -> bool:
        with stack.client() as c:
            listed = c.get("/runs", params={"status": "completed", "limit": 500}).json()["runs"]
        return ids <= {r["id"] for r in listed}

    stack.wait_until(all_listed, 10, "visibility to list all ten as completed")


def test_listing_pages_through_runs(stack: FerryStack) -> None:
    for i in range(3):
        stack.create_run(f"echo page {i}")
    with stack.client() as c:
        first = c.get("/runs", params={"limit": 2}).json()
        assert len(first["runs"]) == 2 and first["next_page_token"]
        second = c.get("/runs", params={"limit": 2, "page_token": first["next_page_token"]}).json()
    assert second["runs"]
    assert not {r["id"] for r in first["runs"]} & {r["id"] for r in second["runs"]}


def test_rename_running_run(stack: FerryStack) -> None:
    run = stack.create_run("sleep 3")
    with stack.client() as c:
        r = c.patch(f"/runs/{run['id']}", json={"title": "a better name"})
        assert r.status_code == 200, r.text
        assert r.json()["title"] == "a better name"
    assert stack.get_run(run["id"])["title"] == "a better name"
    stack.wait_status(run["id"], {"completed"})

    def listed_with_title() -> bool:
        with stack.client() as c:
            runs = c.get("/runs", params={"limit": 500}).json()["runs"]
        return any(r["id"] == run["id"] and r["title"] == "a better name" for r in runs)

    stack.wait_until(listed_with_title, 10, "new title in the listing")
    with stack.client() as c:
        r = c.patch(f"/runs/{run['id']}", json={"title": "too late"})
    assert r.status_code == 409


def test_three_thousand_step_run_keeps_whole_timeline(stack: FerryStack) -> None:
    script = "\n".join(f"echo {i}" for i in range(1, 3001))
    run = stack.create_run(script, title="long")
    done = stack.wait_status(run["id"], {"completed", "failed"}, timeout=240)
    assert done["status"] == "completed", done
    steps = stack.timeline(run["id"])
    execs = [s for s in steps if s["kind"] == "exec"]
    assert len(execs) == 3000
    assert [s["seq"] for s in steps] == list(range(1, len(steps) + 1))
    assert [e["payload"]["output_excerpt"] for e in execs] == [f"{i}\n" for i in range(1, 3001)]
    assert done["step_count"] == len(steps) == 3003
    # Paging from the middle returns the rest, in order.
    rest = stack.timeline(run["id"], after=1500)
    assert [s["seq"] for s in rest] == list(range(1501, 3004))
    # History stayed small: the Run continued-as-new and no event came near 256 KB.
    chain, biggest, _total = asyncio.run(
        history_facts(stack.settings.effective_temporal_address, f"run-{run['id']}"))
    assert chain >= 2
    assert biggest < 256 * 1024


def test_missing_image_fails_the_run_with_a_clear_error(stack: FerryStack) -> None:
    run = stack.create_run("echo hi", image="ferry-no-such-image")
    done = stack.wait_status(run["id"], {"completed", "failed"})
    assert done["status"] == "failed"
    assert "ferry-no-such-image" in done["error"] and "build-image" in done["error"]
    steps = stack.timeline(run["id"])
    assert [s["kind"] for s in steps] == ["message", "report_result"]
    assert steps[-1]["payload"]["status"] == "failed"


def test_cancel_right_after_submit_leaves_no_container(stack: FerryStack, docker_client) -> None:
    run = stack.create_run("sleep 30")
    with stack.client() as c:
        assert c.post(f"/runs/{run['id']}/cancel").status_code == 202
    stack.wait_status(run["id"], {"cancelled"}, timeout=10)
    stack.wait_until(lambda: containers_of(docker_client, run["id"]) == [], 5, "no container")


def test_a_failed_run_does_not_keep_its_devbox(stack: FerryStack, docker_client) -> None:
    run = stack.create_run("echo x > /workspace/f\nexit 3", keep_alive="10m")
    done = stack.wait_status(run["id"], {"completed", "failed"})
    assert done["status"] == "failed" and done["keep_alive_until"] is None
    stack.wait_until(lambda: stack.get_run(run["id"])["devboxes"][0]["removed_at"] is not None,
                     20, "the DevBox to be removed")
    assert containers_of(docker_client, run["id"]) == []


def test_an_image_without_python_fails_at_launch_and_leaves_nothing(
        stack: FerryStack, docker_client) -> None:
    import io
    import tarfile

    # The DevBox image without python3 (built offline from the local base).
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        docker_file = b"FROM ferry-devbox\nRUN rm -f /usr/bin/python3*\n"
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(docker_file)
        tar.addfile(info, io.BytesIO(docker_file))
    buf.seek(0)
    docker_client.images.build(fileobj=buf, custom_context=True, tag="ferry-test-nopython",
                               rm=True, pull=False)
    run = stack.create_run("echo hi", image="ferry-test-nopython")
    done = stack.wait_status(run["id"], {"completed", "failed"})
    assert done["status"] == "failed"
    assert "has no usable python3" in done["error"], done["error"]
    stack.wait_until(lambda: containers_of(docker_client, run["id"]) == [], 10, "removal")
    assert not (stack.data_dir / "devboxes" / run["id"]).exists()


def _runner_starts(docker_client, container: str, since: float, until: float) -> list[str]:
    """`docker exec`s of `ferry-runner start` in a container between two times."""
    events = docker_client.events(since=since, until=until, decode=True,
                                  filters={"type": "container", "container": container})
    return [e["Action"] for e in events
            if e.get("Action", "").startswith("exec_create") and "ferry-runner start" in e["Action"]]


def test_later_turns_start_through_the_devboxs_turn_server(stack: FerryStack, docker_client) -> None:
    """The first turn of a fresh DevBox starts by `docker exec` (and starts the DevBox's
    turn server beside it); the turns after it (an answer's, a follow-up's) start by a
    line to that server: no `docker exec`, no new Python."""
    t0 = time.time() - 1
    run = stack.create_run('echo one\nferry-ask "Go on?" --id go --options yes,no\necho two',
                           keep_alive="5m")
    stack.wait_status(run["id"], {"waiting_for_input"})
    name = stack.get_run(run["id"])["devboxes"][0]["name"]
    t1 = time.time()
    assert len(_runner_starts(docker_client, name, t0, t1)) == 1
    servers = docker_client.containers.get(name).exec_run(
        ["pgrep", "-c", "-f", "^python3 -I /ferry/in/bin/ferry-runner serve"]).output
    assert servers.strip() == b"1"
    with stack.client() as c:
        assert c.post(f"/runs/{run['id']}/answers", json={"answers": {"go": "yes"}}).status_code == 200
    assert stack.wait_status(run["id"], {"completed", "failed"})["status"] == "completed"
    with stack.client() as c:
        assert c.post(f"/runs/{run['id']}/messages", json={"text": "echo three"}).status_code == 202
    stack.wait_until(lambda: any(s["kind"] == "exec" and s["payload"]["command"] == "echo three"
                                 for s in stack.timeline(run["id"])), 30, "the follow-up's step")
    assert stack.wait_status(run["id"], {"completed", "failed"})["status"] == "completed"
    assert _runner_starts(docker_client, name, t1, time.time() + 1) == []
    outputs = [s["payload"]["output_excerpt"] for s in stack.timeline(run["id"]) if s["kind"] == "exec"]
    assert outputs[-2:] == ["two\n", "three\n"]
    with stack.client() as c:
        c.delete(f"/runs/{run['id']}/devbox")
