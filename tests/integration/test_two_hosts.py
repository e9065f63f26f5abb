"""Scale-out on one machine: two worker hosts (own data dirs, own host names) and two API
replicas (own data dirs, nothing shared on disk) over one Temporal server and one S3 store.

Runs pinned to a host run there; `target: any` Runs spread over both; every Run reads the
same from either API; a host whose worker is killed mid-Run fails its Run clearly (and a
continuation runs on the other host) while the other host's Run is untouched.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.integration.harness import FerryStack, free_port
from tests.integration.test_repos_review import make_origin
from tests.s3_server import S3Server


class TwoHosts:
    def __init__(self, root: Path, s3: S3Server) -> None:
        self.root = root
        self.bucket = s3.bucket()
        tag = uuid.uuid4().hex[:4]
        self.hosts = {"a": f"host-a-{tag}", "b": f"host-b-{tag}"}
        self.stack = FerryStack(root / "temporal", env={
            **s3.env(f"s3://{self.bucket}/ferry"),
            # This test's own limit, so a killed host is noticed within seconds.
            "FERRY_HOST_LOST_AFTER": "5s", "FERRY_TURN_SLICE_SECONDS": "4",
            "FERRY_WORKER_HOST": self.hosts["a"]})
        self.apis: list[str] = []

    def start(self) -> TwoHosts:
        self.stack.start_temporal()
        for key, host in self.hosts.items():
            self.stack.start_worker(f"worker-{key}", env={
                "FERRY_WORKER_HOST": host, "FERRY_DATA_DIR": str(self.root / f"host-{key}"),
                "FERRY_METRICS_PORT": str(free_port())})
        for n in (1, 2):
            data = self.root / f"api-{n}"
            (data / "logs").mkdir(parents=True)
            self.apis.append(self.stack.start_api(f"api-{n}", env={
                "FERRY_DATA_DIR": str(data), "FERRY_API_PORT": str(free_port())},
                log=data / "logs" / "api.log"))
        self.stack.wait_until(lambda: {t["host"] for t in self.get(0, "/targets")
                                       if t["healthy"]} >= set(self.hosts.values()),
                              30, "both hosts to report")
        return self

    def stop(self) -> None:
        self.stack.stop()
        from tests.integration.harness import remove_devboxes
        for key in self.hosts:
            remove_devboxes(set(self.hosts.values()), self.root / f"host-{key}")

    def get(self, api: int, path: str, **params) -> dict | list:
        r = httpx.get(f"{self.apis[api]}{path}", params=params, timeout=30)
        assert r.status_code == 200, (path, r.text)
        return r.json()

    def create(self, api: int, instructions: str, **extra) -> dict:
        r = httpx.post(f"{self.apis[api]}/runs", json={"instructions": instructions, **extra},
                       timeout=30)
        assert r.status_code == 201, r.text
        return r.json()

    def wait(self, run_id: str, statuses: set[str], timeout: float = 90) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.get(0, f"/runs/{run_id}")
            if run["status"] in statuses:
                return run
            time.sleep(0.25)
        raise AssertionError(f"{run_id} still {run['status']}: {run}")


@pytest.fixture
def two(tmp_path: Path, docker_client) -> Iterator[TwoHosts]:
    s3 = S3Server(tmp_path / "moto.log").start()
    t = TwoHosts(tmp_path, s3)
    try:
        yield t.start()
    finally:
        t.stop()
        s3.stop()


def test_two_hosts_two_apis_one_store(two: TwoHosts, tmp_path: Path) -> None:
    a, b = two.hosts["a"], two.hosts["b"]
    origin = make_origin(tmp_path)
    script = ("sed -i 's/b = 2/b = 20/' app.py\n"
              "mkdir -p .ferry/artifacts && hostname > .ferry/artifacts/where.txt\n"
              "echo done-here")
    pinned = {a: two.create(0, script, repo=str(origin), target=a),
              b: two.create(1, script, repo=str(origin), target=b)}
    # Ten Runs for any host, submitted at once through both APIs.
    with ThreadPoolExecutor(10) as pool:
        spread = list(pool.map(lambda i: two.create(i % 2, f"sleep 1\necho spread-{i}",
                                                    target="any", mode="autonomous"), range(10)))
    done = {r["id"]: two.wait(r["id"], {"completed", "failed"}) for r in
            [*pinned.values(), *spread]}
    assert all(r["status"] == "completed" for r in done.values()), done
    for host, run in pinned.items():
        assert done[run["id"]]["target"] == host
    placed = {done[r["id"]]["target"] for r in spread}
    assert placed == {a, b}, placed  # spread over both, none asked which
    assert all(done[r["id"]]["target_requested"] == "any" for r in spread)

    # Every Run reads the same through either API (the store, not a host's disk).
    for run in [*pinned.values(), spread[0]]:
        rid = run["id"]
        for path in (f"/runs/{rid}/timeline", f"/runs/{rid}/artifacts"):
            assert two.get(0, path) == two.get(1, path), path
        logs = [httpx.get(f"{u}/runs/{rid}/logs", timeout=30).text for u in two.apis]
        assert logs[0] == logs[1] and ("done-here" in logs[0] or "spread-" in logs[0])
    for run in pinned.values():
        rid = run["id"]
        diffs = [httpx.get(f"{u}/runs/{rid}/diff", timeout=30).text for u in two.apis]
        assert diffs[0] == diffs[1] and "+b = 20" in diffs[0]
        where = [httpx.get(f"{u}/runs/{rid}/artifacts/attempts/1/artifacts/where.txt",
                           timeout=30) for u in two.apis]
        assert where[0].status_code == where[1].status_code == 200
        assert where[0].text == where[1].text
    # Neither API replica keeps anything on disk but its log.
    for n in (1, 2):
        held = sorted(p.name for p in (tmp_path / f"api-{n}").rglob("*"))
        assert held == ["api.log", "logs"], held


def test_a_killed_host_fails_its_run_and_the_other_host_carries_on(two: TwoHosts,
                                                                   tmp_path: Path) -> None:
    a, b = two.hosts["a"], two.hosts["b"]
    origin = make_origin(tmp_path)
    doomed = two.create(0, "echo started > started.txt\nsleep 300", repo=str(origin), target=a)
    steady = two.create(1, "sleep 12\necho steady-done", target=b)
    two.stack.wait_until(lambda: (two.get(0, f"/runs/{doomed['id']}").get("running") or {})
                         .get("command") == "sleep 300", 60, "the doomed Run to be working")
    two.stack.stop_proc("worker-a", signal.SIGKILL)
    t0 = time.monotonic()
    failed = two.wait(doomed["id"], {"failed", "completed"}, timeout=40)
    # The turn's heartbeat timeout, then the 5 s host limit.
    assert time.monotonic() - t0 < 10 + 5 + 10
    assert failed["status"] == "failed" and f"host {a} is gone" in failed["error"], failed
    ok = two.wait(steady["id"], {"completed", "failed"}, timeout=60)
    assert ok["status"] == "completed" and ok["target"] == b, ok
    assert "steady-done" in httpx.get(f"{two.apis[1]}/runs/{steady['id']}/logs", timeout=30).text
    # The failed Run continues on the surviving host (its repo again: the killed host saved
    # no checkpoint mid-turn, and the Run says so).
    again = two.create(1, "cat README.md", from_run=doomed["id"], target=b)
    cont = two.wait(again["id"], {"completed", "failed"}, timeout=90)
    assert cont["status"] == "completed" and cont["target"] == b, cont
    assert "# Widgets" in httpx.get(f"{two.apis[0]}/runs/{again['id']}/logs", timeout=30).text
