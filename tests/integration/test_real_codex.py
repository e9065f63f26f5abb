"""The real `codex` CLI (from npm, in the DevBox image) through Ferry's model gateway,
against a loopback stand-in of the OpenAI Responses API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.harness import FerryStack, free_port
from tests.integration.model_standins import (
    ApiError,
    FakeResponses,
    last_user_text,
    responses_tool_output,
)

SECRET = "sk-openai-real-key-0123456789-SECRET"
MODEL = "gpt-5"  # a model whose toolset is exec_command (the newest ones script in JS)


def shell(cmd: str) -> tuple:
    return ("tool", "exec_command", {"cmd": cmd, "login": False})


def colour_agent(body: dict[str, Any]) -> list[tuple]:
    """Asks for a colour with ferry-ask, then writes the answer down."""
    done = responses_tool_output(body)
    if done is not None:
        args, output = done
        if "ferry-ask" in args.get("cmd", ""):
            return [("text", "I asked which colour; waiting for the answer.")]
        if "colour.txt" in args.get("cmd", ""):
            return [("text", f"Wrote {output.strip().splitlines()[-1]} to colour.txt.")]
        return [("text", "Done.")]
    text = last_user_text(body)
    if "answered your questions" in text:
        return [("thinking", "They chose a colour."),
                shell("echo blue > colour.txt && cat colour.txt")]
    if "colour" in text:
        return [shell("ferry-ask 'Which colour?' --id color --options red,blue --default blue")]
    return [("text", f"Follow-up handled: {text[:40]}")]


@pytest.fixture(scope="module")
def openai() -> Iterator[FakeResponses]:
    fake = FakeResponses(free_port()).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def xstack(tmp_path_factory, openai: FakeResponses) -> Iterator[FerryStack]:
    s = FerryStack(tmp_path_factory.mktemp("codex"), env={
        "OPENAI_API_KEY": SECRET, "OPENAI_BASE_URL": openai.base_url})
    try:
        s.start()
        yield s
    finally:
        s.stop()


def test_codex_asks_resumes_and_is_metered_through_the_gateway(
        xstack: FerryStack, openai: FakeResponses) -> None:
    openai.responder = colour_agent
    run = xstack.create_run("Please ask me a colour, then write it down.", engine="codex",
                            model=MODEL, keep_alive="5m")
    waiting = xstack.wait_status(run["id"], {"waiting_for_input", "failed", "completed"}, 120)
    assert waiting["status"] == "waiting_for_input", waiting
    thread = waiting["session_id"]
    assert thread
    with xstack.client() as c:
        assert c.post(f"/runs/{run['id']}/answers",
                      json={"answers": {"color": "blue"}}).status_code == 200
    done = xstack.wait_status(run["id"], {"completed", "failed"}, 120)
    assert done["status"] == "completed", done
    assert done["session_id"] == thread  # `codex exec resume <thread>`
    assert done["summary"] == "Wrote blue to colour.txt."
    steps = xstack.timeline(run["id"])
    kinds = [s["kind"] for s in steps]
    assert "raw" not in kinds, [s["payload"] for s in steps if s["kind"] == "raw"]
    # Codex's own update check and analytics are off: no egress attempt of its own.
    assert "egress_denied" not in kinds, [s["payload"] for s in steps
                                          if s["kind"] == "egress_denied"]
    assert {"message", "tool", "question", "answer"} <= set(kinds)
    tool = next(s["payload"] for s in steps if s["kind"] == "tool"
                and "colour.txt" in str(s["payload"].get("input")))
    assert tool["exit_code"] == 0 and "blue" in tool["output_excerpt"]
    # Every call reached the stand-in through the gateway, with the real key swapped in;
    # none tried a WebSocket first.
    assert openai.requests
    for r in openai.requests:
        assert r["headers"].get("authorization") == f"Bearer {SECRET}"
    # The resumed turn carried the first turn's conversation.
    assert any("ferry-ask" in str(r["body"].get("input")) and
               "answered your questions" in str(r["body"].get("input")) for r in openai.requests)
    # Follow-up: the same thread, a third metered turn.
    with xstack.client() as c:
        assert c.post(f"/runs/{run['id']}/messages",
                      json={"text": "thanks, anything else?"}).status_code in (200, 202)
    for _ in range(120):
        done = xstack.get_run(run["id"])
        if len(done["turn_usage"]) == 3 and done["status"] == "completed":
            break
        time.sleep(1)
    assert done["status"] == "completed" and len(done["turn_usage"]) == 3, done
    assert done["session_id"] == thread
    calls = [c for t in done["turn_usage"] for c in t["calls"]]
    assert len(calls) == len(openai.requests)
    # gpt-5 at the built-in price: 1000 tokens in at $1.25/M, 50 out at $10/M.
    assert all(c["cost_usd"] == pytest.approx(0.00175) for c in calls), calls
    assert done["usage"]["cost_usd"] == pytest.approx(0.00175 * len(calls), abs=1e-6)
    # The real key is nowhere Ferry keeps anything, nor in the DevBox's files.
    xstack.assert_secret_nowhere(run["id"], SECRET)


def test_a_dropped_stream_is_retried_and_shown_not_fatal(
        xstack: FerryStack, openai: FakeResponses) -> None:
    calls = {"n": 0}

    def flaky(body: dict[str, Any]) -> list[tuple]:
        calls["n"] += 1
        if calls["n"] == 1:
            return [("text", "half an answer"), ("disconnect",)]
        return [("text", "Done after a retry.")]

    openai.responder = flaky
    run = xstack.create_run("say something", engine="codex", model=MODEL)
    done = xstack.wait_status(run["id"], {"completed", "failed"}, 120)
    assert done["status"] == "completed", done
    assert done["summary"] == "Done after a retry." and done["error"] is None
    notes = [s["payload"]["text"] for s in xstack.timeline(run["id"])
             if s["kind"] == "message" and s["payload"]["role"] == "system"]
    assert any("Reconnecting" in n for n in notes), notes


def test_an_api_error_fails_the_run_with_the_apis_message(
        xstack: FerryStack, openai: FakeResponses) -> None:
    openai.responder = lambda body: ApiError(400, "Unsupported parameter: 'frobnicate'")
    run = xstack.create_run("anything", engine="codex", model=MODEL)
    done = xstack.wait_status(run["id"], {"completed", "failed"}, 120)
    assert done["status"] == "failed", done
    assert "Unsupported parameter: 'frobnicate'" in done["error"], done["error"]


def test_ferry_run_watch_shows_the_agents_steps(
        xstack: FerryStack, openai: FakeResponses) -> None:
    def poet(body: dict[str, Any]) -> list[tuple]:
        if responses_tool_output(body) is not None:
            return [("text", "The haiku is in haiku.txt.")]
        return [("thinking", "Five, seven, five syllables."),
                shell("echo 'old pond, frog leaps in' > haiku.txt")]

    openai.responder = poet
    proc = xstack.cli("run", "--engine", "codex", "--model", MODEL,
                      "Write a haiku into haiku.txt", "--watch")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for shown in ("thinking: Five, seven, five syllables.",
                  "echo 'old pond, frog leaps in' > haiku.txt", "The haiku is in haiku.txt.",
                  "network gateway", "completed"):
        assert shown in proc.stdout, (shown, proc.stdout)
