"""The DevBox backend contract and the host-side layout every backend shares.

<data>/devboxes/<run>/                 host only: the DevBox never sees these
  keys/box.key                         the DevBox's key: each turn's key, which signs its
                                       runner's events, is derived from it
  git/repo.git                         the host-only repository (clone, snapshots, push)
  scratch/                             host-only temporary files (snapshot bundles)
  disk.img                             the DevBox's own filesystem (see disk.py)
  mnt/                                 what the DevBox sees, on that filesystem:
    workspace/ home/ state/ tmp/ vartmp/   writable by the turn's user
    ferry/in/                          read-only in the DevBox: runner, tools, turn specs,
                                       answers, repository bundles (host -> DevBox)
    ferry/out/                         written by the turn runner only (DevBox -> host):
                                       signed events, command output, logs

The host writes only into `ferry/in` (which the DevBox cannot write) and its host-only
dirs, and reads `ferry/out` through `hostio` (no links followed, sizes capped). It never
reads or writes the workspace: git and artifacts go through `exec` as data.
"""

from __future__ import annotations

import os
import re
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from activities.devbox import hostio
from activities.devbox.events import derive_turn_key, new_key
from ferry.models.hosts import DevBoxInfo
from ferry.settings import Settings

RUNNER_NAME = "ferry-runner"
# Copied into every DevBox's read-only `ferry/in/bin` (on the PATH of turn commands).
TOOLS = (RUNNER_NAME, "ferry-ask", "ferry-workspace")
AGENT_UID = AGENT_GID = 1000
# Warm DevBoxes are named with a '.', which no Run id (RUN_ID_PATTERN) or schedule name can
# hold: nothing a user names can pass for the pool's, or the pool's for a Run's.
WARM_PREFIX = "warm."
BOX_KEY = "box.key"
EXEC_TIMEOUT = 600
MAX_EXEC_OUTPUT = 64 * 1024  # what `exec` keeps of a command's output: its tail


class DevBoxError(Exception):
    """A DevBox could not be launched or used; the message is meant for the user."""


@dataclass(frozen=True)
class DevBoxLayout:
    """Host paths of one DevBox."""

    root: Path

    @property
    def mnt(self) -> Path:
        return self.root / "mnt"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def git(self) -> Path:
        return self.root / "git"

    @property
    def scratch(self) -> Path:
        return self.root / "scratch"

    @property
    def inbox(self) -> Path:
        return self.mnt / "ferry" / "in"

    @property
    def outbox(self) -> Path:
        return self.mnt / "ferry" / "out"

    def user_dir(self, name: str) -> Path:
        return self.mnt / name


# Writable by the turn's user: (dir under mnt/, mode).
USER_DIRS = (("workspace", 0o755), ("home", 0o700), ("state", 0o755), ("tmp", 0o1777),
             ("vartmp", 0o1777))


@dataclass
class ExecResult:
    exit_code: int
    stderr: str
    truncated: bool = False
    timed_out: bool = False


