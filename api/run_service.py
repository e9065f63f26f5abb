"""Talking to Temporal about Runs: start, describe, query, list, cancel, rename, reopen.

Routes stay thin; everything Temporal-specific about Runs lives here. An open Run is read
through its workflow's queries; a closed one from the final record its workflow wrote to
the artifact store. A message or review for a closed Run whose DevBox is still kept claims
the DevBox from its keeper and reopens the Run: a new execution of the same workflow id,
started together with the Update (Update-with-start).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.service import RPCError, RPCStatusCode

from ferry import search_attributes as sa
from ferry.artifact_store import ArtifactStore
from ferry.inputs import image_allowed, image_problem, repo_problem, ticket_host_problem
from ferry.models.api import (
    MessageIn,
    ReleaseResult,
    ReviewIn,
    RunCreate,
    RunList,
    RunListItem,
    RunPublic,
    RunRename,
    TimelineTail,
)
from ferry.models.common import (
    ANY_TARGET,
    KEEPER_CLAIMED,
    MAX_TITLE_CHARS,
    RunStatus,
    default_title,
    keeper_id_for,
    workflow_id_for,
)
from ferry.models.hosts import ENGINE_LABELS, EngineInfo, TargetPublic
from ferry.models.state import KeeperClaim, RunSpec, RunWorkflowInput
from ferry.models.steps import Step
from ferry.questions import AnswersIn
from ferry.settings import Settings
from ferry.target_registry import is_healthy, read_targets
from ferry.tickets import parse_ticket_url

WORKFLOW_TYPE = "RunWorkflow"


# How long creating a Run waits for its workflow's first view before answering without it.
CREATED_VIEW_SECONDS = 5.0
CLAUDE_ENGINES = ("claude-code", "claude-code-api", "claude-code-plan")


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


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _list_key(wf: WorkflowExecution) -> tuple[datetime, str]:
    created = wf.typed_search_attributes.get(sa.CREATED) or wf.start_time
    return created, wf.id


def _after_cursor(wf: WorkflowExecution, cursor: tuple[datetime, str] | None) -> bool:
    return cursor is None or _list_key(wf) < cursor


FINISHED = {RunStatus.completed.value, RunStatus.failed.value, RunStatus.cancelled.value}


def _list_status(wf: WorkflowExecution) -> str:
    """A workflow closed outside Ferry (terminated, timed out) left its status open."""
    status = wf.typed_search_attributes.get(sa.STATUS) or ""
    if wf.status != WorkflowExecutionStatus.RUNNING and status not in FINISHED:
        return RunStatus.failed.value
    return status


def _seal_list_cursor(created: datetime, wf_id: str) -> str:
    return seal_page_token(json.dumps([_iso(created), wf_id]).encode())


def _open_list_cursor(text: str) -> tuple[datetime, str]:
    raw = open_page_token(text)
    try:
        created, wf_id = json.loads(raw)
        return datetime.fromisoformat(created.replace("Z", "+00:00")), str(wf_id)
    except (ValueError, TypeError) as e:
        raise InvalidRun("page_token", "page_token is not a token this API handed out",
                         "query") from e


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
            # The host the old Run was pinned to, not the one it happened to get: a lost
            # host must not hold its continuation.
            "target": old.target_requested, "image": old.image,
            "keep_alive": old.keep_alive_seconds, "idle_timeout": old.idle_timeout_seconds,
            "question_timeout": old.question_timeout_seconds, "on_timeout": old.on_timeout,
            "model": old.model, "effort": old.effort, "repo": old.repo, "branch": old.branch,
            "ticket_url": old.ticket_url, "max_turns": old.budgets.get("max_turns"),
            "max_cost_usd": old.budgets.get("max_cost_usd"),
            "max_duration": old.budgets.get("max_duration_seconds"),
            "turn_timeout": old.budgets.get("turn_timeout_seconds"),
            "engine_max_turns": old.budgets.get("engine_max_turns"),
            "permission_mode": old.permission_mode,
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
        await self.check_engine(spec)
        await self.client.start_workflow(
            WORKFLOW_TYPE,
            RunWorkflowInput(spec=spec),
            id=workflow_id_for(spec.id),
            task_queue=self.settings.task_queue,
            search_attributes=self.search_attributes(
                spec, [SearchAttributePair(sa.CREATED, datetime.now(UTC)),
                       *(extra_attrs or [])]),
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=(WorkflowIDReusePolicy.REJECT_DUPLICATE if reject_duplicate
                             else WorkflowIDReusePolicy.ALLOW_DUPLICATE),
        )
        # The Run exists now: answer even when no worker has taken its first task yet (a
        # query would wait for one, and a client retrying a slow answer would start twice).
        try:
            return await asyncio.wait_for(self.get(spec.id), CREATED_VIEW_SECONDS)
        except (TimeoutError, RPCError):
            return self.pending_view(spec)

    def pending_view(self, spec: RunSpec) -> RunPublic:
        """A just-started Run as the API shows it before its workflow has run."""
        return RunPublic(
            id=spec.id, title=spec.title, status=RunStatus.pending, engine=spec.engine,
            mode=spec.mode, target=spec.target,
            target_requested=ANY_TARGET if spec.any_host else spec.target, image=spec.image,
            instructions=spec.instructions, created_at=datetime.now(UTC), started_at=None,
            completed_at=None, duration_seconds=None, devboxes=[], summary=None, error=None,
            running=None, step_count=0, temporal_workflow_id=workflow_id_for(spec.id),
            from_run=spec.from_run, keep_alive_seconds=spec.keep_alive.total_seconds(),
            idle_timeout_seconds=spec.idle_timeout.total_seconds(),
            question_timeout_seconds=spec.question_timeout.total_seconds(),
            on_timeout=spec.on_timeout, model=spec.model, effort=spec.effort,
            permission_mode=spec.permission_mode, repo=spec.repo, branch=spec.branch,
            ticket_url=spec.ticket_url, run_as_root=spec.run_as_root, env=spec.env)

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
        if body.fresh and body.from_run is None:
            raise InvalidRun("fresh", "`fresh` only applies with `from_run` (a Run without it "
                                      "starts from the repository anyway)")
        if body.from_run is not None:
            body = await self._merge_from_run(body)
        engine = body.engine or "script"
        if body.instructions is None and (body.ticket_url is None or engine == "script"):
            raise InvalidRun("instructions", "Field required: give instructions (or from_run "
                                             "to copy another Run's, or a ticket_url for an "
                                             "agent engine)")
        instructions = body.instructions or ""
        await self._check_policy(body)
        if body.permission_mode is not None and engine not in CLAUDE_ENGINES:
            why = " (`auto` could pick one that ignores it)" if engine == "auto" else ""
            raise InvalidRun("permission_mode", f"permission_mode is a Claude Code option: "
                             f"name a Claude Code engine ({', '.join(CLAUDE_ENGINES)}), not "
                             f"{engine}{why}")
        mode = body.mode or "interactive"
        if mode == "autonomous" and not body.target:
            raise InvalidRun("target", "an autonomous Run needs a target (a worker host from "
                                       "GET /targets, or `any`): nobody is there to pick one")
        s = self.settings
        return RunSpec(
            id=run_id,
            instructions=instructions,
            engine=engine,
            title=body.title or (default_title(instructions) if instructions.strip()
                                 else "Ticket " + (body.ticket_url or "")),
            title_given=bool(body.title) or (body.ticket_url is None),
            mode=mode,
            target=None if body.target == ANY_TARGET else body.target,
            any_host=body.target == ANY_TARGET,
            image=body.image,
            from_run=body.from_run,
            restore_from=body.from_run if body.from_run and not body.fresh else None,
            keep_alive=body.keep_alive if body.keep_alive is not None else s.keep_alive,
            idle_timeout=body.idle_timeout if body.idle_timeout is not None else s.idle_timeout,
            question_timeout=(body.question_timeout if body.question_timeout is not None
                              else s.question_timeout),
            on_timeout=body.on_timeout or s.on_timeout,
            model=body.model,
            effort=body.effort,
            max_turns=body.max_turns,
            engine_max_turns=body.engine_max_turns,
            permission_mode=body.permission_mode,
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
            host_lost_after=s.host_lost_after,
        )

    async def _check_policy(self, body: RunCreate) -> None:
        """Inputs that could make the worker reach into its own host or network."""
        s = self.settings
        if body.target is not None and body.target != ANY_TARGET:
            known = [t.host for t in await read_targets(self.client)]
            if body.target not in known:
                listed = ", ".join(sorted(known)) or "none registered yet"
                raise InvalidRun("target", f"unknown target {body.target!r}: the known targets "
                                           f"(GET /targets) are {listed}")
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

    async def _describe(self, run_id: str) -> WorkflowExecutionDescription:
        """The latest execution of the Run's workflow."""
        try:
            return await self.handle(run_id).describe()
        except RPCError as e:
            if e.status == RPCStatusCode.NOT_FOUND:
                raise RunNotFound(run_id) from e
            raise

    async def _describe_status(self, run_id: str) -> WorkflowExecutionStatus:
        desc = await self._describe(run_id)
        assert desc.status is not None
        return desc.status

    async def get(self, run_id: str) -> RunPublic:
        desc = await self._describe(run_id)
        if desc.status == WorkflowExecutionStatus.RUNNING:
            try:
                run = await self.handle(run_id).query("details", result_type=RunPublic)
                if run.working_since is not None and run.duration_seconds is not None:
                    # The query sees the workflow's clock at its last task: add the rest.
                    run.duration_seconds += max(
                        0.0, (datetime.now(UTC) - run.working_since).total_seconds())
                return run
            except (WorkflowQueryFailedError, RPCError):
                # It closed between describe and query: read what it left behind.
                desc = await self._describe(run_id)
                if desc.status == WorkflowExecutionStatus.RUNNING:
                    raise
        return await self._closed_view(run_id, desc)

    async def _closed_view(self, run_id: str, desc: WorkflowExecutionDescription) -> RunPublic:
        """A closed Run: its final record, or (closed outside Ferry) what its start said."""
        record = await asyncio.to_thread(self.store.read_record, run_id)
        if record is not None and record.execution is not None:
            if record.execution == desc.run_id:
                return record.run
        elif record is not None and (record.run.completed_at is None or desc.close_time is None
                                     or record.run.completed_at <= desc.close_time):
            return record.run  # written before records named their execution
        inp = await self._started_with(run_id, desc.run_id)
        how = {WorkflowExecutionStatus.TERMINATED: "terminated",
               WorkflowExecutionStatus.TIMED_OUT: "timed out"}.get(
            desc.status, desc.status.name.lower()) if desc.status else "closed"
        spec, st = inp.spec, inp.state
        return RunPublic(
            id=run_id, title=desc.typed_search_attributes.get(sa.TITLE) or spec.title,
            status=RunStatus.failed, engine=spec.engine, mode=spec.mode,
            target=(st.target if st else None) or spec.target,
            image=(st.image if st else None) or spec.image, instructions=spec.instructions,
            created_at=(st.created_at if st else None) or desc.start_time,
            started_at=st.started_at if st else None, completed_at=desc.close_time,
            duration_seconds=None, devboxes=st.devboxes if st else [], summary=None,
            error=f"the Run's workflow was {how} outside Ferry (in Temporal)",
            running=None, step_count=(st.next_seq - 1) if st else 0,
            temporal_workflow_id=desc.id, repo=spec.repo, branch=spec.branch,
            ticket_url=spec.ticket_url, network=spec.network)

    async def _started_with(self, run_id: str, execution: str | None) -> RunWorkflowInput:
        handle = self.client.get_workflow_handle(workflow_id_for(run_id), run_id=execution)
        async for event in handle.fetch_history_events():
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            decoded = await self.client.data_converter.decode(list(payloads), [RunWorkflowInput])
            return decoded[0]
        raise RunNotFound(run_id)

    async def list_runs(self, status: RunStatus | None, limit: int, page_token: str | None,
                   schedule: str | None = None, engine: str | None = None,
                   target: str | None = None) -> RunList:
        """Newest first by creation, stable as Runs close or reopen.

        Temporal's SQL visibility cannot order by an attribute, so the API reads windows
        of `FerryCreatedAt` (newest first, each wider than the last) until it has a page,
        keeps the latest execution of each Run, and sorts. The page token is the creation
        time and id of the last Run handed out.
        """
        base = f"WorkflowType = '{WORKFLOW_TYPE}' AND ExecutionStatus != 'ContinuedAsNew'"
        if schedule is not None:
            base += f" AND {sa.SCHEDULE.name} = '{schedule}'"
        # The values are pattern-checked by the route (no quotes can reach the query).
        if engine is not None:
            base += f" AND {sa.ENGINE.name} = '{engine}'"
        if target is not None:
            base += f" AND {sa.TARGET.name} = '{target}'"
        cursor = _open_list_cursor(page_token) if page_token else None
        hi = cursor[0] if cursor else datetime.now(UTC) + timedelta(days=1)
        inclusive = True
        span = timedelta(hours=1)
        latest: dict[str, WorkflowExecution] = {}
        more = False
        while True:
            lo = hi - span
            window = (f"{base} AND {sa.CREATED.name} {'<=' if inclusive else '<'} "
                      f"'{_iso(hi)}' AND {sa.CREATED.name} >= '{_iso(lo)}'")
            async for wf in self.client.list_workflows(window, page_size=1000):
                seen = latest.get(wf.id)
                if seen is None or wf.start_time > seen.start_time:
                    latest[wf.id] = wf
            picked = [wf for wf in latest.values() if _after_cursor(wf, cursor)
                      and (status is None or _list_status(wf) == status.value)]
            older = (await self.client.count_workflows(
                f"{base} AND {sa.CREATED.name} < '{_iso(lo)}'")).count
            if len(picked) > limit or older == 0:
                more = len(picked) > limit
                break
            hi, inclusive, span = lo, False, span * 4
        picked.sort(key=_list_key, reverse=True)
        page = picked[:limit]
        runs = [RunListItem(
            id=wf.id.removeprefix("run-"),
            title=wf.typed_search_attributes.get(sa.TITLE) or "",
            status=_list_status(wf),
            engine=wf.typed_search_attributes.get(sa.ENGINE) or "",
            target=wf.typed_search_attributes.get(sa.TARGET),
            schedule_id=wf.typed_search_attributes.get(sa.SCHEDULE),
            created_at=_list_key(wf)[0],
            closed_at=wf.close_time,
        ) for wf in page]
        token = _seal_list_cursor(*_list_key(page[-1])) if more and page else None
        return RunList(runs=runs, next_page_token=token)

    async def timeline(self, run_id: str, after: int = 0) -> TimelineRead:
        """Archived chunks plus the workflow's live tail, as one ordered list after `after`."""
        desc = await self._describe(run_id)
        if desc.status == WorkflowExecutionStatus.RUNNING:
            try:
                tail: TimelineTail = await self.handle(run_id).query(
                    "tail", after, result_type=TimelineTail)
            except (WorkflowQueryFailedError, RPCError):
                desc = await self._describe(run_id)
                if desc.status == WorkflowExecutionStatus.RUNNING:
                    raise
            else:
                archived = [s for s in self.store.read_timeline(run_id, after)
                            if s.seq <= tail.archived_upto]
                return TimelineRead(steps=archived + tail.steps, status=tail.status,
                                    finished=tail.status.finished)
        # A closed Run archived every step before it ended; no worker needed to read it.
        steps = self.store.read_timeline(run_id, after)
        final = (await self._closed_view(run_id, desc)).status
        return TimelineRead(steps=steps, status=final, finished=True)

    async def cancel(self, run_id: str) -> RunPublic:
        status = await self._describe_status(run_id)
        if status != WorkflowExecutionStatus.RUNNING:
            run = await self.get(run_id)
            extra = (f"; to remove its kept DevBox now, DELETE /runs/{run_id}/devbox "
                     f"(ferry release {run_id})") if run.keep_alive_until else ""
            raise RunConflict(f"Run {run_id} has already finished ({run.status.value}){extra}")
        try:
            await self.handle(run_id).cancel()
        except RPCError:
            # It closed between describe and cancel: report it as finished.
            if await self._describe_status(run_id) == WorkflowExecutionStatus.RUNNING:
                raise
            return await self.cancel(run_id)
        return await self.get(run_id)

    async def answer(self, run_id: str, body: AnswersIn) -> RunPublic:
        status = await self._describe_status(run_id)
        if status != WorkflowExecutionStatus.RUNNING:
            raise RunConflict(f"Run {run_id} is not waiting for input (it has finished)")
        try:
            return await self.handle(run_id).execute_update("answer", body, result_type=RunPublic)
        except RPCError:
            # Sent while its last workflow task was closing it: nothing was asked any more.
            if await self._describe_status(run_id) != WorkflowExecutionStatus.RUNNING:
                raise RunConflict(
                    f"Run {run_id} is not waiting for input (it has finished)") from None
            raise
        except WorkflowUpdateFailedError as e:
            kind, message = _update_failure(e)
            if kind == "InvalidAnswer":
                raise InvalidRun("answers", message) from e
            raise RunConflict(message) from e

    async def send_message(self, run_id: str, body: MessageIn) -> RunPublic:
        gone = (f"Run {run_id} has finished and its DevBox is gone; continue in a new Run "
                f"from this one's spec and last workspace checkpoint with POST /runs "
                f'{{"from_run": "{run_id}", "instructions": "..."}} '
                f"(ferry run --from-run {run_id} \"...\")")
        return await self._to_run(run_id, "send_message", body, gone)

    async def review(self, run_id: str, body: ReviewIn) -> RunPublic:
        gone = (f"Run {run_id} has finished and its DevBox is gone; review it while its "
                "DevBox is kept alive (keep_alive)")
        return await self._to_run(run_id, "review", body, gone)

    async def _to_run(self, run_id: str, update: str, body: MessageIn | ReviewIn,
                      gone: str) -> RunPublic:
        """An Update for the open Run, or one that reopens a closed Run in its DevBox."""
        for _ in range(4):
            desc = await self._describe(run_id)
            try:
                if desc.status == WorkflowExecutionStatus.RUNNING:
                    try:
                        return await self.handle(run_id).execute_update(update, body,
                                                                        result_type=RunPublic)
                    except RPCError:
                        # Sent as its last workflow task closed it ("aborted by closing
                        # workflow"): the Update never ran; reopen instead.
                        if await self._describe_status(run_id) == \
                                WorkflowExecutionStatus.RUNNING:
                            raise
                        continue
                reopened = await self._reopen(run_id, desc, update, body, gone)
            except WorkflowUpdateFailedError as e:
                kind, message = _update_failure(e)
                if kind != "Closing":
                    raise RunConflict(message) from e
                await self._wait_closed(run_id)
                continue
            if reopened is not None:
                return reopened
            await asyncio.sleep(0.3)  # someone else reopened it just now: send to that
        raise RunConflict(gone)

    async def _wait_closed(self, run_id: str, timeout: float = 10.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while await self._describe_status(run_id) == WorkflowExecutionStatus.RUNNING:
            if asyncio.get_running_loop().time() > deadline:
                return
            await asyncio.sleep(0.1)

    async def _reopen(self, run_id: str, desc: WorkflowExecutionDescription, update: str,
                      body: MessageIn | ReviewIn, gone: str) -> RunPublic | None:
        """Claim the closed Run's kept DevBox and start a new execution with the Update.

        None when the claim failed because the Run was reopened meanwhile."""
        record = await asyncio.to_thread(self.store.read_record, run_id)
        if record is None or record.input.state is None or not record.run.keep_alive_until:
            raise RunConflict(gone)
        if isinstance(body, ReviewIn) and body.action == "accept" and \
                record.run.workspace is None:
            raise RunConflict("nothing to accept: this Run has no repository")
        if not isinstance(body, ReviewIn) or body.action != "accept":
            # A follow-up turn runs the engine again: refuse now if its host cannot.
            spec = record.input.spec.model_copy(update={"target": record.run.target})
            problem = await self.engine_problem(spec, record.run.engine_used or spec.engine)
            if problem:
                raise RunConflict(f"Run {run_id} cannot take a follow-up: {problem}")
        keeper = self.client.get_workflow_handle(keeper_id_for(run_id))
        try:
            await keeper.execute_update("claim", result_type=KeeperClaim)
        except (WorkflowUpdateFailedError, RPCError) as e:
            if await self._reopened_meanwhile(run_id):
                return None
            raise RunConflict(gone) from e
        state = record.input.state.model_copy(update={"phase": "keep_alive"})
        ours = {key.name for key in sa.ALL}
        attrs = TypedSearchAttributes([pair for pair in desc.typed_search_attributes
                                       if pair.key.name in ours])
        start: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
            WORKFLOW_TYPE, RunWorkflowInput(spec=record.input.spec, state=state),
            id=workflow_id_for(run_id), task_queue=self.settings.task_queue,
            search_attributes=attrs, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE)
        return await self.client.execute_update_with_start_workflow(
            update, body, start_workflow_operation=start, result_type=RunPublic)

    async def _keeper_claimed(self, run_id: str) -> bool:
        """Did a follow-up or review take the Run's DevBox back from its keeper?"""
        keeper = self.client.get_workflow_handle(keeper_id_for(run_id))
        try:
            desc = await keeper.describe()
            if desc.status == WorkflowExecutionStatus.RUNNING:
                return bool(await keeper.query("claimed", result_type=bool))
            if desc.status == WorkflowExecutionStatus.COMPLETED:
                return await keeper.result() == KEEPER_CLAIMED
        except (RPCError, WorkflowQueryFailedError):
            pass
        return False

    async def _reopened_meanwhile(self, run_id: str, within: float = 5.0) -> bool:
        """After a failed claim: did another request claim the DevBox to reopen the Run?
        Its new execution starts a moment after its claim, so wait for it a little."""
        if not await self._keeper_claimed(run_id):
            return await self._describe_status(run_id) == WorkflowExecutionStatus.RUNNING
        deadline = asyncio.get_running_loop().time() + within
        while True:
            if await self._describe_status(run_id) == WorkflowExecutionStatus.RUNNING:
                return True
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.1)

    async def release(self, run_id: str) -> ReleaseResult:
        """Remove a finished Run's kept DevBox now, rather than at the end of keep-alive."""
        status = await self._describe_status(run_id)
        if status == WorkflowExecutionStatus.RUNNING:
            raise RunConflict(f"Run {run_id} is still working in its DevBox: cancel it "
                              f"(ferry cancel {run_id}) and its DevBox goes with it")
        try:
            await self.client.get_workflow_handle(keeper_id_for(run_id)).execute_update(
                "release")
        except (WorkflowUpdateFailedError, RPCError) as e:
            if await self._reopened_meanwhile(run_id):
                raise RunConflict(f"Run {run_id} is working in its DevBox again (a follow-up "
                                  f"or review reopened it): cancel it (ferry cancel {run_id}), "
                                  "or release it once it has finished") from e
            raise RunConflict(f"Run {run_id} has no DevBox kept: it was removed already") \
                from e
        return ReleaseResult(run_id=run_id, released=True,
                             detail="the DevBox is being removed")

    async def engines(self) -> list[EngineInfo]:
        """Each engine, and whether the healthy worker hosts can run it (and why not)."""
        targets = [t for t in await read_targets(self.client) if is_healthy(t)]
        out = []
        for name, label in ENGINE_LABELS.items():
            if name == "auto":
                hosts = [t.host for t in targets if any(s.available for n, s in t.engines.items()
                                                        if n != "script")]
                out.append(EngineInfo(name=name, label=label, available=bool(hosts), hosts=hosts,
                                      reason=None if hosts else "no agent engine can run on "
                                      "any healthy worker host"))
                continue
            hosts = [t.host for t in targets if name not in t.engines or t.engines[name].available]
            reasons = sorted({r for t in targets if name in t.engines
                              for r in (t.engines[name].missing_credential,
                                        t.engines[name].missing_cli) if r})
            out.append(EngineInfo(name=name, label=label, available=bool(hosts), hosts=hosts,
                                  reason=None if hosts else "; ".join(reasons) or
                                  "no healthy worker host"))
        return out

    async def check_engine(self, spec: RunSpec) -> None:
        """Refuse a Run for an engine no eligible host can run (422 on `engine`)."""
        problem = await self.engine_problem(spec)
        if problem:
            raise InvalidRun("engine", problem)

    async def engine_problem(self, spec: RunSpec, engine: str | None = None) -> str | None:
        """Why no eligible host can run the Run's engine (missing credential, or the CLI
        missing from the default image), if so; a Run naming its own image is only checked
        for credentials. Hosts that have not said which engines they run are not judged."""
        engine = engine or spec.engine
        if engine == "script":
            return None
        hosts = [t for t in await read_targets(self.client) if is_healthy(t)
                 and (spec.target is None or t.host == spec.target)]
        where = f"on {spec.target}" if spec.target else "on any healthy worker host"
        if engine == "auto":
            if not hosts or any(not t.engines for t in hosts):
                return None
            if any(s.available or (spec.image and s.missing_credential is None)
                   for t in hosts for n, s in t.engines.items() if n != "script"):
                return None
            why = sorted({s.missing_credential or s.missing_cli or "" for t in hosts
                          for n, s in t.engines.items() if n != "script"} - {""})
            return f"auto finds no agent engine that can run {where}: {'; '.join(why)}"
        judged = [t.engines[engine] for t in hosts if engine in t.engines]
        if not judged or len(judged) < len(hosts):
            return None
        usable = [s for s in judged if s.available
                  or (spec.image and s.missing_credential is None)]
        if usable:
            return None
        why = sorted({s.missing_credential or s.missing_cli or "" for s in judged} - {""})
        return f"the {engine} engine cannot run {where}: {'; '.join(why)}"

    async def targets(self) -> list[TargetPublic]:
        return [TargetPublic(**t.model_dump(), healthy=is_healthy(t))
                for t in await read_targets(self.client)]

    async def rename(self, run_id: str, body: RunRename) -> RunPublic:
        status = await self._describe_status(run_id)
        if status != WorkflowExecutionStatus.RUNNING:
            raise RunConflict(f"Run {run_id} has finished; a finished Run keeps its title")
        return await self.handle(run_id).execute_update("rename", body, result_type=RunPublic)
