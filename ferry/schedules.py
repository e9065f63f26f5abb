"""Schedules and triggers as the API takes them: validated before anything reaches Temporal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, Field, field_validator, model_validator

from ferry.durations import Duration
from ferry.inputs import ApiInput
from ferry.models.api import RunCreate

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,31}$"
Overlap = Literal["skip", "buffer_one", "buffer_all", "cancel_other", "allow_all"]


def check_cron(expr: str) -> str:
    if len(expr.split()) != 5:
        raise ValueError(f"cron {expr!r} must have 5 fields (minute hour day month weekday)")
    if not croniter.is_valid(expr):
        raise ValueError(f"cron {expr!r} is not a valid cron expression")
    return expr


def check_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"unknown time zone {name!r} (use an IANA name like Europe/Paris)") from e
    return name


def next_fire_times(cron: str, time_zone: str, count: int = 5,
                    after: datetime | None = None) -> list[datetime]:
    zone = ZoneInfo(time_zone)
    it = croniter(cron, (after or datetime.now(UTC)).astimezone(zone))
    return [it.get_next(datetime).astimezone(UTC) for _ in range(count)]


class IntervalIn(ApiInput):
    every: Duration
    offset: Duration | None = None

    @field_validator("every")
    @classmethod
    def _positive(cls, v: timedelta) -> timedelta:
        if v.total_seconds() < 1:
            raise ValueError("every must be at least 1s")
        return v


class ScheduleSpecIn(ApiInput):
    """Exactly one of `cron` (with `time_zone`), `interval`, `at`."""

    cron: str | None = Field(default=None, max_length=200)
    time_zone: str = Field(default="UTC", max_length=64)
    interval: IntervalIn | None = None
    at: datetime | None = None

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        return check_cron(v) if v is not None else v

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, v: str) -> str:
        return check_zone(v)

    @field_validator("at")
    @classmethod
    def _at(cls, v: datetime | None) -> datetime | None:
        if v is None:
            return v
        v = v if v.tzinfo else v.replace(tzinfo=UTC)
        if v <= datetime.now(UTC):
            raise ValueError(f"at {v.isoformat()} is in the past")
        return v

    @model_validator(mode="after")
    def _one(self) -> ScheduleSpecIn:
        given = [k for k in ("cron", "interval", "at") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of cron, interval or at")
        return self

    @property
    def kind(self) -> str:
        return "cron" if self.cron else "interval" if self.interval else "at"


class ScheduleCreate(ApiInput):
    """Body of `POST /schedules`. Scheduled Runs are autonomous and need a target."""

    name: str = Field(pattern=NAME_PATTERN)
    run: RunCreate
    spec: ScheduleSpecIn
    start_at: datetime | None = None
    end_at: datetime | None = None
    jitter: Duration | None = None
    overlap: Overlap = "skip"
    paused: bool = False
    note: str | None = Field(default=None, max_length=1000)


class SchedulePatch(ApiInput):
    spec: ScheduleSpecIn | None = None
    run: RunCreate | None = None
    note: str | None = Field(default=None, max_length=1000)


class SchedulePublic(BaseModel):
    id: str
    spec: dict[str, Any]
    run: dict[str, Any]
    paused: bool
    note: str | None
    finished: bool
    next_action_times: list[datetime]
    recent_runs: list[dict[str, Any]] = Field(default_factory=list)
    num_actions: int = 0


class TriggerFilter(ApiInput):
    """Header values and payload fields (dotted paths) that must all be equal."""

    headers: dict[str, str] = Field(default_factory=dict)
    payload: dict[str, Any] = Field(default_factory=dict)


class TriggerCreate(ApiInput):
    name: str = Field(pattern=NAME_PATTERN)
    secret: str = Field(min_length=8, max_length=512)
    run: RunCreate
    filter: TriggerFilter = Field(default_factory=TriggerFilter)


class TriggerPublic(BaseModel):
    """A trigger as the API shows it: never its secret."""

    name: str
    run: dict[str, Any]
    filter: TriggerFilter
    hook_url: str
