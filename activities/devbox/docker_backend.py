"""Docker DevBoxes: one locked-down container per Run, its writable state on its own disk.

The container runs as root only for Ferry's turn runner, which holds exactly three
capabilities (SETUID/SETGID to start commands as the turn's user, KILL to stop them);
every turn command, tool call and in-DevBox git command runs as the unprivileged agent
user (uid 1000), or — when the Run or image asks for root — as uid 0 with a container's
usual capabilities but fewer than the runner's. For agent turns the root filesystem is
read-only, so all writes land on the DevBox's quota filesystem (see disk.py and base.py
for the layout).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import stat
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.types import Mount

from activities.devbox import disk, docker_exec
from activities.devbox.base import (
    AGENT_GID,
    AGENT_UID,
    EXEC_TIMEOUT,
    MAX_EXEC_OUTPUT,
    RUNNER_NAME,
    WARM_PREFIX,
    DevBoxBackend,
    DevBoxError,
    DevBoxLayout,
    ExecResult,
)
from activities.devbox.docker_exec import Ending
from activities.devbox.events import BOX_KEY_ENV, KEY_ENV
from activities.gateway.paths import DEVBOX_SOCKET_DIR, socket_dir
from ferry.models.hosts import DevBoxInfo

log = logging.getLogger("ferry.devbox.docker")

IN, OUT, STATE, HOME, WORKSPACE = "/ferry/in", "/ferry/out", "/ferry/state", "/home/agent", "/workspace"
LABEL_RUN = "ferry.run"
LABEL_HOST = "ferry.host"
# Which stack (data dir) made it: two stacks on one Docker engine never touch each other's.
LABEL_STACK = "ferry.stack"
LABEL_USER = "ferry.user"
LABEL_NETWORK = "ferry.network"
LABEL_WARM = "ferry.warm"  # started for the host's warm pool (claimed once renamed)
# Written by the host (in the DevBox's host directory, which the DevBox cannot reach) once
# a warm DevBox is initialised: only then may a Run claim it.
WARM_READY = "warm-ready"
TURN_FIFO = "turns.fifo"  # in `ferry/in`: the host names each turn to start on it
IMAGE_USER_LABEL = "ferry.devbox.user"  # an image asks for root turns with `=root`
RUNNER_CAPS = ["SETUID", "SETGID", "KILL"]
# Root turns get what a root process in a Docker container usually has (apt, dpkg, chown
# work), minus NET_RAW and MKNOD. The runner additionally holds WAKE_ALARM, a capability
# no turn has: the kernel lets a process trace (or read the environment of) another of
# the same uid only if it holds all of that one's capabilities, so root turns cannot
# reach the runner's key.
ROOT_TURN_CAPS = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
                  "NET_BIND_SERVICE", "SYS_CHROOT", "SETFCAP", "AUDIT_WRITE"]
GUARD_CAP = "WAKE_ALARM"
MAX_STDERR = 4000
KILL_GRACE = 5  # seconds between `timeout`'s TERM and its KILL
TIMED_OUT = 124  # `timeout`'s exit code (and ferry-workspace's when it times itself)
TOOL_TIMEOUT_ENV = "FERRY_TOOL_TIMEOUT"


def container_name(run_id: str) -> str:
    return f"ferry-{run_id.replace(':', '_')}"


def _mounts(layout: DevBoxLayout) -> list[Mount]:
    bind = [(WORKSPACE, "workspace"), (HOME, "home"), (STATE, "state"), ("/tmp", "tmp"),
            ("/var/tmp", "vartmp")]
    mounts = [Mount(target, str(layout.user_dir(src)), type="bind") for target, src in bind]
    return mounts + [
        Mount(IN, str(layout.inbox), type="bind", read_only=True),
        Mount(OUT, str(layout.outbox), type="bind"),
        # Login shells (`bash -lc`, as Codex runs commands) reset PATH: ferry-ask on the
        # standard one too, read-only.
        Mount("/usr/local/bin/ferry-ask", str(layout.inbox / "bin" / "ferry-ask"), type="bind",
              read_only=True),
    ]


class DockerBackend(DevBoxBackend):
    name = "docker"

    def __init__(self, settings) -> None:
        super().__init__(settings)
        try:
            self.client = docker.from_env()
            self.client.ping()
        except DockerException as e:
            raise DevBoxError(f"no Docker engine answers on this worker host: {e}") from e
        self.stack = hashlib.sha256(str(settings.data_path).encode()).hexdigest()[:16]
        self.quota_problem = None if int(settings.devbox_disk) > 0 else "FERRY_DEVBOX_DISK is 0"
        self.quota_problem = self.quota_problem or disk.quota_supported()
        if self.quota_problem:
            log.warning("DevBoxes on this host get no disk quota: %s", self.quota_problem)

    # ------------------------------------------------------------------ lifecycle

    def launch(self, run_id: str, image: str | None, run_as_root: bool = False,
               network: str | None = None) -> DevBoxInfo:
        image = image or self.settings.devbox_image
        name = container_name(run_id)
        layout = self.layout(run_id)
        try:
            container = self.client.containers.get(name)
        except NotFound:
            if image == self.settings.devbox_image and not run_as_root and \
                    (network or self.settings.default_network) == self.settings.default_network:
                claimed = self._claim_warm(run_id)
                if claimed is not None:
                    return self._info(run_id, claimed, image)
            config = self._ensure_image(image)
            root = run_as_root or (config.get("Labels") or {}).get(IMAGE_USER_LABEL) == "root"
            container = self._create(run_id, name, image, layout, root,
                                     sorted(config.get("Volumes") or {}),
                                     network or self.settings.default_network)
        self._finish_claim(run_id, container)
        if container.status != "running":
            self._remount(run_id)
            container.start()
        info = self._info(run_id, container, image)
        try:
            self._init(info, image)
        except DevBoxError:
            self._discard(run_id, name)  # the Run fails before it owns a DevBox
            raise
        return info

    def _info(self, run_id: str, container, image: str) -> DevBoxInfo:
        root = container.labels.get(LABEL_USER) == "root"
        mode = container.labels.get(LABEL_NETWORK, "none")
        uid, gid = (0, 0) if root else (AGENT_UID, AGENT_GID)
        return DevBoxInfo(
            run_id=run_id, backend=self.name, host=self.settings.worker_host,
            task_queue=self.settings.host_task_queue, name=container_name(run_id),
            container_id=container.id,
            image=image, workspace=WORKSPACE, in_dir=IN, out_dir=OUT, state_dir=STATE,
            home=HOME, user="root" if root else "agent", uid=uid, gid=gid,
            caps=ROOT_TURN_CAPS if root else [],
            disk_bytes=None if self.quota_problem else int(self.settings.devbox_disk),
            network=mode if mode in ("none", "gateway", "open") else "none",
            launched_at=datetime.now(UTC))

    # ------------------------------------------------------------------ warm pool

    _claim_lock = threading.Lock()

    def _mine(self) -> list[str]:
        """Label filters of this host's DevBoxes, of this stack only."""
        return [f"{LABEL_HOST}={self.settings.worker_host}", f"{LABEL_STACK}={self.stack}"]

    def warm_boxes(self) -> list[str]:
        """Names of this host's warm DevBoxes no Run has claimed yet (ready or starting)."""
        found = self.client.containers.list(all=True, sparse=True, filters={"label": [
            *self._mine(), LABEL_WARM]})
        names = [(c.attrs.get("Names") or ["/"])[0].lstrip("/") for c in found]
        return sorted(n for n in names if n.startswith(container_name(WARM_PREFIX)))

    def start_warm(self) -> str:
        """Start one DevBox for the pool: the default image, network and user, no Run yet."""
        key = WARM_PREFIX + secrets.token_hex(5)
        image = self.settings.devbox_image
        config = self._ensure_image(image)
        root = (config.get("Labels") or {}).get(IMAGE_USER_LABEL) == "root"
        container = self._create(key, container_name(key), image, self.layout(key), root,
                                 sorted(config.get("Volumes") or {}),
                                 self.settings.default_network, warm=True)
        info = self._info(key, container, image)
        try:
            self._init(info, image)
        except DevBoxError:
            with self._claim_lock:
                self._discard(key, container_name(key))
            raise
        self._serve(info)
        (self.layout(key).root / WARM_READY).touch()
        return key

    def _claim_warm(self, run_id: str):
        """Take a warm DevBox for this Run: rename its container and its host directory.

        The running container keeps its mounts through the rename (the kernel mounted the
        directories, not their names); a link from the old name makes a restart after
        hibernation find them too. None when the pool is empty."""
        with self._claim_lock:
            for name in self.warm_boxes():
                key = name.removeprefix(container_name(""))
                ready = self.layout(key).root / WARM_READY
                if not ready.is_file():
                    continue  # still starting
                try:
                    container = self.client.containers.get(name)
                    if container.status != "running":
                        continue  # the pool replaces it
                    ready.unlink()
                    container.rename(container_name(run_id))
                except (NotFound, APIError):
                    continue
                self._finish_claim(run_id, container)
                container.reload()
                log.info("Run %s claimed warm DevBox %s", run_id, key)
                return container
        return None

    def prune_warm(self) -> None:
        """Remove warm DevBoxes that stopped or never became ready (a worker stopped while
        starting them: called before this worker starts any), and pool directories with no
        container."""
        with self._claim_lock:
            self._prune_warm()

    def _prune_warm(self) -> None:
        # A claimed warm DevBox's directory is the Run's (or, mid-claim, named by its label).
        claimed = {c.labels.get(LABEL_RUN) for c in self.client.containers.list(
            all=True, filters={"label": [*self._mine(), LABEL_WARM]})}
        live = set()
        for name in self.warm_boxes():
            key = name.removeprefix(container_name(""))
            try:
                running = self.client.containers.get(name).status == "running"
            except NotFound:
                continue
            if running and (self.layout(key).root / WARM_READY).is_file():
                live.add(key)
            else:
                self._discard(key, name)
        try:
            stale = [p.name for p in self.settings.devboxes_dir.iterdir()
                     if p.name.startswith(WARM_PREFIX) and not p.is_symlink()
                     and p.name not in live and p.name not in claimed]
        except OSError:
            stale = []
        for key in stale:
            self._discard(key, container_name(key))

    def _finish_claim(self, run_id: str, container) -> None:
        """Move a claimed warm DevBox's directory to the Run's name (also after a worker
        died between renaming the container and the directory)."""
        key = container.labels.get(LABEL_RUN, "")
        if key == run_id or not key.startswith(WARM_PREFIX):
            return
        old, new = self.layout(key).root, self.layout(run_id).root
        if new.exists() or old.is_symlink() or not old.is_dir():
            return
        os.rename(old, new)
        os.symlink(new.name, old)

    def drain_warm(self) -> None:
        """Remove the pool's unclaimed DevBoxes (the worker is stopping)."""
        with self._claim_lock:
            for name in self.warm_boxes():
                self._discard(name.removeprefix(container_name("")), name)

    def _create(self, run_id: str, name: str, image: str, layout: DevBoxLayout, root: bool,
                volumes: list[str], network: str, warm: bool = False):
        layout.root.mkdir(parents=True, exist_ok=True)
        if not self.quota_problem:
            try:
                disk.mount_quota_fs(layout.root, layout.mnt, int(self.settings.devbox_disk))
            except disk.DiskError as e:
                raise DevBoxError(f"could not create the DevBox's disk: {e}") from e
        uid, gid = (0, 0) if root else (AGENT_UID, AGENT_GID)
        self.make_host_dirs(layout, uid, gid)
        # An image's VOLUMEs would be Docker volumes on the host's disk, outside the quota:
        # each gets a directory of the DevBox's own disk instead.
        extra = []
        for i, path in enumerate(volumes[:32]):
            source = layout.user_dir("volumes") / str(i)
            source.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                os.chown(source, uid, gid, follow_symlinks=False)
            extra.append(Mount(path, str(source), type="bind"))
        kwargs = {}
        if self.settings.devbox_runtime:
            kwargs["runtime"] = self.settings.devbox_runtime
        try:
            return self.client.containers.run(
                image, entrypoint=["sleep", "infinity"], command=[], name=name, detach=True,
                init=True, user="0:0",
                labels={LABEL_RUN: run_id, LABEL_HOST: self.settings.worker_host,
                        LABEL_STACK: self.stack,
                        LABEL_USER: "root" if root else "agent", LABEL_NETWORK: network,
                        **({LABEL_WARM: "1"} if warm else {})},
                working_dir=WORKSPACE,
                # Only `open` has an interface of its own; `gateway` reaches the worker's
                # gateway and proxy through Unix sockets (activities/gateway/service.py).
                network_mode="bridge" if network == "open" else "none",
                privileged=False,
                cap_drop=["ALL"], cap_add=[*ROOT_TURN_CAPS, GUARD_CAP] if root else RUNNER_CAPS,
                security_opt=["no-new-privileges"],
                # Agent turns cannot write outside their own disk; root turns may install
                # packages into the image's filesystem.
                read_only=not root,
                tmpfs={"/run": "rw,nosuid,nodev,size=16m"},
                nano_cpus=int(self.settings.devbox_cpus * 1e9),
                mem_limit=self.settings.devbox_memory,
                pids_limit=self.settings.devbox_pids,
                mounts=_mounts(layout) + extra + self._gateway_mounts(network),
                # An image's HEALTHCHECK would run as root with the runner's capabilities.
                healthcheck={"test": ["NONE"]},
                environment={"FERRY_RUN_ID": run_id, "HOME": HOME, "TMPDIR": "/tmp",
                             "USER": "root" if root else "agent",
                             "LOGNAME": "root" if root else "agent"},
                **kwargs,
            )
        except APIError as e:
            if e.status_code == 409:  # created concurrently by a retry
                return self.client.containers.get(name)
            raise DevBoxError(f"Docker refused to start the DevBox: {e.explanation}") from e

    def _gateway_mounts(self, network: str) -> list[Mount]:
        if network == "none":
            return []
        sock = socket_dir(self.settings)
        sock.mkdir(parents=True, exist_ok=True)
        return [Mount(DEVBOX_SOCKET_DIR, str(sock), type="bind", read_only=True)]

    def _init(self, info: DevBoxInfo, image: str) -> None:
        """Ferry's tools are Python scripts: say so now rather than at the first turn (and
        give git a default identity for the agent's own commits)."""
        code, output = self.exec(info, ["python3", "-I", f"{info.in_dir}/bin/ferry-workspace", "init"],
                                 timeout=60)
        if code != 0:
            raise DevBoxError(f"DevBox image {image!r} has no usable python3 (Ferry's turn runner "
                              f"needs python3 with its standard library): {output.strip()[-200:]}")

    def _ensure_image(self, image: str) -> dict:
        """The image's config (labels, volumes); pulls it when missing."""
        try:
            return self.client.images.get(image).attrs.get("Config") or {}
        except ImageNotFound:
            pass
        try:
            return self.client.images.pull(image).attrs.get("Config") or {}
        except (APIError, ImageNotFound) as e:
            reason = getattr(e, "explanation", None) or str(e)
            raise DevBoxError(
                f"DevBox image {image!r} is not on worker host {self.settings.worker_host!r} and "
                f"could not be pulled ({reason[:200]}); build it with `ferry devbox build-image` "
                "or name an image that exists"
            ) from e

    def _container(self, info: DevBoxInfo):
        try:
            return self.client.containers.get(info.name)
        except NotFound as e:
            raise DevBoxError(f"DevBox container {info.name} is gone") from e

    def hibernate(self, info: DevBoxInfo) -> None:
        self._container(info).stop(timeout=5)

    def wake(self, info: DevBoxInfo) -> None:
        container = self._container(info)
        if container.status != "running":
            self._remount(info.run_id)
            container.start()

    def _remount(self, run_id: str) -> None:
        """After a host reboot the DevBox's disk is no longer mounted: mount it again."""
        layout = self.layout(run_id)
        if not self.quota_problem and (layout.root / disk.IMAGE).exists():
            try:
                disk.mount_quota_fs(layout.root, layout.mnt, int(self.settings.devbox_disk))
            except disk.DiskError as e:
                raise DevBoxError(f"could not mount the DevBox's disk again: {e}") from e

    def is_running(self, info: DevBoxInfo) -> bool:
        try:
            return self._container(info).status == "running"
        except DevBoxError:
            return False

    def death(self, info: DevBoxInfo) -> str | None:
        try:
            container = self.client.containers.get(info.name)
        except NotFound:
            return "the DevBox container is gone (it was removed outside Ferry)"
        if container.status in ("running", "created", "restarting"):
            return None
        state = container.attrs.get("State") or {}
        if state.get("OOMKilled"):
            return "the DevBox container ran out of memory and was killed"
        return f"the DevBox container stopped unexpectedly (exit {state.get('ExitCode')})"

    def run_ids(self) -> list[str]:
        # By container name: a claimed warm DevBox keeps the pool's label but takes the
        # Run's name. Unclaimed warm DevBoxes belong to the pool.
        ids = set(super().run_ids())
        prefix = container_name("")
        for c in self.client.containers.list(all=True, sparse=True, filters={
                "label": self._mine()}):
            name = (c.attrs.get("Names") or ["/"])[0].lstrip("/")
            if name.startswith(prefix) and not name.startswith(container_name(WARM_PREFIX)):
                ids.add(name.removeprefix(prefix))
        return sorted(ids)

    def devbox_counts(self) -> dict[str, int]:
        counts = {"live": 0, "hibernated": 0, "warm": 0}
        for c in self.client.containers.list(all=True, sparse=True, filters={
                "label": self._mine()}):
            name = (c.attrs.get("Names") or ["/"])[0].lstrip("/")
            if name.startswith(container_name(WARM_PREFIX)):
                counts["warm"] += 1
            elif name.startswith(container_name("")):
                counts["live" if c.attrs.get("State") == "running" else "hibernated"] += 1
        return counts

    def discard(self, run_id: str) -> None:
        self._discard(run_id, container_name(run_id))

    def remove(self, info: DevBoxInfo) -> None:
        self._discard(info.run_id, info.name)

    def _discard(self, run_id: str, name: str) -> None:
        try:
            self.client.containers.get(name).remove(force=True, v=True)
        except NotFound:
            pass
        layout = self.layout(run_id)
        try:
            disk.unmount_quota_fs(layout.root, layout.mnt)
        except disk.DiskError as e:
            log.warning("could not unmount %s: %s", layout.mnt, e)
        self.remove_host_dir(run_id)

    # ------------------------------------------------------------------ turns and execs

    def start_turn(self, info: DevBoxInfo, turn_id: str, env: dict[str, str] | None = None,
                   fallback: bool = False) -> str | None:
        """Start the turn (a no-op if it started already): by a line to the DevBox's turn
        server when one listens, else by `docker exec` (which also starts a server for later
        turns: a new, woken or upgraded DevBox's first turn; a warm one has its server
        already). The death of the container if it is dead."""
        layout = self.layout(info.run_id)
        # The turn's environment (its gateway token) is root's only in the DevBox: the
        # agent user cannot read it.
        self.write_in(layout, f"turns/{turn_id}/env.json", json.dumps(env or {}).encode(),
                      mode=0o600)
        if not fallback and self._tell_server(layout, turn_id):
            return None
        died = self.death(info)
        if died:
            return died
        try:
            self.client.api.exec_start(self.client.api.exec_create(
                info.name, ["python3", "-I", f"{info.in_dir}/bin/{RUNNER_NAME}", "start",
                            f"{info.in_dir}/turns/{turn_id}/spec.json"],
                user="0:0", workdir="/",
                environment={KEY_ENV: self.turn_key(info.run_id, turn_id), **(env or {})})["Id"],
                detach=True)
        except APIError as e:
            raise DevBoxError(f"could not start the turn in the DevBox: {e.explanation}") from e
        # The server for later turns starts beside this one, not before it: a fresh DevBox's
        # first turn is not slowed by it.
        threading.Thread(target=self._serve, args=(info,), daemon=True).start()
        return None

    @staticmethod
    def _tell_server(layout: DevBoxLayout, turn_id: str) -> bool:
        """Name the turn to the DevBox's turn server; False if none listens."""
        try:
            fd = os.open(layout.inbox / TURN_FIFO,
                         os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:  # ENXIO: no reader; ENOENT: a DevBox from before servers
            return False
        try:
            if not stat.S_ISFIFO(os.fstat(fd).st_mode):
                return False
            os.write(fd, turn_id.encode() + b"\n")  # under PIPE_BUF: one atomic write
            return True
        except OSError:  # EAGAIN: the pipe is full (a server that stopped reading)
            return False
        finally:
            os.close(fd)

    def _serve(self, info: DevBoxInfo) -> None:
        """Start the DevBox's turn server (it exits at once if one already runs)."""
        layout = self.layout(info.run_id)
        try:
            os.mkfifo(layout.inbox / TURN_FIFO, 0o600)
        except FileExistsError:
            pass
        except OSError as e:  # the DevBox's disk is gone: its turns will say so
            log.warning("could not make the turn FIFO of %s: %s", info.name, e)
            return
        try:
            self.client.api.exec_start(self.client.api.exec_create(
                info.name, ["python3", "-I", f"{info.in_dir}/bin/{RUNNER_NAME}", "serve",
                            f"{info.in_dir}/{TURN_FIFO}"],
                user="0:0", workdir="/",
                environment={BOX_KEY_ENV: self.box_key(info.run_id)})["Id"], detach=True)
        except APIError as e:  # turns still start, by `docker exec`
            log.warning("could not start the turn server in %s: %s", info.name, e.explanation)

    def _as_turn_user(self, info: DevBoxInfo, argv: list[str]) -> tuple[list[str], str]:
        if info.uid == 0:  # root turns: uid 0, with fewer capabilities than the runner
            argv = ["python3", "-I", f"{info.in_dir}/bin/{RUNNER_NAME}", "exec", "--caps",
                    ",".join(info.caps), "--", *argv]
        return argv, f"{info.uid}:{info.gid}"

    def _run(self, info: DevBoxInfo, argv: list[str], timeout: int,
             on_out: Callable[[bytes], bool], on_err: Callable[[bytes], object],
             self_timed: bool = False) -> tuple[Ending, int | None]:
        """Run argv as the turn's user; `timeout` kills its process group in the DevBox
        (or, `self_timed`, the program times itself from FERRY_TOOL_TIMEOUT: Ferry's own
        tools, which then hold their stdout alone), and the host stops reading a little
        later whatever the DevBox does."""
        env = {TOOL_TIMEOUT_ENV: str(timeout)} if self_timed else None
        if not self_timed:
            argv = ["timeout", "-k", str(KILL_GRACE), str(timeout), *argv]
        argv, user = self._as_turn_user(info, argv)
        api = self.client.api
        try:
            exec_id = api.exec_create(self._container(info).id, argv, user=user,
                                      workdir=info.workspace, environment=env)["Id"]
            sock = api.exec_start(exec_id, socket=True)
        except APIError as e:
            raise DevBoxError(f"could not run a command in the DevBox: {e.explanation}") from e
        ending = docker_exec.pump(sock, time.monotonic() + timeout + 2 * KILL_GRACE,
                                  on_out, on_err)
        if ending != "ended":
            return ending, None
        try:
            code = api.exec_inspect(exec_id).get("ExitCode")
        except APIError:
            code = None
        return ending, code

    def exec(self, info: DevBoxInfo, argv: list[str], timeout: int = EXEC_TIMEOUT,
             self_timed: bool = False) -> tuple[int, str]:
        tail = bytearray()

        def keep(data: bytes) -> bool:
            tail.extend(data)
            del tail[:-MAX_EXEC_OUTPUT]
            return True

        ending, code = self._run(info, argv, timeout, keep, keep, self_timed)
        output = tail.decode("utf-8", "replace")
        if ending == "deadline" or code in (None, TIMED_OUT):
            return TIMED_OUT, f"{output}\n[the command did not finish within {timeout} s]"
        return code, output

    def exec_stream(self, info: DevBoxInfo, argv: list[str], write: Callable[[bytes], object],
                    cap: int, timeout: int = EXEC_TIMEOUT, self_timed: bool = False) -> ExecResult:
        written = 0
        err = bytearray()

        def out(data: bytes) -> bool:
            nonlocal written
            if written + len(data) > cap:
                return False
            write(data)
            written += len(data)
            return True

        def keep_err(data: bytes) -> None:
            if len(err) < MAX_STDERR:
                err.extend(data[:MAX_STDERR - len(err)])

        ending, code = self._run(info, argv, timeout, out, keep_err, self_timed)
        stderr = err.decode("utf-8", "replace")
        if ending == "stopped":
            return ExecResult(exit_code=-1, stderr=stderr, truncated=True)
        if ending == "deadline" or code in (None, TIMED_OUT):
            return ExecResult(exit_code=TIMED_OUT, stderr=f"{stderr}\n[the command did not finish "
                              f"within {timeout} s]", timed_out=True)
        return ExecResult(exit_code=code, stderr=stderr)

    def images(self) -> list[str]:
        tags = {tag.removesuffix(":latest") for image in
                self.client.images.list(filters={"label": "ferry.devbox"}) for tag in image.tags}
        return sorted(tags | ({self.settings.devbox_image} if self._has(self.settings.devbox_image)
                              else set()))

    def _has(self, image: str) -> bool:
        try:
            self.client.images.get(image)
            return True
        except ImageNotFound:
            return False
