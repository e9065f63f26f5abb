"""Activity options of the Run workflow: timeouts and retries (deterministic constants)."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

LAUNCH_TIMEOUT = timedelta(minutes=10)
TURN_HEARTBEAT = timedelta(seconds=10)
SHORT_ACTIVITY = timedelta(minutes=2)
# Snapshot, diff, artifacts, reset: git work on a repository of any size, in the DevBox.
WORKSPACE_ACTIVITY = timedelta(minutes=10)
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10),
                    maximum_attempts=20, non_retryable_error_types=["DevBoxError"])
# A reopened Run (follow-up or review of a closed one) whose Update never came closes again.
RESUME_GRACE = timedelta(seconds=30)
# Stopping a turn is best effort: a host that does not answer this soon is likely gone.
STOP_TURN_WAIT = timedelta(seconds=30)
