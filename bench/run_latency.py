"""Benchmark: how fast a Run shows its steps (cold and warm), and Ferry's overhead over raw
`docker exec`.

Starts its own stacks (Temporal dev server, worker, API) in temporary data dirs, one
without a warm pool (cold) and one with FERRY_WARM_POOL=2 (warm), and prints p50/p95 of:
  - submit -> first exec step visible through GET /timeline
  - answer -> the resumed exec step visible
  - follow-up message -> its first exec step visible
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


def _wait_exec(c, run_id: str, command: str, t0: float) -> float:
    """Seconds from t0 until an exec step of `command` shows in GET /timeline."""
    while True:
        steps = c.get(f"/runs/{run_id}/timeline").json()["steps"]
        if any(s["kind"] == "exec" and s["payload"].get("command") == command for s in steps):
            return time.perf_counter() - t0
        time.sleep(0.01)


def latencies(stack: FerryStack, runs: int) -> dict[str, list[float]]:
    """submit -> first step, answer -> resumed step, follow-up -> its first step."""
    out: dict[str, list[float]] = {"submit": [], "answer": [], "follow_up": []}
    with stack.client() as c:
        for i in range(runs):
            t0 = time.perf_counter()
            script = f'echo bench {i}\nferry-ask "Go on?" --id go --options yes,no\necho resumed'
            run_id = c.post("/runs", json={"instructions": script}).json()["id"]
            out["submit"].append(_wait_exec(c, run_id, f"echo bench {i}", t0))
            stack.wait_status(run_id, {"waiting_for_input"})
            t0 = time.perf_counter()
            c.post(f"/runs/{run_id}/answers", json={"answers": {"go": "yes"}})
            out["answer"].append(_wait_exec(c, run_id, "echo resumed", t0))
            stack.wait_status(run_id, {"completed", "failed"})
            t0 = time.perf_counter()
            c.post(f"/runs/{run_id}/messages", json={"text": "echo follow-up"})
            out["follow_up"].append(_wait_exec(c, run_id, "echo follow-up", t0))
            stack.wait_status(run_id, {"completed", "failed"})
            c.delete(f"/runs/{run_id}/devbox")
            time.sleep(1.5)  # let the warm pool refill, as between a person's Runs
    return out


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


def _line(name: str, values: list[float]) -> str:
    return (f"{name:<24} p50 {percentile(values, 50) * 1000:5.0f} ms   "
            f"p95 {percentile(values, 95) * 1000:5.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    figures: dict[str, dict[str, list[float]]] = {}
    for mode, pool in (("cold", "0"), ("warm", "2")):
        with tempfile.TemporaryDirectory(prefix="ferry-bench-") as tmp:
            stack = FerryStack(Path(tmp) / "data", env={"FERRY_WARM_POOL": pool})
            stack.start()
            try:
                if pool != "0":
                    time.sleep(8)  # the pool fills
                figures[mode] = latencies(stack, args.runs)
                if mode == "cold":
                    ferry = statistics.median(ferry_wall_time(stack) for _ in range(3))
                    raw = statistics.median(raw_docker_time(stack.settings.devbox_image)
                                            for _ in range(3))
            finally:
                stack.stop()
    print(f"over {args.runs} Runs each (FERRY_WARM_POOL=0 for cold, 2 for warm):")
    for what, label in (("submit", "submit -> first step"), ("answer", "answer -> resumed step"),
                        ("follow_up", "follow-up -> first step")):
        for mode in ("cold", "warm"):
            print(_line(f"{label} ({mode})", figures[mode][what]))
    print(f"20-command script Run: Ferry {ferry:.2f} s (submit to completed, incl. DevBox launch), "
          f"raw docker run + 20 exec {raw:.2f} s, ratio {ferry / raw:.2f}")


if __name__ == "__main__":
    main()
