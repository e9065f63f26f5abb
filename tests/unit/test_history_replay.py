"""Committed histories of representative Runs replay against the current workflow code.

The histories in tests/histories/ were recorded from real Runs (`python -m
tests.histories.record`): a script Run, a failed one, questions, a follow-up that reopened
its Run, reviews (reject, request changes, release), continue-as-new, a cancel — each with
its DevBoxKeeper. Runs wait for days, so every change to RunWorkflow or DevBoxKeeper must
replay them: a change to the order of commands needs `workflow.patched(...)` (see
docs/architecture.md, "Changing a workflow").

Shown once, not left in the code: swapping the final record and the keeper's start in
`RunWorkflow._close` (start_child_workflow before execute_activity("write_run_record"))
makes this test fail with

    temporalio.workflow._exceptions.NondeterminismError: Workflow activation completion
    failed: ... "[TMPRL1100] Nondeterminism error: Child workflow machine does not handle
    this event: HistoryEvent { event_id: 36, ... event_type: ActivityTaskScheduled, ...
    activity_type: Some(ActivityType { name: \"write_run_record\" }) ...
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.devbox_keeper import DevBoxKeeper
from workflows.run.workflow import RunWorkflow

HISTORIES = Path(__file__).resolve().parents[1] / "histories"
# One directory per recording: older code's histories stay, so patched paths keep replaying.
GENERATIONS = sorted(p for p in HISTORIES.iterdir() if p.is_dir() and p.name.startswith("v"))
FILES = sorted(HISTORIES.glob("v*/*.json"))
KINDS = {"script", "failed", "questions", "follow_up", "review", "continue_as_new", "cancelled"}


@pytest.mark.parametrize("generation", GENERATIONS, ids=[g.name for g in GENERATIONS])
def test_there_are_histories_of_each_kind(generation: Path) -> None:
    names = {f.stem for f in generation.glob("*.json")}
    assert KINDS <= names, names


def test_the_latest_recording_is_of_the_current_code() -> None:
    """Every patch the code has is in the newest recording (record after each change)."""
    import re

    from workflows.run import patches as ids

    source = "".join(f.read_text() for f in
                     (Path(__file__).resolve().parents[2] / "workflows").rglob("*.py"))
    named = {k: v for k, v in vars(ids).items() if k.isupper() and isinstance(v, str)}
    used = re.findall(r'workflow\.patched\(("[^"]+"|\w+)\)', source)
    assert used, "no workflow.patched(...) found: has the code moved?"
    unknown = [u for u in used if not u.startswith('"') and u not in named]
    assert not unknown, f"patch ids must be literals or names in workflows/run/patches.py: {unknown}"
    patches = {u.strip('"') if u.startswith('"') else named[u] for u in used}
    recorded = set()
    for f in GENERATIONS[-1].glob("*.json"):
        for ex in json.loads(f.read_text()):
            for event in ex["history"]["events"]:
                marker = event.get("markerRecordedEventAttributes") or {}
                for payload in marker.get("details", {}).get("patch-data", {}).get("payloads", []):
                    recorded.add(json.loads(base64.b64decode(payload["data"]))["id"])
    assert patches <= recorded, patches - recorded


@pytest.mark.parametrize("path", FILES, ids=[f"{f.parent.name}-{f.stem}" for f in FILES])
def test_history_replays(path: Path) -> None:
    executions = json.loads(path.read_text())
    assert executions
    replayer = Replayer(workflows=[RunWorkflow, DevBoxKeeper],
                        data_converter=pydantic_data_converter)

    async def replay() -> None:
        for ex in executions:
            history = WorkflowHistory.from_json(ex["workflow_id"], ex["history"])
            await replayer.replay_workflow(history)

    asyncio.run(replay())
