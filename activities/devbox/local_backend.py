"""Local DevBoxes: a workspace directory and plain subprocesses on the worker host.

For machines without Docker. There is NO isolation: commands run as the worker's
user with the worker's network and files. Documented in docs/devbox.md.
"""

from __future__ import annotations

import os
import signal
import subprocess
from datetime import UTC, datetime

from activities.devbox.base import DevBoxBackend
from ferry.schemas import DevBoxInfo


def _base_env() -> dict[str, str]:
    """What a local turn sees of the worker's environment: no tokens, no settings."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "SHELL", "TMPDIR")
    return {k: os.environ[k] for k in keep if k in os.environ}


class LocalBackend(DevBoxBackend):
    name = "local"

    def launch(self, run_id: str, image: str | None) -> DevBoxInfo:
        control = self.prepare_control_dir(run_id)
        workspace = self.root_dir(run_id) / "workspace"
        workspace.mkdir(parents=True, exist_ok=True)
        return DevBoxInfo(
            run_id=run_id,
            backend=self.name,
            host=self.settings.worker_host,
            task_queue=self.settings.host_task_queue,
            name=f"local-{run_id}",
            image=None,
            workspace=str(workspace),
            control_dir=str(control),
            launched_at=datetime.now(UTC),
        )

    def start_turn(self, info: DevBoxInfo, turn_id: str, env: dict[str, str] | None = None) -> None:
        # A new session, so the runner outlives a killed worker, as a container exec does.
        subprocess.Popen(
            ["sh", "-c", self.runner_command(info, turn_id)],
            cwd=info.workspace,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            env={**_base_env(), "FERRY_RUN_ID": info.run_id, **(env or {})},
        )

    def exec(self, info: DevBoxInfo, command: str) -> tuple[int, str]:
        try:
            proc = subprocess.run(["sh", "-c", command], cwd=info.workspace, capture_output=True,
                                  text=True, timeout=600, env=_base_env())
        except subprocess.TimeoutExpired:
            return 124, "the command timed out after 600 s"
        return proc.returncode, proc.stdout + proc.stderr

    def stop_turn(self, info: DevBoxInfo, turn_id: str) -> None:
        pid_file = self.host_turn_dir(info.run_id, turn_id) / "runner.pid"
        try:
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        except (OSError, ValueError):
            pass

    def remove(self, info: DevBoxInfo) -> None:
        for turn in (self.host_control_dir(info.run_id) / "turns").glob("*"):
            self.stop_turn(info, turn.name)
        self.remove_host_dir(info.run_id)
