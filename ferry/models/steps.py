"""A Run's timeline steps, and what a turn reports: its cursor, its outcome, its usage."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ferry.questions import QuestionSet

StepKind = Literal["launch_devbox", "exec", "message", "question", "answer", "report_result",
                   "thought", "tool", "file_change", "todo_list", "engine", "raw", "ticket",
                   "workspace", "review", "egress_denied"]


class Usage(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    input_tokens: int = 0
    """Tokens sent to the model."""
    output_tokens: int = 0
    """Tokens the model generated."""
    cost_usd: float = 0.0
    """Cost in US dollars."""

    def plus(self, other: Usage) -> Usage:
        return Usage(input_tokens=self.input_tokens + other.input_tokens,
                     output_tokens=self.output_tokens + other.output_tokens,
                     cost_usd=round(self.cost_usd + other.cost_usd, 6))


class CallUsage(BaseModel):
    """One model call, as the gateway metered it."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    model: str | None = None
    """The model called."""
    input_tokens: int = 0
    """Tokens sent."""
    output_tokens: int = 0
    """Tokens generated."""
    cache_read_tokens: int = 0
    """Prompt tokens read from the provider's cache."""
    cache_write_tokens: int = 0
    """Prompt tokens written to the provider's cache."""
    cost_usd: float = 0.0
    """What the call cost, in US dollars (0 when it was not billed per call)."""
    billed: bool = True
    """False for calls paid by a subscription (Claude Code — Plan): tokens count, dollars do not."""


class TurnUsage(Usage):
    model_config = ConfigDict(use_attribute_docstrings=True)

    turn: str
    """The turn's id."""
    num_turns: int | None = None
    """Agent turns inside it (the engine's own count)."""
    calls: list[CallUsage] = Field(default_factory=list)
    """Each model call, as the gateway metered it."""


class StepIn(BaseModel):
    """A step as produced by an activity, before the workflow numbers it.

    `line` is the event-file line it came from, so re-sent steps are recognised.
    """

    model_config = ConfigDict(use_attribute_docstrings=True)

    kind: StepKind
    """What happened: exec, message, tool, thought, question, answer, file_change, review, report_result, ..."""
    line: int | None = None
    """The event-file line it came from (internal)."""
    started_at: datetime
    """When it started."""
    ended_at: datetime | None = None
    """When it ended."""
    payload: dict[str, Any] = Field(default_factory=dict)
    """The step's data, by kind (e.g. exec: command, exit_code, output_excerpt, output_path)."""


class Step(StepIn):
    """One timeline entry, numbered by the workflow (`seq` starts at 1)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    seq: int
    """Its number in the timeline, from 1."""


class RunningCommand(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    command: str
    """The command."""
    index: int
    """Its number in the Run."""
    started_at: datetime
    """When it started."""


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
