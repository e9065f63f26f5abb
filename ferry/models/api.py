"""The HTTP API's bodies: what a person sends, and the Run as they see it."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, StrictBool, ValidationInfo, field_validator

from ferry.durations import Duration
from ferry.inputs import ApiInput, check_env, image_reference_ok
from ferry.models.common import (
    GATEWAY_ENGINES,
    MAX_INSTRUCTIONS_BYTES,
    MAX_MESSAGE_BYTES,
    MAX_TITLE_CHARS,
    RUN_ID_PATTERN,
    Effort,
    Engine,
    Mode,
    Network,
    OnTimeout,
    RunStatus,
)
from ferry.models.hosts import DevBoxInfo
from ferry.models.results import AcceptResult, AttemptResult, WorkspaceInfo
from ferry.models.steps import RunningCommand, Step, TurnUsage, Usage
from ferry.questions import QuestionSet
from ferry.tickets import parse_ticket_url


class RunCreate(ApiInput):
    """Body of `POST /runs`. With `from_run`, unset fields are copied from that Run."""

    instructions: str | None = Field(
        default=None, description="The task; for the `script` engine, a shell script.")
    engine: Engine | None = None
    title: str | None = Field(default=None, max_length=MAX_TITLE_CHARS)
    mode: Mode | None = None
    target: str | None = Field(default=None, description="Worker host to run on; any if unset.")
    image: str | None = Field(default=None, max_length=255,
                              description="DevBox image; the worker's default if unset.")
    from_run: str | None = Field(default=None, pattern=RUN_ID_PATTERN,
                                 description="Start from this Run's spec (a new Run, new DevBox) "
                                             "and, when it has one, its last workspace checkpoint.")
    fresh: bool = Field(default=False, description="With `from_run`: start from the repository's "
                                                   "branch, not from that Run's checkpoint.")
    keep_alive: Duration | None = Field(
        default=None, description="How long the DevBox stays up after the Run ends, for follow-ups.")
    idle_timeout: Duration | None = Field(
        default=None, description="A pause longer than this stops (hibernates) the DevBox.")
    question_timeout: Duration | None = Field(
        default=None, description="How long a question waits for an answer.")
    on_timeout: OnTimeout | None = Field(
        default=None, description="When a question times out: use the defaults, or fail the Run.")
    model: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@\[\]-]{0,199}$",
                              description="Model, engine-specific.")
    effort: Effort | None = Field(default=None, description="Reasoning effort.")
    max_turns: int | None = Field(default=None, ge=1, le=10_000, description="Budget: turns.")
    engine_max_turns: int | None = Field(
        default=None, ge=1, le=1000,
        description="Agent turns inside one engine turn (Claude Code --max-turns).")
    max_cost_usd: float | None = Field(default=None, gt=0, le=1_000_000,
                                       description="Budget: dollars.")
    max_duration: Duration | None = Field(default=None, description="Budget: wall time.")
    turn_timeout: Duration | None = Field(default=None, description="Watchdog: one turn's limit.")
    repo: str | None = Field(default=None, max_length=2000,
                             description="Git repository: https/ssh URL or a path on the worker host.")
    branch: str | None = Field(default=None, max_length=255,
                               description="Branch to start from (default: the repo's default).")
    ticket_url: str | None = Field(default=None, max_length=2000,
                                   description="GitHub issue or Azure work item URL.")
    artifacts: list[str] = Field(default_factory=list, max_length=100,
                                 description="Workspace paths to keep as artifacts.")
    run_as_root: StrictBool | None = Field(
        default=None, description="Run turn commands as root (no capabilities) instead of the "
        "unprivileged agent user; needed to install system packages.")
    env: dict[str, str] | None = Field(
        default=None, description="Environment variables for the Run's commands. Not for "
        "secrets: they are kept in the Run's history.")
    network: Network | None = Field(
        default=None, description="`gateway` (default): no network of its own, the model "
        "gateway and an allowlisting proxy; `none`: nothing; `open`: unfiltered.")

    @field_validator("network")
    @classmethod
    def _network_fits_engine(cls, v: str | None, info: ValidationInfo) -> str | None:
        engine = info.data.get("engine")
        if v == "none" and engine in GATEWAY_ENGINES:
            raise ValueError(f"the {engine} engine calls its model through the model gateway, "
                             "which network none does not have: use gateway (the default) or "
                             "open")
        return v

    @field_validator("env")
    @classmethod
    def _env_ok(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        return check_env(v) if v is not None else v

    @field_validator("image")
    @classmethod
    def _image_ok(cls, v: str | None) -> str | None:
        if v is not None and not image_reference_ok(v):
            raise ValueError("image must be a Docker image reference like ferry-devbox or "
                             "ghcr.io/org/img:tag")
        return v

    @field_validator("ticket_url")
    @classmethod
    def _ticket_ok(cls, v: str | None) -> str | None:
        if v is not None:
            parse_ticket_url(v)
        return v

    @field_validator("branch")
    @classmethod
    def _branch_ok(cls, v: str | None) -> str | None:
        if v is not None and (not re.match(r"^[A-Za-z0-9._/-]+$", v) or ".." in v
                              or v.startswith(("-", "/"))):
            raise ValueError("branch must be a plain git branch name")
        return v

    @field_validator("repo")
    @classmethod
    def _repo_ok(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or v.startswith("-")):
            raise ValueError("repo must be a git URL or a path on the worker host")
        return v

    @field_validator("artifacts")
    @classmethod
    def _artifacts_ok(cls, v: list[str]) -> list[str]:
        for path in v:
            if not path or len(path) > 1000 or path.startswith(("/", "-")) or \
                    ".." in path.split("/") or "\x00" in path:
                raise ValueError(f"artifact path {path[:80]!r} must be relative to the workspace")
        return v

    @field_validator("instructions")
    @classmethod
    def _instructions_ok(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not v.strip():
            raise ValueError("instructions must not be empty")
        if len(v.encode()) > MAX_INSTRUCTIONS_BYTES:
            raise ValueError(f"instructions are larger than {MAX_INSTRUCTIONS_BYTES} bytes")
        return v

    @field_validator("target")
    @classmethod
    def _target_ok(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", v):
            raise ValueError("target must be a worker host name (letters, digits, . _ -)")
        return v

    @field_validator("title")
    @classmethod
    def _title_ok(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("title must not be blank")
        return v.strip() if v else v


class RunRename(ApiInput):
    """Body of `PATCH /runs/{id}`."""

    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)

    @field_validator("title")
    @classmethod
    def _title_ok(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("title must not be blank")
        return v.strip()


class MessageIn(ApiInput):
    """Body of `POST /runs/{id}/messages`: steering while working, a follow-up after."""

    text: str

    @field_validator("text")
    @classmethod
    def _text_ok(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("text must not be empty")
        if len(v.encode()) > MAX_MESSAGE_BYTES:
            raise ValueError(f"text is larger than {MAX_MESSAGE_BYTES} bytes")
        return v


class ReviewIn(ApiInput):
    """Body of `POST /runs/{id}/review`."""

    action: Literal["accept", "request_changes", "reject"]
    message: str | None = Field(default=None, max_length=MAX_INSTRUCTIONS_BYTES)


class RunPublic(BaseModel):
    """A Run as the API shows it."""

    id: str
    title: str
    status: RunStatus
    engine: str
    mode: str
    target: str | None
    target_requested: str | None = Field(
        default=None, description="The target the Run was started with (None: any host).")
    image: str | None
    instructions: str
    created_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    duration_seconds: float | None
    devboxes: list[DevBoxInfo]
    summary: str | None
    error: str | None
    running: RunningCommand | None
    step_count: int
    temporal_workflow_id: str
    questions: QuestionSet | None = None
    waiting_since: datetime | None = None
    queued_messages: int = 0
    keep_alive_until: datetime | None = None
    devbox_note: str | None = None  # e.g. the host was gone when its DevBox was to be removed
    from_run: str | None = None
    keep_alive_seconds: float = 0
    idle_timeout_seconds: float = 0
    question_timeout_seconds: float = 0
    on_timeout: str = "fail"
    engine_used: str | None = None
    model: str | None = None
    effort: str | None = None
    session_id: str | None = None
    usage: Usage = Field(default_factory=Usage)
    turn_usage: list[TurnUsage] = Field(default_factory=list)
    budgets: dict[str, Any] = Field(default_factory=dict)
    repo: str | None = None
    branch: str | None = None
    ticket_url: str | None = None
    ticket_title: str | None = None
    schedule_id: str | None = None
    trigger: str | None = None
    workspace: WorkspaceInfo | None = None
    attempt: int = 1
    attempts: list[AttemptResult] = Field(default_factory=list)
    accepted: AcceptResult | None = None
    run_as_root: bool = False
    env: dict[str, str] = Field(default_factory=dict)
    network: Network | None = None
    artifacts: list[str] = Field(default_factory=list)


class RunListItem(BaseModel):
    id: str
    schedule_id: str | None = None
    title: str
    status: str
    engine: str
    target: str | None
    created_at: datetime | None
    closed_at: datetime | None


class RunList(BaseModel):
    runs: list[RunListItem]
    next_page_token: str | None = None


class Timeline(BaseModel):
    steps: list[Step]


class TimelineTail(BaseModel):
    """Query result: steps still held by the workflow after `after`, and the status."""

    steps: list[Step]
    archived_upto: int
    status: RunStatus
    next_seq: int


class ReleaseResult(BaseModel):
    run_id: str
    released: bool
    detail: str
