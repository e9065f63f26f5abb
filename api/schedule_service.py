"""Schedules (Temporal Schedules whose action starts RunWorkflow) and webhook triggers."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from jinja2 import ChainableUndefined, TemplateError, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
    WorkflowExecutionStatus,
)
from temporalio.common import SearchAttributePair
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.run_service import InvalidRun, RunConflict, RunNotFound, RunService
from ferry import search_attributes as sa
from ferry.artifact_backends import Blobs
from ferry.inputs import MAX_ENV_VALUE, MAX_ENV_VARS
from ferry.models.api import RunCreate
from ferry.models.common import workflow_id_for
from ferry.models.state import RunSpec, RunWorkflowInput
from ferry.schedules import (
    ScheduleCreate,
    SchedulePatch,
    SchedulePublic,
    ScheduleSpecIn,
    TriggerCreate,
    TriggerPublic,
)

SPEC_MEMO = "ferry_schedule_spec"
OVERLAP = {"skip": ScheduleOverlapPolicy.SKIP, "buffer_one": ScheduleOverlapPolicy.BUFFER_ONE,
           "buffer_all": ScheduleOverlapPolicy.BUFFER_ALL,
           "cancel_other": ScheduleOverlapPolicy.CANCEL_OTHER,
           "allow_all": ScheduleOverlapPolicy.ALLOW_ALL}


class ScheduleNotFound(RunNotFound):
    def __init__(self, schedule_id: str) -> None:
        Exception.__init__(self, f"no schedule with id {schedule_id!r}")


def autonomous(body: RunCreate, where: str) -> RunCreate:
    """Scheduled and triggered Runs have nobody to answer: autonomous, with a target."""
    if body.mode == "interactive":
        raise InvalidRun("mode", f"{where} Runs are autonomous; mode must be autonomous (or unset)",
                         "body.run")
    if not body.target:
        raise InvalidRun("target", f"{where} Runs are autonomous and need a target (a worker host)",
                         "body.run")
    return body.model_copy(update={"mode": "autonomous"})


def scheduled(body: RunCreate) -> RunCreate:
    """A schedule's Run template: autonomous, and keeping no DevBox unless it says so (a
    schedule firing every few minutes would otherwise pile up idle DevBoxes)."""
    body = autonomous(body, "scheduled")
    if body.keep_alive is None:
        body = body.model_copy(update={"keep_alive": timedelta(0)})
    return body


def temporal_spec(spec: ScheduleSpecIn, body: ScheduleCreate | None = None) -> ScheduleSpec:
    kw: dict[str, Any] = {}
    if body is not None:
        kw = {"start_at": body.start_at, "end_at": body.end_at, "jitter": body.jitter}
    if spec.cron:
        return ScheduleSpec(cron_expressions=[spec.cron], time_zone_name=spec.time_zone, **kw)
    if spec.interval:
        return ScheduleSpec(intervals=[ScheduleIntervalSpec(every=spec.interval.every,
                                                            offset=spec.interval.offset)], **kw)
    assert spec.at is not None
    at = spec.at.astimezone(UTC)
    return ScheduleSpec(calendars=[ScheduleCalendarSpec(
        second=[ScheduleRange(at.second)], minute=[ScheduleRange(at.minute)],
        hour=[ScheduleRange(at.hour)], day_of_month=[ScheduleRange(at.day)],
        month=[ScheduleRange(at.month)], year=[ScheduleRange(at.year)],
        day_of_week=[ScheduleRange(0, 6)])], **kw)


class ScheduleService:
    def __init__(self, runs: RunService) -> None:
        self.runs = runs
        self.client = runs.client

    def _action(self, spec: RunSpec, schedule_id: str,
                schedule_spec: ScheduleSpecIn) -> ScheduleActionStartWorkflow:
        # The server rewrites cron strings into calendars; the memo keeps the spec as given.
        return ScheduleActionStartWorkflow(
            "RunWorkflow", RunWorkflowInput(spec=spec), id=workflow_id_for(schedule_id),
            task_queue=self.runs.settings.task_queue,
            typed_search_attributes=self.runs.search_attributes(
                spec, [SearchAttributePair(sa.SCHEDULE, schedule_id)]),
            memo={SPEC_MEMO: schedule_spec.model_dump(mode="json", exclude_none=True)},
        )

    async def _decoded(self, action: ScheduleActionStartWorkflow) -> tuple[RunSpec, dict]:
        """The Run template and the spec as given, from a described schedule's action."""
        arg = action.args[0]
        if isinstance(arg, Payload):  # describe hands back raw payloads
            arg = (await self.client.data_converter.decode([arg], [RunWorkflowInput]))[0]
        memo_payload = (action.memo or {}).get(SPEC_MEMO)
        spec: Any = memo_payload
        if isinstance(memo_payload, Payload):
            spec = (await self.client.data_converter.decode([memo_payload], [dict]))[0]
        return RunWorkflowInput.model_validate(arg).spec, spec or {}

    async def _template(self, run: RunCreate, schedule_id: str) -> RunSpec:
        """The Run a schedule starts, checked as a new Run is (errors located in `run`)."""
        try:
            spec = await self.runs.spec_for(run, schedule_id)
            await self.runs.check_engine(spec)
        except InvalidRun as e:
            if e.where == "body":
                e.where = "body.run"
            raise
        return spec

    async def create(self, body: ScheduleCreate) -> SchedulePublic:
        run = scheduled(body.run)
        spec = await self._template(run, body.name)
        state = ScheduleState(paused=body.paused, note=body.note,
                              limited_actions=body.spec.at is not None,
                              remaining_actions=1 if body.spec.at is not None else 0)
        try:
            await self.client.create_schedule(body.name, Schedule(
                action=self._action(spec, body.name, body.spec),
                spec=temporal_spec(body.spec, body),
                policy=SchedulePolicy(overlap=OVERLAP[body.overlap]), state=state),
            )
        except ScheduleAlreadyRunningError as e:
            raise RunConflict(f"a schedule named {body.name!r} exists already") from e
        return await self.get(body.name)

    def _handle(self, schedule_id: str):
        return self.client.get_schedule_handle(schedule_id)

    async def _describe(self, schedule_id: str):
        try:
            return await self._handle(schedule_id).describe()
        except RPCError as e:
            if e.status == RPCStatusCode.NOT_FOUND:
                raise ScheduleNotFound(schedule_id) from e
            raise

    async def get(self, schedule_id: str) -> SchedulePublic:
        desc = await self._describe(schedule_id)
        action = desc.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        template, given = await self._decoded(action)
        state = desc.schedule.state
        recent = [await self._run_status(act.action.workflow_id, act.scheduled_at)
                  for act in desc.info.recent_actions[-10:]
                  if getattr(act.action, "workflow_id", None)]
        return SchedulePublic(
            id=desc.id, spec=given, run=template.model_dump(mode="json"),
            paused=state.paused, note=state.note,
            finished=state.limited_actions and state.remaining_actions == 0,
            next_action_times=list(desc.info.next_action_times[:5]),
            recent_runs=recent, num_actions=desc.info.num_actions)

    async def _run_status(self, workflow_id: str, at: datetime) -> dict[str, Any]:
        run_id = workflow_id.removeprefix("run-")
        status = "unknown"
        try:
            desc = await self.client.get_workflow_handle(workflow_id).describe()
            status = desc.typed_search_attributes.get(sa.STATUS) or status
            if desc.status == WorkflowExecutionStatus.CANCELED:
                status = "cancelled"
        except RPCError:
            pass
        return {"id": run_id, "status": status, "scheduled_at": at.isoformat()}

    async def list(self) -> list[SchedulePublic]:
        ids = [s.id async for s in await self.client.list_schedules()]
        out = []
        for schedule_id in ids:
            try:
                out.append(await self.get(schedule_id))
            except ScheduleNotFound:
                continue
        return out

    async def patch(self, schedule_id: str, body: SchedulePatch) -> SchedulePublic:
        desc = await self._describe(schedule_id)
        action = desc.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        template, given = await self._decoded(action)
        if body.run is not None:
            template = await self._template(scheduled(body.run), schedule_id)
        spec_in = body.spec or ScheduleSpecIn.model_construct(**given)
        new_action = self._action(template, schedule_id, spec_in)

        def update(inp: ScheduleUpdateInput) -> ScheduleUpdate:
            sched = inp.description.schedule
            if body.spec is not None:
                sched.spec = temporal_spec(body.spec)
            sched.action = new_action
            if body.note is not None:
                sched.state.note = body.note
            return ScheduleUpdate(schedule=sched)

        await self._handle(schedule_id).update(update)
        return await self.get(schedule_id)

    async def pause(self, schedule_id: str, paused: bool) -> SchedulePublic:
        desc = await self._describe(schedule_id)
        handle = self._handle(schedule_id)
        # Temporal keeps one note, and pausing sets it: the schedule's own note is kept.
        note = desc.schedule.state.note or ("paused in Ferry" if paused else "resumed in Ferry")
        await (handle.pause(note=note) if paused else handle.unpause(note=note))
        return await self.get(schedule_id)

    async def trigger(self, schedule_id: str) -> SchedulePublic:
        await self._describe(schedule_id)
        await self._handle(schedule_id).trigger(overlap=ScheduleOverlapPolicy.ALLOW_ALL)
        return await self.get(schedule_id)

    async def delete(self, schedule_id: str) -> None:
        await self._describe(schedule_id)
        await self._handle(schedule_id).delete()


