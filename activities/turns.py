"""The turn activity: start a turn detached in the DevBox, tail its events, stream steps.

One activity call follows a turn for at most one slice (`FERRY_TURN_SLICE_SECONDS`),
then returns its cursor so the workflow can continue-as-new between slices. A retried
or next-slice call re-attaches to the same turn: the runner is started at most once.
A turn is either a list of shell commands (`script`) or one engine CLI process whose
stream the engine's adapter parses into steps.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from temporalio import activity
from temporalio.client import Client

from activities.devbox import DevBoxBackend
from activities.engines.base import EngineAdapter, EngineTurn, StreamParser
from activities.engines.registry import ADAPTERS
from activities.secrets import load_secrets, redact, secret_values
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
    Usage,
)
from ferry.settings import Settings

MAX_BATCH_STEPS = 100
MAX_BATCH_BYTES = 128 * 1024
RUNNER_START_GRACE = 30.0
RUNNER_STALE_AFTER = 30.0


class _Reader:
    """State of one pass over a turn's events (rebuilt on every slice and retry)."""

    def __init__(self, adapter: EngineAdapter | None) -> None:
        self.parser: StreamParser | None = adapter.parser() if adapter else None
        self.asked: dict[str, Any] | None = None
        self.running: RunningCommand | None = None


