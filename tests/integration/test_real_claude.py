"""The real `claude` CLI (from npm, in the DevBox image) through Ferry's model gateway,
against a loopback stand-in of the Anthropic Messages API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
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


def test_the_real_key_never_enters_the_devbox_and_the_token_dies_with_the_turn(
        cstack: FerryStack, anthropic: FakeAnthropic) -> None:
    import json as _json
    import time

    import docker
    import httpx

    def slow_agent(body: dict[str, Any]) -> list[tuple]:
        if body.get("tools") and not has_tool_result(body):
            return [("tool", "Bash", {"command": "sleep 6; echo slept", "description": "wait"})]
        return [("text", "Slept well.")]

    anthropic.responder = slow_agent
    run = cstack.create_run("sleep a little", engine="claude-code")
    client = docker.from_env()
    dump = ""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and "sleep 6" not in dump:
        boxes = client.containers.list(filters={"label": f"ferry.run={run['id']}"})
        if boxes:
            # From the host, as root: every DevBox process's environment and command line.
            texts = []
            for row in boxes[0].top(ps_args="-eo pid")["Processes"] or []:
                for part in ("environ", "cmdline"):
                    try:
                        texts.append(Path(f"/proc/{row[0]}/{part}").read_bytes()
                                     .replace(b"\0", b"\n").decode("utf-8", "replace"))
                    except OSError:
                        pass
            dump = "\n".join(texts)
        time.sleep(0.3)
    assert "sleep 6" in dump, "the turn was never seen running"
    assert SECRET not in dump
    # Every file of the DevBox (workspace, home, tmp, state, in/out) on the host's side.
    for f in (cstack.data_dir / "devboxes").rglob("*"):
        if f.is_file() and not f.is_symlink() and f.name != "disk.img":
            assert SECRET.encode() not in f.read_bytes(), f
    token = next(w.split("=", 1)[1] for w in dump.split("\n")
                 if w.startswith("ANTHROPIC_API_KEY="))
    assert token.startswith("ferry-turn-")
    done = cstack.wait_status(run["id"], {"completed", "failed"}, 120)
    assert done["status"] == "completed", done
    # The token worked during the turn (the calls reached the stand-in with the real key)
    # and is refused now that the turn is over.
    sock = cstack.data_dir / "gateway" / "sock" / "model.sock"
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock))) as gw:
        r = gw.post("http://gateway/anthropic/v1/messages", headers={"x-api-key": token},
                    json={"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": []})
    assert r.status_code == 401 and "not valid" in r.json()["error"]["message"]
    with cstack.client() as c:
        api_text = "".join(c.get(p).text for p in (
            f"/runs/{run['id']}", f"/runs/{run['id']}/timeline", f"/runs/{run['id']}/logs"))
    logs = "".join(p.read_text(errors="replace") for p in (cstack.data_dir / "logs").glob("*"))
    artifacts = "".join(p.read_text(errors="replace") for p in
                        (cstack.data_dir / "artifacts").rglob("*") if p.is_file())
    history = _json.dumps(done)
    for where, text in (("API", api_text), ("logs", logs), ("artifacts", artifacts),
                        ("run", history)):
        assert SECRET not in text, where


def test_the_gateway_stops_a_turn_once_the_cost_budget_is_spent(
        cstack: FerryStack, anthropic: FakeAnthropic) -> None:
    def tool_forever(body: dict[str, Any]) -> list[tuple]:
        if not body.get("tools"):
            return [("text", "side call")]
        return [("tool", "Bash", {"command": "echo again", "description": "loop"})]

    anthropic.responder = tool_forever
    before = len(anthropic.requests)
    # Each call costs $0.00375 at the default Sonnet price (1000 in, 50 out).
    run = cstack.create_run("loop on tools", engine="claude-code", max_cost_usd=0.01)
    done = cstack.wait_status(run["id"], {"completed", "failed"}, 120)
    assert done["status"] == "failed", done
    assert "budget max_cost_usd reached" in done["error"]
    calls = [c for t in done["turn_usage"] for c in t["calls"]]
    # Three calls spend $0.01125 >= $0.01; the fourth is refused by the gateway.
    served = len(anthropic.requests) - before
    assert served == len(calls) <= 4
    assert done["usage"]["cost_usd"] >= 0.01
