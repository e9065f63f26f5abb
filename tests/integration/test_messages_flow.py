"""Steering while working, follow-ups in the same DevBox, keep-alive, hibernation, from_run."""

from __future__ import annotations

import time

from tests.integration.conftest import containers_of
from tests.integration.harness import FerryStack


def _messages(stack: FerryStack, run_id: str) -> list[dict]:
    return [s for s in stack.timeline(run_id)
            if s["kind"] == "message" and s["payload"].get("delivered")]


def test_steering_is_delivered_at_the_next_turn_once(stack: FerryStack) -> None:
    run = stack.create_run("echo working\nsleep 3\necho first-turn-done")
    stack.wait_until(lambda: (stack.get_run(run["id"]).get("running") or {}).get("command")
                     == "sleep 3", 20, "sleep to start")
    with stack.client() as c:
        r = c.post(f"/runs/{run['id']}/messages", json={"text": "echo steered"})
        assert r.status_code == 202, r.text
        assert r.json()["queued_messages"] == 1
    # Recorded when delivered, not when received: not in the timeline during the turn.
    assert _messages(stack, run["id"]) == []
    done = stack.wait_status(run["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    steps = stack.timeline(run["id"])
    delivered = _messages(stack, run["id"])
    assert len(delivered) == 1 and delivered[0]["payload"]["text"] == "echo steered"
    execs = [s for s in steps if s["kind"] == "exec"]
    assert [e["payload"]["command"] for e in execs] == [
        "echo working", "sleep 3", "echo first-turn-done", "echo steered"]
    # Delivered after the first turn's last command, before the steered command ran.
    assert execs[2]["seq"] < delivered[0]["seq"] < execs[3]["seq"]
    assert {e["payload"]["turn"] for e in execs} == {"t1", "t2"}


def test_message_while_waiting_is_delivered_with_the_answers(stack: FerryStack) -> None:
    run = stack.create_run('ferry-ask "Go?" --id go --options yes,no --default yes\necho after')
    stack.wait_status(run["id"], {"waiting_for_input"})
    with stack.client() as c:
        assert c.post(f"/runs/{run['id']}/messages", json={"text": "echo note"}).status_code == 202
        assert _messages(stack, run["id"]) == []
        assert c.post(f"/runs/{run['id']}/answers", json={"answers": {"go": "yes"}}).status_code == 200
    stack.wait_status(run["id"], {"completed"})
    steps = stack.timeline(run["id"])
    kinds = [s["kind"] for s in steps]
    answer_at = kinds.index("answer")
    assert steps[answer_at + 1]["kind"] == "message" and steps[answer_at + 1]["payload"]["delivered"]
    assert [s["payload"]["command"] for s in steps if s["kind"] == "exec"][-2:] == [
        "echo note", "echo after"]


def test_follow_up_in_same_container_then_keep_alive_expires(stack: FerryStack,
                                                            docker_client) -> None:
    run = stack.create_run("echo one > /workspace/first.txt", keep_alive="6s")
    done = stack.wait_status(run["id"], {"completed", "failed"})
    assert done["status"] == "completed" and done["keep_alive_until"]
    container_id = done["devboxes"][0]["container_id"]
    assert [c.id for c in containers_of(docker_client, run["id"])] == [container_id]
    with stack.client() as c:
        r = c.post(f"/runs/{run['id']}/messages", json={"text": "cat /workspace/first.txt\n"
                                                                "echo two"})
        assert r.status_code == 202, r.text
    stack.wait_until(lambda: stack.get_run(run["id"])["status"] in ("in_progress", "completed")
                     and len(_messages(stack, run["id"])) == 1, 10, "follow-up to start")
    again = stack.wait_status(run["id"], {"completed", "failed"})
    assert again["status"] == "completed", again
    steps = stack.timeline(run["id"])
    assert [s["kind"] for s in steps].count("report_result") == 2
    assert [s["kind"] for s in steps].count("launch_devbox") == 1
    execs = [s["payload"] for s in steps if s["kind"] == "exec"]
    assert execs[1]["output_excerpt"] == "one\n"  # the first turn's file is still there
    assert again["devboxes"][0]["container_id"] == container_id
    assert len(again["devboxes"]) == 1
    # After the window the DevBox goes away, and a message gets 409 with the way forward.
    stack.wait_until(lambda: containers_of(docker_client, run["id"]) == [], 20,
                     "keep-alive window to end")
    stack.wait_until(lambda: stack.get_run(run["id"])["devboxes"][0]["removed_at"] is not None,
                     10, "teardown recorded")
    with stack.client() as c:
        def gone() -> bool:
            r = c.post(f"/runs/{run['id']}/messages", json={"text": "echo late"})
            return r.status_code == 409 and "from_run" in r.json()["detail"]
        stack.wait_until(gone, 10, "409 for a message after the window")


def test_from_run_starts_a_new_run_from_the_spec(stack: FerryStack) -> None:
    first = stack.create_run("echo same-spec", title="original", mode="interactive")
    stack.wait_status(first["id"], {"completed"})
    with stack.client() as c:
        r = c.post("/runs", json={"from_run": first["id"]})
        assert r.status_code == 201, r.text
        second = r.json()
        assert second["id"] != first["id"]
        assert second["instructions"] == "echo same-spec" and second["title"] == "original"
        assert second["from_run"] == first["id"]
        r = c.post("/runs", json={"from_run": "nosuchrun"})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "from_run"]
    stack.wait_status(second["id"], {"completed"})


def test_long_pause_hibernates_and_answer_wakes(stack: FerryStack, docker_client) -> None:
    run = stack.create_run("echo kept > /workspace/kept.txt\n"
                           'ferry-ask "Continue?" --id go --options yes,no\n'
                           "cat /workspace/kept.txt", idle_timeout="2s")
    stack.wait_status(run["id"], {"waiting_for_input"})

    def stopped() -> bool:
        found = containers_of(docker_client, run["id"])
        return bool(found) and found[0].status == "exited"

    stack.wait_until(stopped, 20, "the DevBox to be hibernated")
    assert stack.get_run(run["id"])["devboxes"][0]["hibernated_at"]
    assert stack.get_run(run["id"])["status"] == "waiting_for_input"
    with stack.client() as c:
        assert c.post(f"/runs/{run['id']}/answers", json={"answers": {"go": "yes"}}).status_code == 200
    done = stack.wait_status(run["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    last = [s for s in stack.timeline(run["id"]) if s["kind"] == "exec"][-1]
    assert last["payload"]["output_excerpt"] == "kept\n"
    texts = [s["payload"]["text"] for s in stack.timeline(run["id"]) if s["kind"] == "message"]
    assert "DevBox hibernated while waiting for input." in texts and "DevBox woken up." in texts


def test_message_validation(stack: FerryStack) -> None:
    run = stack.create_run("sleep 2")
    with stack.client() as c:
        for body, field in (({"text": ""}, "text"), ({"text": "  "}, "text"), ({}, "text"),
                            ({"text": "x" * (100 * 1024 + 1)}, "text")):
            r = c.post(f"/runs/{run['id']}/messages", json=body)
            assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == field
        assert c.post("/runs/nosuchrun/messages", json={"text": "hi"}).status_code == 404
    time.sleep(0.1)
    stack.wait_status(run["id"], {"completed"})
    assert _messages(stack, run["id"]) == []
