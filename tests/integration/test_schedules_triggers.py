"""Schedules (Temporal Schedules on the real dev server) and HMAC-verified webhook triggers."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from tests.integration.harness import FerryStack
from tests.integration.test_api_validation import count_runs


def schedule_runs(stack: FerryStack, schedule_id: str) -> list[dict]:
    with stack.client() as c:
        r = c.get("/runs", params={"schedule": schedule_id, "limit": 100})
        assert r.status_code == 200, r.text
        return r.json()["runs"]


def run_template(stack: FerryStack, **extra) -> dict:
    return {"instructions": "echo scheduled", "target": stack.settings.worker_host, **extra}


def test_interval_schedule_starts_runs_that_complete(stack: FerryStack) -> None:
    name = f"every-{uuid.uuid4().hex[:6]}"
    with stack.client() as c:
        r = c.post("/schedules", json={"name": name, "run": run_template(stack),
                                       "spec": {"interval": {"every": "2s"}}})
        assert r.status_code == 201, r.text
        assert r.json()["spec"]["interval"] == {"every": 2.0}
        assert r.json()["run"]["mode"] == "autonomous"
    time.sleep(7)
    with stack.client() as c:
        c.post(f"/schedules/{name}/pause")
    runs = schedule_runs(stack, name)
    assert len(runs) >= 2, runs
    for run in runs:
        assert run["schedule_id"] == name
        done = stack.wait_status(run["id"], {"completed", "failed"})
        assert done["status"] == "completed" and done["schedule_id"] == name
        # Nobody follows up on a Run that fires every 2 s: it keeps no DevBox unless asked.
        assert done["keep_alive_seconds"] == 0 and done["keep_alive_until"] is None
    with stack.client() as c:
        shown = c.get(f"/schedules/{name}").json()
        assert {r["id"] for r in shown["recent_runs"]} >= {r["id"] for r in runs[:1]}
        assert c.delete(f"/schedules/{name}").status_code == 204


def test_one_time_schedule_fires_once(stack: FerryStack) -> None:
    name = f"once-{uuid.uuid4().hex[:6]}"
    at = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    with stack.client() as c:
        r = c.post("/schedules", json={"name": name, "run": run_template(stack),
                                       "spec": {"at": at}})
        assert r.status_code == 201, r.text
        assert r.json()["finished"] is False
    time.sleep(6)
    runs = schedule_runs(stack, name)
    assert len(runs) == 1
    with stack.client() as c:
        assert c.get(f"/schedules/{name}").json()["finished"] is True


def test_pause_unpause_trigger_delete(stack: FerryStack) -> None:
    name = f"ctl-{uuid.uuid4().hex[:6]}"
    with stack.client() as c:
        r = c.post("/schedules", json={"name": name, "run": run_template(stack), "paused": True,
                                       "spec": {"cron": "0 3 * * *", "time_zone": "Europe/Paris"}})
        assert r.status_code == 201 and r.json()["paused"] is True
        assert len(r.json()["next_action_times"]) == 5
        time.sleep(1)
        assert schedule_runs(stack, name) == []
        r = c.post(f"/schedules/{name}/trigger")
        assert r.status_code == 200
        stack.wait_until(lambda: len(schedule_runs(stack, name)) == 1, 15, "the triggered Run")
        r = c.post(f"/schedules/{name}/unpause")
        assert r.json()["paused"] is False
        r = c.patch(f"/schedules/{name}", json={"note": "nightly", "spec": {"interval": {"every": "1h"}}})
        assert r.status_code == 200 and r.json()["note"] == "nightly"
        assert r.json()["spec"]["interval"]["every"] == 3600
        assert name in [s["id"] for s in c.get("/schedules").json()]
        assert c.delete(f"/schedules/{name}").status_code == 204
        assert name not in [s["id"] for s in c.get("/schedules").json()]
        assert c.get(f"/schedules/{name}").status_code == 404
        assert c.post(f"/schedules/{name}/pause").status_code == 404


@pytest.mark.parametrize(("body", "loc", "message"), [
    ({"spec": {"cron": "61 * * * *"}}, ["body", "spec", "cron"], "not a valid cron"),
    ({"spec": {"cron": "* * *"}}, ["body", "spec", "cron"], "5 fields"),
    ({"spec": {"cron": "0 3 * * *", "time_zone": "Mars/Olympus"}}, ["body", "spec", "time_zone"],
     "unknown time zone"),
    ({"spec": {"at": "2020-01-01T00:00:00Z"}}, ["body", "spec", "at"], "in the past"),
    ({"run_extra": {"mode": "interactive"}}, ["body", "run", "mode"], "autonomous"),
    ({"run_extra": {"target": None}}, ["body", "run", "target"], "need a target"),
    ({"spec": {"interval": {"every": "soon"}}}, ["body", "spec", "interval", "every"],
     "not a duration"),
])
def test_bad_schedules_are_422_and_create_nothing(stack: FerryStack, body, loc, message) -> None:
    name = f"bad-{uuid.uuid4().hex[:6]}"
    run = run_template(stack, **body.get("run_extra", {}))
    if run.get("target") is None:
        run.pop("target")
    payload = {"name": name, "run": run, "spec": body.get("spec", {"interval": {"every": "1h"}})}
    with stack.client() as c:
        r = c.post("/schedules", json=payload)
        assert r.status_code == 422, r.text
        detail = r.json()["detail"][0]
        assert detail["loc"][:len(loc)] == loc and message in detail["msg"], detail
        assert c.get(f"/schedules/{name}").status_code == 404


@pytest.mark.parametrize(("cron", "zone"), [
    ("30 2 * * *", "Europe/Paris"),  # 02:30 does not exist on the spring-forward day
    ("0 1 * * 0", "America/New_York"),
    ("*/15 9-17 * * 1-5", "UTC"),
    ("0 0 29 2 *", "Asia/Tokyo"),
])
def test_preview_is_croniter(stack: FerryStack, cron: str, zone: str) -> None:
    with stack.client() as c:
        r = c.get("/schedules/preview", params={"cron": cron, "time_zone": zone})
        assert r.status_code == 200, r.text
    got = [datetime.fromisoformat(t) for t in r.json()["next"]]
    it = croniter(cron, datetime.now(ZoneInfo(zone)))
    expected = [it.get_next(datetime).astimezone(UTC) for _ in range(5)]
    assert got == expected
    with stack.client() as c:
        bad = c.get("/schedules/preview", params={"cron": "nope", "time_zone": zone})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "cron"]


def test_preview_across_a_dst_change() -> None:
    from ferry.schedules import next_fire_times

    start = datetime(2026, 3, 27, 12, tzinfo=UTC)  # Paris springs forward on 2026-03-29
    times = next_fire_times("30 2 * * *", "Europe/Paris", 4, after=start)
    it = croniter("30 2 * * *", start.astimezone(ZoneInfo("Europe/Paris")))
    assert times == [it.get_next(datetime).astimezone(UTC) for _ in range(4)]
    assert times[0].hour == 1 and times[-1].hour == 0  # UTC+1 before, UTC+2 after


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_signed_webhook_starts_a_run_once(stack: FerryStack) -> None:
    name = f"gh-{uuid.uuid4().hex[:6]}"
    secret = "a-very-secret-value"
    with stack.client() as c:
        r = c.post("/triggers", json={
            "name": name, "secret": secret,
            "run": run_template(stack, instructions="echo issue: {{ issue.title }}",
                                title="hook {{ issue.number }}"),
            "filter": {"headers": {"X-GitHub-Event": "issues"}, "payload": {"action": "labeled"}}})
        assert r.status_code == 201, r.text
        assert "secret" not in r.text and secret not in r.text
        listed = c.get("/triggers").text
        assert name in listed and secret not in listed
        payload = json.dumps({"action": "labeled", "issue": {"title": "Broken build", "number": 42}})
        raw = payload.encode()
        headers = {"X-GitHub-Event": "issues", "X-GitHub-Delivery": "d-123",
                   "Content-Type": "application/json"}
        before = count_runs(stack)
        bad = c.post(f"/hooks/{name}", content=raw, headers={**headers,
                                                            "X-Hub-Signature-256": sign("wrong", raw)})
        missing = c.post(f"/hooks/{name}", content=raw, headers=headers)
        assert bad.status_code == 401 and missing.status_code == 401
        assert count_runs(stack) == before
        ok = c.post(f"/hooks/{name}", content=raw,
                    headers={**headers, "X-Hub-Signature-256": sign(secret, raw)})
        assert ok.status_code == 202 and ok.json()["started"] is True, ok.text
        run_id = ok.json()["run_id"]
        again = c.post(f"/hooks/{name}", content=raw,
                       headers={**headers, "X-Hub-Signature-256": sign(secret, raw)})
        assert again.status_code == 202 and again.json()["started"] is False
        assert again.json()["duplicate"] is True
        other = json.dumps({"action": "opened", "issue": {"title": "x"}}).encode()
        skipped = c.post(f"/hooks/{name}", content=other, headers={
            **headers, "X-GitHub-Delivery": "d-124", "X-Hub-Signature-256": sign(secret, other)})
        assert skipped.status_code == 202 and skipped.json()["started"] is False
    done = stack.wait_status(run_id, {"completed", "failed"})
    assert done["status"] == "completed" and done["trigger"] == name
    assert done["title"] == "hook 42" and done["mode"] == "autonomous"
    out = [s for s in stack.timeline(run_id) if s["kind"] == "exec"][0]["payload"]
    assert out["output_excerpt"] == "issue: Broken build\n"
    # A redelivery after the Run finished still starts nothing.
    with stack.client() as c:
        late = c.post(f"/hooks/{name}", content=raw,
                      headers={**headers, "X-Hub-Signature-256": sign(secret, raw)})
        assert late.json()["started"] is False
        assert c.delete(f"/triggers/{name}").status_code == 204
        assert c.post(f"/hooks/{name}", content=raw, headers=headers).status_code == 404


def test_templates_cannot_reach_python_internals(stack: FerryStack) -> None:
    name = f"evil-{uuid.uuid4().hex[:6]}"
    secret = "another-secret-value"
    evil = ("echo '[{{ ''.__class__.__mro__ }}][{{ issue.__class__ }}]"
            "[{{ cycler.__init__.__globals__ }}][{{ issue.title }}]'")
    with stack.client() as c:
        assert c.post("/triggers", json={"name": name, "secret": secret,
                                         "run": run_template(stack, instructions=evil)}).status_code == 201
        raw = json.dumps({"issue": {"title": "ok"}}).encode()
        r = c.post(f"/hooks/{name}", content=raw, headers={"X-Hub-Signature-256": sign(secret, raw)})
        assert r.status_code == 202 and r.json()["started"] is True
    run = stack.wait_status(r.json()["run_id"], {"completed", "failed"})
    rendered = run["instructions"] + json.dumps(run["env"])
    assert "<class" not in rendered and "globals" not in rendered
    assert "__builtins__" not in rendered
    assert run["env"]["HOOK_VALUE_4"] == "ok"  # the one real placeholder, as data


def test_trigger_validation(stack: FerryStack) -> None:
    with stack.client() as c:
        r = c.post("/triggers", json={"name": "x-interactive", "secret": "12345678",
                                      "run": run_template(stack, mode="interactive")})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "mode"
        r = c.post("/triggers", json={"name": "short", "secret": "123",
                                      "run": run_template(stack)})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "secret"
        r = c.post("/triggers", json={"name": "broken", "secret": "12345678",
                                      "run": run_template(stack, instructions="echo {{ x")})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "instructions"
        assert "template error on line 1" in r.json()["detail"][0]["msg"]


def test_cli_schedules_and_triggers(stack: FerryStack) -> None:
    import os
    import subprocess
    import sys

    from tests.integration.harness import ROOT

    env = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_")}
    env.update({"FERRY_URL": stack.api_url, "PYTHONPATH": str(ROOT)})

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "ferry.cli", *args], env=env,
                              capture_output=True, text=True, timeout=60)

    name = f"cli-{uuid.uuid4().hex[:6]}"
    host = stack.settings.worker_host
    made = cli("schedule", "create", name, "echo from-cli", "--target", host, "--cron", "0 4 * * *",
               "--time-zone", "Europe/Paris", "--paused", "--keep-alive", "2h")
    assert made.returncode == 0 and "paused" in made.stdout and "next:" in made.stdout
    with stack.client() as c:
        assert c.get(f"/schedules/{name}").json()["run"]["keep_alive"] == "PT2H"
    assert name in cli("schedule", "ls").stdout
    assert cli("schedule", "resume", name).returncode == 0
    assert "active" in cli("schedule", "show", name).stdout
    assert "paused" in cli("schedule", "pause", name).stdout
    assert cli("schedule", "trigger", name).returncode == 0
    stack.wait_until(lambda: len(schedule_runs(stack, name)) == 1, 15, "the triggered Run")
    assert cli("schedule", "rm", name).returncode == 0
    missing = cli("schedule", "show", name)
    assert missing.returncode == 1 and "404" in missing.stderr
    bad = cli("schedule", "create", "x-bad", "echo", "--target", host, "--cron", "nope")
    assert bad.returncode == 1 and "must have 5 fields (minute hour day month weekday)" in bad.stderr
    both = cli("schedule", "create", "x-both", "echo", "--target", host, "--every", "5s",
               "--cron", "* * * * *")
    assert both.returncode == 1 and "exactly one of --cron, --every and --at" in both.stderr
    with stack.client() as c:
        assert c.get("/schedules/x-both").status_code == 404

    tname = f"tcli-{uuid.uuid4().hex[:6]}"
    t = cli("trigger", "create", tname, "echo hook", "--secret", "s3cret-value", "--target", host,
            "--event", "issues")
    assert t.returncode == 0 and f"/hooks/{tname}" in t.stdout
    listed = cli("trigger", "ls")
    assert tname in listed.stdout and "s3cret-value" not in listed.stdout
    assert cli("trigger", "rm", tname).returncode == 0
