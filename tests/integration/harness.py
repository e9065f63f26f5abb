"""A real Ferry stack for tests: Temporal dev server, worker and API as separate processes.

Each piece can be killed or restarted on its own (worker SIGKILL, dev server restart).
Ports are picked free on loopback; all state lives in a temporary data dir.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from ferry.launcher import LaunchError, dev_server_command, temporal_ready, wait_for
from ferry.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FerryStack:
    def __init__(self, data_dir: Path, env: dict[str, str] | None = None,
                 server_flags: list[str] | None = None) -> None:
        self.data_dir = data_dir
        self.env = {
            **os.environ,
            "FERRY_DATA_DIR": str(data_dir),
            "FERRY_TEMPORAL_PORT": str(free_port()),
            "FERRY_TEMPORAL_UI_PORT": str(free_port()),
            "FERRY_API_PORT": str(free_port()),
            "FERRY_WORKER_HOST": f"test-{free_port()}",
            "PYTHONPATH": str(ROOT),
            **(env or {}),
        }
        self.env.pop("FERRY_URL", None)
        self.env.pop("FERRY_API_TOKEN", None) if "FERRY_API_TOKEN" not in (env or {}) else None
        self.server_flags = server_flags or []
        self.procs: dict[str, subprocess.Popen] = {}
        self.extra_hosts: list[str] = []
        (data_dir / "logs").mkdir(parents=True, exist_ok=True)

    @property
    def settings(self) -> Settings:
        keys = {k[6:].lower(): v for k, v in self.env.items() if k.startswith("FERRY_")}
        return Settings(**keys)

    @property
    def api_url(self) -> str:
        return self.settings.api_url

    def log(self, name: str) -> Path:
        return self.data_dir / "logs" / f"{name}.log"

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None,
               log: Path | None = None) -> subprocess.Popen:
        fh = (log or self.log(name)).open("ab")
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env={**self.env, **(env or {})},
                                stdin=subprocess.DEVNULL, start_new_session=True)
        fh.close()
        self.procs[name] = proc
        return proc

    def start_temporal(self) -> None:
        # A port free_port() found free can be taken before the server binds it (by any
        # outgoing connection's ephemeral port): then pick new ones and start again.
        for attempt in range(3):
            s = self.settings
            proc = self._spawn("temporal", dev_server_command(s, self.server_flags))
            try:
                wait_for(lambda s=s: temporal_ready(s), 60, "Temporal dev server", proc,
                         self.log("temporal"))
                return
            except LaunchError as e:
                if "address already in use" not in str(e) or attempt == 2:
                    raise
                self.procs.pop("temporal", None)
                self.env["FERRY_TEMPORAL_PORT"] = str(free_port())
                self.env["FERRY_TEMPORAL_UI_PORT"] = str(free_port())

    def start_worker(self, name: str = "worker", env: dict[str, str] | None = None) -> None:
        if env and "FERRY_WORKER_HOST" in env:
            self.extra_hosts.append(env["FERRY_WORKER_HOST"])
        log = self.log(name)
        start = log.stat().st_size if log.exists() else 0
        proc = self._spawn(name, [sys.executable, "-m", "worker.main"], env)
        wait_for(lambda: b"ferry worker ready" in log.read_bytes()[start:], 60, name, proc, log)

    def start_api(self, name: str = "api", env: dict[str, str] | None = None,
                  log: Path | None = None) -> str:
        """An API process (more than one: give each a name and its own FERRY_API_PORT);
        its URL. `log`: where its output goes (default: the stack's logs dir)."""
        env = env or {}
        settings = Settings(**{k[6:].lower(): v for k, v in {**self.env, **env}.items()
                               if k.startswith("FERRY_")})
        proc = self._spawn(name, [sys.executable, "-m", "api.main"], env, log)
        headers = self.auth_headers()
        url = settings.api_url
        wait_for(lambda: httpx.get(f"{url}/healthz", headers=headers, timeout=2)
                 .status_code == 200, 60, "API", proc, log or self.log(name))
        return url

    def auth_headers(self) -> dict[str, str]:
        token = self.env.get("FERRY_API_TOKEN")
        return {"Authorization": f"Bearer {token}"} if token else {}

    def start(self) -> FerryStack:
        self.start_temporal()
        self.start_worker()
        self.start_api()
        return self

    def stop_proc(self, name: str, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop(self) -> None:
        for name in [*[n for n in self.procs if n.startswith("api")],
                     *[n for n in self.procs if n.startswith("worker")], "temporal"]:
            self.stop_proc(name)
        self.remove_devboxes()

    def remove_devboxes(self) -> None:
        """DevBoxes outlive their worker by design; a finished test removes its own."""
        hosts = {self.env["FERRY_WORKER_HOST"], *self.extra_hosts}
        remove_devboxes(hosts, self.data_dir)

    # ---------------------------------------------------------------- API helpers

    def cli_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_")}
        env.update({"FERRY_URL": self.api_url, "PYTHONPATH": str(ROOT), **(extra or {})})
        return env

    def cli(self, *args: str, timeout: float = 180, env: dict[str, str] | None = None,
            input: str | None = None) -> subprocess.CompletedProcess:
        """The `ferry` CLI as a user runs it against this stack (no other FERRY_* set)."""
        env = self.cli_env(env)
        return subprocess.run([sys.executable, "-m", "ferry.cli", *args], env=env, input=input,
                              capture_output=True, text=True, timeout=timeout)

    def assert_secret_nowhere(self, run_id: str, secret: str) -> None:
        """Not in the Run's API views, workflow history, logs, artifacts, or any file the
        DevBoxes hold (seen from the host)."""
        with self.client() as c:
            api_text = "".join(c.get(p).text for p in (
                f"/runs/{run_id}", f"/runs/{run_id}/timeline", f"/runs/{run_id}/logs"))
        history = asyncio.run(all_history(self.settings.effective_temporal_address,
                                          f"run-{run_id}"))
        logs = "".join(p.read_text(errors="replace") for p in (self.data_dir / "logs").glob("*"))
        artifacts = "".join(p.read_text(errors="replace") for p in
                            (self.data_dir / "artifacts").rglob("*") if p.is_file())
        for where, text in (("API", api_text), ("history", history), ("logs", logs),
                            ("artifacts", artifacts)):
            assert secret not in text, where
        for f in (self.data_dir / "devboxes").rglob("*"):
            if f.is_file() and not f.is_symlink() and f.name != "disk.img":
                assert secret.encode() not in f.read_bytes(), f

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.api_url, headers=self.auth_headers(), timeout=30)

    def create_run(self, instructions: str, **extra: Any) -> dict[str, Any]:
        with self.client() as c:
            r = c.post("/runs", json={"instructions": instructions, **extra})
            assert r.status_code == 201, r.text
            return r.json()

    def get_run(self, run_id: str) -> dict[str, Any]:
        with self.client() as c:
            r = c.get(f"/runs/{run_id}")
            assert r.status_code == 200, r.text
            return r.json()

    def timeline(self, run_id: str, after: int = 0) -> list[dict[str, Any]]:
        with self.client() as c:
            r = c.get(f"/runs/{run_id}/timeline", params={"after": after})
            assert r.status_code == 200, r.text
            return r.json()["steps"]

    def wait_status(self, run_id: str, statuses: set[str], timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        run: dict[str, Any] = {}
        while time.monotonic() < deadline:
            run = self.get_run(run_id)
            if run["status"] in statuses:
                return run
            time.sleep(0.2)
        raise AssertionError(f"Run {run_id} still {run.get('status')} after {timeout}s: {run}")

    def wait_until(self, check: Callable[[], bool], timeout: float, what: str,
                   every: float = 0.1) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(every)
        raise AssertionError(f"timed out waiting for {what}")

    def sse(self, run_id: str, headers: dict[str, str] | None = None) -> Iterator[tuple[str, str | None, Any]]:
        """(event, id, data) tuples from the Run's event stream, as they arrive."""
        with httpx.Client(base_url=self.api_url, headers=self.auth_headers(), timeout=None) as c:
            with c.stream("GET", f"/runs/{run_id}/events", headers=headers or {}) as r:
                assert r.status_code == 200
                event, eid, data = "message", None, []
                for line in r.iter_lines():
                    if not line:
                        if data:
                            yield event, eid, json.loads("\n".join(data))
                        event, eid, data = "message", None, []
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("id:"):
                        eid = line[3:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].lstrip())


def remove_devboxes(hosts: set[str], data_dir: Path) -> None:
    """Remove the containers of these worker hosts and unmount their DevBox disks."""
    try:
        import docker

        client = docker.from_env()
        for host in hosts:
            for c in client.containers.list(all=True, sparse=True,
                                                 filters={"label": f"ferry.host={host}"}):
                c.remove(force=True)
    except Exception:  # no Docker (local-backend tests): nothing to remove
        pass
    devboxes = (data_dir / "devboxes").resolve()
    gateway = (data_dir / "gateway").resolve()
    with open("/proc/mounts") as f:
        mounts = [line.split()[1] for line in f]
    for mnt in mounts:
        if mnt.startswith((str(devboxes) + "/", str(gateway) + "/")):
            subprocess.run(["umount", "-l", mnt], capture_output=True)


async def history_facts(address: str, workflow_id: str) -> tuple[int, int, int]:
    """(runs in the continue-as-new chain, largest event in bytes, total events)."""
    from temporalio.client import Client

    client = await Client.connect(address)
    runs = [w async for w in client.list_workflows(f"WorkflowId = '{workflow_id}'")]
    biggest = total = 0
    for w in runs:
        history = await client.get_workflow_handle(workflow_id, run_id=w.run_id).fetch_history()
        total += len(history.events)
        biggest = max([biggest, *(ev.ByteSize() for ev in history.events)])
    return len(runs), biggest, total


async def pending_activities(address: str, workflow_id: str) -> int:
    """How many activities a workflow has scheduled or running right now."""
    from temporalio.client import Client

    client = await Client.connect(address)
    desc = await client.get_workflow_handle(workflow_id).describe()
    return len(desc.raw_description.pending_activities)


async def history_length(address: str, workflow_id: str) -> int:
    """Events in the current run of a workflow's history."""
    from temporalio.client import Client

    client = await Client.connect(address)
    return len((await client.get_workflow_handle(workflow_id).fetch_history()).events)


async def all_history(address: str, workflow_id: str) -> str:
    """Every event of every run of a workflow, as JSON text (for secret scans)."""
    client = await Client.connect(address)
    text = []
    async for wf in client.list_workflows(f"WorkflowId = '{workflow_id}'"):
        history = await client.get_workflow_handle(workflow_id, run_id=wf.run_id).fetch_history()
        text.append(history.to_json())
    return "\n".join(text)
