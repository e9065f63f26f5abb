"""Pydantic models shared across roles: the API's inputs/outputs and the workflow's state."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field, StrictBool, ValidationInfo, field_validator

from ferry.durations import Duration
from ferry.inputs import ApiInput, check_env, image_reference_ok
from ferry.questions import QuestionSet
from ferry.tickets import Ticket, parse_ticket_url

MAX_INSTRUCTIONS_BYTES = 100 * 1024
MAX_TITLE_CHARS = 200
# ':' appears in Runs started by schedules (Temporal appends the fire time to the id).
RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_:-]{0,63}$"
_RUN_ID_RE = re.compile(RUN_ID_PATTERN)

Engine = Literal["script", "claude-code", "claude-code-plan", "codex", "openai", "auto"]
ENGINES: tuple[str, ...] = ("script", "claude-code", "claude-code-plan", "codex", "openai", "auto")
# Engines whose CLI runs in the DevBox and reaches its model API through the gateway.
GATEWAY_ENGINES = ("claude-code", "claude-code-plan", "codex")
Effort = Literal["low", "medium", "high"]
Mode = Literal["interactive", "autonomous"]
StepKind = Literal["launch_devbox", "exec", "message", "question", "answer", "report_result",
                   "thought", "tool", "file_change", "todo_list", "engine", "raw", "ticket",
                   "workspace", "review", "egress_denied"]
OnTimeout = Literal["use_defaults", "fail"]
Network = Literal["none", "gateway", "open"]
TARGETS_WORKFLOW_ID = "ferry-targets"
MAX_MESSAGE_BYTES = 100 * 1024


class RunStatus(StrEnum):
    pending = "pending"
    in_progress = "in_progress"
    waiting_for_input = "waiting_for_input"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (RunStatus.completed, RunStatus.failed, RunStatus.cancelled)


def workflow_id_for(run_id: str) -> str:
    return f"run-{run_id}"


def keeper_id_for(run_id: str) -> str:
    """The DevBoxKeeper workflow that holds a closed Run's DevBoxes."""
    return f"devbox-{run_id}"


KEEPER_CLAIMED = "claimed by a follow-up"  # the result of a keeper a Run took its DevBox from


def is_valid_run_id(run_id: str) -> bool:
    return bool(_RUN_ID_RE.match(run_id))


def default_title(instructions: str) -> str:
    first = next((ln.strip() for ln in instructions.splitlines() if ln.strip()), "Run")
    return first if len(first) <= 80 else first[:77] + "..."


# ---------------------------------------------------------------- API inputs


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


# ---------------------------------------------------------------- workflow data


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


class RunSpec(BaseModel):
    """What a Run was asked to do; fixed at start."""

    id: str
    instructions: str
    engine: Engine = "script"
    title: str
    mode: Mode = "interactive"
    target: str | None = None
    image: str | None = None
    from_run: str | None = None
    restore_from: str | None = None  # the Run whose workspace checkpoint this one starts from
    keep_alive: timedelta = timedelta(minutes=30)
    idle_timeout: timedelta = timedelta(minutes=10)
    question_timeout: timedelta = timedelta(days=7)
    on_timeout: OnTimeout = "fail"
    model: str | None = None
    effort: Effort | None = None
    max_turns: int | None = None
    engine_max_turns: int | None = None
    max_cost_usd: float | None = None
    max_duration: timedelta | None = None
    turn_timeout: timedelta | None = None
    repo: str | None = None
    branch: str | None = None
    ticket_url: str | None = None
    artifacts: list[str] = Field(default_factory=list)
    title_given: bool = True
    run_as_root: bool = False
    env: dict[str, str] = Field(default_factory=dict)
    network: Network | None = None  # None: the worker's default
    # How long a host-bound activity may wait for its host before the host counts as gone.
    host_lost_after: timedelta = timedelta(minutes=3)


