"""What a failed activity means for a Run, in words a person reads."""

from __future__ import annotations

from temporalio.exceptions import ActivityError, TimeoutType
from temporalio.exceptions import TimeoutError as TemporalTimeout


def _cause(err: BaseException) -> BaseException:
    while isinstance(err, ActivityError) and err.cause is not None:
        err = err.cause
    return err


def host_gone(err: BaseException) -> bool:
    """No worker on the activity's host queue picked it up in time."""
    cause = _cause(err)
    return isinstance(cause, TemporalTimeout) and cause.type == TimeoutType.SCHEDULE_TO_START


def error_text(err: BaseException, host: str | None = None) -> str:
    """The message an activity failed with (not the generic "activity error" wrapper)."""
    if host_gone(err):
        return (f"host {host or '(any)'} is gone: no Ferry worker there took the Run's work in "
                "time (host_lost_after)")
    err = _cause(err)
    return str(getattr(err, "message", None) or err) or type(err).__name__