class TurnActivities:
    def __init__(
        self, settings: Settings, backend: DevBoxBackend, store: ArtifactStore, client: Client
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.store = store
        self.client = client
        self.secrets = load_secrets(settings)
        self.secret_values = secret_values(settings)

    @activity.defn(name="follow_turn")
    async def follow_turn(self, inp: FollowTurnInput) -> FollowTurnResult:
        cursor = inp.cursor
        details = activity.info().heartbeat_details
        if details:
            beat = TurnCursor.model_validate(details[0])
            if beat.lines > cursor.lines:
                cursor = beat
        adapter = ADAPTERS.get(inp.engine)
        env = {n: v for n, v in self.secrets.items() if adapter and n in adapter.credentials}
        turn_dir = self.backend.host_turn_dir(inp.run_id, inp.turn_id)
        self._write_spec(inp, turn_dir, adapter, sorted(env))
        await asyncio.to_thread(self.backend.start_turn, inp.devbox, inp.turn_id, env)
        reader = _Reader(adapter)
        self._replay(inp, turn_dir, cursor, reader)
        handle = self.client.get_workflow_handle(activity.info().workflow_id)
        started = time.monotonic()
        deadline = started + self.settings.turn_slice_seconds
        try:
            while True:
                batch, outcome, more = self._read(inp, turn_dir, cursor, reader)
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
            # Only a cancelled Run stops the turn; a worker shutdown or a lost heartbeat
            # leaves it running for the next attempt to re-attach to.
            details = activity.cancellation_details()
            if details is not None and details.cancel_requested:
                await asyncio.to_thread(self.backend.stop_turn, inp.devbox, inp.turn_id)
            raise

    def _write_spec(self, inp: FollowTurnInput, turn_dir: Path, adapter: EngineAdapter | None,
                    secret_env: list[str]) -> None:
        spec_path = turn_dir / "spec.json"
        if spec_path.exists():
            return
        turn_dir.mkdir(parents=True, exist_ok=True)
        control = self.backend.host_control_dir(inp.run_id)
        if inp.answers is not None:
            _write_json(control / "answers.json", {"answers": inp.answers})
        spec: dict[str, Any] = {
            "commands": inp.commands,
            "index_offset": inp.index_offset,
            "workspace": inp.devbox.workspace,
            "state_dir": f"{inp.devbox.control_dir}/state",
            "env": {"FERRY_RUN_ID": inp.run_id, "FERRY_TURN_ID": inp.turn_id,
                    "FERRY_ANSWERS": f"{inp.devbox.control_dir}/answers.json",
                    # Engine session stores live in the DevBox and survive across turns.
                    "HOME": "/root" if inp.devbox.backend == "docker" else
                            f"{inp.devbox.control_dir}/home",
                    "IS_SANDBOX": "1"},
            "secret_env": secret_env,
            "time_limit": inp.time_limit,
        }
        if adapter is not None:
            spec["engine"] = adapter.name
            spec["argv"] = adapter.command(EngineTurn(
                prompt=inp.prompt or "", session_id=inp.session_id, model=inp.model,
                effort=inp.effort, max_turns=inp.engine_max_turns))
        _write_json(spec_path, spec)

    def _replay(self, inp: FollowTurnInput, turn_dir: Path, cursor: TurnCursor,
                reader: _Reader) -> None:
        """Rebuild parser state from the lines already delivered (steps are not re-sent)."""
        events = turn_dir / "events.jsonl"
        if cursor.lines == 0 or not events.exists():
            return
        with events.open("rb") as f:
            data = f.read(cursor.offset)
        for raw in data.splitlines():
            event = json.loads(raw)
            if event.get("type") == "question":
                reader.asked = event
            elif event.get("type") == "engine_line" and reader.parser is not None:
                reader.parser.feed_line(event["raw"])

    def _read(
        self, inp: FollowTurnInput, turn_dir: Path, cursor: TurnCursor, reader: _Reader
    ) -> tuple[StepBatch, TurnOutcome | None, bool]:
        """Read complete event lines after `cursor`; returns (batch, outcome, more-to-read)."""
        events = turn_dir / "events.jsonl"
        steps: list[StepIn] = []
        outcome: TurnOutcome | None = None
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
                new_steps, done = self._convert(inp, json.loads(data[pos:end]), lines, reader)
                steps += new_steps
                size += (end - pos) if new_steps else 0
                outcome = done or outcome
                lines += 1
                pos = end + 1
            offset += pos
        batch = StepBatch(turn_id=inp.turn_id, cursor=TurnCursor(offset=offset, lines=lines),
                          steps=steps, running=reader.running)
        return batch, outcome, more

    def _convert(self, inp: FollowTurnInput, event: dict[str, Any], line: int,
                 reader: _Reader) -> tuple[list[StepIn], TurnOutcome | None]:
        kind = event.get("type")
        if kind == "question":
            reader.asked = event
            return [], None
        if kind == "exec_start":
            reader.running = RunningCommand(
                command=event["command"], index=event["index"], started_at=event["ts"])
            return [], None
        if kind == "exec_end":
            reader.running = None
            return [self._exec_step(inp, event, line)], None
        if kind == "engine_line" and reader.parser is not None:
            return [self._step(s, line) for s in reader.parser.feed_line(event["raw"])], None
        if kind == "turn_end":
            return self._turn_end(event, line, reader)
        return [], None

    def _step(self, data: dict[str, Any], line: int) -> StepIn:
        return StepIn(kind=data["kind"], line=line, started_at=data["started_at"],
                      ended_at=data.get("ended_at"),
                      payload=redact(data["payload"], self.secret_values))

    def _exec_step(self, inp: FollowTurnInput, event: dict[str, Any], line: int) -> StepIn:
        # The events file is writable from inside the DevBox: trust only the runner's shape.
        if not re.fullmatch(r"out/\d{5,}\.log", str(event.get("output_file", ""))):
            event = {**event, "output_file": "out/invalid.log"}
        rel = f"turns/{inp.turn_id}/{event['output_file']}"
        src = self.backend.host_turn_dir(inp.run_id, inp.turn_id) / event["output_file"]
        if src.is_file() and not src.is_symlink():
            if self.secret_values:
                text = src.read_bytes().decode("utf-8", "replace")
                self.store.write_bytes(inp.run_id, rel, redact(text, self.secret_values).encode())
            else:
                self.store.copy_in(inp.run_id, rel, src)
        return StepIn(
            kind="exec",
            line=line,
            started_at=datetime.fromisoformat(event["started_at"]),
            ended_at=datetime.fromisoformat(event["ended_at"]),
            payload=redact({
                "turn": inp.turn_id,
                "index": event["index"],
                "command": event["command"],
                "exit_code": event["exit_code"],
                "duration_ms": event["duration_ms"],
                "output_excerpt": event["excerpt"],
                "output_bytes": event["output_bytes"],
                "output_path": rel,
            }, self.secret_values),
        )

    def _questions(self, reader: _Reader) -> QuestionSet | TurnOutcome:
        try:
            return QuestionSet.model_validate({"questions": (reader.asked or {}).get("questions")})
        except ValidationError as e:
            return TurnOutcome(ok=False, error=f"ferry-ask recorded invalid questions: {e}")

    def _turn_end(self, event: dict[str, Any], line: int,
                  reader: _Reader) -> tuple[list[StepIn], TurnOutcome]:
        questions: QuestionSet | None = None
        if event.get("asked"):
            q = self._questions(reader)
            if isinstance(q, TurnOutcome):
                return [], q
            questions = q
        if reader.parser is None:
            error = event.get("error")
            if not event["ok"] and error is None:
                error = (f"command {event['failed_index']} exited with {event['exit_code']}: "
                         f"{event['failed_command']}")
            return [], TurnOutcome(
                ok=event["ok"], asked=questions, error=redact(error, self.secret_values),
                commands_run=event.get("commands_run", 0),
                failed_command=event.get("failed_command"),
                failed_index=event.get("failed_index"), exit_code=event.get("exit_code"))
        parsed, leftovers = reader.parser.finish(event.get("exit_code", -1),
                                                 event.get("stderr_tail", ""))
        steps = [self._step(s, line) for s in leftovers]
        error = event.get("error") or (None if parsed.ok else parsed.error)
        return steps, TurnOutcome(
            ok=parsed.ok and not event.get("error"), asked=questions,
            error=redact(error, self.secret_values), session_id=parsed.session_id,
            final_text=redact(parsed.final_text, self.secret_values),
            usage=Usage(input_tokens=parsed.input_tokens, output_tokens=parsed.output_tokens,
                        cost_usd=parsed.cost_usd),
            num_turns=parsed.num_turns, exit_code=event.get("exit_code"))

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
