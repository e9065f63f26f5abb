"""Engine adapters against stand-in CLIs that speak the real stream formats."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from tests.integration.engine_image import build_bare_image, build_engine_image
from tests.integration.harness import FerryStack

SECRET = "sk-ant-test-0123456789-SECRET"
CODEX_SECRET = "codex-key-9876543210-SECRET"


@pytest.fixture(scope="module")
def agents_image(docker_client) -> str:
    return build_engine_image(docker_client)


@pytest.fixture(scope="module")
def estack(tmp_path_factory, agents_image) -> Iterator[FerryStack]:
    s = FerryStack(tmp_path_factory.mktemp("engines"), env={
        "ANTHROPIC_API_KEY": SECRET, "CODEX_API_KEY": CODEX_SECRET,
        "FERRY_DEVBOX_IMAGE": agents_image, "FERRY_TURN_SLICE_SECONDS": "4"})
    try:
        s.start()
        yield s
    finally:
        s.stop()


def kinds(steps: list[dict]) -> list[str]:
    return [s["kind"] for s in steps]


def test_claude_code_run_asks_resumes_and_reports_usage(estack: FerryStack) -> None:
    run = estack.create_run("Please ask me a colour, then write it down.", engine="claude-code",
                            model="claude-sonnet", effort="high")
    waiting = estack.wait_status(run["id"], {"waiting_for_input", "failed", "completed"})
    assert waiting["status"] == "waiting_for_input", waiting
    steps = estack.timeline(run["id"])
    assert "message" in kinds(steps) and "tool" in kinds(steps)
    tool = next(s for s in steps if s["kind"] == "tool")
    assert tool["payload"]["name"] == "Bash" and "ferry-ask" in tool["payload"]["input"]["command"]
    assert tool["payload"]["is_error"] is False
    first_session = waiting["session_id"]
    assert first_session.startswith("sess-")
    with estack.client() as c:
        r = c.post(f"/runs/{run['id']}/answers", json={"answers": {"color": "blue"}})
        assert r.status_code == 200, r.text
    done = estack.wait_status(run["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    assert done["summary"] == "Wrote blue to colour.txt."
    # The fake fails loudly unless the second turn resumed the first turn's session.
    assert done["session_id"] == first_session
    assert done["engine_used"] == "claude-code" and done["model"] == "claude-sonnet"
    assert done["effort"] == "high"
    assert [u["turn"] for u in done["turn_usage"]] == ["t1", "t2"]
    assert done["usage"]["cost_usd"] == pytest.approx(0.0246)
    assert done["usage"]["input_tokens"] == 2 * 1110 and done["usage"]["output_tokens"] == 100
    steps = estack.timeline(run["id"])
    assert "thought" in kinds(steps)
    assert kinds(steps).count("question") == 1 and kinds(steps).count("answer") == 1


def test_claude_failures_are_failures(estack: FerryStack) -> None:
    for prompt, needle in (("please fail now", "error_during_execution"),
                           ("return is-error", "API Error: 500")):
        run = estack.create_run(prompt, engine="claude-code")
        done = estack.wait_status(run["id"], {"completed", "failed"})
        assert done["status"] == "failed", done
        assert needle in done["error"]


def test_unknown_and_malformed_lines_become_raw_steps(estack: FerryStack) -> None:
    run = estack.create_run("send unknown events", engine="claude-code")
    done = estack.wait_status(run["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    raws = [s["payload"] for s in estack.timeline(run["id"]) if s["kind"] == "raw"]
    whys = " | ".join(r["why"] for r in raws)
    assert "not JSON" in whys and "rate_limit_event" not in whys  # a known notice: quiet
    assert "unknown content block 'hologram'" in whys and "not a JSON object" in whys


def test_codex_run_resumes_thread_and_fails_on_turn_failed(estack: FerryStack) -> None:
    run = estack.create_run("ask me a colour", engine="codex", effort="low")
    estack.wait_status(run["id"], {"waiting_for_input"})
    thread = estack.get_run(run["id"])["session_id"]
    with estack.client() as c:
        assert c.post(f"/runs/{run['id']}/answers",
                      json={"answers": {"color": "red"}}).status_code == 200
    done = estack.wait_status(run["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    assert done["session_id"] == thread and done["summary"] == "Wrote red."
    steps = estack.timeline(run["id"])
    tools = [s["payload"] for s in steps if s["kind"] == "tool"]
    assert all("exit_code" in t for t in tools)
    assert "file_change" in kinds(steps) and "thought" in kinds(steps)
    assert done["usage"]["input_tokens"] == 4000

    plain = estack.create_run("just look around, item_type please", engine="codex")
    ok = estack.wait_status(plain["id"], {"completed", "failed"})
    assert ok["status"] == "completed", ok
    cmd = next(s["payload"] for s in estack.timeline(plain["id"]) if s["kind"] == "tool")
    assert cmd["exit_code"] == 1 and cmd["is_error"] is True
    assert "todo_list" in kinds(estack.timeline(plain["id"]))

    failing = estack.create_run("fail please", engine="codex")
    bad = estack.wait_status(failing["id"], {"completed", "failed"})
    assert bad["status"] == "failed" and "the model gave up" in bad["error"]


def test_auto_picks_an_engine_with_cli_and_credentials(estack: FerryStack) -> None:
    run = estack.create_run("auto, do the thing", engine="auto")
    done = estack.wait_status(run["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    assert done["engine"] == "auto" and done["engine_used"] == "claude-code"
    choice = next(s["payload"] for s in estack.timeline(run["id"]) if s["kind"] == "engine")
    assert choice["chosen"] == "claude-code" and choice["usable"] == ["claude-code", "codex"]


def test_auto_fails_clearly_without_any_engine(estack: FerryStack, docker_client) -> None:
    run = estack.create_run("auto in a bare image", engine="auto",
                            image=build_bare_image(docker_client))
    done = estack.wait_status(run["id"], {"completed", "failed"})
    assert done["status"] == "failed"
    assert "no usable engine" in done["error"]
    assert "`claude` CLI is not in the DevBox image" in done["error"]
    assert "`codex` CLI is not in the DevBox image" in done["error"]


def test_budgets_and_watchdog_stop_the_run(estack: FerryStack) -> None:
    hung = estack.create_run("hang forever", engine="claude-code", turn_timeout="3s")
    done = estack.wait_status(hung["id"], {"completed", "failed"}, timeout=60)
    assert done["status"] == "failed" and "exceeded its time limit of 3 s" in done["error"]

    costly = estack.create_run("expensive work", engine="claude-code", max_cost_usd=0.25)
    done = estack.wait_status(costly["id"], {"completed", "failed"})
    assert done["status"] == "failed" and "budget max_cost_usd reached" in done["error"]

    turns = estack.create_run("ask me a colour", engine="claude-code", max_turns=1)
    estack.wait_status(turns["id"], {"waiting_for_input"})
    with estack.client() as c:
        c.post(f"/runs/{turns['id']}/answers", json={"answers": {"color": "red"}})
    done = estack.wait_status(turns["id"], {"completed", "failed"})
    assert done["status"] == "failed" and "budget max_turns reached: 1" in done["error"]
    assert len(done["turn_usage"]) == 1


async def _all_history(address: str, workflow_id: str) -> str:
    client = await Client.connect(address)
    text = []
    async for wf in client.list_workflows(f"WorkflowId = '{workflow_id}'"):
        history = await client.get_workflow_handle(workflow_id, run_id=wf.run_id).fetch_history()
        text.append(history.to_json())
    return "\n".join(text)


@pytest.mark.parametrize("engine", ["claude-code", "codex"])
def test_secrets_never_leak(estack: FerryStack, engine: str) -> None:
    run = estack.create_run("echo-key please", engine=engine)
    done = estack.wait_status(run["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    with estack.client() as c:
        api_text = "".join([
            c.get(f"/runs/{run['id']}").text,
            c.get(f"/runs/{run['id']}/timeline").text,
            c.get(f"/runs/{run['id']}/logs").text,
            c.get("/runs").text,
        ])
    assert "[REDACTED]" in api_text  # the engine did echo it
    history = asyncio.run(_all_history(estack.settings.effective_temporal_address,
                                       f"run-{run['id']}"))
    artifacts = "".join(p.read_text(errors="replace") for p in
                        (Path(estack.data_dir) / "artifacts" / "runs" / run["id"]).rglob("*")
                        if p.is_file())
    logs = "".join(p.read_text(errors="replace") for p in (Path(estack.data_dir) / "logs").glob("*"))
    for where, text in (("API", api_text), ("history", history), ("artifacts", artifacts),
                        ("logs", logs)):
        assert SECRET not in text, where
        assert CODEX_SECRET not in text, where
    assert json.dumps(SECRET) not in history


def test_engine_max_turns_maps_to_claude_flag(estack: FerryStack) -> None:
    run = estack.create_run("plain work", engine="claude-code", engine_max_turns=7)
    done = estack.wait_status(run["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    texts = [s["payload"]["text"] for s in estack.timeline(run["id"]) if s["kind"] == "message"]
    assert "max-turns=7" in texts


def test_a_background_child_holding_stdout_does_not_hang_the_turn(estack: FerryStack) -> None:
    run = estack.create_run("start a background daemon", engine="claude-code")
    done = estack.wait_status(run["id"], {"completed", "failed"}, timeout=45)
    assert done["status"] == "completed", done
    assert done["summary"] == "Left a daemon behind."
