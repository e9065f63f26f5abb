"""Webhook payloads are data: never shell text, never a second Run by replay, never a 5xx."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

from tests.integration.harness import FerryStack
from tests.integration.test_api_validation import count_runs

EVIL_TITLE = "`touch /tmp/x` and $(touch /tmp/y); echo pwned > /tmp/z #"


def sign(secret: str, raw: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def make_trigger(stack: FerryStack, instructions: str) -> tuple[str, str]:
    name, secret = f"hook-{uuid.uuid4().hex[:6]}", "webhook-secret-value"
    with stack.client() as c:
        r = c.post("/triggers", json={"name": name, "secret": secret, "run": {
            "instructions": instructions, "target": stack.settings.worker_host}})
        assert r.status_code == 201, r.text
    return name, secret


def test_payload_values_reach_scripts_as_data(astack: FerryStack) -> None:
    name, secret = make_trigger(astack, "echo title: {{ issue.title }}\n"
                                        "ls /tmp/x /tmp/y /tmp/z 2>&1 | wc -l\n"
                                        "test ! -e /tmp/x && test ! -e /tmp/y && test ! -e /tmp/z")
    raw = json.dumps({"issue": {"title": EVIL_TITLE}}).encode()
    with astack.client() as c:
        r = c.post(f"/hooks/{name}", content=raw, headers={
            "X-Hub-Signature-256": sign(secret, raw), "X-GitHub-Delivery": "first"})
        assert r.status_code == 202 and r.json()["started"], r.text
        run_id = r.json()["run_id"]
        before = count_runs(astack)
        # The same signed body under a new (unsigned) delivery id is the same event.
        again = c.post(f"/hooks/{name}", content=raw, headers={
            "X-Hub-Signature-256": sign(secret, raw), "X-GitHub-Delivery": "second"})
        assert again.status_code == 202 and again.json() == {
            "started": False, "duplicate": True, "run_id": run_id}
        assert count_runs(astack) == before
    done = astack.wait_status(run_id, {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed", done
    assert EVIL_TITLE not in done["instructions"]  # the script holds a variable, not the text
    steps = [s["payload"] for s in astack.timeline(run_id) if s["kind"] == "exec"]
    assert steps[0]["output_excerpt"] == f"title: {EVIL_TITLE}\n"  # printed literally


def test_oversized_and_badly_signed_deliveries_are_refused(astack: FerryStack) -> None:
    name, secret = make_trigger(astack, "echo hi")
    before = count_runs(astack)
    big = b'{"pad": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    small = b'{"ok": true}'
    with astack.client() as c:
        r = c.post(f"/hooks/{name}", content=big, headers={"X-Hub-Signature-256": sign(secret, big)})
        assert r.status_code == 413, r.text
        for header in (b"sha256=\xe9\xe9\xe9", b"sha256=" + "é".encode() * 32, b"\xff\xfe",
                       b"sha256=", b"sha1=abc"):
            r = c.post(f"/hooks/{name}", content=small, headers={"X-Hub-Signature-256": header})
            assert r.status_code == 401, (header, r.status_code, r.text)
    assert count_runs(astack) == before


def test_absurdly_nested_bodies_are_a_4xx(astack: FerryStack) -> None:
    name, secret = make_trigger(astack, "echo hi")
    deep = b"[" * 100_000 + b"]" * 100_000
    with astack.client() as c:
        r = c.post(f"/hooks/{name}", content=deep, headers={"X-Hub-Signature-256": sign(secret, deep)})
        assert r.status_code == 422, r.text
        r = c.post("/runs", content=deep, headers={"Content-Type": "application/json"})
        assert 400 <= r.status_code < 500
