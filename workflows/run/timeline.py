"""The Run's timeline: steps numbered as they come, older ones archived to the artifact
store, and the status."""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.timeline_archive import ArchiveActivities
    from ferry import search_attributes as sa
    from ferry.models.activity_io import ArchiveInput
    from ferry.models.common import RunStatus
    from ferry.models.steps import Step, StepIn

from workflows.run.base import RunBase
from workflows.run.options import (
    RETRY,
    SHORT_ACTIVITY,
)

# Steps kept in workflow memory before the oldest are archived, and chunk bounds.
KEEP_LIVE_STEPS = 300
CHUNK_STEPS = 100
CHUNK_BYTES = 120_000


class TimelineMixin(RunBase):
    def _add_step(self, step: StepIn) -> None:
        st = self.state
        st.steps.append(Step(seq=st.next_seq, **step.model_dump()))
        st.next_seq += 1

    def _take_chunk(self) -> list[Step]:
        chunk: list[Step] = []
        size = 0
        for step in self.state.steps:
            if chunk and (len(chunk) >= CHUNK_STEPS or size >= CHUNK_BYTES):
                break
            chunk.append(step)
            size += len(step.model_dump_json())
        return chunk

    async def _archive_chunk(self) -> None:
        chunk = self._take_chunk()
        await workflow.execute_activity_method(
            ArchiveActivities.archive_steps, ArchiveInput(run_id=self.spec.id, steps=chunk),
            start_to_close_timeout=SHORT_ACTIVITY, retry_policy=RETRY,
        )
        st = self.state
        st.archived_upto = chunk[-1].seq
        st.steps = [s for s in st.steps if s.seq > st.archived_upto]

    async def _archive_loop(self) -> None:
        while True:
            await workflow.wait_condition(lambda: len(self.state.steps) > KEEP_LIVE_STEPS)
            self._archiving = True
            try:
                await self._archive_chunk()
            finally:
                self._archiving = False

    async def _archive_all(self, archiver: asyncio.Task[None]) -> None:
        """Stop the background archiver and archive every live step (before CAN or the end)."""
        await workflow.wait_condition(lambda: not self._archiving)
        archiver.cancel()
        while self.state.steps:
            await self._archive_chunk()

    def _set_status(self, status: RunStatus, finished: bool = False) -> None:
        st, now = self.state, workflow.now()
        if status == RunStatus.in_progress and st.working_since is None:
            st.working_since = now
        elif status != RunStatus.in_progress and st.working_since is not None:
            st.worked_seconds += (now - st.working_since).total_seconds()
            st.working_since = None
        self.state.status = status
        if finished:
            self.state.completed_at = workflow.now()
        workflow.upsert_search_attributes([sa.STATUS.value_set(status.value)])
