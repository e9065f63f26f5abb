"""A model call still waiting for its answer when its turn ends is cut off after the grace
period (docs/security.md), and calls fired together under a budget cannot all get past it.

Plays the DevBox against the real ModelGateway + GrantBook + TurnActivities._metered, with a
slow upstream stand-in (a non-streaming call, as `curl -d '{"stream":false,...}'` makes: no
header comes back until the model is done). No Docker or Temporal needed.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

import activities.turns as turns
from activities.gateway.grants import GrantBook
from activities.gateway.model_gateway import ModelGateway
from ferry.models.steps import TurnOutcome
from ferry.settings import Settings

UPSTREAM_DELAY = 2.0  # the model answers this long after the call; the turn ends before


def slow_openai() -> Starlette:
    async def responses(request):
        await asyncio.sleep(UPSTREAM_DELAY)
        return JSONResponse({"id": "resp_1", "object": "response", "model": "gpt-5",
                             "output": [], "usage": {"input_tokens": 1_000_000,
                                                     "output_tokens": 1000,
                                                     "total_tokens": 1_001_000}})
    return Starlette(routes=[Route("/v1/responses", responses, methods=["POST"])])


@pytest.fixture
def gateway(tmp_path, monkeypatch):
    monkeypatch.setattr(turns, "LATE_CALL_SECONDS", 0.3)  # 10 s in production
    book = GrantBook(tmp_path / "grants", Settings().price_table)
    gw = ModelGateway(book, {"OPENAI_API_KEY": "sk-worker-key"},
                      environ={"OPENAI_BASE_URL": "http://upstream/v1"})
    gw.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=slow_openai()),
                                  timeout=httpx.Timeout(600, connect=30))
    devbox = httpx.AsyncClient(transport=httpx.ASGITransport(app=gw.app), base_url="http://gw",
                               timeout=60)
    return book, devbox


async def call_then_end_turn(book: GrantBook, devbox: httpx.AsyncClient, run_id: str,
                             budget: float) -> tuple[asyncio.Task, TurnOutcome]:
    """A DevBox call to the slow model; once it is at the upstream, the turn ends."""
    grant = book.open(run_id, "t1", max_cost_usd=budget, spent_usd=0.0, allow=[],
                      credentials=["OPENAI_API_KEY"])
    call = asyncio.create_task(devbox.post(
        "/openai/v1/responses", headers={"authorization": f"Bearer {grant.token}"},
        json={"model": "gpt-5", "input": "write a novel"}))
    await asyncio.sleep(0.2)
    outcome = await turns.TurnActivities._metered(
        SimpleNamespace(book=book), SimpleNamespace(run_id=run_id, turn_id="t1"),
        TurnOutcome(ok=True))
    return call, outcome


async def test_a_call_outliving_its_turn_is_cut_off_or_counted(gateway) -> None:
    book, devbox = gateway
    call, outcome = await call_then_end_turn(book, devbox, "run1", 0.01)
    reply = await call
    recorded = outcome.usage.cost_usd if outcome.usage else 0.0
    # The Run ends here (keep_alive 0s): nothing will ever pop late_usd into a turn.
    assert reply.status_code != 200 or recorded >= 1.25, (
        f"a ${1.25} call answered {reply.status_code} to the DevBox "
        f"{UPSTREAM_DELAY - 0.2:.1f}s after its turn ended (cut-off {turns.LATE_CALL_SECONDS}s) "
        f"and the turn recorded ${recorded}; it sits only in GrantBook.late_usd="
        f"{book.late_usd} (in memory, never reported if no later turn opens)")


async def test_a_late_call_cannot_run_into_the_next_turn(gateway) -> None:
    """Follow-up opened while the last turn's call still waits: that call is cut off when
    its turn closes, so it cannot spend the next turn's budget alongside its calls."""
    book, devbox = gateway
    call, _ = await call_then_end_turn(book, devbox, "run2", 2.0)
    g2 = book.open("run2", "t2", max_cost_usd=2.0, spent_usd=0.0, allow=[],
                   credentials=["OPENAI_API_KEY"])
    reply = await call
    assert reply.status_code == 504 and "cut off" in reply.text, reply.text
    assert book.calls_in_flight("run2") == 0 and g2.budget_left() == 2.0


async def test_calls_fired_together_cannot_all_pass_the_budget(gateway) -> None:
    """Ten calls at once, each over the whole budget: one reaches the model; it is charged
    before the next may start, and the rest are refused."""
    book, devbox = gateway
    grant = book.open("run3", "t1", max_cost_usd=0.01, spent_usd=0.0, allow=[],
                      credentials=["OPENAI_API_KEY"])
    replies = await asyncio.gather(*(devbox.post(
        "/openai/v1/responses", headers={"authorization": f"Bearer {grant.token}"},
        json={"model": "gpt-5", "input": "x"}) for _ in range(10)))
    assert sorted(r.status_code for r in replies) == [200] + [400] * 9
    assert grant.calls_total == 1 and grant.cost_usd >= 1.25
    assert all("budget" in r.text for r in replies if r.status_code == 400)
