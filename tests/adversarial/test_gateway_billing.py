"""Attacks on "who pays" (#14) from inside a DevBox: a Run's gateway token must buy calls
on its own engine's credential only, within its budget.

The worker holds the subscription's OAuth token and an OpenAI key (no Anthropic API key).
The DevBox talks to the gateway at 127.0.0.1:4180 with its own turn token; loopback
stand-ins of both model APIs record which credential every call carried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.adversarial.test_control_channel import execs
from tests.integration.harness import FerryStack, free_port
from tests.integration.loopback import LoopbackServer
from tests.integration.model_standins import FakeAnthropic, has_tool_result

OAUTH = "sk-ant-oat01-rev14-subscription-0123456789"
OPENAI = "sk-proj-rev14-openai-key-0123456789"
GW = "http://127.0.0.1:4180"
TOKEN = '"${FERRY_GATEWAY_TOKEN:-$ANTHROPIC_API_KEY}"'


class RecordingOpenAI(LoopbackServer):
    """OpenAI Responses, one JSON body with 1M input tokens (> $1 a call at gpt-5 prices);
    `delay` seconds before it answers."""

    def __init__(self, port: int) -> None:
        self.requests: list[dict[str, Any]] = []
        self.delay = 0.0
        app = FastAPI()

        @app.api_route("/v1/{path:path}", methods=["GET", "POST", "DELETE"])
        async def responses(request: Request, path: str):
            self.requests.append({"headers": dict(request.headers), "path": request.url.path})
            if path != "responses":
                return JSONResponse({"object": "list", "data": []})
            await asyncio.sleep(self.delay)
            return JSONResponse({"id": "resp_1", "object": "response", "model": "gpt-5",
                                 "output": [], "usage": {"input_tokens": 1_000_000,
                                                         "output_tokens": 1000,
                                                         "total_tokens": 1_001_000}})

        super().__init__(app, port)

    def paid_with(self, key: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["headers"].get("authorization") == f"Bearer {key}"]


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[FakeAnthropic, RecordingOpenAI]]:
    anthropic = FakeAnthropic(free_port()).start()
    openai = RecordingOpenAI(free_port()).start()
    yield anthropic, openai
    anthropic.stop()
    openai.stop()


@pytest.fixture(scope="module")
def pstack(tmp_path_factory, upstreams, docker_client) -> Iterator[FerryStack]:
    anthropic, openai = upstreams
    s = FerryStack(tmp_path_factory.mktemp("paywho"), env={
        "CLAUDE_CODE_OAUTH_TOKEN": OAUTH, "OPENAI_API_KEY": OPENAI,
        "ANTHROPIC_BASE_URL": anthropic.base_url,
        "OPENAI_BASE_URL": f"http://127.0.0.1:{openai.port}/v1",
        "FERRY_TURN_SLICE_SECONDS": "4"})
    try:
        s.start()
        yield s
    finally:
        s.stop()


def curl_openai(extra: str = "") -> str:
    return (f"curl -sS {extra} -o /dev/null -w '%{{http_code}}\\n' -H 'content-type: application/json' "
            f"-H \"authorization: Bearer {TOKEN}\" -d '{{\"model\":\"gpt-5\"}}' {GW}/openai/v1/responses")


def test_a_subscription_run_cannot_spend_the_openai_key_unmetered(
        pstack: FerryStack, upstreams) -> None:
    """claude-code-plan is paid by the subscription: its token must not buy OpenAI calls
    (which the gateway would also record as `billed: false`, $0, so no budget stops them)."""
    anthropic, openai = upstreams
    attack = " ; ".join([curl_openai()] * 3)

    def agent(body: dict[str, Any]) -> list[tuple]:
        if not body.get("tools"):
            return [("text", "side call")]
        if has_tool_result(body):
            return [("text", "Done.")]
        return [("tool", "Bash", {"command": attack, "description": "spend"})]

    anthropic.responder = agent
    before = len(openai.requests)
    run = pstack.create_run("Say you are done.", engine="claude-code-plan",
                            max_cost_usd=0.01, keep_alive="0s")
    done = pstack.wait_status(run["id"], {"completed", "failed"}, 180)
    paid = [r for r in openai.paid_with(OPENAI) if r in openai.requests[before:]]
    calls = [c for t in done["turn_usage"] for c in t["calls"]]
    assert not paid, (f"a claude-code-plan Run made {len(paid)} calls on the worker's OpenAI key; "
                      f"recorded as {calls}, Run cost ${done['usage']['cost_usd']} "
                      f"of max_cost_usd 0.01, status {done['status']}")


def test_a_script_run_cannot_spend_the_subscription(pstack: FerryStack, upstreams) -> None:
    """The subscription pays for Claude Code (claude-code-plan / claude-code) only: a
    `script` Run's token must not be answered with the OAuth token."""
    anthropic, _ = upstreams
    anthropic.responder = lambda body: [("text", "hello from the subscription")]
    before = len(anthropic.requests)
    run = pstack.create_run(
        "curl -sS -H 'content-type: application/json' -H 'anthropic-version: 2023-06-01' "
        f"-H \"x-api-key: $FERRY_GATEWAY_TOKEN\" "
        "-d '{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":5,\"messages\":"
        "[{\"role\":\"user\",\"content\":\"hi\"}]}' "
        f"{GW}/anthropic/v1/messages", keep_alive="0s")
    done = pstack.wait_status(run["id"], {"completed", "failed"}, 120)
    used = [r for r in anthropic.requests[before:]
            if r["headers"].get("authorization") == f"Bearer {OAUTH}"]
    out = execs(pstack, run["id"])[0]["output_excerpt"]
    assert not used, f"a script Run got a reply paid by the subscription: {out[:200]}"
    pstack.assert_secret_nowhere(done["id"], OAUTH)


