"""The HTTP API's bodies: what a person sends, and the Run as they see it."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationInfo, field_validator

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
    PermissionMode,
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
    """`script`, `claude-code` (either credential), `claude-code-plan` (a Claude subscription),
    `claude-code-api` (API credits), `codex`, `openai` or `auto` (the first usable of
    FERRY_ENGINE_PRIORITY); `GET /engines` says which can run."""
    title: str | None = Field(default=None, max_length=MAX_TITLE_CHARS)
    """Shown in lists (default: the first line of the instructions)."""
    mode: Mode | None = None
    """`interactive` (questions wait for a person) or `autonomous` (defaults are used; needs a target)."""
    target: str | None = Field(default=None, description=(
        "Worker host to run on. `any`: whichever healthy host takes it first (Runs spread "
        "over the hosts; allowed for autonomous Runs). Unset: the only host, or an interactive "
        "Run asks which when there are several."))
    image: str | None = Field(default=None, max_length=255,
                              description="DevBox image; the worker's default if unset.")
    from_run: str | None = Field(default=None, pattern=RUN_ID_PATTERN,
                                 description="Start from this Run's spec (a new Run, new DevBox) "
                                             "and, when it has one, its last workspace checkpoint.")
    fresh: StrictBool = Field(default=False, description="With `from_run`: start from the repository's "
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
    permission_mode: PermissionMode | None = Field(
        default=None, description="Claude Code engines: `plan` reads and plans without editing; "
        "`default`, `acceptEdits` or `bypassPermissions` (Ferry's default, the DevBox is the "
        "sandbox).")
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

    @field_validator("permission_mode")
    @classmethod
    def _permission_mode_fits_engine(cls, v: str | None, info: ValidationInfo) -> str | None:
        engine = info.data.get("engine")
        if v is not None and engine in ("script", "codex", "openai"):
            raise ValueError(f"permission_mode is a Claude Code option; the {engine} engine has "
                             "none")
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
    """The new title."""

    @field_validator("title")
    @classmethod
    def _title_ok(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("title must not be blank")
        return v.strip()


class MessageIn(ApiInput):
    """Body of `POST /runs/{id}/messages`: steering while working, a follow-up after."""

    text: str
    """The message; for the script engine, commands to run."""

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
    """`accept` (commit, push, pull request), `request_changes` (a follow-up turn) or `reject` (reset and
    retry)."""
    message: str | None = Field(default=None, max_length=MAX_INSTRUCTIONS_BYTES)
    """request_changes: what to change; reject: new instructions; accept: the commit message."""


class RunPublic(BaseModel):
    """A Run as the API shows it."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    id: str
    """Run id."""
    title: str
    """Title."""
    status: RunStatus
    """`pending`, `in_progress`, `waiting_for_input`, `completed`, `failed` or `cancelled`."""
    engine: str
    """The engine asked for."""
    mode: str
    """`interactive` or `autonomous`."""
    target: str | None
    """The worker host it runs on (once placed)."""
    target_requested: str | None = Field(
        default=None, description="The target the Run was started with (None: any host).")
    image: str | None
    """The DevBox image."""
    instructions: str
    """The task."""
    created_at: datetime | None
    """When it was created."""
    started_at: datetime | None
    """When its first turn started."""
    completed_at: datetime | None
    """When it last finished."""
    duration_seconds: float | None
    """Time spent working: in progress, not waiting for answers or kept for follow-ups."""
    working_since: datetime | None = None
    """When the current stretch of work began (while in progress)."""
    devboxes: list[DevBoxInfo]
    """Every DevBox the Run has had (a new one after a reject, a lost host or hibernation)."""
    summary: str | None
    """What the Run did, from its engine."""
    error: str | None
    """Why it failed."""
    running: RunningCommand | None
    """The command running now, if any."""
    step_count: int
    """Steps in the timeline."""
    temporal_workflow_id: str
    """Its workflow in the Temporal UI."""
    questions: QuestionSet | None = None
    """The questions waiting for an answer."""
    waiting_since: datetime | None = None
    """When the questions were asked."""
    queued_messages: int = 0
    """Messages waiting for the next turn."""
    keep_alive_until: datetime | None = None
    """Until when its DevBox is kept for follow-ups and review."""
    devbox_note: str | None = None  # e.g. the host was gone when its DevBox was to be removed
    """A note on the DevBox (e.g. its host was gone when it was to be removed)."""
    from_run: str | None = None
    """The Run it was continued from."""
    keep_alive_seconds: float = 0
    """How long the DevBox is kept after the Run ends."""
    idle_timeout_seconds: float = 0
    """A pause longer than this hibernates the DevBox."""
    question_timeout_seconds: float = 0
    """How long questions wait for an answer."""
    on_timeout: str = "fail"
    """What happens when they do not get one: `use_defaults` or `fail`."""
    engine_used: str | None = None
    """The engine that ran (what `auto` chose)."""
    model: str | None = None
    """The model asked for."""
    effort: str | None = None
    """The reasoning effort asked for."""
    permission_mode: str | None = None
    """Claude Code's permission mode, when set (`plan`: read-only)."""
    session_id: str | None = None
    """The engine's session, resumed by follow-ups."""
    usage: Usage = Field(default_factory=Usage)
    """Tokens and cost of the whole Run."""
    turn_usage: list[TurnUsage] = Field(default_factory=list)
    """Tokens and cost per turn."""
    budgets: dict[str, Any] = Field(default_factory=dict)
    """The limits set: max_turns, max_cost_usd, max_duration_seconds, turn_timeout_seconds, engine_max_turns."""
    repo: str | None = None
    """The repository asked for."""
    branch: str | None = None
    """The branch asked for."""
    ticket_url: str | None = None
    """The ticket the Run works on."""
    ticket_title: str | None = None
    """That ticket's title."""
    schedule_id: str | None = None
    """The schedule that started it."""
    trigger: str | None = None
    """The webhook trigger that started it."""
    workspace: WorkspaceInfo | None = None
    """The cloned repository: base commit and work branch."""
    attempt: int = 1
    """The current attempt."""
    attempts: list[AttemptResult] = Field(default_factory=list)
    """Each attempt's results (diff, files, artifacts)."""
    accepted: AcceptResult | None = None
    """What accept committed and pushed."""
    run_as_root: bool = False
    """Turn commands run as root (no capabilities)."""
    env: dict[str, str] = Field(default_factory=dict)
    """Environment variables for its commands."""
    network: Network | None = None
    """The DevBox's network."""
    artifacts: list[str] = Field(default_factory=list)
    """Workspace paths kept as artifacts."""


class RunListItem(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    id: str
    """Run id."""
    schedule_id: str | None = None
    """The schedule that started it, if any."""
    title: str
    """Title."""
    status: str
    """Status."""
    engine: str
    """Engine (the one `auto` chose, once chosen)."""
    target: str | None
    """Worker host (`any` until placed)."""
    created_at: datetime | None
    """When it was created."""
    closed_at: datetime | None
    """When its workflow last closed."""


class RunList(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    runs: list[RunListItem]
    """Newest first."""
    next_page_token: str | None = None
    """Pass as `page_token` for the next page; none when this is the last."""


class Timeline(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    steps: list[Step]
    """In order."""


class TimelineTail(BaseModel):
    """Query result: steps still held by the workflow after `after`, and the status."""

    steps: list[Step]
    archived_upto: int
    status: RunStatus
    next_seq: int


class ReleaseResult(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    run_id: str
    """The Run."""
    released: bool
    """Whether a DevBox was removed."""
    detail: str
    """What happened."""
