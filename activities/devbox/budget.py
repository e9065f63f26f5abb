"""How long an exec in a DevBox may take: never longer than the activity running it."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity

from activities.devbox.base import EXEC_TIMEOUT

# Seconds kept back from an activity's time limit for the host's own work after an exec.
HOST_MARGIN = 20


def exec_budget() -> int:
    """Seconds the next exec in the DevBox may take: what is left of this activity
    attempt, less the host's margin. An exec never outlives its activity, so a DevBox
    that hangs one cannot keep a worker thread busy after Temporal gave up on it."""
    try:
        info = activity.info()
    except RuntimeError:  # called outside an activity (tests, tools)
        return EXEC_TIMEOUT
    if info.start_to_close_timeout is None:
        return EXEC_TIMEOUT
    used = (datetime.now(UTC) - info.started_time).total_seconds()
    left = info.start_to_close_timeout.total_seconds() - used - HOST_MARGIN
    return max(1, min(EXEC_TIMEOUT, int(left)))
