"""Reading the target registry (the `TargetsWorkflow`): which worker hosts exist and which
are healthy. Shared by the API and the workers' activities."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from ferry.models.common import TARGETS_WORKFLOW_ID
from ferry.models.hosts import Target

HEALTHY_WITHIN = timedelta(seconds=45)


def is_healthy(target: Target, now: datetime | None = None) -> bool:
    return (now or datetime.now(UTC)) - target.seen_at <= HEALTHY_WITHIN


async def read_targets(client: Client) -> list[Target]:
    try:
        return await client.get_workflow_handle(TARGETS_WORKFLOW_ID).query(
            "targets", result_type=list[Target])
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            return []
        raise
