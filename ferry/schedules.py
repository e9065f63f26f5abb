"""Schedules and triggers as the API takes them: validated before anything reaches Temporal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
    """How often, e.g. `15m` (at least 1s)."""
    offset: Duration | None = None
    """Shift within each interval, e.g. `5m`."""

    @field_validator("every")
    @classmethod
    def _positive(cls, v: timedelta) -> timedelta:
        if v.total_seconds() < 1:
            raise ValueError("every must be at least 1s")
        return v


class ScheduleSpecIn(ApiInput):
    """Exactly one of `cron` (with `time_zone`), `interval`, `at`."""

    cron: str | None = Field(default=None, max_length=200)
    """A 5-field cron expression (one of cron, interval, at)."""
    time_zone: str = Field(default="UTC", max_length=64)
    """IANA time zone for cron (DST-aware)."""
    interval: IntervalIn | None = None
    """Every so often (one of cron, interval, at)."""
    at: datetime | None = None
    """Once, at this time (one of cron, interval, at)."""

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
    """Schedule id: lower-case letters, digits and `-`."""
    run: RunCreate
    """The Run each firing starts (always autonomous; needs a target)."""
    spec: ScheduleSpecIn
    """When it fires."""
    start_at: datetime | None = None
    """Fire no earlier than this."""
    end_at: datetime | None = None
    """Fire no later than this."""
    jitter: Duration | None = None
    """Random delay up to this much per firing."""
    overlap: Overlap = "skip"
    """If the previous Run is still going: `skip`, `buffer_one`, `buffer_all`, `cancel_other` or `allow_all`."""
    paused: bool = False
    """Create it paused."""
    note: str | None = Field(default=None, max_length=1000)
    """A note shown with it (and why it was paused)."""


class SchedulePatch(ApiInput):
    spec: ScheduleSpecIn | None = None
    """A new spec."""
    run: RunCreate | None = None
    """A new Run template."""
    note: str | None = Field(default=None, max_length=1000)
    """A new note."""


class SchedulePublic(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    id: str
    """Schedule id."""
    spec: dict[str, Any]
    """When it fires, as given."""
    run: dict[str, Any]
    """The Run template."""
    paused: bool
    """Whether it is paused."""
    note: str | None
    """Its note."""
    finished: bool
    """A one-time schedule that has fired."""
    next_action_times: list[datetime]
    """The next fire times."""
    recent_runs: list[dict[str, Any]] = Field(default_factory=list)
    """The latest Runs it started, with their status."""
    num_actions: int = 0
    """How many Runs it has started."""


class TriggerFilter(ApiInput):
    """Header values and payload fields (dotted paths) that must all be equal."""

    headers: dict[str, str] = Field(default_factory=dict)
    """Header name → value that must match."""
    payload: dict[str, Any] = Field(default_factory=dict)
    """Dotted payload path → value that must match."""


class TriggerCreate(ApiInput):
    name: str = Field(pattern=NAME_PATTERN)
    """Trigger name; the webhook is `/hooks/{name}`."""
    secret: str = Field(min_length=8, max_length=512)
    """HMAC-SHA256 secret the sender signs with (X-Hub-Signature-256); never shown again."""
    run: RunCreate
    """The Run a delivery starts; `{{payload.x}}` placeholders are filled in."""
    filter: TriggerFilter = Field(default_factory=TriggerFilter)
    """Only deliveries matching it start a Run."""


class TriggerPublic(BaseModel):
    """A trigger as the API shows it: never its secret."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    name: str
    """Trigger name."""
    run: dict[str, Any]
    """The Run template."""
    filter: TriggerFilter
    """Its filter."""
    hook_url: str
    """Where senders POST."""
