"""500 Runs paused at once on one worker: no activity held while waiting; all complete.

Uses the `local` DevBox backend so the test measures Ferry (workflows, worker, Temporal),
not the start-up of 500 containers on a two-core machine.
"""

from __future__ import annotations

import asyncio
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.integration.harness import FerryStack, pending_activities

N = 500
SCRIPT = 'ferry-ask "Go on?" --id go --options yes,no --default yes\ncat "$FERRY_ANSWERS"'


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_five_hundred_paused_runs_all_complete(tmp_path: Path) -> None:
    s = FerryStack(tmp_path / "data", env={"FERRY_DEVBOX_BACKEND": "local",
                                           "FERRY_POLL_INTERVAL": "0.5"})
    try:
        s.start()
        with ThreadPoolExecutor(8) as pool, httpx.Client(base_url=s.api_url, timeout=120) as c:
            def submit(i: int) -> str:
                r = c.post("/runs", json={"instructions": SCRIPT, "title": f"paused {i}"})
                assert r.status_code == 201, r.text
                return r.json()["id"]

            ids = list(pool.map(submit, range(N)))

            def count(status: str) -> int:
                return len(c.get("/runs", params={"status": status, "limit": 500}).json()["runs"])

            # Poll every 2 s: listing 500 Runs is not free and the server is busy enough.
            s.wait_until(lambda: count("waiting_for_input") == N, 600, f"{N} Runs to pause",
                         every=2)
            address = s.settings.effective_temporal_address
            for run_id in random.sample(ids, 20):
                assert asyncio.run(pending_activities(address, f"run-{run_id}")) == 0

            def answer(run_id: str) -> int:
                return c.post(f"/runs/{run_id}/answers",
                              json={"answers": {"go": "yes"}}).status_code

            assert set(pool.map(answer, ids)) == {200}
            s.wait_until(lambda: count("completed") == N, 600, f"{N} Runs to complete", every=2)
        for run_id in random.sample(ids, 5):
            execs = [x for x in s.timeline(run_id) if x["kind"] == "exec"]
            assert execs[-1]["payload"]["output_excerpt"] == '{"answers": {"go": "yes"}}'
    finally:
        s.stop()
