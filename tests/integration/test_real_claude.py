"""The real `claude` CLI (from npm, in the DevBox image) through Ferry's model gateway,
against a loopback stand-in of the Anthropic Messages API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.engine_image import build_bare_image
from tests.integration.harness import FerryStack, free_port
from tests.integration.model_standins import (
    ApiError,
    FakeAnthropic,
    has_tool_result,
    last_user_text,
)

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
        boxes = client.containers.list(sparse=True, filters={"label": f"ferry.run={run['id']}"})
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
    assert SECRET not in _json.dumps(done)
    cstack.assert_secret_nowhere(run["id"], SECRET)


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


def test_api_errors_fail_the_run_with_the_apis_message(
        cstack: FerryStack, anthropic: FakeAnthropic) -> None:
    anthropic.responder = lambda body: ApiError(400, "tools.0: unknown field 'frobnicate'")
    run = cstack.create_run("anything", engine="claude-code")
    done = cstack.wait_status(run["id"], {"completed", "failed"}, 120)
    assert done["status"] == "failed", done
    assert "unknown field 'frobnicate'" in done["error"], done["error"]
    assert "(success)" not in done["error"]


def test_auto_picks_the_engine_the_worker_has_a_key_for(
        cstack: FerryStack, anthropic: FakeAnthropic) -> None:
    anthropic.responder = lambda body: [("text", "Done automatically.")]
    run = cstack.create_run("auto, do the thing", engine="auto")
    done = cstack.wait_status(run["id"], {"completed", "failed"}, 120)
    assert done["status"] == "completed", done
    assert done["engine"] == "auto" and done["engine_used"] == "claude-code"
    choice = next(s["payload"] for s in cstack.timeline(run["id"]) if s["kind"] == "engine")
    # Both CLIs are in the image; only Claude has a key on this worker.
    assert choice["chosen"] == "claude-code" and choice["usable"] == ["claude-code"]


def test_an_image_without_the_cli_fails_clearly(cstack: FerryStack, docker_client) -> None:
    bare = build_bare_image(docker_client)
    auto = cstack.create_run("auto in a bare image", engine="auto", image=bare)
    named = cstack.create_run("claude in a bare image", engine="claude-code", image=bare)
    done = cstack.wait_status(auto["id"], {"completed", "failed"}, 120)
    assert done["status"] == "failed" and "no usable engine" in done["error"]
    assert "`claude` CLI is not in the DevBox image" in done["error"]
    done = cstack.wait_status(named["id"], {"completed", "failed"}, 120)
    assert done["status"] == "failed", done
    assert f"the DevBox image {bare} has no `claude` CLI" in done["error"]
    assert "ferry devbox build-image" in done["error"]


def test_watchdog_and_turn_budgets_stop_the_run(
        cstack: FerryStack, anthropic: FakeAnthropic) -> None:
    def sleeper(body: dict[str, Any]) -> list[tuple]:
        if body.get("tools") and not has_tool_result(body):
            # (claude refuses a plain long `sleep` in its Bash tool)
            return [("tool", "Bash", {"command": "python3 -c 'import time; time.sleep(60)'",
                                      "description": "wait"})]
        return [("text", "Slept.")]

    anthropic.responder = sleeper
    hung = cstack.create_run("hang", engine="claude-code", turn_timeout="5s")
    done = cstack.wait_status(hung["id"], {"completed", "failed"}, 90)
    assert done["status"] == "failed" and "exceeded its time limit of 5 s" in done["error"], done

    anthropic.responder = colour_agent
    turns = cstack.create_run("Please ask me a colour.", engine="claude-code", max_turns=1)
    cstack.wait_status(turns["id"], {"waiting_for_input"}, 120)
    with cstack.client() as c:
        c.post(f"/runs/{turns['id']}/answers", json={"answers": {"color": "red"}})
    done = cstack.wait_status(turns["id"], {"completed", "failed"}, 120)
    assert done["status"] == "failed" and "budget max_turns reached: 1" in done["error"]
    assert len(done["turn_usage"]) == 1


def test_engine_max_turns_caps_the_clis_own_loop(
        cstack: FerryStack, anthropic: FakeAnthropic) -> None:
    anthropic.responder = lambda body: (
        [("tool", "Bash", {"command": "echo again", "description": "loop"})]
        if body.get("tools") else [("text", "side call")])
    before = len(anthropic.main_requests())
    run = cstack.create_run("loop on tools", engine="claude-code", engine_max_turns=2)
    done = cstack.wait_status(run["id"], {"completed", "failed"}, 120)
    assert len(anthropic.main_requests()) - before == 2  # `claude --max-turns 2`
    assert done["status"] == "failed" and "max_turns" in done["error"], done


def test_a_background_child_holding_the_clis_stdout_does_not_hang_the_turn(
        cstack: FerryStack, anthropic: FakeAnthropic) -> None:
    # The tool finds the `claude` process and leaves a child in a session of its own
    # writing to claude's stdout (the runner's pipe), which stays open after claude exits.
    daemon = ("mkdir -p .ferry/artifacts && python3 -c \"import os\np = os.getppid()\n"
              "while p > 1 and b'stream-json' not in open(f'/proc/{p}/cmdline', 'rb').read():\n"
              "    p = int(open(f'/proc/{p}/stat').read().rsplit(')', 1)[1].split()[1])\n"
              "assert p > 1, 'no claude process above me'\n"
              "print('left', p, flush=True)\n"
              "os.system(f'setsid sleep 300 > /proc/{p}/fd/1 2>&1 < /dev/null &')\""
              " > .ferry/artifacts/left.txt")

    def leaves_a_daemon(body: dict[str, Any]) -> list[tuple]:
        if body.get("tools") and not has_tool_result(body):
            return [("tool", "Bash", {"command": daemon, "description": "daemon"})]
        return [("text", "Left a daemon behind.")]

    anthropic.responder = leaves_a_daemon
    run = cstack.create_run("start a background daemon", engine="claude-code")
    done = cstack.wait_status(run["id"], {"completed", "failed"}, 90)
    assert done["status"] == "completed", done
    assert done["summary"] == "Left a daemon behind."
    tool = next(s["payload"] for s in cstack.timeline(run["id"]) if s["kind"] == "tool")
    assert tool["exit_code"] == 0, tool
    with cstack.client() as c:  # the daemon was really attached to claude's stdout
        left = c.get(f"/runs/{run['id']}/artifacts/attempts/1/artifacts/left.txt")
    assert left.status_code == 200 and left.text.startswith("left "), left.text


def test_ferry_run_watch_shows_the_agents_steps(
        cstack: FerryStack, anthropic: FakeAnthropic) -> None:
    def poet(body: dict[str, Any]) -> list[tuple]:
        if not body.get("tools"):
            return [("text", "Haiku task")]
        if has_tool_result(body):
            return [("text", "The haiku is in haiku.txt.")]
        return [("thinking", "Five, seven, five syllables."),
                ("tool", "Bash", {"command": "echo 'old pond, frog leaps in' > haiku.txt",
                                  "description": "write the haiku"})]

    anthropic.responder = poet
    proc = cstack.cli("run", "--engine", "claude-code", "--max-cost-usd", "5",
                      "Write a haiku into haiku.txt", "--watch")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for shown in ("thinking: Five, seven, five syllables.",
                  "Bash echo 'old pond, frog leaps in' > haiku.txt  ✓",
                  "The haiku is in haiku.txt.", "network gateway", "completed"):
        assert shown in out, (shown, out)
    assert " raw " not in out, out
    run_id = out.split()[1]
    show = cstack.cli("show", run_id).stdout
    assert "of $5.0000" in show and " model calls over 1 turns" in show, show
    assert "network gateway" in show, show
    refused = cstack.cli("run", "--engine", "claude-code", "--network", "none", "poem")
    assert refused.returncode != 0 and "network" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr


def test_engines_say_what_this_worker_pool_can_run(cstack: FerryStack) -> None:
    """Only an API key on this worker: Claude Code on API credits runs, on a subscription
    it cannot, and asking for it is refused naming the missing credential."""
    with cstack.client() as c:
        engines = {e["name"]: e for e in c.get("/engines").json()}
        assert engines["claude-code-api"]["available"]
        assert engines["claude-code-api"]["label"] == "Claude Code — API credits"
        assert engines["claude-code"]["available"]
        plan = engines["claude-code-plan"]
        assert not plan["available"] and "CLAUDE_CODE_OAUTH_TOKEN" in plan["reason"], plan
        assert plan["label"] == "Claude Code — Plan"
        assert not engines["openai"]["available"] and "FERRY_OPENAI_BASE_URL" in engines["openai"]["reason"]
        assert engines["script"]["available"]
        before = c.get("/runs", params={"limit": 500}).json()["runs"]
        r = c.post("/runs", json={"instructions": "plan it", "engine": "claude-code-plan"})
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"][-1] == "engine"
        assert "CLAUDE_CODE_OAUTH_TOKEN" in r.json()["detail"][0]["msg"]
        assert c.get("/runs", params={"limit": 500}).json()["runs"] == before
        # A schedule is checked the same way when it is made, not when it fires.
        r = c.post("/schedules", json={"name": "plan-hourly", "spec": {"interval": {"every": "1h"}},
                                       "run": {"instructions": "plan it", "engine": "claude-code-plan",
                                               "target": cstack.settings.worker_host}})
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"] == ["body", "run", "engine"]
        assert "CLAUDE_CODE_OAUTH_TOKEN" in r.json()["detail"][0]["msg"]
        assert c.get("/schedules/plan-hourly").status_code == 404
