"""The turn activity: start a turn detached in the DevBox, tail its events, stream steps.

One activity call follows a turn for at most one slice (`FERRY_TURN_SLICE_SECONDS`),
then returns its cursor so the workflow can continue-as-new between slices. A retried
or next-slice call re-attaches to the same turn: the runner is started at most once.
A turn is either a list of shell commands (`script`) or one engine CLI process whose
stream the engine's adapter parses into steps.

Everything read back is DevBox-written data: only lines signed by the turn runner count
(activities/devbox/events.py), files are read without following links and with caps
(activities/devbox/hostio.py), and the turn spec goes the other way through the DevBox's
read-only `ferry/in`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from datetime import datetime
from typing import Any, cast

from pydantic import ValidationError
from temporalio import activity
from temporalio.client import Client

from activities.devbox import DevBoxBackend, events, hostio
from activities.engines.base import STEP_KINDS_FROM_ENGINES, EngineAdapter, EngineTurn, StreamParser
from activities.engines.registry import ADAPTERS
from activities.gateway.grants import Grant, GrantBook
from activities.gateway.paths import (
    DEVBOX_SOCKET_DIR,
    MODEL_PORT,
    MODEL_SOCKET,
    PROXY_PORT,
    PROXY_SOCKET,
)
from activities.live_output import LiveMirror
from activities.secrets import KNOWN as KNOWN_CREDENTIALS
from activities.secrets import StreamRedactor, load_secrets, redact, secret_values
from ferry.artifact_store import ArtifactStore
from ferry.inputs import repo_host
from ferry.models.activity_io import FollowTurnInput, FollowTurnResult, StopTurnInput
from ferry.models.steps import (
    CallUsage,
    RunningCommand,
    StepBatch,
    StepIn,
    StepKind,
    TurnCursor,
    TurnOutcome,
    Usage,
)
from ferry.questions import QuestionSet
from ferry.settings import Settings

MAX_BATCH_STEPS = 100
MAX_BATCH_BYTES = 128 * 1024
RUNNER_START_GRACE = 30.0
RUNNER_STALE_AFTER = 30.0
START_FALLBACK_SECONDS = 1.0
# How long a turn that ended waits for its model calls still answering before cutting them.
LATE_CALL_SECONDS = 10.0
DEATH_CHECK_SECONDS = 2.0  # how often a followed turn checks that its container lives
EAGER_SECONDS, EAGER_POLL = 1.5, 0.02  # read every 20 ms for 1.5 s after a start or a step
MAX_TAMPER_STEPS = 20  # forged lines shown per turn; the rest only counted
MAX_TEXT = 8000
# Engines named for who pays: their calls use that credential only.


def paid_by(engine: str) -> list[str]:
    """What the engine's model calls may be paid with through the gateway, in order: its
    adapter's own credentials. An engine without one (script; openai, which calls from the
    worker) gets no model credential at all."""
    adapter = ADAPTERS.get(engine)
    return list(adapter.credentials) if adapter is not None else []
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH|SESSION|COOKIE",
                         re.IGNORECASE)


class _Reader:
    """State of one pass over a turn's events (rebuilt on every slice and retry)."""

    def __init__(self, adapter: EngineAdapter | None) -> None:
        self.parser: StreamParser | None = adapter.parser() if adapter else None
        self.asked: Any = None
        self.running: RunningCommand | None = None
        self.stored = 0  # bytes of command output stored by this call
        self.started = False  # the turn's event file exists


def _text(value: Any, limit: int = MAX_TEXT) -> str:
    text = value if isinstance(value, str) else ""
    return text if len(text) <= limit else text[:limit] + "\n[... truncated ...]"


def _int(value: Any, default: int = 0) -> int:
    return value if type(value) is int else default


