"""Activity that records a Run's result (summary and outcome) in the artifact store."""

from __future__ import annotations

import asyncio
import json

from temporalio import activity

from ferry.artifact_store import ArtifactStore
from ferry.schemas import ReportInput


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
