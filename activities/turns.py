"""The turn activity: start a turn detached in the DevBox, tail its events, stream steps.

One activity call follows a turn for at most one slice (`FERRY_TURN_SLICE_SECONDS`),
then returns its cursor so the workflow can continue-as-new between slices. A retried
or next-slice call re-attaches to the same turn: the runner is started at most once.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from temporalio import activity
from temporalio.client import Client

from activities.devbox import DevBoxBackend
from ferry.artifact_store import ArtifactStore
from ferry.questions import QuestionSet
from ferry.schemas import (
    FollowTurnInput,
    FollowTurnResult,
    RunningCommand,
    StepBatch,
    StepIn,
    TurnCursor,
    TurnOutcome,
)
from ferry.settings import Settings

MAX_BATCH_STEPS = 100
MAX_BATCH_BYTES = 128 * 1024
RUNNER_START_GRACE = 30.0
RUNNER_STALE_AFTER = 30.0


class TurnActivities:
    def __init__(
        self, settings: Settings, backend: DevBoxBackend, store: ArtifactStore, client: Client
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.store = store
        self.client = client

    @activity.defn(name="follow_turn")
    async def follow_turn(self, inp: FollowTurnInput) -> FollowTurnResult:
        cursor = inp.cursor
        details = activity.info().heartbeat_details
        if details:
            beat = TurnCursor.model_validate(details[0])
            if beat.lines > cursor.lines:
                cursor = beat
        turn_dir = self.backend.host_turn_dir(inp.run_id, inp.turn_id)
        self._write_spec(inp, turn_dir)
        await asyncio.to_thread(self.backend.start_turn, inp.devbox, inp.turn_id)
        handle = self.client.get_workflow_handle(activity.info().workflow_id)
        started = time.monotonic()
        deadline = started + self.settings.turn_slice_seconds
        try:
            while True:
                batch, outcome, more = self._read(inp, turn_dir, cursor)
                if batch.cursor.lines > cursor.lines:
                    await handle.signal("add_steps", batch)
                    cursor = batch.cursor
                activity.heartbeat(cursor.model_dump())
                if outcome is not None:
                    return FollowTurnResult(cursor=cursor, outcome=outcome)
                if more:
                    continue
                if time.monotonic() > deadline:
                    return FollowTurnResult(cursor=cursor)
                lost = self._runner_lost(turn_dir, started)
                if lost:
                    return FollowTurnResult(cursor=cursor, outcome=TurnOutcome(ok=False, error=lost))
                await asyncio.sleep(self.settings.poll_interval)
        except asyncio.CancelledError:
            await asyncio.to_thread(self.backend.stop_turn, inp.devbox, inp.turn_id)
            raise

    def _write_spec(self, inp: FollowTurnInput, turn_dir: Path) -> None:
        spec_path = turn_dir / "spec.json"
        if spec_path.exists():
            return
        turn_dir.mkdir(parents=True, exist_ok=True)
        control = self.backend.host_control_dir(inp.run_id)
        if inp.answers is not None:
            _write_json(control / "answers.json", {"answers": inp.answers})
        spec = {
            "commands": inp.commands,
            "index_offset": inp.index_offset,
            "workspace": inp.devbox.workspace,
            "state_dir": f"{inp.devbox.control_dir}/state",
            "env": {"FERRY_RUN_ID": inp.run_id, "FERRY_TURN_ID": inp.turn_id,
                    "FERRY_ANSWERS": f"{inp.devbox.control_dir}/answers.json"},
        }
        _write_json(spec_path, spec)

    def _read(
        self, inp: FollowTurnInput, turn_dir: Path, cursor: TurnCursor
    ) -> tuple[StepBatch, TurnOutcome | None, bool]:
        """Read complete event lines after `cursor`; returns (batch, outcome, more-to-read)."""
        events = turn_dir / "events.jsonl"
        steps: list[StepIn] = []
        running: RunningCommand | None = None
        outcome: TurnOutcome | None = None
        asked: dict[str, Any] | None = None
        offset, lines, size = cursor.offset, cursor.lines, 0
        more = False
        if events.exists():
            with events.open("rb") as f:
                f.seek(offset)
                data = f.read()
            pos = 0
            while True:
                end = data.find(b"\n", pos)
                if end < 0:
                    break
                if len(steps) >= MAX_BATCH_STEPS or size >= MAX_BATCH_BYTES:
                    more = True
                    break
                event = json.loads(data[pos:end])
                if event.get("type") == "question":
                    asked = event
                step, running, outcome = self._convert(inp, event, lines, running, outcome, asked)
                if step is not None:
                    steps.append(step)
                    size += len(data[pos:end])
                lines += 1
                pos = end + 1
            offset += pos
        batch = StepBatch(
            turn_id=inp.turn_id,
            cursor=TurnCursor(offset=offset, lines=lines),
            steps=steps,
            running=running,
        )
        return batch, outcome, more

    def _convert(
        self,
        inp: FollowTurnInput,
        event: dict[str, Any],
        line: int,
        running: RunningCommand | None,
        outcome: TurnOutcome | None,
        asked: dict[str, Any] | None,
    ) -> tuple[StepIn | None, RunningCommand | None, TurnOutcome | None]:
        kind = event.get("type")
        if kind == "exec_start":
            running = RunningCommand(
                command=event["command"], index=event["index"], started_at=event["ts"]
            )
            return None, running, outcome
        if kind == "exec_end":
            rel = f"turns/{inp.turn_id}/{event['output_file']}"
            src = self.backend.host_turn_dir(inp.run_id, inp.turn_id) / event["output_file"]
            if src.exists():
                self.store.copy_in(inp.run_id, rel, src)
            step = StepIn(
                kind="exec",
                line=line,
                started_at=datetime.fromisoformat(event["started_at"]),
                ended_at=datetime.fromisoformat(event["ended_at"]),
                payload={
                    "turn": inp.turn_id,
                    "index": event["index"],
                    "command": event["command"],
                    "exit_code": event["exit_code"],
                    "duration_ms": event["duration_ms"],
                    "output_excerpt": event["excerpt"],
                    "output_bytes": event["output_bytes"],
                    "output_path": rel,
                },
            )
            return step, None, outcome
        if kind == "turn_end":
            error = event.get("error")
            if not event["ok"] and error is None:
                error = (
                    f"command {event['failed_index']} exited with {event['exit_code']}: "
                    f"{event['failed_command']}"
                )
            questions = None
            if event.get("asked"):
                try:
                    questions = QuestionSet.model_validate({"questions": (asked or {}).get("questions")})
                except ValidationError as e:
                    return None, None, TurnOutcome(ok=False, error=f"ferry-ask recorded invalid questions: {e}")
            outcome = TurnOutcome(
                ok=event["ok"],
                asked=questions,
                error=error,
                commands_run=event.get("commands_run", 0),
                failed_command=event.get("failed_command"),
                failed_index=event.get("failed_index"),
                exit_code=event.get("exit_code"),
            )
            return None, None, outcome
        return None, running, outcome

    @staticmethod
    def _runner_lost(turn_dir: Path, started: float) -> str | None:
        """Why the runner can no longer finish the turn, if it cannot."""
        alive = turn_dir / "alive"
        if not alive.exists():
            if time.monotonic() - started < RUNNER_START_GRACE:
                return None
            log = turn_dir / "runner.log"
            detail = log.read_text(errors="replace")[-500:].strip() if log.exists() else ""
            return "the turn runner did not start in the DevBox" + (f": {detail}" if detail else "")
        if time.time() - alive.stat().st_mtime > RUNNER_STALE_AFTER:
            return "the turn runner stopped without finishing (DevBox gone or killed)"
        return None


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)
