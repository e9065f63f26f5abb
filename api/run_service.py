"""Talking to Temporal about Runs: start, describe, query, list, cancel, rename.

Routes stay thin; everything Temporal-specific about Runs lives here.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import secrets
from dataclasses import dataclass

from pydantic import ValidationError
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.service import RPCError, RPCStatusCode

from activities.targets import is_healthy, read_targets
from ferry import search_attributes as sa
from ferry.artifact_store import ArtifactStore
from ferry.inputs import image_allowed, image_problem, repo_problem, ticket_host_problem
from ferry.questions import AnswersIn
from ferry.schemas import (
    MAX_TITLE_CHARS,
    MessageIn,
    ReviewIn,
    RunCreate,
    RunList,
    RunListItem,
    RunPublic,
    RunRename,
    RunSpec,
    RunStatus,
    RunWorkflowInput,
    Step,
    TargetPublic,
    TimelineTail,
    default_title,
    workflow_id_for,
)
from ferry.settings import Settings
from ferry.tickets import parse_ticket_url

WORKFLOW_TYPE = "RunWorkflow"


class RunNotFound(Exception):
    """No such Run (HTTP 404)."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"no Run with id {run_id!r}")


class RunConflict(Exception):
    """The Run is not in a state that allows this (HTTP 409)."""


class InvalidRun(ValueError):
    """Input valid field by field but not as a whole; names the field (HTTP 422)."""

    def __init__(self, field: str, message: str, where: str = "body") -> None:
        super().__init__(message)
        self.field = field
        self.where = where


def _update_failure(e: WorkflowUpdateFailedError) -> tuple[str | None, str]:
    """(ApplicationError type, message) of a failed or rejected Update."""
    cause = e.cause
    return getattr(cause, "type", None), str(getattr(cause, "message", None) or cause or e)


@dataclass
class TimelineRead:
    steps: list[Step]
    status: RunStatus
    finished: bool


PAGE_TOKEN_TAG = b"ferry1"


def seal_page_token(token: bytes) -> str:
    """Temporal's page token, wrapped with a checksum so garbage is told apart from it."""
    digest = hashlib.sha256(PAGE_TOKEN_TAG + token).digest()[:8]
    return base64.urlsafe_b64encode(PAGE_TOKEN_TAG + digest + token).decode()


def open_page_token(text: str) -> bytes:
    bad = InvalidRun("page_token", "page_token is not a token this API handed out", "query")
    try:
        raw = base64.urlsafe_b64decode(text.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError) as e:
        raise bad from e
    tag, digest, token = raw[:6], raw[6:14], raw[14:]
    if tag != PAGE_TOKEN_TAG or hashlib.sha256(tag + token).digest()[:8] != digest or not token:
        raise bad
    return token


def new_run_id() -> str:
    return secrets.token_hex(6)


