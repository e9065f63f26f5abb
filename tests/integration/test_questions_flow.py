"""Questions as durable pauses: ferry-ask, answers (valid and invalid), autonomous mode."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.integration.harness import FerryStack, history_length, pending_activities

THREE = {"questions": [
    {"id": "color", "kind": "single", "text": "Which colour?", "options": ["red", "blue"],
     "default": "red", "allow_other": True},
    {"id": "tags", "kind": "multi", "text": "Which tags?", "options": ["a", "b", "c"],
     "default": ["a"]},
    {"id": "note", "kind": "text", "text": "Anything else?"},
]}
ASK_SCRIPT = (
    "echo before > /workspace/before.txt\n"
    f"ferry-ask --json '{json.dumps(THREE)}'\n"
    "cat \"$FERRY_ANSWERS\"\n"
    "python3 -c 'import json,os; a=json.load(open(os.environ[\"FERRY_ANSWERS\"]))[\"answers\"]; "
    "print(a[\"color\"], \",\".join(a[\"tags\"]), a[\"note\"])'\n"
    "cat /workspace/before.txt"
)


def _wait_waiting(stack: FerryStack, run_id: str) -> dict:
    return stack.wait_status(run_id, {"waiting_for_input", "failed", "completed"})


def test_three_questions_pause_and_answers_resume(stack: FerryStack) -> None:
    run = stack.create_run(ASK_SCRIPT)
    waiting = _wait_waiting(stack, run["id"])
    assert waiting["status"] == "waiting_for_input", waiting
    assert [q["id"] for q in waiting["questions"]["questions"]] == ["color", "tags", "note"]
    assert waiting["questions"]["questions"][0]["default"] == "red"
    assert waiting["waiting_since"]
    steps = stack.timeline(run["id"])
    assert steps[-1]["kind"] == "question"
    assert steps[-1]["payload"]["questions"][1]["kind"] == "multi"
    # The commands after ferry-ask have not run yet.
    assert [s["payload"]["index"] for s in steps if s["kind"] == "exec"] == [1, 2]
    # While waiting the workflow holds no activity (and so no worker slot).
    address = stack.settings.effective_temporal_address
    assert asyncio.run(pending_activities(address, f"run-{run['id']}")) == 0

    with stack.client() as c:
        r = c.post(f"/runs/{run['id']}/answers",
                   json={"answers": {"color": {"other": "green"}, "tags": ["a", "c"],
                                     "note": "free text"}})
        assert r.status_code == 200, r.text
    done = stack.wait_status(run["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    assert done["questions"] is None
    steps = stack.timeline(run["id"])
    kinds = [s["kind"] for s in steps]
    assert kinds.count("question") == 1 and kinds.count("answer") == 1
    answer = next(s for s in steps if s["kind"] == "answer")
    assert answer["payload"]["answers"]["color"] == {"other": "green"}
    assert answer["payload"]["auto"] is False
    execs = [s["payload"] for s in steps if s["kind"] == "exec"]
    assert [e["index"] for e in execs] == [1, 2, 3, 4, 5]
    assert json.loads(execs[2]["output_excerpt"])["answers"]["tags"] == ["a", "c"]
    assert execs[3]["output_excerpt"] == "{'other': 'green'} a,c free text\n"
    assert execs[4]["output_excerpt"] == "before\n"  # same DevBox, workspace intact


INVALID = [
    ({"color": "red", "tags": ["a"], "note": "x", "size": "L"}, 422, "unknown question id"),
    ({"color": "green", "tags": ["a"], "note": "x"}, 422, "is not one of"),
    ({"color": ["red", "blue"], "tags": ["a"], "note": "x"}, 422, "single choice"),
    ({"color": "red", "tags": ["a"]}, 422, "missing answer(s) for required question(s): note"),
    ({"color": "red", "tags": ["a"], "note": "x" * 10_001}, 422, "longer than"),
    ({"color": {"other": ""}, "tags": ["a"], "note": "x"}, 422, "needs text"),
    ({"color": "red", "tags": ["zzz"], "note": "x"}, 422, "is not one of"),
]


def test_invalid_answers_are_rejected_and_change_nothing(stack: FerryStack) -> None:
    run = stack.create_run(ASK_SCRIPT)
    assert _wait_waiting(stack, run["id"])["status"] == "waiting_for_input"
    before = stack.timeline(run["id"])
    address = stack.settings.effective_temporal_address
    events_before = asyncio.run(history_length(address, f"run-{run['id']}"))
    with stack.client() as c:
        for answers, code, message in INVALID:
            r = c.post(f"/runs/{run['id']}/answers", json={"answers": answers})
            assert r.status_code == code, (answers, r.text)
            detail = r.json()["detail"]
            assert detail[0]["loc"] == ["body", "answers"] and message in detail[0]["msg"], detail
        r = c.post(f"/runs/{run['id']}/answers", json={"nope": 1})
        assert r.status_code == 422
    still = stack.get_run(run["id"])
    assert still["status"] == "waiting_for_input"
    assert stack.timeline(run["id"]) == before  # nothing recorded
    assert asyncio.run(history_length(address, f"run-{run['id']}")) == events_before
    with stack.client() as c:
        ok = c.post(f"/runs/{run['id']}/answers",
                    json={"answers": {"color": "blue", "tags": "b", "note": "fine"}})
        assert ok.status_code == 200, ok.text
        # Not waiting any more: a second answer is a conflict.
        again = c.post(f"/runs/{run['id']}/answers",
                       json={"answers": {"color": "blue", "tags": "b", "note": "fine"}})
        assert again.status_code == 409 and "not waiting" in again.json()["detail"]
    assert stack.wait_status(run["id"], {"completed", "failed"})["status"] == "completed"


def test_answer_to_a_run_that_never_asked_is_409(stack: FerryStack) -> None:
    run = stack.create_run("sleep 2")
    with stack.client() as c:
        r = c.post(f"/runs/{run['id']}/answers", json={"answers": {}})
        assert r.status_code == 409 and "not waiting" in r.json()["detail"]
    stack.wait_status(run["id"], {"completed"})
    with stack.client() as c:
        r = c.post(f"/runs/{run['id']}/answers", json={"answers": {}})
        assert r.status_code == 409


def test_bad_question_spec_fails_in_ferry_ask_itself(stack: FerryStack) -> None:
    bad = json.dumps({"questions": [{"id": "x", "kind": "single", "text": "?"}]})
    run = stack.create_run(f"ferry-ask --json '{bad}'")
    done = stack.wait_status(run["id"], {"completed", "failed"})
    assert done["status"] == "failed"
    step = [s for s in stack.timeline(run["id"]) if s["kind"] == "exec"][0]
    assert step["payload"]["exit_code"] == 2
    assert "needs 'options'" in step["payload"]["output_excerpt"]


def test_friendly_flags_form(stack: FerryStack) -> None:
    read = "python3 -c \"import json,os; print(json.load(open(os.environ['FERRY_ANSWERS']))" \
           "['answers']['ship'])\""
    run = stack.create_run('ferry-ask "Ship it?" --id ship --options yes,no --default yes\n' + read)
    waiting = _wait_waiting(stack, run["id"])
    q = waiting["questions"]["questions"][0]
    assert (q["id"], q["kind"], q["options"], q["default"]) == ("ship", "single", ["yes", "no"], "yes")
    with stack.client() as c:
        assert c.post(f"/runs/{run['id']}/answers", json={"answers": {"ship": "no"}}).status_code == 200
    stack.wait_status(run["id"], {"completed"})
    last = [s for s in stack.timeline(run["id"]) if s["kind"] == "exec"][-1]
    assert last["payload"]["output_excerpt"] == "no\n"


def test_autonomous_uses_defaults_without_pausing(stack: FerryStack) -> None:
    target = stack.settings.worker_host
    run = stack.create_run(
        'ferry-ask "Ship it?" --id ship --options yes,no --default yes\n'
        'cat "$FERRY_ANSWERS"', mode="autonomous", target=target)
    done = stack.wait_status(run["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    steps = stack.timeline(run["id"])
    assert "waiting_for_input" not in json.dumps(done)
    answer = next(s for s in steps if s["kind"] == "answer")
    assert answer["payload"] == {"answers": {"ship": "yes"}, "auto": True, "reason": "autonomous"}
    last = [s for s in steps if s["kind"] == "exec"][-1]
    assert json.loads(last["payload"]["output_excerpt"]) == {"answers": {"ship": "yes"}}


def test_autonomous_question_without_default_fails_fast(stack: FerryStack) -> None:
    run = stack.create_run('ferry-ask "What is the release name?" --text --id name\necho never',
                           mode="autonomous", target=stack.settings.worker_host)
    done = stack.wait_status(run["id"], {"completed", "failed"}, timeout=30)
    assert done["status"] == "failed"
    assert "autonomous" in done["error"] and "name: What is the release name?" in done["error"]
    assert not any(s["kind"] == "exec" and s["payload"]["command"] == "echo never"
                   for s in stack.timeline(run["id"]))


@pytest.mark.parametrize("extra", [{}, {"target": None}])
def test_autonomous_without_target_is_422(stack: FerryStack, extra) -> None:
    from tests.integration.test_api_validation import count_runs

    before = count_runs(stack)
    with stack.client() as c:
        r = c.post("/runs", json={"instructions": "echo x", "mode": "autonomous", **extra})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "target"]
    assert "autonomous Run needs a target" in r.json()["detail"][0]["msg"]
    assert count_runs(stack) == before


def test_two_questions_in_two_turns(stack: FerryStack) -> None:
    run = stack.create_run('ferry-ask "First?" --id one --options a,b --default a\n'
                           'echo between\n'
                           'ferry-ask "Second?" --id two --options c,d --default c\n'
                           'cat "$FERRY_ANSWERS"')
    stack.wait_status(run["id"], {"waiting_for_input"})
    with stack.client() as c:
        assert c.post(f"/runs/{run['id']}/answers", json={"answers": {"one": "b"}}).status_code == 200
    second = stack.wait_status(run["id"], {"waiting_for_input", "completed", "failed"})
    assert second["status"] == "waiting_for_input", second
    assert second["questions"]["questions"][0]["id"] == "two"
    with stack.client() as c:
        assert c.post(f"/runs/{run['id']}/answers", json={"answers": {"two": "d"}}).status_code == 200
    done = stack.wait_status(run["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    last = [s for s in stack.timeline(run["id"]) if s["kind"] == "exec"][-1]
    assert json.loads(last["payload"]["output_excerpt"]) == {"answers": {"two": "d"}}
