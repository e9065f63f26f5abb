"""Bad input gets a 4xx naming the field and starts nothing; the API token is enforced."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.harness import FerryStack


async def _count_runs(address: str) -> int:
    from temporalio.client import Client

    client = await Client.connect(address)
    return (await client.count_workflows("WorkflowType = 'RunWorkflow'")).count


def count_runs(stack: FerryStack) -> int:
    return asyncio.run(_count_runs(stack.settings.effective_temporal_address))


BAD_BODIES = [
    ({"instructions": ""}, "instructions", "must not be empty"),
    ({"instructions": "   \n "}, "instructions", "must not be empty"),
    ({}, "instructions", "Field required"),
    ({"instructions": "echo x", "engine": "gpt-9"}, "engine", "Input should be"),
    ({"instructions": "x" * (100 * 1024 + 1)}, "instructions", "larger than"),
    ({"instructions": "echo x", "mode": "sometimes"}, "mode", "Input should be"),
    ({"instructions": "echo x", "target": "bad host!"}, "target", "worker host name"),
    ({"instructions": "echo x", "title": "  "}, "title", "must not be blank"),
    ({"instructions": "x", "engine": "claude-code-api", "permission_mode": "yolo"},
     "permission_mode", "Input should be"),
    ({"instructions": "echo x", "engine": "script", "permission_mode": "plan"},
     "permission_mode", "Claude Code option"),
    # `auto` could pick codex, which has no plan mode; no engine means script.
    ({"instructions": "x", "engine": "auto", "permission_mode": "plan"},
     "permission_mode", "Claude Code option"),
    ({"instructions": "x", "permission_mode": "plan"}, "permission_mode", "Claude Code option"),
    # This worker holds no model credential: `auto` has nothing to pick from.
    ({"instructions": "x", "engine": "auto"}, "engine", "auto finds no agent engine"),
    ({"instructions": "x", "from_run": "abc", "fresh": "yes"}, "fresh", "valid boolean"),
]


@pytest.mark.parametrize(("body", "field", "message"), BAD_BODIES)
def test_bad_run_bodies_get_422_naming_the_field(stack: FerryStack, body, field, message) -> None:
    before = count_runs(stack)
    with stack.client() as c:
        r = c.post("/runs", json=body)
    assert r.status_code == 422, r.text
    details = r.json()["detail"]
    assert any(d["loc"][-1] == field and message in d["msg"] for d in details), details
    assert count_runs(stack) == before


def test_bad_ids_unknown_runs_and_bad_params(stack: FerryStack) -> None:
    with stack.client() as c:
        for path in ("/runs/bad.id", "/runs/" + "a" * 80, "/runs/bad.id/timeline"):
            r = c.get(path)
            assert r.status_code == 422, (path, r.text)
            assert r.json()["detail"][0]["loc"][-1] == "run_id"
        for method, path in (("GET", "/runs/nosuchrun"), ("GET", "/runs/nosuchrun/timeline"),
                             ("POST", "/runs/nosuchrun/cancel"), ("GET", "/runs/nosuchrun/events")):
            r = c.request(method, path)
            assert r.status_code == 404, (method, path, r.text)
            assert "nosuchrun" in r.json()["detail"]
        r = c.patch("/runs/nosuchrun", json={"title": "x"})
        assert r.status_code == 404
        r = c.get("/runs", params={"status": "sleeping"})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "status"
        r = c.get("/runs", params={"page_token": "!!notatoken"})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "page_token"
        r = c.get("/runs/nosuchrun/timeline", params={"after": -1})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "after"


def test_artifact_paths_cannot_escape(stack: FerryStack) -> None:
    run = stack.create_run("echo hi")
    stack.wait_status(run["id"], {"completed"})
    with stack.client() as c:
        for bad in ("..%2F..%2Fetc%2Fpasswd", "turns/..%2F..%2F..%2Fsecret"):
            r = c.get(f"/runs/{run['id']}/artifacts/{bad}")
            assert r.status_code == 400, (bad, r.text)
        assert c.get(f"/runs/{run['id']}/artifacts/nope.txt").status_code == 404


def test_api_token_required_when_set(tmp_path, docker_client) -> None:
    s = FerryStack(tmp_path / "data", env={"FERRY_API_TOKEN": "s3cret-token"})
    try:
        s.start()
        import httpx

        for path in ("/healthz", "/runs", "/docs"):
            r = httpx.get(f"{s.api_url}{path}")
            assert r.status_code == 401, path
            r = httpx.get(f"{s.api_url}{path}", headers={"Authorization": "Bearer wrong"})
            assert r.status_code == 401, path
        r = httpx.post(f"{s.api_url}/runs", json={"instructions": "echo x"})
        assert r.status_code == 401
        assert count_runs(s) == 0
        ok = httpx.get(f"{s.api_url}/runs", headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status_code == 200
        # Webhooks authenticate with their HMAC signature, not the API token.
        hook = httpx.post(f"{s.api_url}/hooks/nosuch", content=b"{}")
        assert hook.status_code == 404
    finally:
        s.stop()


def test_api_refuses_non_loopback_bind_without_token(tmp_path) -> None:
    import os
    import subprocess
    import sys

    from tests.integration.harness import ROOT, free_port

    env = {**os.environ, "FERRY_API_HOST": "0.0.0.0", "FERRY_API_PORT": str(free_port()),
           "FERRY_DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    env.pop("FERRY_API_TOKEN", None)
    proc = subprocess.run([sys.executable, "-m", "api.main"], env=env, capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 2
    assert "FERRY_API_TOKEN" in proc.stderr and "Traceback" not in proc.stderr