class ReviewIn(ApiInput):
    """Body of `POST /runs/{id}/review`."""

    action: Literal["accept", "request_changes", "reject"]
    message: str | None = Field(default=None, max_length=MAX_INSTRUCTIONS_BYTES)


class FileChange(BaseModel):
    path: str
    added: int
    removed: int
    status: str


class AttemptResult(BaseModel):
    attempt: int
    diff_path: str
    files: list[FileChange] = Field(default_factory=list)
    artifacts: list[str] = Field(default_factory=list)
    # The DevBox's work as imported into the host-only repository: what the diff shows
    # is exactly what an accept pushes.
    snapshot_commit: str | None = None
    diff_truncated: bool = False
    notes: list[str] = Field(default_factory=list)  # why something could not be collected


class WorkspaceInfo(BaseModel):
    repo: str
    clone_url: str
    base_branch: str
    base_commit: str
    work_branch: str
    restored_from: str | None = None  # the Run whose checkpoint the workspace was restored from
    restore_note: str | None = None  # why a checkpoint asked for was not restored


class Checkpoint(BaseModel):
    """A Run's last saved workspace (artifact store, `checkpoint/`): the host-made bundle of
    its snapshot commit against its base, and where that base came from."""

    run_id: str
    clone_url: str
    base_branch: str
    base_commit: str
    commit: str
    attempt: int
    saved_at: datetime


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def plus(self, other: Usage) -> Usage:
        return Usage(input_tokens=self.input_tokens + other.input_tokens,
                     output_tokens=self.output_tokens + other.output_tokens,
                     cost_usd=round(self.cost_usd + other.cost_usd, 6))


class CallUsage(BaseModel):
    """One model call, as the gateway metered it."""

    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0


class TurnUsage(Usage):
    turn: str
    num_turns: int | None = None
    calls: list[CallUsage] = Field(default_factory=list)


class InboxMessage(BaseModel):
    text: str
    received_at: datetime


class Target(BaseModel):
    """A worker host that is polling, with the DevBox images it has."""

    host: str
    task_queue: str
    backend: str
    images: list[str] = Field(default_factory=list)
    default_image: str | None = None
    seen_at: datetime


class TargetPublic(Target):
    healthy: bool


class TargetsInput(BaseModel):
    targets: list[Target] = Field(default_factory=list)


class DevBoxInfo(BaseModel):
    """Where a DevBox lives and how to reach it."""

    run_id: str
    backend: str
    host: str
    task_queue: str
    name: str
    container_id: str | None = None
    image: str | None = None
    workspace: str
    in_dir: str  # read-only in the DevBox: runner, tools, turn specs, answers
    out_dir: str  # written by the turn runner only: signed events, outputs
    state_dir: str  # the turn user's scratch: shell state, ferry-ask files
    home: str | None = None
    user: str = "agent"  # agent (uid 1000), root (uid 0 without capabilities), worker (local)
    uid: int | None = None
    gid: int | None = None
    caps: list[str] = Field(default_factory=list)  # capabilities of root turn commands
    disk_bytes: int | None = None  # the DevBox's disk quota; None: no quota on this host
    network: Network = "none"
    launched_at: datetime | None = None
    hibernated_at: datetime | None = None
    removed_at: datetime | None = None
    died: str | None = None  # why the container stopped without Ferry stopping it


class StepIn(BaseModel):
    """A step as produced by an activity, before the workflow numbers it.

    `line` is the event-file line it came from, so re-sent steps are recognised.
    """

    kind: StepKind
    line: int | None = None
    started_at: datetime
    ended_at: datetime | None = None
    payload: dict[str, Any] = Field(default_factory=dict)


class Step(StepIn):
    """One timeline entry, numbered by the workflow (`seq` starts at 1)."""

    seq: int


class RunningCommand(BaseModel):
    command: str
    index: int
    started_at: datetime


class TurnCursor(BaseModel):
    """How far the turn's event file has been read: byte offset, lines, and the next
    authentic event number the runner will write (`seq`)."""

    offset: int = 0
    lines: int = 0
    seq: int = 0


