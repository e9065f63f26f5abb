"""Network modes of a DevBox: `gateway` reaches only allowlisted hosts through the
worker's proxy (each refusal an `egress_denied` step); `none` reaches nothing, and an
agent engine there fails naming the mode."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.harness import FerryStack, free_port
from tests.integration.model_standins import FakeAnthropic

CURL = "curl -sS -m 10 --noproxy '' -x \"$HTTP_PROXY\""


@pytest.fixture(scope="module")
def allowed_site() -> Iterator[FakeAnthropic]:
    site = FakeAnthropic(free_port()).start()  # any loopback HTTP service will do
    yield site
    site.stop()


@pytest.fixture(scope="module")
def gstack(tmp_path_factory, allowed_site: FakeAnthropic) -> Iterator[FerryStack]:
    s = FerryStack(tmp_path_factory.mktemp("egress"), env={
        "FERRY_EGRESS_ALLOW": f"127.0.0.1:{allowed_site.port}", "ANTHROPIC_API_KEY": "k-1234"})
    try:
        s.start()
        yield s
    finally:
        s.stop()


def test_gateway_mode_allows_the_allowlist_and_reports_the_rest(
        gstack: FerryStack, allowed_site: FakeAnthropic) -> None:
    denied_port = free_port()
    run = gstack.create_run("\n".join([
        "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '",
        f"{CURL} -X POST http://127.0.0.1:{allowed_site.port}/v1/messages/count_tokens -d '{{}}'",
        f"{CURL} -o /dev/null -w 'code=%{{http_code}}\\n' http://127.0.0.1:{denied_port}/ || true",
        "curl -sS -m 10 https://example.com/ 2>&1 | tail -1; true",
    ]))
    done = gstack.wait_status(run["id"], {"completed", "failed"}, 120)
    assert done["status"] == "completed", done
    steps = gstack.timeline(run["id"])
    execs = [s["payload"] for s in steps if s["kind"] == "exec"]
    assert execs[0]["output_excerpt"].split() == ["lo"]  # no interface but loopback
    assert '"input_tokens": 100' in execs[1]["output_excerpt"] or \
        '"input_tokens":100' in execs[1]["output_excerpt"]
    assert "code=403" in execs[2]["output_excerpt"]
    assert "403" in execs[3]["output_excerpt"]
    denied = [(s["payload"]["host"], s["payload"]["port"]) for s in steps
              if s["kind"] == "egress_denied"]
    assert ("127.0.0.1", denied_port) in denied and ("example.com", 443) in denied
    assert ("127.0.0.1", allowed_site.port) not in denied


def test_the_proxy_wants_a_live_turn_token(gstack: FerryStack, allowed_site: FakeAnthropic) -> None:
    run = gstack.create_run("\n".join([
        f"curl -sS -m 10 --noproxy '' -x http://ferry:forged@127.0.0.1:4181 -o /dev/null "
        f"-w 'code=%{{http_code}}\\n' http://127.0.0.1:{allowed_site.port}/ || true",
    ]))
    done = gstack.wait_status(run["id"], {"completed", "failed"}, 120)
    assert done["status"] == "completed", done
    out = next(s["payload"] for s in gstack.timeline(run["id"]) if s["kind"] == "exec")
    assert "code=407" in out["output_excerpt"]


def test_none_mode_has_no_gateway_and_agents_fail_naming_it(gstack: FerryStack) -> None:
    run = gstack.create_run("ls /ferry; curl -sS -m 5 http://127.0.0.1:4180/ || echo unreachable",
                            network="none")
    done = gstack.wait_status(run["id"], {"completed", "failed"}, 120)
    assert done["status"] == "completed" and done["network"] == "none", done
    out = "\n".join(s["payload"]["output_excerpt"] for s in gstack.timeline(run["id"])
                    if s["kind"] == "exec")
    assert "gateway" not in out.split() and "unreachable" in out

    # Asked for outright: refused at once, naming the field, nothing created.
    with gstack.client() as c:
        before = c.get("/runs").json()
        r = c.post("/runs", json={"instructions": "write a poem", "engine": "claude-code",
                                  "network": "none"})
        assert r.status_code == 422 and "network" in r.text and "model gateway" in r.text, r.text
        assert c.get("/runs").json() == before
    # Chosen by `auto` in a DevBox without a network: the turn fails saying why.
    agent = gstack.create_run("write a poem", engine="auto", network="none")
    failed = gstack.wait_status(agent["id"], {"completed", "failed"}, 120)
    assert failed["status"] == "failed"
    assert "needs the model gateway" in failed["error"] and "network is `none`" in failed["error"]
