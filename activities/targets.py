"""Targets: this worker's heartbeat into the registry, and the activity listing healthy ones."""

from __future__ import annotations

import asyncio
import logging
import shutil
from datetime import UTC, datetime

from temporalio import activity
from temporalio.client import Client

from activities.devbox import DevBoxBackend
from activities.engines.registry import ADAPTERS
from activities.secrets import load_secrets
from ferry.devbox_image import CLIS_LABEL, image_labels
from ferry.models.common import TARGETS_WORKFLOW_ID
from ferry.models.hosts import EngineStatus, Target, TargetsInput
from ferry.settings import Settings
from ferry.target_registry import is_healthy, read_targets

HEARTBEAT_EVERY = 10.0

log = logging.getLogger("ferry.targets")


def engine_statuses(settings: Settings, backend: DevBoxBackend) -> dict[str, EngineStatus]:
    """What this host can run: an engine's CLI in its default image (the image's label lists
    them) or on its PATH (local backend), and a credential for it on the worker."""
    secrets = load_secrets(settings)
    if backend.name == "docker":
        labels = image_labels(settings.devbox_image) or {}
        clis = {item.split("@")[0] for item in labels.get(CLIS_LABEL, "").split(",") if item}
    out = {"script": EngineStatus(available=True)}
    for name, adapter in ADAPTERS.items():
        family = "codex" if name == "codex" else "claude-code"
        has_cli = family in clis if backend.name == "docker" else bool(shutil.which(adapter.binary))
        cred = next((c for c in adapter.credentials if secrets.get(c)), None)
        out[name] = EngineStatus(
            available=has_cli and cred is not None,
            missing_cli=None if has_cli else (
                f"the `{adapter.binary}` CLI is not in the DevBox image {settings.devbox_image}"
                if backend.name == "docker" else f"the `{adapter.binary}` CLI is not installed"),
            missing_credential=None if cred else (
                f"set {' or '.join(adapter.credentials)} on the worker"))
    out["openai"] = EngineStatus(
        available=bool(settings.openai_base_url),
        missing_credential=None if settings.openai_base_url else
        "set FERRY_OPENAI_BASE_URL (and its key) on the worker")
    return out


def this_target(settings: Settings, backend: DevBoxBackend) -> Target:
    try:
        engines = engine_statuses(settings, backend)
    except Exception as e:  # noqa: BLE001  (a host that cannot tell still reports in)
        log.warning("could not tell which engines this host runs: %s", e)
        engines = {}
    return Target(
        host=settings.worker_host,
        task_queue=settings.host_task_queue,
        backend=backend.name,
        images=backend.images(),
        engines=engines,
        default_image=settings.devbox_image if backend.name == "docker" else None,
        seen_at=datetime.now(UTC),
    )


async def heartbeat_forever(client: Client, settings: Settings, backend: DevBoxBackend) -> None:
    """Signal-with-start the registry so it knows this host is polling."""
    while True:
        try:
            target = await asyncio.to_thread(this_target, settings, backend)
            await client.start_workflow(
                "TargetsWorkflow", TargetsInput(), id=TARGETS_WORKFLOW_ID,
                task_queue=settings.task_queue, start_signal="seen", start_signal_args=[target],
            )
        except Exception as e:  # the registry is best effort; Runs work without it
            log.warning("could not report this target: %s", e)
        await asyncio.sleep(HEARTBEAT_EVERY)


class TargetActivities:
    def __init__(self, client: Client) -> None:
        self.client = client

    @activity.defn(name="list_targets")
    async def list_targets(self) -> list[Target]:
        """Healthy targets, first healthy first (the one a target question recommends)."""
        now = datetime.now(UTC)
        return [t for t in await read_targets(self.client) if is_healthy(t, now)]
