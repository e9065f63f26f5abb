"""The real `claude` CLI (from npm, in the DevBox image) through Ferry's model gateway,
against a loopback stand-in of the Anthropic Messages API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.harness import FerryStack, free_port
from tests.integration.model_standins import FakeAnthropic, has_tool_result, last_user_text

SECRET = "sk-ant-real-key-0123456789-SECRET"


def previous_tool_command(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "assistant" and isinstance(message.get("content"), list):
            for block in message["content"]:
                if block.get("type") == "tool_use":
                    return str(block.get("input", {}).get("command", ""))
    return ""


def colour_agent(body: dict[str, Any]) -> list[tuple]:
    """Asks for a colour with ferry-ask, then writes the answer down."""
    if not body.get("tools"):
        return [("text", "Colour task")]  # a side call (e.g. a title)
    if has_tool_result(body):
        if "ferry-ask" in previous_tool_command(body):
            return [("text", "I asked which colour; waiting for the answer.")]
        if "colour.txt" in previous_tool_command(body):
            return [("text", "Wrote blue to colour.txt.")]
        return [("text", "Done.")]
    text = last_user_text(body)
    if "answered your questions" in text:
        return [("thinking", "They chose a colour."),
                ("tool", "Bash", {"command": "echo blue > colour.txt && cat colour.txt",
                                  "description": "write it"})]
    if "colour" in text:
        return [("thinking", "I need to ask which colour."),
                ("tool", "Bash", {"command": "ferry-ask 'Which colour?' --id color "
                                             "--options red,blue --default blue",
                                  "description": "ask"})]
    return [("text", f"Follow-up handled: {text[:40]}")]


@pytest.fixture(scope="module")
def anthropic() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic(free_port()).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def cstack(tmp_path_factory, anthropic: FakeAnthropic) -> Iterator[FerryStack]:
    s = FerryStack(tmp_path_factory.mktemp("claude"), env={
        "ANTHROPIC_API_KEY": SECRET, "ANTHROPIC_BASE_URL": anthropic.base_url})
    try:
        s.start()
        yield s
    finally:
        s.stop()


def test_claude_asks_resumes_and_is_metered_through_the_gateway(
        cstack: FerryStack, anthropic: FakeAnthropic) -> None:
    anthropic.responder = colour_agent
    run = cstack.create_run("Please ask me a colour, then write it down.", engine="claude-code",
                            keep_alive="5m")
    waiting = cstack.wait_status(run["id"], {"waiting_for_input", "failed", "completed"}, 120)
    assert waiting["status"] == "waiting_for_input", waiting
    session = waiting["session_id"]
    with cstack.client() as c:
        assert c.post(f"/runs/{run['id']}/answers",
                      json={"answers": {"color": "blue"}}).status_code == 200
    done = cstack.wait_status(run["id"], {"completed", "failed"}, 120)
    assert done["status"] == "completed", done
    assert done["session_id"] == session
    assert done["summary"] == "Wrote blue to colour.txt."
    steps = cstack.timeline(run["id"])
    kinds = [s["kind"] for s in steps]
    assert "raw" not in kinds, [s["payload"] for s in steps if s["kind"] == "raw"]
    assert {"message", "thought", "tool", "question", "answer"} <= set(kinds)
    tool = next(s["payload"] for s in steps if s["kind"] == "tool"
                and "colour.txt" in str(s["payload"].get("input")))
    assert tool["exit_code"] == 0 and "blue" in tool["output_excerpt"]
    # Every model call went through the gateway with the turn's token, never the key.
    assert anthropic.requests
    for r in anthropic.requests:
        assert r["headers"].get("x-api-key") == SECRET
    # Follow-up: the same session, a third metered turn.
    with cstack.client() as c:
        assert c.post(f"/runs/{run['id']}/messages",
                      json={"text": "thanks, anything else?"}).status_code in (200, 202)
    done = cstack.wait_status(run["id"], {"completed", "failed"}, 120)
    for _ in range(60):
        done = cstack.get_run(run["id"])
        if len(done["turn_usage"]) == 3 and done["status"] == "completed":
            break
        import time
        time.sleep(1)
    assert done["status"] == "completed" and len(done["turn_usage"]) == 3, done
    calls = [c for t in done["turn_usage"] for c in t["calls"]]
    assert len(calls) == len(anthropic.requests)
    assert all(c["cost_usd"] > 0 for c in calls)
    assert done["usage"]["cost_usd"] == pytest.approx(sum(c["cost_usd"] for c in calls), abs=1e-5)