class DevBoxBackend(ABC):
    name: str

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # ------------------------------------------------------------------ host layout

    def layout(self, run_id: str) -> DevBoxLayout:
        # No ':' (scheduled Run ids have one): Docker's bind syntax splits on it.
        return DevBoxLayout(self.settings.devboxes_dir / run_id.replace(":", "_"))

    def root_dir(self, run_id: str) -> Path:
        return self.layout(run_id).root

    def turn_files(self, run_id: str, turn_id: str) -> hostio.Beneath:
        """A turn's events and output, as the runner wrote them (DevBox-written: read only
        through this, which follows no link from the host-created `ferry/out` down)."""
        return hostio.Beneath(self.layout(run_id).outbox, f"turns/{turn_id}")

    def make_host_dirs(self, layout: DevBoxLayout, uid: int | None, gid: int | None) -> None:
        """Create the DevBox's dirs; hand the user dirs to the turn's user (before it runs)."""
        for d in (layout.keys, layout.git, layout.scratch):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        chown = uid is not None and os.geteuid() == 0
        for name, mode in USER_DIRS:
            d = layout.user_dir(name)
            d.mkdir(parents=True, exist_ok=True)
            if chown and uid is not None and gid is not None:
                os.chown(d, uid, gid, follow_symlinks=False)
            # Without root the host cannot hand the dirs over: let any user write them.
            os.chmod(d, mode if chown or uid is None else (mode | 0o777))
        (layout.inbox / "bin").mkdir(parents=True, exist_ok=True)
        (layout.inbox / "turns").mkdir(exist_ok=True)
        layout.outbox.mkdir(parents=True, exist_ok=True)
        os.chmod(layout.mnt / "ferry", 0o755)
        os.chmod(layout.inbox, 0o755)
        os.chmod(layout.outbox, 0o700 if chown or uid is None else 0o777)
        for tool in TOOLS:
            with resources.as_file(resources.files("activities.devbox") / "bin" / tool) as src:
                self.write_in(layout, f"bin/{tool}", Path(src).read_bytes(), mode=0o755)

    def write_in(self, layout: DevBoxLayout, rel: str, data: bytes, mode: int = 0o644) -> None:
        """Write host -> DevBox data into `ferry/in` (read-only in the DevBox), atomically."""
        dest = layout.inbox / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        os.replace(tmp, dest)

    def box_key(self, run_id: str) -> str:
        """The DevBox's key, made once and kept where the DevBox cannot see it: the runner
        that serves the DevBox's turns holds it and derives each turn's key from it.

        Written whole to a temporary file and linked into place, so no reader ever sees
        it half-written (an empty key would make every turn key predictable)."""
        keys = self.layout(run_id).keys
        keys.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = keys / BOX_KEY
        if not path.exists():
            tmp = keys / f".{BOX_KEY}.{os.getpid()}.{new_key()[:8]}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(new_key())
                    f.flush()
                    os.fsync(f.fileno())
                try:
                    os.link(tmp, path)  # the first writer wins; a racer reads the winner's
                except FileExistsError:
                    pass
            finally:
                tmp.unlink(missing_ok=True)
        key = path.read_text().strip()
        if not re.fullmatch(r"[0-9a-f]{64}", key):
            raise RuntimeError(f"the DevBox key of Run {run_id} is damaged ({path}): "
                               "its turns cannot be authenticated")
        return key

    def turn_key(self, run_id: str, turn_id: str) -> str:
        """The key that signs a turn's events (a turn started before keys were derived
        kept its own file)."""
        try:
            return (self.layout(run_id).keys / f"{turn_id}.key").read_text().strip()
        except FileNotFoundError:
            return derive_turn_key(self.box_key(run_id), turn_id)

    def stop_turn(self, info: DevBoxInfo, turn_id: str) -> None:
        """Ask the turn's runner to end the turn (it watches for this file)."""
        self.write_in(self.layout(info.run_id), f"turns/{turn_id}/stop", b"stop\n")

    def remove_host_dir(self, run_id: str) -> None:
        root = self.root_dir(run_id)
        shutil.rmtree(root, ignore_errors=True)
        try:  # the link a claimed warm DevBox left under its old name
            for p in self.settings.devboxes_dir.iterdir():
                if p.is_symlink() and os.readlink(p) == root.name:
                    p.unlink()
        except OSError:
            pass

    # ------------------------------------------------------------------ the contract

    @abstractmethod
    def launch(self, run_id: str, image: str | None, run_as_root: bool = False,
               network: str | None = None) -> DevBoxInfo:
        """Create (or find, on retry) the DevBox of a Run."""

    @abstractmethod
    def start_turn(self, info: DevBoxInfo, turn_id: str, env: dict[str, str] | None = None,
                   fallback: bool = False) -> str | None:
        """Start the turn runner detached; safe to call again for the same turn (`fallback`:
        by the slow, sure way, when a first start showed no sign of life). Returns why the
        DevBox cannot run it (its container died), or None.

        `env` (the turn's gateway token and settings) reaches the runner only: as its
        process environment, or a file only root reads in the DevBox.
        """

    @abstractmethod
    def exec(self, info: DevBoxInfo, argv: list[str], timeout: int = EXEC_TIMEOUT,
             self_timed: bool = False) -> tuple[int, str]:
        """Run a program in the DevBox as the turn's user and wait: (exit code, the last
        MAX_EXEC_OUTPUT bytes of its output). Exit code 124 when it did not finish within
        `timeout` seconds. `self_timed`: the program (Ferry's own tool) enforces the
        timeout itself, given as FERRY_TOOL_TIMEOUT."""

    @abstractmethod
    def exec_stream(self, info: DevBoxInfo, argv: list[str], write: Callable[[bytes], object],
                    cap: int, timeout: int = EXEC_TIMEOUT, self_timed: bool = False) -> ExecResult:
        """Run a program in the DevBox as the turn's user, streaming at most `cap` bytes of
        its stdout into `write` (what it prints is data, never trusted); gives up after
        `timeout` seconds (`timed_out`)."""

    def images(self) -> list[str]:
        """DevBox images available on this host (shown in `GET /targets`)."""
        return []

    def hibernate(self, info: DevBoxInfo) -> None:
        """Stop the DevBox's processes during a long pause, keeping its files."""
        return None  # a local directory has nothing to stop

    def wake(self, info: DevBoxInfo) -> None:
        """Start a hibernated DevBox again."""
        return None

    def death(self, info: DevBoxInfo) -> str | None:
        """Why the DevBox stopped without Ferry stopping it, if it did (None: alive)."""
        return None  # a local directory cannot die

    def run_ids(self) -> list[str]:
        """Runs with a DevBox (container or host directory) on this host, for the reaper."""
        base = self.settings.devboxes_dir
        try:
            # Links are a warm DevBox's old name; `warm.*` directories are the pool's.
            return sorted(p.name for p in base.iterdir() if p.is_dir() and not p.is_symlink()
                          and not p.name.startswith(WARM_PREFIX))
        except OSError:
            return []

    def devbox_counts(self) -> dict[str, int]:
        """This host's DevBoxes by state (live, hibernated, warm), for the metrics."""
        return {"live": len(self.run_ids()), "hibernated": 0, "warm": 0}

    def discard(self, run_id: str) -> None:
        """Remove whatever this host holds for a Run, knowing only its id (the reaper)."""
        self.remove_host_dir(run_id)

    @abstractmethod
    def remove(self, info: DevBoxInfo) -> None:
        """Destroy the DevBox and its files; safe to call again."""