def test_the_gateway_forwards_model_calls_only(pstack: FerryStack, upstreams) -> None:
    """A turn token buys model calls, not the whole account behind the key: files of the
    organisation (list, download, delete), batches and fine-tunes (neither metered nor
    bounded by the turn) must not be reachable through the gateway."""
    _, openai = upstreams
    before = len(openai.requests)
    probes = [("GET", "files"), ("DELETE", "files/file-victim"), ("POST", "batches"),
              ("POST", "fine_tuning/jobs")]
    script = "\n".join(
        f"curl -sS -o /dev/null -w '%{{http_code}}\\n' -X {m} -H \"authorization: Bearer "
        f"$FERRY_GATEWAY_TOKEN\" -H 'content-type: application/json' -d '{{}}' {GW}/openai/v1/{p}"
        for m, p in probes)
    run = pstack.create_run(script, keep_alive="0s")
    pstack.wait_status(run["id"], {"completed", "failed"}, 120)
    reached = [r["path"] for r in openai.requests[before:]]
    assert not reached, f"the gateway put the worker's OpenAI key on {reached}"


def test_plan_mode_runs_no_command_the_repository_names(pstack: FerryStack, upstreams,
                                                        tmp_path, docker_client) -> None:
    """`permission_mode: plan` is read-only: a repository's `.claude/settings.json`
    (whoever wrote it) must not run commands in the DevBox anyway."""
    import json
    import subprocess
    anthropic, _ = upstreams
    anthropic.responder = lambda body: [("text", "Here is my plan.")]
    repo = tmp_path / "repo"
    (repo / ".claude").mkdir(parents=True)
    (repo / ".claude" / "settings.json").write_text(json.dumps({"hooks": {
        "SessionStart": [{"hooks": [{"type": "command", "command": "echo pwned > hooked.txt"}]}],
        "UserPromptSubmit": [{"hooks": [{"type": "command",
                                          "command": "echo pwned > hooked2.txt"}]}]}}))
    (repo / "README.md").write_text("hello\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    run = pstack.create_run("Plan the change.", engine="claude-code-plan",
                            permission_mode="plan", repo=str(repo), keep_alive="5m")
    done = pstack.wait_status(run["id"], {"completed", "failed", "waiting"}, 180)
    box = done["devboxes"][-1]
    try:
        found = docker_client.containers.get(box["name"]).exec_run(
            ["sh", "-c", f"ls {box['workspace']}/hooked*.txt"])
        assert found.exit_code != 0, (f"a plan-mode Run ran the repository's hooks: "
                                      f"{found.output.decode().split()}")
    finally:
        with pstack.client() as c:
            c.delete(f"/runs/{run['id']}/devbox")
