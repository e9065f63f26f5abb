"""A Run's timeline steps, and what a turn reports: its cursor, its outcome, its usage."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from ferry.questions import QuestionSet

StepKind = Literal["launch_devbox", "exec", "message", "question", "answer", "report_result",
                   "thought", "tool", "file_change", "todo_list", "engine", "raw", "ticket",
                   "workspace", "review", "egress_denied"]


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


class LiveOutput(BaseModel):
    """The running command's latest output (SSE event `output`): the last bytes of it from
    byte `tail_start` of `size`; `done` once the command ended (its exec step has it all)."""

    turn: str
    index: int
    command: str
    size: int
    tail_start: int
    tail: str
    done: bool = False
    started_at: datetime | None = None


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
