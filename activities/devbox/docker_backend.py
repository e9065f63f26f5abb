"""Docker DevBoxes: one unprivileged, resource-limited container per Run."""

from __future__ import annotations

from datetime import UTC, datetime

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

from activities.devbox.base import DevBoxBackend, DevBoxError
from ferry.schemas import DevBoxInfo

CONTROL_MOUNT = "/ferry"
WORKSPACE = "/workspace"
LABEL_RUN = "ferry.run"
LABEL_HOST = "ferry.host"


def container_name(run_id: str) -> str:
    return f"ferry-{run_id.replace(':', '_')}"


class DockerBackend(DevBoxBackend):
    name = "docker"

    def __init__(self, settings) -> None:
        super().__init__(settings)
        try:
            self.client = docker.from_env()
            self.client.ping()
        except DockerException as e:
            raise DevBoxError(f"no Docker engine answers on this worker host: {e}") from e

    def launch(self, run_id: str, image: str | None) -> DevBoxInfo:
        image = image or self.settings.devbox_image
        name = container_name(run_id)
        control = self.prepare_control_dir(run_id)
        # The workspace lives on the host too, so git runs there with the worker's credentials.
        workspace = self.root_dir(run_id) / "workspace"
        workspace.mkdir(parents=True, exist_ok=True)
        try:
            container = self.client.containers.get(name)
        except NotFound:
            self._ensure_image(image)
            try:
                container = self.client.containers.run(
                    image,
                    ["sleep", "infinity"],
                    name=name,
                    detach=True,
                    init=True,
                    labels={LABEL_RUN: run_id, LABEL_HOST: self.settings.worker_host},
                    working_dir=WORKSPACE,
                    network_mode=self.settings.devbox_network,
                    privileged=False,
                    cap_drop=["ALL"],
                    security_opt=["no-new-privileges"],
                    nano_cpus=int(self.settings.devbox_cpus * 1e9),
                    mem_limit=self.settings.devbox_memory,
                    pids_limit=self.settings.devbox_pids,
                    volumes={str(control): {"bind": CONTROL_MOUNT, "mode": "rw"},
                             str(workspace): {"bind": WORKSPACE, "mode": "rw"}},
                    environment={"FERRY_RUN_ID": run_id, "HOME": "/root"},
                )
            except APIError as e:
                if e.status_code == 409:  # created concurrently by a retry
                    container = self.client.containers.get(name)
                else:
                    raise DevBoxError(f"Docker refused to start the DevBox: {e.explanation}") from e
        if container.status != "running":
            container.start()
        # Login shells (`bash -lc`, as Codex runs commands) reset PATH: put ferry-ask on the
        # standard one too.
        container.exec_run(["sh", "-c", f"ln -sf {CONTROL_MOUNT}/bin/ferry-ask "
                                        "/usr/local/bin/ferry-ask 2>/dev/null || true"])
        return DevBoxInfo(
            run_id=run_id,
            backend=self.name,
            host=self.settings.worker_host,
            task_queue=self.settings.host_task_queue,
            name=name,
            container_id=container.id,
            image=image,
            workspace=WORKSPACE,
            control_dir=CONTROL_MOUNT,
            launched_at=datetime.now(UTC),
        )

    def _ensure_image(self, image: str) -> None:
        try:
            self.client.images.get(image)
            return
        except ImageNotFound:
            pass
        try:
            self.client.images.pull(image)
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

    def start_turn(self, info: DevBoxInfo, turn_id: str, env: dict[str, str] | None = None) -> None:
        self._container(info).exec_run(
            ["sh", "-c", self.runner_command(info, turn_id)], detach=True, workdir=info.workspace,
            environment=env or None,
        )

    def exec(self, info: DevBoxInfo, command: str) -> tuple[int, str]:
        # `timeout` keeps a tool call (e.g. a server started in the foreground) from hanging.
        res = self._container(info).exec_run(["timeout", "600", "sh", "-c", command],
                                             workdir=info.workspace)
        return res.exit_code, res.output.decode("utf-8", "replace")

    def stop_turn(self, info: DevBoxInfo, turn_id: str) -> None:
        turn = f"{info.control_dir}/turns/{turn_id}"
        try:
            self._container(info).exec_run(
                ["sh", "-c", f'kill -TERM "$(cat "{turn}/runner.pid")" 2>/dev/null'],
            )
        except (DevBoxError, APIError):
            pass

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

    def hibernate(self, info: DevBoxInfo) -> None:
        self._container(info).stop(timeout=5)

    def wake(self, info: DevBoxInfo) -> None:
        container = self._container(info)
        if container.status != "running":
            container.start()

    def is_running(self, info: DevBoxInfo) -> bool:
        try:
            return self._container(info).status == "running"
        except DevBoxError:
            return False

    def remove(self, info: DevBoxInfo) -> None:
        try:
            container = self.client.containers.get(info.name)
            container.remove(force=True)
        except NotFound:
            pass
        self.remove_host_dir(info.run_id)
