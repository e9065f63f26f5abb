"""Benchmark: how fast a Run shows its first step, and Ferry's overhead over raw `docker exec`.

Starts its own stack (Temporal dev server, worker, API) in a temporary data dir and prints:
  - submit -> first exec step visible through GET /timeline (p50/p95 over N Runs)
  - a 20-command script Run's wall time / the same 20 commands via raw `docker exec`
Figures only; nothing here asserts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.harness import FerryStack  # noqa: E402

COMMANDS = [f"echo step {i} && ls / > /dev/null" for i in range(20)]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def first_step_latency(stack: FerryStack, runs: int) -> list[float]:
    latencies = []
    with stack.client() as c:
        for i in range(runs):
            t0 = time.perf_counter()
            run_id = c.post("/runs", json={"instructions": f"echo bench {i}"}).json()["id"]
            while True:
                steps = c.get(f"/runs/{run_id}/timeline").json()["steps"]
                if any(s["kind"] == "exec" for s in steps):
                    latencies.append(time.perf_counter() - t0)
                    break
                time.sleep(0.01)
            stack.wait_status(run_id, {"completed", "failed"})
    return latencies


def ferry_wall_time(stack: FerryStack) -> float:
    t0 = time.perf_counter()
    run = stack.create_run("\n".join(COMMANDS))
    stack.wait_status(run["id"], {"completed"}, timeout=120)
    return time.perf_counter() - t0


def raw_docker_time(image: str) -> float:
    client = docker.from_env()
    t0 = time.perf_counter()
    container = client.containers.run(image, ["sleep", "infinity"], detach=True, init=True,
                                      network_mode="none")
    try:
        for cmd in COMMANDS:
            container.exec_run(["bash", "-c", cmd])
    finally:
        container.remove(force=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ferry-bench-") as tmp:
        stack = FerryStack(Path(tmp) / "data")
        stack.start()
        try:
            lat = first_step_latency(stack, args.runs)
            ferry = statistics.median(ferry_wall_time(stack) for _ in range(3))
            raw = statistics.median(raw_docker_time(stack.settings.devbox_image) for _ in range(3))
        finally:
            stack.stop()
    print(f"submit -> first exec step visible over {len(lat)} Runs: "
          f"p50 {percentile(lat, 50) * 1000:.0f} ms, p95 {percentile(lat, 95) * 1000:.0f} ms")
    print(f"20-command script Run: Ferry {ferry:.2f} s (submit to completed, incl. DevBox launch "
          f"and teardown), raw docker run + 20 exec {raw:.2f} s, ratio {ferry / raw:.2f}")


if __name__ == "__main__":
    main()