class TurnActivities:
    def __init__(
        self, settings: Settings, backend: DevBoxBackend, store: ArtifactStore, client: Client,
        book: GrantBook | None = None,
    ) -> None:
        self.book = book
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
        box = inp.devbox
        sealed = box.backend == "docker"
        if sealed and adapter is not None and (box.network == "none" or self.book is None):
            return FollowTurnResult(cursor=cursor, outcome=TurnOutcome(ok=False, error=(
                f"the {adapter.name} engine needs the model gateway, but this Run's network "
                "is `none`: start it with network `gateway` (the default) or `open`")))
        grant = self._grant(inp) if sealed else None
        if grant is not None:
            env = self._gateway_env(inp, adapter, grant)
        else:  # the local backend has no isolation: the engine gets the real key
            env = {n: v for n, v in self.secrets.items() if adapter and n in adapter.credentials}
        turn_dir = self.backend.turn_files(inp.run_id, inp.turn_id)
        key = await asyncio.to_thread(self.backend.turn_key, inp.run_id, inp.turn_id)
        await asyncio.to_thread(self._write_spec, inp, adapter, sorted(env), grant is not None)
        died = await asyncio.to_thread(self.backend.start_turn, inp.devbox, inp.turn_id, env)
        if died:
            return FollowTurnResult(cursor=cursor, outcome=TurnOutcome(ok=False, error=died),
                                    devbox_died=died)
        # A turn the DevBox's turn server was told of but shows no event soon after (the
        # server died, or a root turn took its message) is started the sure way.
        fallback_at: float | None = time.monotonic() + START_FALLBACK_SECONDS
        reader = _Reader(adapter)
        await asyncio.to_thread(self._replay, turn_dir, key, cursor, reader)
        live = LiveMirror(self.store, inp.run_id, inp.turn_id, self.secret_values)
        handle = self.client.get_workflow_handle(activity.info().workflow_id or "")
        deadline = time.monotonic() + self.settings.turn_slice_seconds
        next_check = time.monotonic() + DEATH_CHECK_SECONDS
        next_lost_check = 0.0
        # Right after a turn starts, and while steps keep coming, read often: that is when
        # a person is watching for the next step.
        eager_until = time.monotonic() + EAGER_SECONDS
        next_cursor_signal = 0.0
        sent = cursor.lines  # how far the workflow's cursor is (it waits for this much)

        async def flush(at: TurnCursor) -> None:
            """Before returning: the workflow waits until signals brought its cursor to the
            result's, so a move no signal carried yet must be sent now."""
            if at.lines > sent:
                await handle.signal("add_steps", StepBatch(turn_id=inp.turn_id, cursor=at,
                                                           steps=[], running=reader.running))

        try:
            while True:
                batch, outcome, more = await asyncio.to_thread(
                    self._read, inp, turn_dir, key, cursor, reader)
                if grant is not None:
                    batch.steps += self._denials(grant)
                    if outcome is None and grant.exhausted:
                        outcome = TurnOutcome(ok=False, error=grant.exhausted)
                # Lines that made no step (forged, unsigned, or bookkeeping) move the cursor
                # but neither keep the fast polling going nor cost a signal each.
                if batch.steps or (batch.cursor.lines > cursor.lines
                                   and time.monotonic() >= next_cursor_signal):
                    await handle.signal("add_steps", batch)
                    sent = batch.cursor.lines
                    next_cursor_signal = time.monotonic() + self.settings.poll_interval
                if batch.steps:
                    eager_until = time.monotonic() + EAGER_SECONDS
                cursor = batch.cursor
                activity.heartbeat(cursor.model_dump())
                await asyncio.to_thread(live.update, turn_dir, reader.running)
                if outcome is not None:
                    if not outcome.ok:  # the runner may still be going (a voided turn)
                        await asyncio.to_thread(self.backend.stop_turn, inp.devbox, inp.turn_id)
                    if grant is not None:
                        outcome = await self._metered(inp, outcome)
                    await flush(cursor)
                    return FollowTurnResult(cursor=cursor, outcome=outcome, stored_bytes=reader.stored)
                if more:
                    continue
                if time.monotonic() > deadline:
                    await flush(cursor)
                    return FollowTurnResult(cursor=cursor, stored_bytes=reader.stored)
                if fallback_at is not None and (batch.cursor.offset or reader.started):
                    fallback_at = None
                elif fallback_at is not None and time.monotonic() >= fallback_at:
                    fallback_at = None
                    died = await asyncio.to_thread(self.backend.start_turn, inp.devbox,
                                                   inp.turn_id, env, True)
                    next_check = 0.0 if died else next_check
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + DEATH_CHECK_SECONDS
                    died = await asyncio.to_thread(self.backend.death, inp.devbox)
                    if died:
                        # Read once more: whatever the runner wrote before it died counts.
                        batch, _, _ = await asyncio.to_thread(
                            self._read, inp, turn_dir, key, cursor, reader)
                        if batch.steps:
                            await handle.signal("add_steps", batch)
                            sent = batch.cursor.lines
                        await flush(batch.cursor)
                        if reader.running is not None:
                            died += f" while running `{reader.running.command[:200]}`"
                        return FollowTurnResult(cursor=batch.cursor, stored_bytes=reader.stored,
                                                outcome=TurnOutcome(ok=False, error=died),
                                                devbox_died=died)
                if time.monotonic() >= next_lost_check:
                    next_lost_check = time.monotonic() + self.settings.poll_interval
                    lost = await asyncio.to_thread(self._runner_lost, inp, turn_dir, key, cursor)
                    if lost:
                        await flush(cursor)
                        return FollowTurnResult(cursor=cursor, stored_bytes=reader.stored,
                                                outcome=TurnOutcome(ok=False, error=lost))
                eager = time.monotonic() < eager_until
                await asyncio.sleep(EAGER_POLL if eager else self.settings.poll_interval)
        except asyncio.CancelledError:
            # Only a cancelled Run stops the turn; a worker shutdown or a lost heartbeat
            # leaves it running for the next attempt to re-attach to. A cancelled Run's
            # workflow may close before this activity hears of it: then it is not found.
            why = activity.cancellation_details()
            if why is not None and (why.cancel_requested or why.not_found):
                await asyncio.to_thread(self.backend.stop_turn, inp.devbox, inp.turn_id)
            raise

    @activity.defn(name="stop_turn")
    async def stop_turn(self, inp: StopTurnInput) -> None:
        await asyncio.to_thread(self.backend.stop_turn, inp.devbox, inp.turn_id)

    # ------------------------------------------------------------------ gateway

    def _grant(self, inp: FollowTurnInput) -> Grant | None:
        """This turn's grant: opened by the first slice, found again by later ones."""
        if self.book is None or inp.devbox.network == "none":
            return None
        return self.book.current(inp.run_id, inp.turn_id) or self.book.open(
            inp.run_id, inp.turn_id, max_cost_usd=inp.max_cost_usd, spent_usd=inp.spent_usd,
            allow=self.settings.egress_allowlist + _repo_hosts(inp.repo),
            credentials=paid_by(inp.engine))

    def _gateway_env(self, inp: FollowTurnInput, adapter: EngineAdapter | None,
                     grant: Grant) -> dict[str, str]:
        """The turn's view of the gateway: its token in the variables the CLIs read, and
        (in `gateway` mode) the egress proxy in the ones HTTP clients read."""
        token = grant.token
        env = {"FERRY_GATEWAY_TOKEN": token}
        # Non-secret provider settings the operator chose to pass: never a credential by
        # name (engine keys, Ferry's own settings, names that say key/token/secret...), nor
        # any value the worker knows to be a secret.
        credentials = set(KNOWN_CREDENTIALS)
        secrets = set(secret_values(self.settings))
        for name in (n.strip() for n in self.settings.engine_env.split(",")):
            value = os.environ.get(name) if name else None
            if value and name not in credentials and not name.startswith("FERRY_") \
                    and not SECRET_NAME.search(name) and value not in secrets:
                env[name] = value
        if adapter is not None:
            env.update(adapter.gateway_env(token, f"http://127.0.0.1:{MODEL_PORT}"))
        if inp.devbox.network == "gateway":
            proxy = f"http://ferry:{token}@127.0.0.1:{PROXY_PORT}"
            for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
                env[name] = proxy
            env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        return env

    def _denials(self, grant: Grant) -> list[StepIn]:
        assert self.book is not None
        return [StepIn(kind="egress_denied", started_at=d.ts, payload={
            "host": d.host, "port": d.port,
            "why": "not on this Run's egress allowlist (FERRY_EGRESS_ALLOW)"})
            for d in self.book.new_denials(grant)]

    async def _metered(self, inp: FollowTurnInput, outcome: TurnOutcome) -> TurnOutcome:
        """The turn ends: its token stops working; what the gateway metered is its usage,
        calls still answering included (they get a few seconds, then are cut off)."""
        assert self.book is not None
        current = self.book.current(inp.run_id, inp.turn_id)
        if current is not None:
            current.ending = True
            deadline = time.monotonic() + LATE_CALL_SECONDS
            while self.book.calls_in_flight(inp.run_id) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
        grant = self.book.close(inp.run_id, inp.turn_id)
        if grant is None or not grant.calls_total:
            return outcome
        calls = [CallUsage(model=c.model, input_tokens=c.input_tokens,
                           output_tokens=c.output_tokens, cache_read_tokens=c.cache_read_tokens,
                           cache_write_tokens=c.cache_write_tokens, cost_usd=round(c.cost_usd, 6),
                           billed=c.billed)
                 for c in grant.calls]
        usage = Usage(input_tokens=grant.input_tokens, output_tokens=grant.output_tokens,
                      cost_usd=round(grant.cost_usd, 6))
        return outcome.model_copy(update={"usage": usage, "calls": calls})

    # ------------------------------------------------------------------ host -> DevBox

    def _write_spec(self, inp: FollowTurnInput, adapter: EngineAdapter | None,
                    secret_env: list[str], gateway: bool = False) -> None:
        layout = self.backend.layout(inp.run_id)
        if (layout.inbox / "turns" / inp.turn_id / "spec.json").exists():
            return  # later slices re-attach; the spec is the first slice's
        box = inp.devbox
        if inp.answers is not None:
            self.backend.write_in(layout, "answers.json",
                                  json.dumps({"answers": inp.answers}).encode())
        env = {**inp.env, "FERRY_RUN_ID": inp.run_id, "FERRY_TURN_ID": inp.turn_id,
               "FERRY_ANSWERS": f"{box.in_dir}/answers.json",
               "FERRY_WORKSPACE": box.workspace, "HOME": box.home or box.workspace,
               # Claude Code refuses bypass mode as root unless it is told it is sandboxed.
               "IS_SANDBOX": "1"}
        spec: dict[str, Any] = {
            "turn_id": inp.turn_id,
            "out_dir": f"{box.out_dir}/turns/{inp.turn_id}",
            "stop_file": f"{box.in_dir}/turns/{inp.turn_id}/stop",
            "bin_dir": f"{box.in_dir}/bin",
            "workspace": box.workspace,
            "state_dir": box.state_dir,
            "ask_file": f"{box.state_dir}/ask-{inp.turn_id}.json",
            "user": {"uid": box.uid, "gid": box.gid} if box.uid is not None else None,
            "caps": box.caps if box.uid == 0 and box.backend == "docker" else None,
            "commands": inp.commands,
            "index_offset": inp.index_offset,
            "env": env,
            "secret_env": secret_env,
            "time_limit": inp.time_limit,
            "forward": [[MODEL_PORT, f"{DEVBOX_SOCKET_DIR}/{MODEL_SOCKET}"],
                        [PROXY_PORT, f"{DEVBOX_SOCKET_DIR}/{PROXY_SOCKET}"]] if gateway else [],
        }
        if adapter is not None:
            spec["engine"] = adapter.name
            spec["image"] = box.image
            spec["argv"] = adapter.command(EngineTurn(
                prompt=inp.prompt or "", session_id=inp.session_id, model=inp.model,
                effort=inp.effort, max_turns=inp.engine_max_turns,
                permission_mode=inp.permission_mode,
                gateway=f"http://127.0.0.1:{MODEL_PORT}" if gateway else None))
        self.backend.write_in(layout, f"turns/{inp.turn_id}/spec.json", json.dumps(spec).encode())

    # ------------------------------------------------------------------ DevBox -> host

    def _replay(self, turn_dir: hostio.Beneath, key: str, cursor: TurnCursor, reader: _Reader) -> None:
        """Rebuild parser state from the lines already delivered (steps are not re-sent)."""
        offset, index = 0, 0
        while offset < cursor.offset:
            try:
                got = events.read_lines(turn_dir, key, offset, index,
                                        cap=min(events.MAX_READ, cursor.offset - offset))
            except hostio.UnsafeFile:
                return
            if got.offset == offset:
                return
            for line in got.lines:
                event = line.event
                if event is None or event["n"] >= cursor.seq:
                    continue
                if event.get("type") == "question":
                    reader.asked = event.get("questions")
                elif event.get("type") == "engine_line" and reader.parser is not None:
                    reader.parser.feed_line(_text(event.get("raw"), events.MAX_LINE))
            offset, index = got.offset, index + len(got.lines)

    def _read(self, inp: FollowTurnInput, turn_dir: hostio.Beneath, key: str, cursor: TurnCursor,
              reader: _Reader) -> tuple[StepBatch, TurnOutcome | None, bool]:
        """Read complete event lines after `cursor`; returns (batch, outcome, more-to-read)."""
        steps: list[StepIn] = []
        outcome: TurnOutcome | None = None
        offset, lines, seq = cursor.offset, cursor.lines, cursor.seq
        size, more = 0, False
        try:
            got = events.read_lines(turn_dir, key, cursor.offset, cursor.lines)
        except hostio.UnsafeFile:
            got = None  # not written yet (or replaced by something that is not a file)
        if got is not None and got.truncated:
            outcome = TurnOutcome(ok=False, error="the turn's event stream was tampered with "
                                                  "(it shrank): the turn is void")
        elif got is not None:
            reader.started = True
            more = got.more
            for line in got.lines:
                if len(steps) >= MAX_BATCH_STEPS or size >= MAX_BATCH_BYTES:
                    more = True
                    break
                event = line.event
                if event is None:
                    if lines - seq < MAX_TAMPER_STEPS:
                        steps.append(StepIn(kind="raw", line=line.index, started_at=_now(),
                                            payload={"raw": line.excerpt, "why": line.why,
                                                     "forged": True}))
                elif event["n"] > seq:
                    outcome = TurnOutcome(ok=False, error=(
                        f"the turn's event stream was tampered with (event {seq} is missing): "
                        "the turn is void"))
                elif event["n"] == seq:  # a lower number is a replayed line: already seen
                    seq += 1
                    new_steps, outcome = self._convert(inp, event, line.index, reader)
                    steps += new_steps
                    size += sum(len(json.dumps(s.payload, default=str)) for s in new_steps)
                offset, lines = line.end, line.index + 1
                if outcome is not None:
                    more = False
                    break
            else:
                if got.overlong and outcome is None:  # every line before it is taken
                    outcome = TurnOutcome(ok=False, error=(
                        "the turn's event stream was tampered with (a line longer than "
                        f"{events.MAX_LINE} bytes): the turn is void"))
        batch = StepBatch(turn_id=inp.turn_id, cursor=TurnCursor(offset=offset, lines=lines, seq=seq),
                          steps=steps, running=reader.running)
        return batch, outcome, more

    def _convert(self, inp: FollowTurnInput, event: dict[str, Any], line: int,
                 reader: _Reader) -> tuple[list[StepIn], TurnOutcome | None]:
        kind = event.get("type")
        if kind == "question":
            reader.asked = event.get("questions")
            return [], None
        if kind == "exec_start":
            reader.running = RunningCommand(command=_text(event.get("command")),
                                            index=_int(event.get("index")),
                                            started_at=_time(event.get("ts")))
            return [], None
        if kind == "exec_end":
            reader.running = None
            return [self._exec_step(inp, event, line, reader)], None
        if kind == "engine_line" and reader.parser is not None:
            raw = _text(event.get("raw"), events.MAX_LINE)
            return [self._step(s, line) for s in reader.parser.feed_line(raw)], None
        if kind == "turn_end":
            return self._turn_end(event, line, reader)
        return [], None

    def _step(self, data: dict[str, Any], line: int) -> StepIn:
        # An engine's stream is the agent's own output: it may describe messages and tool
        # calls, never Ferry's own steps (exec, question, answer, review...).
        kind = cast(StepKind, data["kind"] if data["kind"] in STEP_KINDS_FROM_ENGINES else "raw")
        return StepIn(kind=kind, line=line, started_at=data["started_at"],
                      ended_at=data.get("ended_at"),
                      payload=redact(data["payload"], self.secret_values))

    def _exec_step(self, inp: FollowTurnInput, event: dict[str, Any], line: int,
                   reader: _Reader) -> StepIn:
        out_file = str(event.get("output_file", ""))
        rel = f"turns/{inp.turn_id}/{out_file}"
        payload: dict[str, Any] = {
            "turn": inp.turn_id,
            "index": _int(event.get("index")),
            "command": _text(event.get("command")),
            "exit_code": _int(event.get("exit_code"), -1),
            "duration_ms": _int(event.get("duration_ms")),
            "output_excerpt": _text(event.get("excerpt"), 4000),
            "output_bytes": _int(event.get("output_bytes")),
        }
        if re.fullmatch(r"out/\d{5,}\.log", out_file):
            stored, total = self._store_output(inp, out_file, rel, reader)
            if stored is not None:
                payload["output_path"] = rel
                if stored < total:
                    payload["output_truncated"] = True
        return StepIn(kind="exec", line=line, started_at=_time(event.get("started_at")),
                      ended_at=_time(event.get("ended_at")),
                      payload=redact(payload, self.secret_values))

    def _store_output(self, inp: FollowTurnInput, out_file: str, rel: str,
                      reader: _Reader) -> tuple[int | None, int]:
        """Copy a command's full output into the artifact store, within the Run's budget."""
        budget = max(0, int(self.settings.max_output_per_run) - inp.output_used - reader.stored)
        turn_dir = self.backend.turn_files(inp.run_id, inp.turn_id)
        try:
            with self.store.writer(inp.run_id, rel) as f:
                redactor = StreamRedactor(self.secret_values, f.write)
                copied, total = turn_dir.copy_capped(out_file, redactor.feed, budget)
                redactor.close()
        except hostio.UnsafeFile:
            return None, 0
        reader.stored += copied
        return copied, total

    def _questions(self, reader: _Reader) -> QuestionSet | TurnOutcome:
        try:
            return QuestionSet.model_validate({"questions": reader.asked})
        except ValidationError as e:
            errors = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors()[:5])
            return TurnOutcome(ok=False, error=f"ferry-ask recorded invalid questions: {errors}")

    def _turn_end(self, event: dict[str, Any], line: int,
                  reader: _Reader) -> tuple[list[StepIn], TurnOutcome]:
        questions: QuestionSet | None = None
        if event.get("asked"):
            q = self._questions(reader)
            if isinstance(q, TurnOutcome):
                return [], q
            questions = q
        ok = event.get("ok") is True
        error = _text(event.get("error"), 2000) or None
        exit_code = event.get("exit_code") if type(event.get("exit_code")) is int else None
        if reader.parser is None:
            failed = _text(event.get("failed_command")) or None
            failed_index = event.get("failed_index") if type(event.get("failed_index")) is int \
                else None
            if not ok and error is None:
                error = f"command {failed_index} exited with {exit_code}: {failed}"
            return [], TurnOutcome(
                ok=ok, asked=questions, error=redact(error, self.secret_values),
                commands_run=_int(event.get("commands_run")), failed_command=failed,
                failed_index=failed_index, exit_code=exit_code)
        parsed, leftovers = reader.parser.finish(exit_code if exit_code is not None else -1,
                                                 _text(event.get("stderr_tail"), 4000))
        steps = [self._step(s, line) for s in leftovers]
        error = error or (None if parsed.ok else parsed.error)
        return steps, TurnOutcome(
            ok=parsed.ok and not event.get("error"), asked=questions,
            error=redact(error, self.secret_values), session_id=parsed.session_id,
            final_text=redact(parsed.final_text, self.secret_values),
            usage=Usage(input_tokens=parsed.input_tokens, output_tokens=parsed.output_tokens,
                        cost_usd=parsed.cost_usd),
            num_turns=parsed.num_turns, exit_code=exit_code)

    def _runner_lost(self, inp: FollowTurnInput, turn_dir: hostio.Beneath, key: str,
                     cursor: TurnCursor) -> str | None:
        """Why the runner can no longer finish the turn, if it cannot."""
        try:
            data, _ = turn_dir.read_capped("alive", events.MAX_ALIVE)
            beat = events.verify_alive(key, data)
        except hostio.UnsafeFile:
            beat = None
        if beat is not None and time.time() - beat <= RUNNER_STALE_AFTER:
            return None
        # The grace runs from when the host wrote the turn's spec (host-only data), not
        # from this slice: a runner that never starts is noticed across slices too.
        spec = self.backend.layout(inp.run_id).inbox / "turns" / inp.turn_id / "spec.json"
        try:
            written = spec.stat().st_mtime
        except OSError:
            written = time.time()
        if time.time() - written < RUNNER_START_GRACE:
            return None
        if beat is None and cursor.seq == 0:
            try:
                detail = turn_dir.read_tail("runner.log", 500).decode("utf-8", "replace")
            except hostio.UnsafeFile:
                detail = ""
            detail = redact(detail.strip(), self.secret_values)
            return "the turn runner did not start in the DevBox" + (f": {detail}" if detail else "")
        return ("the turn runner stopped without finishing (DevBox gone, runner killed, or its "
                "heartbeat tampered with)")


def _now() -> datetime:
    return datetime.now().astimezone()


def _repo_hosts(repo: str | None) -> list[str]:
    """The Run's git host, which `gateway` DevBoxes may reach (https and ssh)."""
    host = repo_host(repo) if repo else None
    if not host:
        return []
    host = host.lower()
    return [host, f"{host}:22", f"{host}:9418"]


def _time(value: Any) -> datetime:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else _now()
    except ValueError:
        return _now()
