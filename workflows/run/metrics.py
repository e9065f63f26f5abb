"""The Run's own series (Runs started and finished, turn durations), through the workflow's
replay-safe metric meter: a replayed history emits nothing, so each event counts once.
They reach `/metrics` with the Temporal SDK's series on the worker that ran the task."""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow


def runs_started(engine: str, mode: str) -> None:
    workflow.metric_meter().create_counter(
        "ferry_runs_started", "Runs started, by engine and mode.").add(
        1, {"engine": engine, "mode": mode})


def runs_finished(status: str, engine: str) -> None:
    workflow.metric_meter().create_counter(
        "ferry_runs_finished", "Runs closed (a follow-up closes again), by status and engine.").add(
        1, {"status": status, "engine": engine})


def turn_ended(engine: str, started: datetime | None) -> None:
    if started is None:  # begun before a continue-as-new: its start is not known here
        return
    seconds = (workflow.now() - started).total_seconds()
    workflow.metric_meter().create_histogram_float(
        "ferry_turn_duration_seconds", "Engine turns, start to end.", "s").record(
        max(seconds, 0.0), {"engine": engine})
