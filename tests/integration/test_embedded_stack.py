"""`ferry up` and the CLI as a user runs them: a Run completes, Ctrl-C stops all, data persists."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest  # noqa: F401  (imported to fail loudly if the dev deps are incomplete)

from tests.integration.harness import ROOT, free_port, remove_devboxes

FERRY = [sys.executable, "-m", "ferry.cli"]


def _env(data: Path, ports: dict[str, int]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_")}
    env.update({
        "FERRY_DATA_DIR": str(data),
        "FERRY_TEMPORAL_PORT": str(ports["temporal"]),
        "FERRY_TEMPORAL_UI_PORT": str(ports["ui"]),
        "FERRY_API_PORT": str(ports["api"]),
        "FERRY_DEVBOX_NETWORK": "none",
        "FERRY_WORKER_HOST": f"up-{ports['api']}",
        "PYTHONPATH": str(ROOT),
    })
    return env


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path: Path):
    """`ferry up` keeps finished Runs' DevBoxes for follow-ups; remove this test's."""
    yield
    hosts = set(_USED_HOSTS)
    _USED_HOSTS.clear()
    remove_devboxes(hosts, tmp_path / "data")


_USED_HOSTS: list[str] = []


def _up(env: dict[str, str]) -> subprocess.Popen:
    _USED_HOSTS.append(env["FERRY_WORKER_HOST"])
    proc = subprocess.Popen([*FERRY, "up"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 90
    seen = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        seen += line
        if "Ferry is up" in line:
            return proc
        if proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"ferry up did not come up:\n{seen}")


def _children(pid: int) -> list:
    return psutil.Process(pid).children(recursive=True)


def test_ferry_up_run_stop_and_restart_keeps_runs(tmp_path: Path, docker_client) -> None:
    ports = {"temporal": free_port(), "ui": free_port(), "api": free_port()}
    env = _env(tmp_path / "data", ports)
    api = f"http://127.0.0.1:{ports['api']}"

    up = _up(env)
    try:
        children = _children(up.pid)
        assert len(children) >= 3  # dev server, worker, API
        assert httpx.get(f"http://127.0.0.1:{ports['ui']}", timeout=10).status_code == 200
        # The web UI links the Temporal UI the stack started.
        page = httpx.get(f"{api}/ui/runs", timeout=10).text
        assert f'data-temporalui="http://127.0.0.1:{ports["ui"]}"' in page
        run = subprocess.run([*FERRY, "run", "echo from-cli\necho done", "--watch"], env=env,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "from-cli" in run.stdout and "completed" in run.stdout
        failing = subprocess.run([*FERRY, "run", "false", "--watch"], env=env,
                                 capture_output=True, text=True, timeout=120)
        assert failing.returncode == 1 and "failed" in failing.stdout
        runs = httpx.get(f"{api}/runs").json()["runs"]
        assert len(runs) == 2
        ls = subprocess.run([*FERRY, "ls", "-q"], env=env, capture_output=True, text=True,
                            timeout=30)
        assert all(r["id"] in ls.stdout for r in runs)
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=60)
    assert up.returncode == 0
    assert all(not c.is_running() or c.status() == psutil.STATUS_ZOMBIE for c in children)
    assert (tmp_path / "data" / "temporal.db").exists()

    up = _up(env)
    try:
        again = httpx.get(f"{api}/runs").json()["runs"]
        assert {r["id"] for r in again} == {r["id"] for r in runs}
        first = [r for r in runs if r["status"] == "completed"][0]
        steps = httpx.get(f"{api}/runs/{first['id']}/timeline").json()["steps"]
        assert [s["kind"] for s in steps][-1] == "report_result"
        show = subprocess.run([*FERRY, "show", first["id"]], env=env, capture_output=True,
                              text=True, timeout=30)
        assert show.returncode == 0 and "completed" in show.stdout
        logs = subprocess.run([*FERRY, "logs", first["id"]], env=env, capture_output=True,
                              text=True, timeout=30)
        assert "$ echo from-cli\nfrom-cli\n" in logs.stdout
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=60)


def test_cli_errors_are_one_line_not_tracebacks(tmp_path: Path) -> None:
    env = _env(tmp_path, {"temporal": free_port(), "ui": free_port(), "api": free_port()})
    r = subprocess.run([*FERRY, "ls"], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "cannot reach the Ferry API" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([*FERRY, "run", "--file", str(tmp_path / "missing.sh")], env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "cannot read" in r.stderr and "Traceback" not in r.stderr


def test_cli_reports_api_validation_errors(stack) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_")}
    env.update({"FERRY_URL": stack.api_url, "PYTHONPATH": str(ROOT)})
    r = subprocess.run([*FERRY, "run", ""], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "instructions: instructions must not be empty" in r.stderr
    assert "Traceback" not in r.stderr
    r = subprocess.run([*FERRY, "show", "nosuchrun"], env=env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1 and "no Run 'nosuchrun'" in r.stderr
    run = stack.create_run("sleep 30")
    r = subprocess.run([*FERRY, "rename", run["id"], "renamed by cli"], env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "renamed by cli" in r.stdout
    r = subprocess.run([*FERRY, "cancel", run["id"]], env=env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0
    stack.wait_status(run["id"], {"cancelled"}, timeout=10)


def test_ferry_up_uses_an_external_cluster_when_told(tmp_path: Path, docker_client) -> None:
    from tests.integration.harness import FerryStack

    cluster = FerryStack(tmp_path / "cluster")
    cluster.start_temporal()
    try:
        ports = {"temporal": free_port(), "ui": free_port(), "api": free_port()}
        env = _env(tmp_path / "data", ports)
        env["FERRY_TEMPORAL_ADDRESS"] = cluster.settings.effective_temporal_address
        up = _up(env)
        try:
            names = " ".join(" ".join(c.cmdline()) for c in _children(up.pid))
            assert "start-dev" not in names
            assert not (tmp_path / "data" / "temporal.db").exists()
            run = subprocess.run([*FERRY, "run", "echo external", "--watch"], env=env,
                                 capture_output=True, text=True, timeout=120)
            assert run.returncode == 0, run.stdout + run.stderr
        finally:
            up.send_signal(signal.SIGINT)
            up.wait(timeout=60)
        # The Run lives in the external cluster.
        from tests.integration.test_api_validation import count_runs

        assert count_runs(cluster) == 1
    finally:
        cluster.stop()
