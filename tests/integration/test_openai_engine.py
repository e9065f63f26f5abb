"""The built-in `openai` agent loop against a loopback OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from tests.integration.fake_openai import (
    FakeOpenAI,
    assistant_turns,
    dumps,
    last_user,
    reply,
    tool_call,
)
from tests.integration.harness import FerryStack, all_history, free_port

KEY = "sk-openai-test-abcdef123456"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    f = FakeOpenAI(free_port()).start()
    yield f
    f.stop()


@pytest.fixture(scope="module")
def ostack(tmp_path_factory, fake, docker_client) -> Iterator[FerryStack]:
    s = FerryStack(tmp_path_factory.mktemp("openai"), env={
        "FERRY_OPENAI_BASE_URL": fake.base_url, "FERRY_OPENAI_API_KEY": KEY,
        "FERRY_OPENAI_MODEL": "fake-model"})
    try:
        s.start()
        yield s
    finally:
        s.stop()


def test_writes_a_file_and_runs_a_command(ostack: FerryStack, fake: FakeOpenAI) -> None:
    def scenario(messages):
        n = assistant_turns(messages)
        if n == 0:  # two parallel calls, one with arguments as a JSON string
            return reply([tool_call("write_file", dumps({"path": "sub/hello.txt", "content": "hi\n"})),
                          tool_call("exec", dumps({"command": "cat sub/hello.txt && echo ran"}))])
        if n == 1:  # arguments null: treated as {}
            return reply([tool_call("list_files", None)], content="Checking.")
        return reply([tool_call("finish", dumps({"summary": "Wrote sub/hello.txt and ran it."}))])

    fake.scenarios["TASK-write"] = scenario
    run = ostack.create_run("TASK-write: create hello.txt", engine="openai")
    done = ostack.wait_status(run["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    assert done["summary"] == "Wrote sub/hello.txt and ran it."
    steps = ostack.timeline(run["id"])
    tools = [s["payload"] for s in steps if s["kind"] == "tool"]
    assert [t["name"] for t in tools] == ["write_file", "exec", "list_files", "finish"]
    assert tools[1]["exit_code"] == 0 and tools[1]["output_excerpt"] == "hi\nran\n"
    assert "sub" in tools[2]["output_excerpt"]
    assert done["usage"]["input_tokens"] == 300 and len(done["turn_usage"]) == 3
    # Priced like the gateway's calls: fake-model falls back to $3/$15 per million tokens.
    calls = [c for t in done["turn_usage"] for c in t["calls"]]
    assert [(c["model"], c["input_tokens"], c["output_tokens"]) for c in calls] == \
        [("fake-model", 100, 20)] * 3
    assert all(c["cost_usd"] == pytest.approx(0.0006) for c in calls)
    assert done["usage"]["cost_usd"] == pytest.approx(0.0018)
    # The conversation went back to the model with the tool results, in order.
    last = [r for r in fake.requests if "TASK-write" in dumps(r["body"])][-1]["body"]
    tool_msgs = [m for m in last["messages"] if m["role"] == "tool"]
    assert tool_msgs[0]["content"] == "written" and tool_msgs[1]["content"].startswith("exit code 0")
    assert last["model"] == "fake-model" and any(t["function"]["name"] == "ask_user"
                                                 for t in last["tools"])


def test_ask_user_pauses_and_resumes(ostack: FerryStack, fake: FakeOpenAI) -> None:
    def scenario(messages):
        if assistant_turns(messages) == 0:
            return reply([tool_call("ask_user", dumps({"questions": [
                {"id": "color", "kind": "single", "text": "Colour?", "options": ["red", "blue"],
                 "default": "red"}]}))])
        return reply(content=f"You said: {last_user(messages)}")

    fake.scenarios["TASK-ask"] = scenario
    run = ostack.create_run("TASK-ask: pick a colour", engine="openai")
    waiting = ostack.wait_status(run["id"], {"waiting_for_input", "failed", "completed"})
    assert waiting["status"] == "waiting_for_input", waiting
    with ostack.client() as c:
        assert c.post(f"/runs/{run['id']}/answers",
                      json={"answers": {"color": "blue"}}).status_code == 200
    done = ostack.wait_status(run["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    assert '"color": "blue"' in done["summary"]


def test_steering_lands_between_model_calls(ostack: FerryStack, fake: FakeOpenAI) -> None:
    seen: list[str] = []

    def scenario(messages):
        n = assistant_turns(messages)
        if n == 0:
            return reply([tool_call("exec", dumps({"command": "sleep 3"}))])
        seen.append(last_user(messages))
        return reply([tool_call("finish", dumps({"summary": "steered: " + last_user(messages)}))])

    fake.scenarios["TASK-steer"] = scenario
    run = ostack.create_run("TASK-steer: work slowly", engine="openai")
    time.sleep(1.0)
    with ostack.client() as c:
        assert c.post(f"/runs/{run['id']}/messages",
                      json={"text": "use tabs, not spaces"}).status_code == 202
    done = ostack.wait_status(run["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    assert "use tabs, not spaces" in seen[0]
    delivered = [s for s in ostack.timeline(run["id"])
                 if s["kind"] == "message" and s["payload"].get("delivered")]
    assert len(delivered) == 1


def test_api_key_is_sent_but_never_kept(ostack: FerryStack, fake: FakeOpenAI) -> None:
    def scenario(messages):
        return reply([tool_call("finish", dumps({"summary": f"the key is {KEY}"}))])

    fake.scenarios["TASK-key"] = scenario
    run = ostack.create_run("TASK-key: leak it", engine="openai")
    done = ostack.wait_status(run["id"], {"completed", "failed"})
    assert fake.requests[-1]["auth"] == f"Bearer {KEY}"
    assert KEY not in done["summary"] and "[REDACTED]" in done["summary"]
    with ostack.client() as c:
        assert KEY not in c.get(f"/runs/{run['id']}/timeline").text
    history = asyncio.run(all_history(ostack.settings.effective_temporal_address,
                                       f"run-{run['id']}"))
    assert KEY not in history
    artifacts = "".join(p.read_text(errors="replace") for p in
                        (ostack.data_dir / "artifacts" / "runs" / run["id"]).rglob("*")
                        if p.is_file())
    assert "[REDACTED]" in artifacts and KEY not in artifacts


def test_write_file_handles_large_content(ostack: FerryStack, fake: FakeOpenAI) -> None:
    big = "x" * 300_000 + "\n"

    def scenario(messages):
        n = assistant_turns(messages)
        if n == 0:
            return reply([tool_call("write_file", dumps({"path": "big.txt", "content": big}))])
        if n == 1:
            return reply([tool_call("exec", dumps({"command": "wc -c < big.txt"}))])
        return reply([tool_call("finish", dumps({"summary": "big file written"}))])

    fake.scenarios["TASK-big"] = scenario
    run = ostack.create_run("TASK-big: write a big file", engine="openai")
    done = ostack.wait_status(run["id"], {"completed", "failed"}, timeout=90)
    assert done["status"] == "completed", done
    tools = [s["payload"] for s in ostack.timeline(run["id"]) if s["kind"] == "tool"]
    assert tools[0]["is_error"] is False and tools[1]["output_excerpt"].strip() == "300001"


def test_the_cost_budget_stops_the_loop(ostack: FerryStack, fake: FakeOpenAI) -> None:
    fake.scenarios["TASK-loop"] = lambda messages: reply(
        [tool_call("exec", dumps({"command": "echo again"}))])
    # Each call costs $0.0006: the second one reaches $0.001, and no third is made.
    run = ostack.create_run("TASK-loop: run forever", engine="openai", max_cost_usd=0.001)
    done = ostack.wait_status(run["id"], {"completed", "failed"})
    assert done["status"] == "failed" and "budget max_cost_usd reached" in done["error"], done
    assert len(done["turn_usage"]) == 2
    assert len([r for r in fake.requests if "TASK-loop" in dumps(r["body"])]) == 2