class RunService:
    def __init__(self, client: Client, settings: Settings, store: ArtifactStore) -> None:
        self.client = client
        self.settings = settings
        self.store = store

    def handle(self, run_id: str) -> WorkflowHandle:
        return self.client.get_workflow_handle(workflow_id_for(run_id))

    async def _merge_from_run(self, body: RunCreate) -> RunCreate:
        """Fill the fields a `from_run` body leaves unset from that Run's spec."""
        assert body.from_run is not None
        try:
            old = await self.get(body.from_run)
        except RunNotFound as e:
            raise InvalidRun("from_run", f"no Run with id {body.from_run!r}") from e
        given = body.model_dump(exclude_unset=True)
        base = {
            "instructions": old.instructions, "engine": old.engine, "mode": old.mode,
            "target": old.target, "image": old.image,
            "keep_alive": old.keep_alive_seconds, "idle_timeout": old.idle_timeout_seconds,
            "question_timeout": old.question_timeout_seconds, "on_timeout": old.on_timeout,
            "model": old.model, "effort": old.effort, "repo": old.repo, "branch": old.branch,
            "ticket_url": old.ticket_url, "max_turns": old.budgets.get("max_turns"),
            "max_cost_usd": old.budgets.get("max_cost_usd"),
            "max_duration": old.budgets.get("max_duration_seconds"),
            "turn_timeout": old.budgets.get("turn_timeout_seconds"),
            "engine_max_turns": old.budgets.get("engine_max_turns"),
            "run_as_root": old.run_as_root, "env": old.env or None, "network": old.network,
            "artifacts": old.artifacts,
        }
        if old.instructions.strip():
            base["instructions"] = old.instructions
        else:
            base.pop("instructions")
        if "instructions" not in given:
            base["title"] = old.title[:MAX_TITLE_CHARS]
        try:
            return RunCreate.model_validate({**base, **given})
        except ValidationError as e:
            first = e.errors()[0]
            raise InvalidRun(str(first["loc"][-1]) if first["loc"] else "from_run",
                             f"the copied Run is invalid: {first['msg']}") from e

    async def create(self, body: RunCreate, run_id: str | None = None,
                     extra_attrs: list[SearchAttributePair] | None = None,
                     reject_duplicate: bool = False) -> RunPublic:
        spec = await self.spec_for(body, run_id or new_run_id())
        await self.client.start_workflow(
            WORKFLOW_TYPE,
            RunWorkflowInput(spec=spec),
            id=workflow_id_for(spec.id),
            task_queue=self.settings.task_queue,
            search_attributes=self.search_attributes(spec, extra_attrs),
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=(WorkflowIDReusePolicy.REJECT_DUPLICATE if reject_duplicate
                             else WorkflowIDReusePolicy.ALLOW_DUPLICATE),
        )
        return await self.get(spec.id)

    @staticmethod
    def search_attributes(spec: RunSpec,
                          extra: list[SearchAttributePair] | None = None) -> TypedSearchAttributes:
        return TypedSearchAttributes([
            SearchAttributePair(sa.STATUS, RunStatus.pending.value),
            SearchAttributePair(sa.ENGINE, spec.engine),
            SearchAttributePair(sa.TARGET, spec.target or "any"),
            SearchAttributePair(sa.TITLE, spec.title),
            *(extra or []),
        ])

    async def spec_for(self, body: RunCreate, run_id: str) -> RunSpec:
        """The RunSpec a body asks for, with `from_run` and the defaults filled in."""
        if body.from_run is not None:
            body = await self._merge_from_run(body)
        engine = body.engine or "script"
        if body.instructions is None and (body.ticket_url is None or engine == "script"):
            raise InvalidRun("instructions", "Field required: give instructions (or from_run "
                                             "to copy another Run's, or a ticket_url for an "
                                             "agent engine)")
        instructions = body.instructions or ""
        await self._check_policy(body)
        mode = body.mode or "interactive"
        if mode == "autonomous" and not body.target:
            raise InvalidRun("target", "an autonomous Run needs a target (a worker host from "
                                       "GET /targets): nobody is there to pick one")
        s = self.settings
        return RunSpec(
            id=run_id,
            instructions=instructions,
            engine=engine,
            title=body.title or (default_title(instructions) if instructions.strip()
                                 else "Ticket " + (body.ticket_url or "")),
            title_given=bool(body.title) or (body.ticket_url is None),
            mode=mode,
            target=body.target,
            image=body.image,
            from_run=body.from_run,
            keep_alive=body.keep_alive if body.keep_alive is not None else s.keep_alive,
            idle_timeout=body.idle_timeout if body.idle_timeout is not None else s.idle_timeout,
            question_timeout=(body.question_timeout if body.question_timeout is not None
                              else s.question_timeout),
            on_timeout=body.on_timeout or s.on_timeout,
            model=body.model,
            effort=body.effort,
            max_turns=body.max_turns,
            engine_max_turns=body.engine_max_turns,
            max_cost_usd=body.max_cost_usd,
            max_duration=body.max_duration,
            turn_timeout=body.turn_timeout,
            repo=body.repo,
            branch=body.branch,
            ticket_url=body.ticket_url,
            artifacts=body.artifacts,
            run_as_root=bool(body.run_as_root),
            env=body.env or {},
            network=body.network,
        )

    async def _check_policy(self, body: RunCreate) -> None:
        """Inputs that could make the worker reach into its own host or network."""
        s = self.settings
        allow = s.local_repos_allowed
        if body.repo is not None:
            problem = await asyncio.to_thread(repo_problem, body.repo, allow)
            if problem:
                raise InvalidRun("repo", problem)
        if body.image is not None:
            problem = await asyncio.to_thread(image_problem, body.image, allow)
            if problem is None and not image_allowed(body.image, s.allowed_images):
                problem = f"image {body.image!r} is not one of FERRY_ALLOWED_IMAGES"
            if problem:
                raise InvalidRun("image", problem)
        if body.ticket_url is not None:
            ref = parse_ticket_url(body.ticket_url)
            problem = ticket_host_problem(ref.kind, ref.host, s.github_hosts, s.azure_hosts)
            if problem:
                raise InvalidRun("ticket_url", problem)

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

    async def list(self, status: RunStatus | None, limit: int, page_token: str | None,
                   schedule: str | None = None) -> RunList:
        query = f"WorkflowType = '{WORKFLOW_TYPE}'"
        if status is not None:
            query += f" AND {sa.STATUS.name} = '{status.value}'"
        if schedule is not None:
            query += f" AND {sa.SCHEDULE.name} = '{schedule}'"
        token: bytes | None = None
        if page_token:
            token = open_page_token(page_token)
        it = self.client.list_workflows(query, page_size=limit, next_page_token=token)
        try:
            await it.fetch_next_page()
        except RPCError as e:
            if e.status == RPCStatusCode.INVALID_ARGUMENT:
                raise InvalidRun("page_token", "page_token is not a token this API handed out",
                                 "query") from e
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
                schedule_id=attrs.get(sa.SCHEDULE),
                created_at=wf.start_time,
                closed_at=wf.close_time,
            ))
        next_token = it.next_page_token
        return RunList(
            runs=runs,
            next_page_token=seal_page_token(next_token) if next_token else None,
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

    async def answer(self, run_id: str, body: AnswersIn) -> RunPublic:
        status = await self._describe_status(run_id)
        if status != WorkflowExecutionStatus.RUNNING:
            raise RunConflict(f"Run {run_id} is not waiting for input (it has finished)")
        try:
            return await self.handle(run_id).execute_update("answer", body, result_type=RunPublic)
        except WorkflowUpdateFailedError as e:
            kind, message = _update_failure(e)
            if kind == "InvalidAnswer":
                raise InvalidRun("answers", message) from e
            raise RunConflict(message) from e

    async def send_message(self, run_id: str, body: MessageIn) -> RunPublic:
        status = await self._describe_status(run_id)
        if status != WorkflowExecutionStatus.RUNNING:
            raise RunConflict(
                f"Run {run_id} has finished and its DevBox is gone; start a new Run from this "
                f'one\'s spec with POST /runs {{"from_run": "{run_id}"}}')
        try:
            return await self.handle(run_id).execute_update("send_message", body,
                                                            result_type=RunPublic)
        except WorkflowUpdateFailedError as e:
            raise RunConflict(_update_failure(e)[1]) from e

    async def review(self, run_id: str, body: ReviewIn) -> RunPublic:
        status = await self._describe_status(run_id)
        if status != WorkflowExecutionStatus.RUNNING:
            raise RunConflict(f"Run {run_id} has finished and its DevBox is gone; review it "
                              "while its DevBox is kept alive (keep_alive)")
        try:
            return await self.handle(run_id).execute_update("review", body, result_type=RunPublic)
        except WorkflowUpdateFailedError as e:
            raise RunConflict(_update_failure(e)[1]) from e

    async def targets(self) -> list[TargetPublic]:
        return [TargetPublic(**t.model_dump(), healthy=is_healthy(t))
                for t in await read_targets(self.client)]

    async def rename(self, run_id: str, body: RunRename) -> RunPublic:
        status = await self._describe_status(run_id)
        if status != WorkflowExecutionStatus.RUNNING:
            raise RunConflict(f"Run {run_id} has finished; a finished Run keeps its title")
        return await self.handle(run_id).execute_update("rename", body, result_type=RunPublic)
