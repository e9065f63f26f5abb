"""Routes of `schedules` (Temporal Schedules), `triggers` and the webhook endpoint `hooks`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.responses import JSONResponse

from api.responses import COMMON, CronPreview, HookResult, errors
from api.run_service import InvalidRun
from api.schedule_service import ScheduleService, TriggerService, public_trigger
from ferry.metrics import WEBHOOKS
from ferry.schedules import (
    NAME_PATTERN,
    ScheduleCreate,
    SchedulePatch,
    SchedulePublic,
    TriggerCreate,
    TriggerPublic,
    check_cron,
    check_zone,
    next_fire_times,
)

schedules = APIRouter(prefix="/schedules", tags=["schedules"], responses=COMMON)
triggers = APIRouter(prefix="/triggers", tags=["triggers"], responses=COMMON)
hooks = APIRouter(prefix="/hooks", tags=["triggers"], responses=COMMON)

Name = Annotated[str, Path(pattern=NAME_PATTERN)]


def _schedules(request: Request) -> ScheduleService:
    return request.app.state.schedules


def _triggers(request: Request) -> TriggerService:
    return request.app.state.triggers


@schedules.post("", status_code=status.HTTP_201_CREATED, response_model=SchedulePublic,
                responses=errors(409))
async def create_schedule(body: ScheduleCreate, request: Request) -> SchedulePublic:
    """A schedule that starts autonomous Runs (cron, interval or one-time `at`)."""
    return await _schedules(request).create(body)


@schedules.get("", response_model=list[SchedulePublic])
async def list_schedules(request: Request) -> list[SchedulePublic]:
    return await _schedules(request).list()


@schedules.get("/preview", response_model=CronPreview)
async def preview(cron: str, time_zone: str = "UTC",
                  count: Annotated[int, Query(ge=1, le=50)] = 5) -> CronPreview:
    """The next fire times of a cron expression in a time zone (DST-aware)."""
    for field, check, value in (("cron", check_cron, cron), ("time_zone", check_zone, time_zone)):
        try:
            check(value)
        except ValueError as e:
            raise InvalidRun(field, str(e), "query") from e
    return CronPreview(next=next_fire_times(cron, time_zone, count))


@schedules.get("/{schedule_id}", response_model=SchedulePublic, responses=errors(404))
async def get_schedule(schedule_id: Name, request: Request) -> SchedulePublic:
    return await _schedules(request).get(schedule_id)


@schedules.patch("/{schedule_id}", response_model=SchedulePublic, responses=errors(404))
async def patch_schedule(schedule_id: Name, body: SchedulePatch,
                         request: Request) -> SchedulePublic:
    return await _schedules(request).patch(schedule_id, body)


@schedules.post("/{schedule_id}/pause", response_model=SchedulePublic, responses=errors(404))
async def pause_schedule(schedule_id: Name, request: Request) -> SchedulePublic:
    return await _schedules(request).pause(schedule_id, True)


@schedules.post("/{schedule_id}/unpause", response_model=SchedulePublic, responses=errors(404))
async def unpause_schedule(schedule_id: Name, request: Request) -> SchedulePublic:
    return await _schedules(request).pause(schedule_id, False)


@schedules.post("/{schedule_id}/trigger", response_model=SchedulePublic, responses=errors(404))
async def trigger_schedule(schedule_id: Name, request: Request) -> SchedulePublic:
    """Start one Run now."""
    return await _schedules(request).trigger(schedule_id)


@schedules.delete("/{schedule_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(404))
async def delete_schedule(schedule_id: Name, request: Request) -> None:
    await _schedules(request).delete(schedule_id)


@triggers.post("", status_code=status.HTTP_201_CREATED, response_model=TriggerPublic,
               responses=errors(409))
async def create_trigger(body: TriggerCreate, request: Request) -> TriggerPublic:
    """A webhook at `/hooks/{name}` that starts a Run (the secret is never shown again)."""
    return _triggers(request).create(body)


@triggers.get("", response_model=list[TriggerPublic])
async def list_triggers(request: Request) -> list[TriggerPublic]:
    return [public_trigger(t) for t in _triggers(request).store.all()]


@triggers.get("/{name}", response_model=TriggerPublic, responses=errors(404))
async def get_trigger(name: Name, request: Request) -> TriggerPublic:
    return public_trigger(_triggers(request).store.get(name))


@triggers.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(404))
async def delete_trigger(name: Name, request: Request) -> None:
    _triggers(request).store.delete(name)


MAX_HOOK_BODY = 1024 * 1024


async def _capped_body(request: Request) -> bytes:
    """The raw body, refused with 413 past MAX_HOOK_BODY (without reading it all)."""
    too_big = HTTPException(413,
                            detail=f"webhook bodies are limited to {MAX_HOOK_BODY} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_HOOK_BODY:
        raise too_big
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_HOOK_BODY:
            raise too_big
    return bytes(body)


@hooks.post("/{name}", status_code=status.HTTP_202_ACCEPTED, response_model=HookResult,
           responses=errors(404, 413))
async def hook(name: Name, request: Request) -> JSONResponse:
    """GitHub-style webhook: `X-Hub-Signature-256: sha256=<hmac of the raw body>`.

    A redelivery of the same body (same event) never starts a second Run."""
    raw = await _capped_body(request)
    try:
        result = await _triggers(request).fire(name, raw, dict(request.headers))
    except PermissionError as e:
        WEBHOOKS.labels("bad_signature").inc()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail=str(e)) from e
    except Exception:
        WEBHOOKS.labels("error").inc()
        raise
    WEBHOOKS.labels("duplicate" if result.get("duplicate") else
                    "started" if result.get("started") else "filtered").inc()
    return JSONResponse(result, status_code=202)
