"""The Run workflow's own data: its spec, its state, the record a closed Run leaves."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from ferry.models.api import RunPublic
from ferry.models.common import (
    Effort,
    Engine,
    Mode,
    Network,
    OnTimeout,
    PermissionMode,
    RunStatus,
)
from ferry.models.hosts import DevBoxInfo, Target
from ferry.models.results import AcceptResult, AttemptResult, WorkspaceInfo
from ferry.models.steps import RunningCommand, Step, TurnCursor, TurnOutcome, TurnUsage, Usage
from ferry.questions import QuestionSet
from ferry.tickets import Ticket


class RunSpec(BaseModel):
    """What a Run was asked to do; fixed at start."""

    id: str
    instructions: str
    engine: Engine = "script"
    title: str
    mode: Mode = "interactive"
    target: str | None = None
    # `target: any`: placed on whichever host takes the launch, never asked, even with
    # several hosts up (and allowed for autonomous Runs).
    any_host: bool = False
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
    permission_mode: PermissionMode | None = None
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


class InboxMessage(BaseModel):
    text: str
    received_at: datetime


Phase = Literal["resolve", "choose_target", "launch", "turn", "waiting", "report", "keep_alive",
                "teardown", "close", "done"]


class RunState(BaseModel):
    """Everything a Run knows; carried across continue-as-new."""

    status: RunStatus = RunStatus.pending
    phase: Phase = "resolve"
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    # Time spent in progress (not waiting for answers, not kept for follow-ups); an old
    # history that lacks these counts from the next status change.
    worked_seconds: float = 0.0
    working_since: datetime | None = None
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
