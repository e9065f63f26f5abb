"""Benchmark: many Runs paused on questions at once, and what that costs the worker.

Starts its own stack, submits N Runs that each ask a question, waits until all are
paused, prints the worker's and Temporal's resident memory while they wait, then
answers them all and prints how long until every Run completed. Figures only.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.harness import FerryStack  # noqa: E402

SCRIPT = 'ferry-ask "Go on?" --id go --options yes,no --default yes\ncat "$FERRY_ANSWERS"'


def rss_mb(pid: int) -> float:
    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--backend", choices=["local", "docker"], default="local")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ferry-bench-") as tmp:
        stack = FerryStack(Path(tmp) / "data", env={"FERRY_DEVBOX_BACKEND": args.backend,
                                                    "FERRY_POLL_INTERVAL": "0.5"})
        stack.start()
        try:
            worker_pid = stack.procs["worker"].pid
            temporal_pid = stack.procs["temporal"].pid
            idle_worker = rss_mb(worker_pid)
            with ThreadPoolExecutor(8) as pool, httpx.Client(base_url=stack.api_url,
                                                             timeout=120) as c:
                t0 = time.perf_counter()
                ids = list(pool.map(lambda i: c.post("/runs", json={"instructions": SCRIPT})
                                    .json()["id"], range(args.runs)))

                def count(status: str) -> int:
                    total, token = 0, None
                    while True:
                        params = {"status": status, "limit": 500}
                        if token:
                            params["page_token"] = token
                        page = c.get("/runs", params=params).json()
                        total += len(page["runs"])
                        token = page.get("next_page_token")
                        if not token:
                            return total

                while count("waiting_for_input") < args.runs:
                    time.sleep(1)
                paused_after = time.perf_counter() - t0
                time.sleep(3)
                worker_waiting = rss_mb(worker_pid)
                temporal_waiting = rss_mb(temporal_pid)
                t1 = time.perf_counter()
                list(pool.map(lambda i: c.post(f"/runs/{i}/answers",
                                               json={"answers": {"go": "yes"}}), ids))
                while count("completed") < args.runs:
                    time.sleep(1)
                answered_after = time.perf_counter() - t1
        finally:
            stack.stop()
    print(f"{args.runs} Runs ({args.backend} DevBoxes): all paused after {paused_after:.1f} s")
    print(f"worker RSS: idle {idle_worker:.0f} MiB, with {args.runs} Runs waiting "
          f"{worker_waiting:.0f} MiB; Temporal dev server {temporal_waiting:.0f} MiB")
    print(f"answer all -> all completed: {answered_after:.1f} s")


if __name__ == "__main__":
    main()
