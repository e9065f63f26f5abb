"""Local DevBoxes: directories and plain subprocesses on the worker host.

For machines without Docker. There is NO isolation: commands run as the worker's
user with the worker's network and files (docs/devbox.md, docs/security.md). The
layout, the signed event stream and the host's no-follow reads are the same as for
Docker DevBoxes; only the sandbox is missing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from activities.devbox.base import EXEC_TIMEOUT, RUNNER_NAME, DevBoxBackend, DevBoxError, ExecResult
from activities.devbox.events import KEY_ENV
from ferry.models.hosts import DevBoxInfo

MAX_STDERR = 4000


def _base_env() -> dict[str, str]:
    """What a local turn sees of the worker's environment: no tokens, no settings."""
    keep = ("PATH", "LANG", "LC_ALL", "TZ", "USER", "SHELL")
    return {k: os.environ[k] for k in keep if k in os.environ}


class LocalBackend(DevBoxBackend):
    name = "local"

    def launch(self, run_id: str, image: str | None, run_as_root: bool = False,
               network: str | None = None) -> DevBoxInfo:
        layout = self.layout(run_id)
        self.make_host_dirs(layout, None, None)
        return DevBoxInfo(
            run_id=run_id, backend=self.name, host=self.settings.worker_host,
            task_queue=self.settings.host_task_queue, name=f"local-{run_id}", image=None,
            workspace=str(layout.user_dir("workspace")), in_dir=str(layout.inbox),
            out_dir=str(layout.outbox), state_dir=str(layout.user_dir("state")),
            home=str(layout.user_dir("home")), user="worker", uid=None, gid=None,
            network="open", launched_at=datetime.now(UTC))

    def _env(self, info: DevBoxInfo) -> dict[str, str]:
        return {**_base_env(), "FERRY_RUN_ID": info.run_id, "HOME": info.home or "",
                "TMPDIR": str(self.layout(info.run_id).user_dir("tmp"))}

    def start_turn(self, info: DevBoxInfo, turn_id: str, env: dict[str, str] | None = None,
                   fallback: bool = False) -> str | None:
        key = self.turn_key(info.run_id, turn_id)
        # A new session, so the runner outlives a killed worker, as a container exec does.
        subprocess.Popen(
            ["python3", "-I", f"{info.in_dir}/bin/{RUNNER_NAME}", "start",
             f"{info.in_dir}/turns/{turn_id}/spec.json"],
            cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
            env={**self._env(info), KEY_ENV: key, **(env or {})},
        )
        return None

    def exec(self, info: DevBoxInfo, argv: list[str], timeout: int = EXEC_TIMEOUT,
             self_timed: bool = False) -> tuple[int, str]:
        try:
            proc = subprocess.run(argv, cwd=info.workspace, capture_output=True, timeout=timeout,
                                  env=self._env(info), stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return 124, f"the command timed out after {timeout} s"
        except OSError as e:
            return 127, str(e)
        return proc.returncode, (proc.stdout + proc.stderr).decode("utf-8", "replace")

    def exec_stream(self, info: DevBoxInfo, argv: list[str], write: Callable[[bytes], object],
                    cap: int, timeout: int = EXEC_TIMEOUT, self_timed: bool = False) -> ExecResult:
        try:
            proc = subprocess.Popen(argv, cwd=info.workspace, env=self._env(info),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)
        except OSError as e:
            raise DevBoxError(f"could not run {argv[0]}: {e}") from e
        assert proc.stdout is not None and proc.stderr is not None
        written, truncated = 0, False
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            for chunk in iter(lambda: proc.stdout.read(65536), b""):  # type: ignore[union-attr]
                if written + len(chunk) > cap:
                    truncated = True
                    proc.kill()
                    break
                write(chunk)
                written += len(chunk)
            err = proc.stderr.read(MAX_STDERR).decode("utf-8", "replace")
            code = proc.wait()
        finally:
            timer.cancel()
        if not truncated and code == -signal.SIGKILL:
            return ExecResult(exit_code=124, stderr=err, timed_out=True)
        return ExecResult(exit_code=-1 if truncated else code, stderr=err, truncated=truncated)

    def remove(self, info: DevBoxInfo) -> None:
        turns = self.layout(info.run_id).inbox / "turns"
        if turns.is_dir():
            for turn in turns.iterdir():
                self.stop_turn(info, turn.name)
        self.remove_host_dir(info.run_id)
