"""Inputs and outputs of the activities (the payloads between workflow and worker)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ferry.models.common import Network, RunStatus
from ferry.models.hosts import DevBoxInfo
from ferry.models.results import WorkspaceInfo
from ferry.models.state import RunSpec
from ferry.models.steps import Step, StepIn, TurnCursor, TurnOutcome
from ferry.tickets import Ticket


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
    permission_mode: str | None = None
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


class ResetInput(BaseModel):
    run_id: str
    devbox: DevBoxInfo
    base_commit: str


class ProbeInput(BaseModel):
    devbox: DevBoxInfo


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
