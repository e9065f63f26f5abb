"""The host's reaper: removes DevBoxes (containers and host directories) no Run owns.

A DevBox is owned while its Run's workflow is open, or while a DevBoxKeeper holds it for
follow-ups. Anything else on this host (a workflow terminated from the Temporal UI, a
keeper that gave up on a host that was down, a launch retried elsewhere) is removed at
worker start and then every `FERRY_REAP_INTERVAL`.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.devbox import DevBoxBackend
from ferry.models.common import keeper_id_for, workflow_id_for

log = logging.getLogger("ferry.reaper")

# A DevBox just handed from a closing keeper to a reopened Run has no open owner for a
# moment; nothing closed more recently than this is reaped.
GRACE = timedelta(seconds=15)


class Reaper:
    def __init__(self, client: Client, backend: DevBoxBackend) -> None:
        self.client = client
        self.backend = backend

    async def sweep(self) -> list[str]:
        """One pass; returns the Run ids whose leftovers were removed."""
        reaped: list[str] = []
        for name in await asyncio.to_thread(self.backend.run_ids):
            # Host directories replace ':' (in scheduled Run ids) with '_'.
            candidates = [name] + ([name.replace("_", ":")] if "_" in name else [])
            try:
                owned = [await self._owned(c) for c in candidates]
            except RPCError as e:  # Temporal unreachable: reap nothing on a guess
                log.warning("reaper skipped a pass: %s", e)
                return reaped
            if any(owned):
                continue
            run_id = next((c for c, o in zip(candidates, owned, strict=True) if o is None),
                          candidates[-1])
            log.info("reaping the DevBox of Run %s (no open workflow or keeper owns it)",
                     run_id)
            await asyncio.to_thread(self.backend.discard, run_id)
            reaped.append(run_id)
        return reaped

    async def _owned(self, run_id: str) -> bool | None:
        """True: an open Run or keeper owns it (or one closed moments ago); False: closed
        for good; None: Temporal knows no such Run."""
        known = False
        for wf_id in (workflow_id_for(run_id), keeper_id_for(run_id)):
            try:
                desc = await self.client.get_workflow_handle(wf_id).describe()
            except RPCError as e:
                if e.status == RPCStatusCode.NOT_FOUND:
                    continue
                raise
            known = True
            if desc.status == WorkflowExecutionStatus.RUNNING:
                return True
            if desc.close_time and datetime.now(UTC) - desc.close_time < GRACE:
                return True
        return False if known else None

    async def forever(self, interval: timedelta) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:  # the reaper must never take the worker down
                log.exception("reaper pass failed")
            await asyncio.sleep(interval.total_seconds())
