"""Activities that record a Run's result, and its final record, in the artifact store."""

from __future__ import annotations

import asyncio
import json

from temporalio import activity

from ferry.artifact_store import ArtifactStore
from ferry.models.activity_io import ReportInput
from ferry.models.state import DevBoxesRemoved, RunRecord


class ReportActivities:
    def __init__(self, store: ArtifactStore) -> None:
        self.store = store

    @activity.defn(name="report_result")
    async def report_result(self, inp: ReportInput) -> str:
        result = {
            "run_id": inp.run_id,
            "title": inp.spec.title,
            "engine": inp.spec.engine,
            "status": inp.status.value,
            "summary": inp.summary,
            "error": inp.error,
            "steps": inp.step_count,
        }
        await asyncio.to_thread(
            self.store.write_bytes, inp.run_id, "result.json", json.dumps(result, indent=2).encode()
        )
        await asyncio.to_thread(self.store.write_bytes, inp.run_id, "summary.md", inp.summary.encode())
        return "result.json"

    @activity.defn(name="write_run_record")
    async def write_run_record(self, record: RunRecord) -> None:
        """The closed Run as the API shows it, and the state a follow-up starts from."""
        await asyncio.to_thread(self.store.write_record, record)

    @activity.defn(name="mark_devboxes_removed")
    async def mark_devboxes_removed(self, inp: DevBoxesRemoved) -> None:
        """The keeper removed the Run's DevBoxes: the record says so (and so the API)."""
        def mark() -> None:
            record = self.store.read_record(inp.run_id)
            if record is None:
                return
            for view in (record.run, record.input.state):
                if view is None:
                    continue
                view.keep_alive_until = None
                for box in view.devboxes:
                    if box.removed_at is None:
                        box.removed_at = inp.removed_at
            if inp.note:
                record.run.devbox_note = inp.note
            self.store.write_record(record)
        await asyncio.to_thread(mark)
