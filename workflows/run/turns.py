"""Turns: which engine, starting a turn with queued messages, following it slice by slice,
its outcome and the budgets."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
)

with workflow.unsafe.imports_passed_through():
    from activities.engine_probe import ProbeActivities
    from activities.engines.openai_loop import ModelCallActivities
    from activities.turns import TurnActivities
    from ferry import search_attributes as sa
    from ferry.models.activity_io import (
        FollowTurnInput,
        FollowTurnResult,
        ModelCallInput,
        ModelCallResult,
        ProbeInput,
        StopTurnInput,
    )
    from ferry.models.hosts import DevBoxInfo
    from ferry.models.results import EngineChoice
    from ferry.models.steps import StepIn, TurnCursor, TurnOutcome, TurnUsage
    from ferry.script_commands import split_script

from workflows.run import metrics
from workflows.run.base import RunBase
from workflows.run.options import (
    RETRY,
    SHORT_ACTIVITY,
    STOP_TURN_WAIT,
    TURN_HEARTBEAT,
)
from workflows.run.patches import STOP_TURN_ON_END


class TurnsMixin(RunBase):
    async def _choose_engine(self, devbox: DevBoxInfo) -> None:
        """`auto`: probe the DevBox for CLIs and the worker for credentials, pick by priority."""
        st = self.state
        started = workflow.now()
        choice: EngineChoice = await workflow.execute_activity_method(
            ProbeActivities.probe_engines, ProbeInput(devbox=devbox), **self._on_host(devbox),
            start_to_close_timeout=SHORT_ACTIVITY,
            retry_policy=RETRY)
        self._add_step(StepIn(kind="engine", started_at=started, ended_at=workflow.now(),
                              payload=choice.model_dump()))
        if choice.chosen is None:
            why = "; ".join(f"{name}: {reason}" for name, reason in choice.missing.items())
            st.error = f"engine auto found no usable engine in this DevBox ({why})"
            return
        st.engine = choice.chosen
        workflow.upsert_search_attributes([sa.ENGINE.value_set(choice.chosen)])

    def _start_turn(self) -> None:
        """Begin the next turn: deliver queued messages first (recorded when delivered)."""
        st = self.state
        commands: list[str] = []
        for msg in st.inbox:
            self._add_step(StepIn(kind="message", started_at=workflow.now(),
                                  payload={"role": "user", "text": msg.text, "delivered": True,
                                           "received_at": msg.received_at.isoformat()}))
            if st.engine == "script":
                commands += split_script(msg.text)
            else:
                st.pending_prompt.append(f"Message from the person who gave you this task:\n"
                                         f"{msg.text}")
        st.inbox = []
        st.pending_commands = commands + st.pending_commands
        st.turn_prompt = "\n\n".join(st.pending_prompt) if st.engine != "script" else None
        st.pending_prompt = []
        st.turn_count += 1
        st.turn_id = f"t{st.turn_count}"
        st.turn_cursor = TurnCursor()
        st.turn_outcome = None
        st.phase = "turn"
        self._turn_started = workflow.now()

    async def _follow_turn_slice(self) -> None:
        st = self.state
        assert st.turn_id is not None
        devbox = st.devboxes[-1]
        first = st.turn_cursor.lines == 0
        if first:
            exceeded = self._budget_exceeded()
            if exceeded:
                st.error = exceeded
                st.phase = "report"
                return
        if st.engine == "openai":
            await self._model_call(devbox)
            return
        res: FollowTurnResult = await workflow.execute_activity_method(
            TurnActivities.follow_turn,
            FollowTurnInput(run_id=self.spec.id, turn_id=st.turn_id, engine=st.engine or "script",
                            devbox=devbox, cursor=st.turn_cursor,
                            # Only the first slice writes the turn spec; later ones re-attach.
                            commands=st.pending_commands if first else [],
                            prompt=st.turn_prompt if first else None,
                            session_id=st.session_id, model=self.spec.model,
                            effort=self.spec.effort, time_limit=self._turn_time_limit(),
                            engine_max_turns=self.spec.engine_max_turns,
                            permission_mode=self.spec.permission_mode,
                            index_offset=st.commands_total,
                            answers=st.pending_answers if first else None,
                            env=self.spec.env, output_used=st.output_bytes,
                            max_cost_usd=self.spec.max_cost_usd, spent_usd=st.usage.cost_usd,
                            repo=self.spec.repo),
            **self._on_host(devbox),
            start_to_close_timeout=timedelta(hours=2),
            heartbeat_timeout=TURN_HEARTBEAT,
            retry_policy=RETRY,
        )
        st.output_bytes += res.stored_bytes
        if res.devbox_died:
            devbox.died = res.devbox_died
        # Signals sent before the activity returned are applied first; wait for them anyway.
        await workflow.wait_condition(lambda: st.turn_cursor.lines >= res.cursor.lines)
        if res.outcome is not None:
            self._on_outcome(res.outcome)

    async def _model_call(self, devbox: DevBoxInfo) -> None:
        """One call of the built-in agent loop: its own activity and its own turn."""
        st = self.state
        res: ModelCallResult = await workflow.execute_activity_method(
            ModelCallActivities.model_call,
            ModelCallInput(run_id=self.spec.id, turn_id=st.turn_id or "", call=st.turn_count,
                           devbox=devbox, prompt=st.turn_prompt, model=self.spec.model,
                           effort=self.spec.effort),
            **self._on_host(devbox),
            start_to_close_timeout=timedelta(minutes=15), retry_policy=RETRY)
        for step in res.steps:
            self._add_step(step)
        self._on_outcome(res.outcome, more=not res.done)

    def _on_outcome(self, out: TurnOutcome, more: bool = False) -> None:
        """A turn ended: pause for questions, start the next turn, or report."""
        st = self.state
        metrics.turn_ended(st.engine or self.spec.engine, self._turn_started)
        self._turn_started = None
        st.turn_outcome = out
        st.running = None
        st.pending_answers = None
        st.commands_total += out.commands_run
        st.pending_commands = st.pending_commands[out.commands_run:]
        st.session_id = out.session_id or st.session_id
        st.final_text = out.final_text or st.final_text
        if out.usage is not None:
            st.usage = st.usage.plus(out.usage)
            st.turn_usage.append(TurnUsage(turn=st.turn_id or "", num_turns=out.num_turns,
                                           calls=out.calls, **out.usage.model_dump()))
        spent = self.spec.max_cost_usd
        if out.ok and spent is not None and st.usage.cost_usd >= spent:
            st.error = (f"budget max_cost_usd reached: spent ${st.usage.cost_usd:.4f} of "
                        f"${spent:.4f}")
            st.phase = "report"
            return
        if not out.ok:
            st.phase = "report"
        elif out.asked is not None:
            self._ask(out.asked)
        elif st.inbox or more:
            self._start_turn()
        else:
            st.phase = "report"

    def _budget_exceeded(self) -> str | None:
        """Why the next turn may not start, if a budget says so."""
        st, spec = self.state, self.spec
        if spec.max_turns is not None and st.turn_count > spec.max_turns:
            return f"budget max_turns reached: {spec.max_turns} turn(s) done"
        if spec.max_duration is not None and st.created_at is not None and \
                workflow.now() - st.created_at >= spec.max_duration:
            return f"budget max_duration reached: the Run is older than {spec.max_duration}"
        return None

    def _turn_time_limit(self) -> float | None:
        """Seconds the watchdog gives this turn: the turn timeout, capped by max_duration."""
        st, spec = self.state, self.spec
        limits = []
        if spec.turn_timeout is not None:
            limits.append(spec.turn_timeout.total_seconds())
        if spec.max_duration is not None and st.created_at is not None:
            limits.append(max(1.0, (st.created_at + spec.max_duration - workflow.now())
                              .total_seconds()))
        return min(limits) if limits else None

    async def _stop_turn(self) -> None:
        """End the turn's runner in the DevBox: the DevBox may be kept, and a cancelled
        follow-up must not go on working in it. The turn activity hears of a cancel only at
        its next heartbeat, which may come after the Run has closed."""
        st = self.state
        devbox = st.devboxes[-1] if st.devboxes else None
        if devbox is None or st.turn_id is None or devbox.died or devbox.removed_at or \
                not workflow.patched(STOP_TURN_ON_END):
            return
        try:
            await workflow.execute_activity_method(
                TurnActivities.stop_turn, StopTurnInput(devbox=devbox, turn_id=st.turn_id),
                task_queue=devbox.task_queue, schedule_to_start_timeout=STOP_TURN_WAIT,
                start_to_close_timeout=SHORT_ACTIVITY, retry_policy=RETRY)
        except ActivityError as e:  # a host that is gone took the runner with it
            workflow.logger.warning("could not stop turn %s: %s", st.turn_id, e)
