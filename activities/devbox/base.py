"""The DevBox backend contract and the host-side layout every backend shares.

Each DevBox has a control directory on the worker host (`<data>/devboxes/<run>/control`),
seen inside the DevBox as `info.control_dir`. Turn runners write their event streams
there, so the worker reads them as plain files and survives its own restarts.
"""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from importlib import resources
from pathlib import Path

from ferry.schemas import DevBoxInfo
from ferry.settings import Settings

RUNNER_NAME = "ferry-runner"
# Copied into every DevBox's control dir (`bin/` is on the PATH of turn commands).
TOOLS = (RUNNER_NAME, "ferry-ask")


class DevBoxError(Exception):
    """A DevBox could not be launched or used; the message is meant for the user."""


class DevBoxBackend(ABC):
    name: str

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def root_dir(self, run_id: str) -> Path:
        # No ':' (scheduled Run ids have one): Docker's bind syntax splits on it.
        return self.settings.devboxes_dir / run_id.replace(":", "_")

    def host_control_dir(self, run_id: str) -> Path:
        return self.root_dir(run_id) / "control"

    def host_turn_dir(self, run_id: str, turn_id: str) -> Path:
        return self.host_control_dir(run_id) / "turns" / turn_id

    def prepare_control_dir(self, run_id: str) -> Path:
        control = self.host_control_dir(run_id)
        (control / "bin").mkdir(parents=True, exist_ok=True)
        (control / "turns").mkdir(exist_ok=True)
        for tool in TOOLS:
            with resources.as_file(resources.files("activities.devbox") / "bin" / tool) as src:
                shutil.copyfile(src, control / "bin" / tool)
            (control / "bin" / tool).chmod(0o755)
        return control

    @staticmethod
    def runner_command(info: DevBoxInfo, turn_id: str) -> str:
        """Start the runner at most once per turn: the `mkdir` lock makes a retry a no-op."""
        turn = f"{info.control_dir}/turns/{turn_id}"
        return (
            f'mkdir "{turn}/lock" 2>/dev/null || exit 0; '
            f'exec python3 "{info.control_dir}/bin/{RUNNER_NAME}" "{turn}" >>"{turn}/runner.log" 2>&1'
        )

    @abstractmethod
    def launch(self, run_id: str, image: str | None) -> DevBoxInfo:
        """Create (or find, on retry) the DevBox of a Run."""

    @abstractmethod
    def start_turn(self, info: DevBoxInfo, turn_id: str, env: dict[str, str] | None = None) -> None:
        """Start the turn runner detached; safe to call again for the same turn.

        `env` (engine credentials) reaches the runner as process environment only.
        """

    @abstractmethod
    def stop_turn(self, info: DevBoxInfo, turn_id: str) -> None:
        """Terminate a running turn and its commands."""

    @abstractmethod
    def exec(self, info: DevBoxInfo, command: str) -> tuple[int, str]:
        """Run a short shell command in the DevBox and wait: (exit code, output)."""

    def images(self) -> list[str]:
        """DevBox images available on this host (shown in `GET /targets`)."""
        return []

    def hibernate(self, info: DevBoxInfo) -> None:
        """Stop the DevBox's processes during a long pause, keeping its files."""
        return None  # a local directory has nothing to stop

    def wake(self, info: DevBoxInfo) -> None:
        """Start a hibernated DevBox again."""
        return None

    @abstractmethod
    def remove(self, info: DevBoxInfo) -> None:
        """Destroy the DevBox and its files; safe to call again."""

    def remove_host_dir(self, run_id: str) -> None:
        shutil.rmtree(self.root_dir(run_id), ignore_errors=True)
