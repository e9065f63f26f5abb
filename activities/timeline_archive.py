"""Activity that moves older timeline steps out of workflow memory into the artifact store."""

from __future__ import annotations

import asyncio

from temporalio import activity

from ferry.artifact_store import ArtifactStore
from ferry.models.activity_io import ArchiveInput


class ArchiveActivities:
    def __init__(self, store: ArtifactStore) -> None:
        self.store = store

    @activity.defn(name="archive_steps")
    async def archive_steps(self, inp: ArchiveInput) -> str:
        return await asyncio.to_thread(self.store.write_timeline_chunk, inp.run_id, inp.steps)