class StepBatch(BaseModel):
    """Signal from a turn activity: new steps, in order, up to event line `cursor.lines`."""

    turn_id: str
    cursor: TurnCursor
    steps: list[StepIn] = Field(default_factory=list)
    running: RunningCommand | None = None


class TurnOutcome(BaseModel):
    ok: bool
    asked: QuestionSet | None = None
    session_id: str | None = None
    final_text: str | None = None
    usage: Usage | None = None
    num_turns: int | None = None
    error: str | None = None
    commands_run: int = 0
    failed_command: str | None = None
    failed_index: int | None = None
    exit_code: int | None = None
    calls: list[CallUsage] = Field(default_factory=list)


class FollowTurnInput(BaseModel):
    """One slice of a turn. Only the first slice carries the commands and answers."""

    run_id: str
    turn_id: str
    engine: str
    devbox: DevBoxInfo
    commands: list[str] = Field(default_factory=list)
    prompt: str | None = None
    session_id: str | None = None
    model: str | None = None
    effort: str | None = None
    engine_max_turns: int | None = None
    time_limit: float | None = None
    index_offset: int = 0
    answers: dict[str, Any] | None = None
    env: dict[str, str] = Field(default_factory=dict)
    output_used: int = 0  # bytes of command output this Run has stored so far
    max_cost_usd: float | None = None  # the Run's budget, enforced by the gateway mid-turn
    spent_usd: float = 0.0  # what the Run's earlier turns cost
    repo: str | None = None  # its host joins the egress allowlist
    cursor: TurnCursor = Field(default_factory=TurnCursor)


class FollowTurnResult(BaseModel):
    """A slice of a turn: `outcome` is set once the turn has ended."""

    cursor: TurnCursor
    outcome: TurnOutcome | None = None
    stored_bytes: int = 0
    devbox_died: str | None = None  # set when the turn ended because the container died


class LaunchInput(BaseModel):
    run_id: str
    image: str | None = None
    run_as_root: bool = False
    network: Network | None = None


class DevBoxAction(BaseModel):
    devbox: DevBoxInfo


class StopTurnInput(BaseModel):
    """End a turn's runner (and what it runs) in a DevBox that stays."""

    devbox: DevBoxInfo
    turn_id: str


class ModelCallInput(BaseModel):
    """One call of the built-in agent loop; `call` numbers it so a retry is not a second call."""

    run_id: str
    turn_id: str
    call: int
    devbox: DevBoxInfo
    prompt: str | None = None
    model: str | None = None
    effort: str | None = None


class ModelCallResult(BaseModel):
    steps: list[StepIn] = Field(default_factory=list)
    outcome: TurnOutcome
    done: bool = False


class PrepareInput(BaseModel):
    run_id: str
    devbox: DevBoxInfo
    repo: str | None = None
    branch: str | None = None
    ticket: Ticket | None = None
    restore_from: str | None = None


class CollectInput(BaseModel):
    run_id: str
    devbox: DevBoxInfo
    attempt: int
    turn_ids: list[str] = Field(default_factory=list)
    base_commit: str | None = None
    artifacts: list[str] = Field(default_factory=list)
    workspace: WorkspaceInfo | None = None  # to save a checkpoint that says where it came from


class AcceptInput(BaseModel):
    run_id: str
    devbox: DevBoxInfo
    workspace: WorkspaceInfo
    message: str
    snapshot_commit: str | None = None
    previous_commit: str | None = None  # the last accept's commit: the new one builds on it
    ticket: Ticket | None = None
    pr_url: str | None = None


class AcceptResult(BaseModel):
    branch: str
    commit: str
    pushed: bool
    pr_url: str | None = None


class ResetInput(BaseModel):
    run_id: str
    devbox: DevBoxInfo
    base_commit: str


class ProbeInput(BaseModel):
    devbox: DevBoxInfo


