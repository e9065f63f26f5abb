"""Benchmark: many short Runs spread over two worker hosts, then many paused Runs on one.

Phase 1 starts one Temporal dev server, two worker processes as two hosts (own host names
and data dirs, one shared artifact store) and one API; submits N short Runs at once with
`target: any` and waits for all of them. It checks that every Run completed, none was lost
and no step was recorded twice, then prints throughput, submit → completed percentiles,
the workers' peak memory, how the Runs split over the hosts and Temporal history sizes.
Phase 2 (`--paused`) runs bench/paused_runs.py: Runs paused on questions on one worker.

    .venv/bin/python bench/scale.py                      # 200 local + 20 Docker + 1000 paused
    .venv/bin/python bench/scale.py --runs 50 --docker 0 --paused 0

Figures only: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.harness import FerryStack, free_port, remove_devboxes  # noqa: E402


def rss_mb(pid: int) -> float:
    try:
        proc = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20
    except psutil.Error:
        return 0.0


class PeakRss(threading.Thread):
    """The largest resident memory each watched process tree reached while it ran."""

    def __init__(self, pids: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.peak = dict.fromkeys(pids, 0.0)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], rss_mb(pid))
            self.done.wait(0.5)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def history_sizes(address: str, run_ids: list[str]) -> tuple[list[int], list[int]]:
    from temporalio.client import Client

    client = await Client.connect(address)
    events, sizes = [], []
    for run_id in run_ids:
        history = await client.get_workflow_handle(f"run-{run_id}").fetch_history()
        events.append(len(history.events))
        sizes.append(sum(ev.ByteSize() for ev in history.events))
    return events, sizes


def spread_phase(runs: int, backend: str) -> None:
    print(f"\n== {runs} short Runs at once over 2 worker hosts ({backend} DevBoxes)", flush=True)
    with tempfile.TemporaryDirectory(prefix="ferry-scale-") as tmp:
        root = Path(tmp)
        hosts = {"a": f"scale-a-{free_port()}", "b": f"scale-b-{free_port()}"}
        stack = FerryStack(root / "api", env={
            "FERRY_DEVBOX_BACKEND": backend, "FERRY_ARTIFACTS_URL": str(root / "store"),
            "FERRY_POLL_INTERVAL": "0.5", "FERRY_WORKER_HOST": hosts["a"]})
        try:
            stack.start_temporal()
            for key, host in hosts.items():
                stack.start_worker(f"worker-{key}", env={
                    "FERRY_WORKER_HOST": host, "FERRY_DATA_DIR": str(root / f"host-{key}"),
                    "FERRY_METRICS_PORT": "0"})
            stack.start_api()
            peak = PeakRss({"worker-a": stack.procs["worker-a"].pid,
                            "worker-b": stack.procs["worker-b"].pid,
                            "temporal": stack.procs["temporal"].pid})
            idle = {k: rss_mb(pid) for k, pid in peak.pids.items()}
            peak.start()
            with ThreadPoolExecutor(16) as pool, \
                    httpx.Client(base_url=stack.api_url, timeout=120) as c:
                submitted: dict[str, float] = {}

                def submit(i: int) -> None:
                    t = time.time()
                    r = c.post("/runs", json={"instructions": f"echo run-{i}", "target": "any",
                                              "keep_alive": "0s", "title": f"scale {i}"})
                    r.raise_for_status()
                    submitted[r.json()["id"]] = t

                t0 = time.time()
                list(pool.map(submit, range(runs)))
                t_submitted = time.time() - t0
                finished: dict[str, dict] = {}
                deadline = time.monotonic() + 1800
                while len(finished) < runs and time.monotonic() < deadline:
                    for run_id in [r for r in submitted if r not in finished]:
                        run = c.get(f"/runs/{run_id}").json()
                        if run["status"] in ("completed", "failed", "cancelled"):
                            finished[run_id] = run
                    time.sleep(1)
                peak.done.set()
                lost = runs - len(finished)
                failed = [r for r in finished.values() if r["status"] != "completed"]
                duplicated = 0
                for run_id in finished:
                    steps = c.get(f"/runs/{run_id}/timeline").json()["steps"]
                    seqs = [s["seq"] for s in steps]
                    execs = [s for s in steps if s["kind"] == "exec"]
                    if len(set(seqs)) != len(seqs) or len(execs) != 1:
                        duplicated += 1
            done_at = {k: datetime.fromisoformat(r["completed_at"]).timestamp()
                       for k, r in finished.items() if r.get("completed_at")}
            latency = [done_at[k] - submitted[k] for k in done_at]
            span = max(done_at.values()) - t0 if done_at else float("nan")
            placed: dict[str, int] = {}
            for r in finished.values():
                placed[r["target"]] = placed.get(r["target"], 0) + 1
            sample = list(finished)[: min(50, len(finished))]
            events, sizes = asyncio.run(history_sizes(stack.settings.effective_temporal_address,
                                                      sample))
            print(f"completed {runs - lost - len(failed)}/{runs}; lost {lost}; failed "
                  f"{len(failed)}; Runs with a duplicated or missing step {duplicated}")
            print(f"submitted all in {t_submitted:.1f} s; all completed {span:.1f} s after "
                  f"the first submit: {runs / span * 60:.0f} Runs/min")
            print(f"submit -> completed: p50 {pct(latency, 50):.2f} s, p95 "
                  f"{pct(latency, 95):.2f} s, max {max(latency):.2f} s")
            print("placed: " + ", ".join(f"{h} {n}" for h, n in sorted(placed.items())))
            for name in peak.pids:
                print(f"{name} RSS: idle {idle[name]:.0f} MB, peak {peak.peak[name]:.0f} MB")
            print(f"history per Run ({len(sample)} sampled): {statistics.median(events):.0f} "
                  f"events, {statistics.median(sizes) / 1024:.1f} KiB median, "
                  f"{max(sizes) / 1024:.1f} KiB max")
        finally:
            stack.stop()
            for key in hosts:
                remove_devboxes(set(hosts.values()), root / f"host-{key}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200, help="short Runs, local backend")
    parser.add_argument("--docker", type=int, default=20, help="short Runs, Docker DevBoxes")
    parser.add_argument("--paused", type=int, default=1000, help="Runs paused on one worker")
    args = parser.parse_args()
    if args.runs:
        spread_phase(args.runs, "local")
    if args.docker:
        spread_phase(args.docker, "docker")
    if args.paused:
        print(f"\n== {args.paused} Runs paused on questions on one worker", flush=True)
        subprocess.run([sys.executable, str(ROOT / "bench" / "paused_runs.py"),
                        "--runs", str(args.paused)], check=True)


if __name__ == "__main__":
    main()
