"""Claude Code by who pays: `claude-code-plan` on the subscription's OAuth token,
`claude-code-api` on the API key — with both on the worker, each Run's calls carry its own
kind only, and neither value enters a DevBox. `permission_mode: plan` keeps the real CLI
read-only. The real `claude` CLI, against a loopback stand-in recording the auth headers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from activities.gateway.model_gateway import OAUTH_BETA
from tests.integration.harness import FerryStack, free_port
from tests.integration.model_standins import FakeAnthropic, has_tool_result

API_KEY = "sk-ant-api03-billing-key-0123456789"
OAUTH = "sk-ant-oat01-subscription-token-0123456789"


@pytest.fixture(scope="module")
def anthropic() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic(free_port()).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def bstack(tmp_path_factory, anthropic: FakeAnthropic, docker_client) -> Iterator[FerryStack]:
    s = FerryStack(tmp_path_factory.mktemp("billing"), env={
        "ANTHROPIC_API_KEY": API_KEY, "CLAUDE_CODE_OAUTH_TOKEN": OAUTH,
        "ANTHROPIC_BASE_URL": anthropic.base_url})
    try:
        s.start()
        yield s
    finally:
        s.stop()


def test_each_claude_engine_is_paid_by_its_own_credential(bstack: FerryStack,
                                                          anthropic: FakeAnthropic) -> None:
    anthropic.responder = lambda body: [("text", "All done.")]
    seen: dict[str, list[dict[str, str]]] = {}
    for engine in ("claude-code-plan", "claude-code-api"):
        before = len(anthropic.requests)
        run = bstack.create_run("Say you are done.", engine=engine, keep_alive="0s")
        done = bstack.wait_status(run["id"], {"completed", "failed"}, 120)
        assert done["status"] == "completed", done
        seen[engine] = [r["headers"] for r in anthropic.requests[before:]]
        assert seen[engine], f"{engine} made no model call"
        # Usage is recorded for both; only API credits are billed per call.
        calls = [c for t in done["turn_usage"] for c in t["calls"]]
        assert calls and all(c["input_tokens"] > 0 for c in calls), done["turn_usage"]
        if engine == "claude-code-plan":
            assert all(not c["billed"] and c["cost_usd"] == 0 for c in calls)
            assert done["usage"]["cost_usd"] == 0 and done["usage"]["input_tokens"] > 0
        else:
            assert all(c["billed"] and c["cost_usd"] > 0 for c in calls)
        for secret in (API_KEY, OAUTH):
            bstack.assert_secret_nowhere(run["id"], secret)
    for headers in seen["claude-code-plan"]:
        assert headers.get("authorization") == f"Bearer {OAUTH}"
        assert OAUTH_BETA in headers.get("anthropic-beta", "")
        assert "x-api-key" not in headers
    for headers in seen["claude-code-api"]:
        assert headers.get("x-api-key") == API_KEY
        assert "authorization" not in headers


def test_permission_mode_plan_keeps_claude_code_read_only(bstack: FerryStack,
                                                          anthropic: FakeAnthropic,
                                                          docker_client) -> None:
    def writer(body: dict[str, Any]) -> list[tuple]:
        if not body.get("tools"):
            return [("text", "side call")]
        if has_tool_result(body):
            return [("text", "Here is my plan.")]
        return [("tool", "Bash", {"command": "echo planned > plan.txt", "description": "write"})]

    anthropic.responder = writer
    run = bstack.create_run("Plan the change.", engine="claude-code-api",
                            permission_mode="plan", keep_alive="5m")
    done = bstack.wait_status(run["id"], {"completed", "failed"}, 120)
    assert done["status"] == "completed", done
    assert done["permission_mode"] == "plan"
    spec = json.loads(next((bstack.settings.devboxes_dir / run["id"]).rglob(
        "turns/t1/spec.json")).read_text())
    assert spec["argv"][spec["argv"].index("--permission-mode") + 1] == "plan"
    tool = next(s["payload"] for s in bstack.timeline(run["id"]) if s["kind"] == "tool")
    assert tool["is_error"], tool  # the CLI refused to run a command that writes
    box = done["devboxes"][-1]
    found = docker_client.containers.get(box["name"]).exec_run(
        ["test", "-e", f"{box['workspace']}/plan.txt"])
    assert found.exit_code == 1, "a plan-mode Run wrote a file"
    with bstack.client() as c:
        c.delete(f"/runs/{run['id']}/devbox")