class EngineChoice(BaseModel):
    """What `auto` found in the DevBox and on the worker, and what it picked."""

    chosen: str | None
    usable: list[str] = Field(default_factory=list)
    missing: dict[str, str] = Field(default_factory=dict)


class ArchiveInput(BaseModel):
    run_id: str
    steps: list[Step]


class ReportInput(BaseModel):
    run_id: str
    spec: RunSpec
    status: RunStatus
    summary: str
    error: str | None = None
    step_count: int


Phase = Literal["resolve", "choose_target", "launch", "turn", "waiting", "report", "keep_alive",
                "teardown", "close", "done"]


class RunState(BaseModel):
    """Everything a Run knows; carried across continue-as-new."""

    status: RunStatus = RunStatus.pending
    phase: Phase = "resolve"
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    title: str = ""
    summary: str | None = None
    error: str | None = None
    devboxes: list[DevBoxInfo] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    next_seq: int = 1
    archived_upto: int = 0
    turn_count: int = 0
    turn_id: str | None = None
    turn_cursor: TurnCursor = Field(default_factory=TurnCursor)
    turn_outcome: TurnOutcome | None = None
    running: RunningCommand | None = None
    target: str | None = None
    image: str | None = None
    targets: list[Target] = Field(default_factory=list)
    pending_commands: list[str] = Field(default_factory=list)
    commands_total: int = 0
    questions: QuestionSet | None = None
    asked_at: datetime | None = None
    received_answers: dict[str, Any] | None = None
    pending_answers: dict[str, Any] | None = None
    inbox: list[InboxMessage] = Field(default_factory=list)
    keep_alive_until: datetime | None = None
    # Once a Run has completed, its DevBox holds work worth keeping: a follow-up or review
    # that fails or is cancelled afterwards ends the Run so, but keeps the DevBox.
    completed_once: bool = False
    engine: str | None = None
    pending_prompt: list[str] = Field(default_factory=list)
    turn_prompt: str | None = None
    final_text: str | None = None
    session_id: str | None = None
    usage: Usage = Field(default_factory=Usage)
    turn_usage: list[TurnUsage] = Field(default_factory=list)
    ticket: Ticket | None = None
    workspace: WorkspaceInfo | None = None
    attempt: int = 1
    attempts: list[AttemptResult] = Field(default_factory=list)
    accepted: AcceptResult | None = None
    accepted_turns: int = 0
    reject_with: str | None = None
    output_bytes: int = 0  # command output stored in the artifact store
    attempt_commands_base: int = 0  # commands run before this attempt (for its summary)


class RunWorkflowInput(BaseModel):
    spec: RunSpec
    state: RunState | None = None


# ---------------------------------------------------------------- API outputs


class RunPublic(BaseModel):
    """A Run as the API shows it."""

    id: str
    title: str
    status: RunStatus
    engine: str
    mode: str
    target: str | None
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


# ---------------------------------------------------------------- closed Runs and kept DevBoxes


class RunRecord(BaseModel):
    """What a Run's workflow writes to the artifact store when it closes: the Run as the API
    shows it, and the input a follow-up's new execution of the same workflow id starts from."""

    run: RunPublic
    input: RunWorkflowInput
    # The execution (Temporal run id) that wrote it: a later execution that closed without
    # writing one (terminated in Temporal) is not described by it.
    execution: str | None = None


class KeeperInput(BaseModel):
    """A closed Run's DevBoxes, kept until `until` for follow-ups, then removed."""

    run_id: str
    devboxes: list[DevBoxInfo]
    until: datetime
    host_lost_after: timedelta = timedelta(minutes=3)


class KeeperClaim(BaseModel):
    """The DevBoxes a follow-up took back from their keeper."""

    devboxes: list[DevBoxInfo]


class DevBoxesRemoved(BaseModel):
    run_id: str
    removed_at: datetime
    note: str | None = None  # e.g. the host was gone: its reaper removes the container later


class ReleaseResult(BaseModel):
    run_id: str
    released: bool
    detail: str
