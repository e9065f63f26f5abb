"""Talking to Temporal about Runs: start, describe, query, list, cancel, rename.

Routes stay thin; everything Temporal-specific about Runs lives here.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from ferry import search_attributes as sa
from ferry.artifact_store import ArtifactStore
from ferry.schemas import (
    RunCreate,
    RunList,
    RunListItem,
    RunPublic,
    RunRename,
    RunSpec,
    RunStatus,
    RunWorkflowInput,
    Step,
    TimelineTail,
    default_title,
    workflow_id_for,
)
from ferry.settings import Settings

WORKFLOW_TYPE = "RunWorkflow"


class RunNotFound(Exception):
    pass


class RunConflict(Exception):
    pass


class BadPageToken(ValueError):
    pass


@dataclass
class TimelineRead:
    steps: list[Step]
    status: RunStatus
    finished: bool


def new_run_id() -> str:
    return secrets.token_hex(6)


class RunService:
    def __init__(self, client: Client, settings: Settings, store: ArtifactStore) -> None:
        self.client = client
        self.settings = settings
        self.store = store

    def handle(self, run_id: str) -> WorkflowHandle:
        return self.client.get_workflow_handle(workflow_id_for(run_id))

    async def create(self, body: RunCreate, run_id: str | None = None) -> RunPublic:
        run_id = run_id or new_run_id()
        spec = RunSpec(
            id=run_id,
            instructions=body.instructions,
            engine=body.engine,
            title=body.title or default_title(body.instructions),
            mode=body.mode,
            target=body.target,
            image=body.image,
        )
        attrs = TypedSearchAttributes([
            SearchAttributePair(sa.STATUS, RunStatus.pending.value),
            SearchAttributePair(sa.ENGINE, spec.engine),
            SearchAttributePair(sa.TARGET, spec.target or "any"),
            SearchAttributePair(sa.TITLE, spec.title),
        ])
        await self.client.start_workflow(
            WORKFLOW_TYPE,
            RunWorkflowInput(spec=spec),
            id=workflow_id_for(run_id),
            task_queue=self.settings.task_queue,
            search_attributes=attrs,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
        return await self.get(run_id)

    async def _describe_status(self, run_id: str) -> WorkflowExecutionStatus:
        try:
            desc = await self.handle(run_id).describe()
        except RPCError as e:
            if e.status == RPCStatusCode.NOT_FOUND:
                raise RunNotFound(run_id) from e
            raise
        assert desc.status is not None
        return desc.status

    async def get(self, run_id: str) -> RunPublic:
        try:
            return await self.handle(run_id).query("details", result_type=RunPublic)
        except RPCError as e:
            if e.status == RPCStatusCode.NOT_FOUND:
                raise RunNotFound(run_id) from e
            raise

    async def list(self, status: RunStatus | None, limit: int, page_token: str | None) -> RunList:
        query = f"WorkflowType = '{WORKFLOW_TYPE}'"
        if status is not None:
            query += f" AND {sa.STATUS.name} = '{status.value}'"
        token: bytes | None = None
        if page_token:
            try:
                token = base64.urlsafe_b64decode(page_token.encode())
            except (binascii.Error, ValueError) as e:
                raise BadPageToken("page_token is not a token this API handed out") from e
        it = self.client.list_workflows(query, page_size=limit, next_page_token=token)
        try:
            await it.fetch_next_page()
        except RPCError as e:
            if e.status == RPCStatusCode.INVALID_ARGUMENT:
                raise BadPageToken("page_token is not a token this API handed out") from e
            raise
        runs = []
        for wf in it.current_page or []:
            attrs = wf.typed_search_attributes
            runs.append(RunListItem(
                id=wf.id.removeprefix("run-"),
                title=attrs.get(sa.TITLE) or "",
                status=attrs.get(sa.STATUS) or "",
                engine=attrs.get(sa.ENGINE) or "",
                target=attrs.get(sa.TARGET),
                created_at=wf.start_time,
                closed_at=wf.close_time,
            ))
        next_token = it.next_page_token
        return RunList(
            runs=runs,
            next_page_token=base64.urlsafe_b64encode(next_token).decode() if next_token else None,
        )

    async def timeline(self, run_id: str, after: int = 0) -> TimelineRead:
        """Archived chunks plus the workflow's live tail, as one ordered list after `after`."""
        status = await self._describe_status(run_id)
        if status != WorkflowExecutionStatus.RUNNING:
            # A closed Run archived every step before it ended; no worker needed to read it.
            steps = self.store.read_timeline(run_id, after)
            final = await self._final_status(run_id, status)
            return TimelineRead(steps=steps, status=final, finished=True)
        tail: TimelineTail = await self.handle(run_id).query("tail", after, result_type=TimelineTail)
        archived = [s for s in self.store.read_timeline(run_id, after) if s.seq <= tail.archived_upto]
        return TimelineRead(steps=archived + tail.steps, status=tail.status,
                            finished=tail.status.finished)

    async def _final_status(self, run_id: str, status: WorkflowExecutionStatus) -> RunStatus:
        if status == WorkflowExecutionStatus.COMPLETED:
            return RunStatus.completed
        if status == WorkflowExecutionStatus.CANCELED:
            return RunStatus.cancelled
        if status == WorkflowExecutionStatus.RUNNING:
            return (await self.get(run_id)).status
        return RunStatus.failed

    async def cancel(self, run_id: str) -> RunPublic:
        status = await self._describe_status(run_id)
        if status != WorkflowExecutionStatus.RUNNING:
            run = await self.get(run_id)
            raise RunConflict(f"Run {run_id} has already finished ({run.status.value})")
        await self.handle(run_id).cancel()
        return await self.get(run_id)

    async def rename(self, run_id: str, body: RunRename) -> RunPublic:
        status = await self._describe_status(run_id)
        if status != WorkflowExecutionStatus.RUNNING:
            raise RunConflict(f"Run {run_id} has finished; a finished Run keeps its title")
        return await self.handle(run_id).execute_update("rename", body, result_type=RunPublic)
