"""Hostile input to the API: 4xx naming the field, no echo of the payload, nothing created."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import httpx
import pytest

from tests.integration.harness import FerryStack
from tests.integration.test_api_validation import count_runs


@pytest.fixture(scope="module")
def strict(tmp_path_factory, docker_client) -> Iterator[FerryStack]:
    """An API that, like one listening beyond loopback, refuses local repos and registries."""
    s = FerryStack(tmp_path_factory.mktemp("strict"), env={"FERRY_ALLOW_LOCAL_REPOS": "false"})
    try:
        s.start()
        yield s
    finally:
        s.stop()


def containers(stack: FerryStack) -> int:
    """DevBoxes of this stack's worker (other stacks on the machine may be busy)."""
    label = f"ferry.host={stack.env['FERRY_WORKER_HOST']}"
    return len(docker.from_env().containers.list(all=True, sparse=True, filters={"label": label}))


def raw_post(stack: FerryStack, path: str, text: str) -> httpx.Response:
    """POST a JSON text as is (Python's json module reads NaN and lone surrogates)."""
    with stack.client() as c:
        return c.post(path, content=text.encode("utf-8", "surrogatepass"),
                      headers={"Content-Type": "application/json"})


def field_of(r: httpx.Response) -> str:
    assert r.status_code == 422, r.text
    return r.json()["detail"][0]["loc"][-1]


RAW_BODIES = [
    ('{"instructions": "echo x", "reasoning_effort": "high"}', "reasoning_effort"),
    ('{"instructions": "echo \\ud800"}', "instructions"),
    ('{"instructions": "echo x", "title": "\\udfff"}', "title"),
    ('{"instructions": "echo x", "max_cost_usd": NaN}', "max_cost_usd"),
    ('{"instructions": "echo x", "max_cost_usd": Infinity}', "max_cost_usd"),
    ('{"instructions": "echo x", "max_cost_usd": 1e300}', "max_cost_usd"),
    ('{"instructions": "echo x", "keep_alive": NaN}', "keep_alive"),
    ('{"instructions": "echo x", "keep_alive": 1e300}', "keep_alive"),
    ('{"instructions": "echo x", "max_turns": 100000000000000000000000000000}', "max_turns"),
    ('{"instructions": "echo x", "image": "Not An Image!"}', "image"),
    ('{"instructions": "echo x", "model": "--dangerously-skip-permissions"}', "model"),
    ('{"instructions": "echo x", "env": {"PATH": "/evil"}}', "env"),
    ('{"instructions": "echo x", "env": {"LD_PRELOAD": "/x.so"}}', "env"),
    ('{"instructions": "echo x", "repo": "ext::sh -c touch% /tmp/pwned"}', "repo"),
    ('{"instructions": "echo x", "ticket_url": "https://evil.example/a/b/issues/1"}', "ticket_url"),
    ('{"instructions": "echo x", "ticket_url": "https://127.0.0.1:9/a/b/issues/1"}', "ticket_url"),
    ('{"instructions": "echo x", "artifacts": ["../../etc/passwd"]}', "artifacts"),
]


@pytest.mark.parametrize(("text", "field"), RAW_BODIES)
def test_hostile_run_bodies_are_422_and_create_nothing(astack: FerryStack, text: str,
                                                       field: str) -> None:
    runs, boxes = count_runs(astack), containers(astack)
    assert field_of(raw_post(astack, "/runs", text)) == field
    assert (count_runs(astack), containers(astack)) == (runs, boxes)


LOCAL = [("repo", "/etc"), ("repo", "file:///etc"), ("repo", "https://127.0.0.1/x.git"),
         ("repo", "ssh://git@10.1.2.3/x.git"), ("repo", "git@192.168.0.9:x.git"),
         ("repo", "http://localhost:3000/x.git"), ("repo", "https://[::1]/x"),
         ("image", "127.0.0.1:5000/devbox"), ("image", "localhost:5000/devbox")]


@pytest.mark.parametrize(("field", "value"), LOCAL)
def test_local_repos_and_registries_need_the_operators_consent(strict: FerryStack, field: str,
                                                               value: str) -> None:
    runs = count_runs(strict)
    with strict.client() as c:
        r = c.post("/runs", json={"instructions": "echo x", field: value})
    assert field_of(r) == field and "FERRY_ALLOW_LOCAL_REPOS" in r.json()["detail"][0]["msg"]
    assert count_runs(strict) == runs


def test_other_hostile_requests(astack: FerryStack) -> None:
    runs = count_runs(astack)
    huge = "A" * 300_000
    r = raw_post(astack, "/runs/abc123/answers", '{"answers": {"q": "' + huge + '"}}')
    assert field_of(r) == "answers" and len(r.text) < 2000  # refused without the echo
    assert field_of(raw_post(astack, "/runs/abc123/answers", '{"answers": {"q": NaN}}')) == "answers"
    assert field_of(raw_post(astack, "/runs/abc123/messages", '{"text": "\\ud83d"}')) == "text"
    assert field_of(raw_post(astack, "/runs/abc123/review",
                             '{"action": "accept", "comment": "typo"}')) == "comment"
    with astack.client() as c:
        for params in ({"page_token": "!!!not-base64!!!"}, {"page_token": "AAAA"},
                       {"limit": 10**30}):
            r = c.get("/runs", params=params)
            assert r.status_code == 422, (params, r.text)
        for url in ("/runs/abc123/timeline?after=100000000000000000000000",
                    "/runs/abc123/diff?attempt=99999999999999999999"):
            assert c.get(url).status_code == 422, url
        r = c.get("/runs/abc123/events", headers={"Last-Event-ID": "9" * 40})
        assert r.status_code == 422
        r = c.post("/triggers", json={"name": "t-extra", "secret": "12345678",
                                      "run": {"instructions": "x", "target": "h"}, "sneaky": 1})
        assert field_of(r) == "sneaky"
    assert count_runs(astack) == runs


def test_host_header_check_stops_dns_rebinding(astack: FerryStack) -> None:
    port = astack.settings.api_port
    with httpx.Client(timeout=10) as c:
        for host in ("attacker.example", f"attacker.example:{port}", "127.0.0.1.nip.io"):
            r = c.get(f"{astack.api_url}/runs", headers={"Host": host})
            assert r.status_code == 400 and "FERRY_ALLOWED_HOSTS" in r.text, host
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
            assert c.get(f"{astack.api_url}/runs", headers={"Host": host}).status_code == 200, host
