"""Names, limits and small helpers every model and role shares: Run ids, engines, statuses."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Literal

MAX_INSTRUCTIONS_BYTES = 100 * 1024


MAX_TITLE_CHARS = 200


# ':' appears in Runs started by schedules (Temporal appends the fire time to the id).
RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_:-]{0,63}$"
# The target that lets Ferry place a Run on whichever healthy host takes it first.
ANY_TARGET = "any"


_RUN_ID_RE = re.compile(RUN_ID_PATTERN)


Engine = Literal["script", "claude-code", "claude-code-plan", "claude-code-api", "codex", "openai",
                 "auto"]
# Claude Code's own permission modes (`--permission-mode`); `plan` reads and plans only.
PermissionMode = Literal["default", "acceptEdits", "bypassPermissions", "plan"]


ENGINES: tuple[str, ...] = ("script", "claude-code", "claude-code-plan", "claude-code-api", "codex",
                            "openai", "auto")


# Engines whose CLI runs in the DevBox and reaches its model API through the gateway.
GATEWAY_ENGINES = ("claude-code", "claude-code-plan", "claude-code-api", "codex")


Effort = Literal["low", "medium", "high"]


Mode = Literal["interactive", "autonomous"]


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