# ---------------------------------------------------------------------- triggers


class TriggerStore:
    """Triggers live as `triggers/<name>.json` in the deployment's shared store (owner-only
    files under the data dir, or object storage), so every API replica sees the same ones;
    their secrets stay out of workflow history."""

    def __init__(self, blobs: Blobs) -> None:
        self.blobs = blobs

    @staticmethod
    def key(name: str) -> str:
        return f"triggers/{name}.json"

    def save(self, body: TriggerCreate) -> None:
        if self.blobs.size(self.key(body.name)) is not None:
            raise RunConflict(f"a trigger named {body.name!r} exists already")
        self.blobs.put(self.key(body.name), body.model_dump_json().encode())

    def get(self, name: str) -> TriggerCreate:
        data = self.blobs.get(self.key(name))
        if data is None:
            raise _trigger_not_found(name)
        return TriggerCreate.model_validate_json(data)

    def all(self) -> list[TriggerCreate]:
        out = []
        for key, _ in self.blobs.scan("triggers"):
            data = self.blobs.get(key) if key.endswith(".json") else None
            if data is not None:
                out.append(TriggerCreate.model_validate_json(data))
        return out

    def delete(self, name: str) -> None:
        if self.blobs.size(self.key(name)) is None:
            raise _trigger_not_found(name)
        self.blobs.delete([self.key(name)])


