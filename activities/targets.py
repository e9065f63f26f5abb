"""Targets: this worker's heartbeat into the registry, and the activity listing healthy ones."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from temporalio import activity
from temporalio.client import Client

from activities.devbox import DevBoxBackend
from ferry.models.common import TARGETS_WORKFLOW_ID
from ferry.models.hosts import Target, TargetsInput
from ferry.settings import Settings
from ferry.target_registry import is_healthy, read_targets

HEARTBEAT_EVERY = 10.0

log = logging.getLogger("ferry.targets")


def this_target(settings: Settings, backend: DevBoxBackend) -> Target:
    return Target(
        host=settings.worker_host,
        task_queue=settings.host_task_queue,
        backend=backend.name,
        images=backend.images(),
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