def _trigger_not_found(name: str) -> RunNotFound:
    e = RunNotFound.__new__(RunNotFound)
    Exception.__init__(e, f"no trigger named {name!r}")
    return e


def public_trigger(t: TriggerCreate) -> TriggerPublic:
    return TriggerPublic(name=t.name, run=t.run.model_dump(mode="json", exclude_none=True),
                         filter=t.filter, hook_url=f"/hooks/{t.name}")


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """Any malformed header (not ASCII, wrong prefix, wrong length) is simply not a match."""
    if not header or not header.startswith("sha256="):
        return False
    try:
        given = header.removeprefix("sha256=").strip().encode("ascii")
    except UnicodeEncodeError:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
    return hmac.compare_digest(expected, given)


def _dig(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def filter_matches(t: TriggerCreate, headers: dict[str, str], payload: Any) -> bool:
    lower = {k.lower(): v for k, v in headers.items()}
    if any(lower.get(k.lower()) != v for k, v in t.filter.headers.items()):
        return False
    return all(_dig(payload, k) == v for k, v in t.filter.payload.items())


# Unsafe attributes (`__class__`, ...) come back undefined, and chains of them render empty.
_ENV = SandboxedEnvironment(autoescape=False, undefined=ChainableUndefined)
HOOK_VAR = "HOOK_VALUE_{}"


def render(template: str, context: dict[str, Any]) -> str:
    """Fill `{{ placeholders }}` from the payload; no code runs (sandboxed Jinja)."""
    try:
        return _ENV.from_string(template).render(**context)
    except TemplateError:
        return ""


class ScriptRender:
    """Renders a `script` template so payload values stay data: each `{{ value }}` becomes
    a quoted reference to an environment variable holding it ("$HOOK_VALUE_1"), never
    shell text (a title like `$(rm -rf ~)` is printed, not run)."""

    def __init__(self) -> None:
        self.env: dict[str, str] = {}
        self.env_obj = SandboxedEnvironment(autoescape=False, undefined=ChainableUndefined,
                                            finalize=self._as_variable)

    def _as_variable(self, value: Any) -> str:
        text = "" if value is None else str(value)
        name = HOOK_VAR.format(len(self.env) + 1)
        self.env[name] = text[:MAX_ENV_VALUE]
        return f'"${{{name}}}"'

    def render(self, template: str, context: dict[str, Any]) -> str:
        try:
            return self.env_obj.from_string(template).render(**context)
        except TemplateError:
            return ""


TEMPLATE_FIELDS = ("instructions", "title", "branch", "repo", "ticket_url")


def check_templates(run: RunCreate) -> None:
    """A template that cannot render is refused when the trigger is made, not per delivery."""
    for key in TEMPLATE_FIELDS:
        text = getattr(run, key)
        if isinstance(text, str):
            try:
                _ENV.parse(text)
            except TemplateSyntaxError as e:
                raise InvalidRun(key, f"template error on line {e.lineno}: {e.message}",
                                 "body.run") from e


def render_run(t: TriggerCreate, payload: Any, headers: dict[str, str]) -> RunCreate:
    context = {**(payload if isinstance(payload, dict) else {}), "payload": payload,
               "headers": headers}
    data = t.run.model_dump(mode="json", exclude_none=True)
    script = (data.get("engine") or "script") == "script"
    shell = ScriptRender()
    for key in TEMPLATE_FIELDS:
        if isinstance(data.get(key), str):
            data[key] = shell.render(data[key], context) if key == "instructions" and script \
                else render(data[key], context)
    if shell.env:
        if len(shell.env) > MAX_ENV_VARS:
            raise InvalidRun("instructions", f"the template uses more than {MAX_ENV_VARS} "
                                             "placeholders", "body.run")
        data["env"] = {**(data.get("env") or {}), **shell.env}
    if not data.get("title"):
        data.pop("title", None)
    data["mode"] = "autonomous"
    try:
        return RunCreate.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        raise InvalidRun(str(first["loc"][-1]), f"the rendered Run is invalid: {first['msg']}",
                         "body.run") from e


class TriggerService:
    def __init__(self, runs: RunService, store: TriggerStore) -> None:
        self.runs = runs
        self.store = store

    def create(self, body: TriggerCreate) -> TriggerPublic:
        autonomous(body.run, "triggered")
        check_templates(body.run)
        self.store.save(body)
        return public_trigger(body)

    async def fire(self, name: str, raw: bytes, headers: dict[str, str]) -> dict[str, Any]:
        t = self.store.get(name)
        if not signature_ok(t.secret, raw, headers.get("x-hub-signature-256")):
            raise PermissionError("missing or wrong X-Hub-Signature-256")
        try:
            payload = json.loads(raw or b"null")
        except (ValueError, RecursionError) as e:  # RecursionError: absurdly deep nesting
            raise InvalidRun("body", "the hook body is not JSON (or nests too deeply)") from e
        if not filter_matches(t, headers, payload):
            return {"started": False, "reason": "filter did not match"}
        # The Run id comes from the signed body: a replay under a new (unsigned) delivery id
        # is the same event, and starts nothing.
        run_id = f"hook-{name}-{hashlib.sha256(raw).hexdigest()[:24]}"
        body = render_run(t, payload, headers)
        try:
            run = await self.runs.create(body, run_id=run_id, reject_duplicate=True,
                                         extra_attrs=[SearchAttributePair(sa.TRIGGER, name)])
        except WorkflowAlreadyStartedError:
            return {"started": False, "duplicate": True, "run_id": run_id}
        return {"started": True, "run_id": run.id}
