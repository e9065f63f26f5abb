"""RunWorkflow: the durable life of one Run, from DevBox launch to result and teardown.

Deterministic code only: every side effect is an activity. The Run is a state machine
over `RunState.phase`:

  choose_target -> launch -> turn <-> waiting (questions) -> report -> close
                              ^                                   |
                              +--- steering messages -------------+

The workflow closes when the Run ends, with the Run's outcome (Completed / Failed /
Canceled). `close` writes the Run's final record to the artifact store and hands its live
DevBoxes to a DevBoxKeeper workflow, which keeps them for the keep-alive window and then
removes them. A follow-up or review in that window claims the DevBoxes back and starts a
new execution of this workflow id from the record's state, in phase `keep_alive`, with the
follow-up as an Update-with-start: same Run id, same DevBox, same timeline.

Steps stream in as `add_steps` signals from the turn activity; older steps are archived
to the artifact store so the workflow keeps only a live tail, and history stays small by
continuing-as-new between turn slices and pauses when Temporal suggests it.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    TimeoutType,
    is_cancelled_exception,
)
from temporalio.exceptions import (
    TimeoutError as TemporalTimeout,
)

with workflow.unsafe.imports_passed_through():
    from ferry import search_attributes as sa
    from ferry.questions import (
        AnswerError,
        AnswersIn,
        Question,
        QuestionSet,
        default_answers,
        validate_answers,
    )
    from ferry.schemas import (
        AcceptInput,
        AcceptResult,
        ArchiveInput,
        AttemptResult,
        CollectInput,
        DevBoxAction,
        DevBoxInfo,
        EngineChoice,
        FollowTurnInput,
        FollowTurnResult,
        InboxMessage,
        KeeperInput,
        LaunchInput,
        MessageIn,
        ModelCallInput,
        ModelCallResult,
        PrepareInput,
        ProbeInput,
        ReportInput,
        ResetInput,
        ReviewIn,
        RunPublic,
        RunRecord,
        RunRename,
        RunState,
        RunStatus,
        RunWorkflowInput,
        Step,
        StepBatch,
        StepIn,
        StopTurnInput,
        Target,
        TimelineTail,
        TurnCursor,
        TurnOutcome,
        TurnUsage,
        WorkspaceInfo,
        keeper_id_for,
    )
    from ferry.script_commands import split_script, summarize
    from ferry.settings import host_queue
    from ferry.tickets import Ticket, parse_ticket_url
    from workflows.devbox_keeper import DevBoxKeeper

# Steps kept in workflow memory before the oldest are archived, and chunk bounds.
KEEP_LIVE_STEPS = 300
CHUNK_STEPS = 100
CHUNK_BYTES = 120_000
TARGET_QUESTION_ID = "target"
# Patches (docs/architecture.md, "Changing a workflow"): ids of command-order changes.
CHECKPOINT_BEFORE_HIBERNATE = "checkpoint-before-hibernate"

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


def _cause(err: BaseException) -> BaseException:
    while isinstance(err, ActivityError) and err.cause is not None:
        err = err.cause
    return err


def _host_gone(err: BaseException) -> bool:
    """No worker on the activity's host queue picked it up in time."""
    cause = _cause(err)
    return isinstance(cause, TemporalTimeout) and cause.type == TimeoutType.SCHEDULE_TO_START


def _error_text(err: BaseException, host: str | None = None) -> str:
    """The message an activity failed with (not the generic "activity error" wrapper)."""
    if _host_gone(err):
        return (f"host {host or '(any)'} is gone: no Ferry worker there took the Run's work in "
                "time (host_lost_after)")
    err = _cause(err)
    return str(getattr(err, "message", None) or err) or type(err).__name__


def _target_label(t: Target) -> str:
    return f"{t.host} ({t.default_image or t.backend})"


@workflow.defn(name="RunWorkflow")
class RunWorkflow:
    @workflow.init
    def __init__(self, inp: RunWorkflowInput) -> None:
        # A schedule starts every Run from one template; the workflow id is the Run's own.
        own_id = workflow.info().workflow_id.removeprefix("run-")
        self.spec = inp.spec if inp.spec.id == own_id else inp.spec.model_copy(
            update={"id": own_id})
        self.state = inp.state or RunState(title=inp.spec.title, target=inp.spec.target,
                                           image=inp.spec.image)
        self._archiving = False
        self._reviewing = False
        self._reviewed = False

    # ------------------------------------------------------------------ run

    @workflow.run
    async def run(self, inp: RunWorkflowInput) -> RunPublic:
        st = self.state
        if st.created_at is None:
            st.created_at = workflow.now()
            if workflow.info().typed_search_attributes.get(sa.CREATED) is None:
                # Runs a schedule starts carry only the schedule's static attributes.
                workflow.upsert_search_attributes([sa.CREATED.value_set(st.created_at)])
            st.engine = None if self.spec.engine == "auto" else self.spec.engine
            if self.spec.engine == "script":
                st.pending_commands = split_script(self.spec.instructions)
            else:
                st.pending_prompt = [self.spec.instructions]
            self._add_step(StepIn(kind="message", started_at=workflow.now(),
                                  payload={"role": "user", "text": self.spec.instructions}))
        archiver = asyncio.create_task(self._archive_loop())
        try:
            while st.phase != "done":
                if st.phase == "resolve":
                    await self._resolve()
                elif st.phase == "choose_target":
                    await self._choose_target()
                elif st.phase == "launch":
                    await self._launch()
                elif st.phase == "turn":
                    await self._follow_turn_slice()
                elif st.phase == "waiting":
                    await self._wait_for_answers()
                elif st.phase == "report":
                    await self._report()
                elif st.phase == "keep_alive":
                    await self._keep_alive()
                elif st.phase in ("teardown", "close"):
                    await self._close(archiver)
                if st.phase in ("turn", "waiting", "keep_alive") and \
                        workflow.info().is_continue_as_new_suggested():
                    await self._archive_all(archiver)
                    await workflow.wait_condition(workflow.all_handlers_finished)
                    workflow.continue_as_new(RunWorkflowInput(spec=self.spec, state=st))
        except (asyncio.CancelledError, ActivityError) as e:
            in_turn = st.phase == "turn"
            if not is_cancelled_exception(e):
                st.error = _error_text(e, st.target)
                st.running = None
                if _host_gone(e):  # nothing more can be read from, or done on, that host
                    for devbox in st.devboxes:
                        devbox.died = devbox.died or st.error
                if in_turn:
                    await self._stop_turn()
                try:
                    await self._report(failed_with=st.error)
                except ActivityError as again:  # the report is best effort on this path
                    workflow.logger.warning("could not report the failure: %s", again)
                # Even a Run that had finished before (a review that failed) ends failed.
                self._set_status(RunStatus.failed, finished=True)
                await self._close(archiver)
                return await self._finish()
            st.running = None
            if in_turn:
                await self._stop_turn()
            self._add_step(StepIn(kind="message", started_at=workflow.now(),
                                  payload={"role": "system", "text": "Run cancelled by request."}))
            if not st.status.finished:
                self._set_status(RunStatus.cancelled, finished=True)
            await self._close(archiver)
            raise
        return await self._finish()

    async def _finish(self) -> RunPublic:
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self.state.error:
            raise ApplicationError(self.state.error, type="RunFailed", non_retryable=True)
        return self.details()

    def _on_host(self, devbox: DevBoxInfo | None = None) -> dict[str, Any]:
        """Options of an activity bound to a DevBox's host: it fails, rather than waits
        forever, when nothing polls that host's queue for `host_lost_after`."""
        queue = devbox.task_queue if devbox else host_queue(self.state.target or "")
        return {"task_queue": queue, "schedule_to_start_timeout": self.spec.host_lost_after}

    async def _stop_turn(self) -> None:
        """End the turn's runner in the DevBox: the DevBox may be kept, and a cancelled
        follow-up must not go on working in it. The turn activity hears of a cancel only at
        its next heartbeat, which may come after the Run has closed."""
        st = self.state
        devbox = st.devboxes[-1] if st.devboxes else None
        if devbox is None or st.turn_id is None or devbox.died or devbox.removed_at or \
                not workflow.patched("stop-turn-on-end"):
            return
        try:
            await workflow.execute_activity(
                "stop_turn", StopTurnInput(devbox=devbox, turn_id=st.turn_id),
                task_queue=devbox.task_queue, schedule_to_start_timeout=STOP_TURN_WAIT,
                start_to_close_timeout=SHORT_ACTIVITY, retry_policy=RETRY)
        except ActivityError as e:  # a host that is gone took the runner with it
            workflow.logger.warning("could not stop turn %s: %s", st.turn_id, e)

    async def _close(self, archiver: asyncio.Task[None]) -> None:
        """The Run has ended: archive, write the final record, hand DevBoxes to a keeper."""
        st = self.state
        st.phase = "close"
        st.running = None
        # What the ended turn had not run yet must not run in a follow-up of a kept DevBox.
        st.pending_commands, st.pending_prompt, st.pending_answers = [], [], None
        if st.inbox:
            self._add_step(StepIn(kind="message", started_at=workflow.now(), payload={
                "role": "system", "text": f"{len(st.inbox)} queued message(s) not delivered: "
                                          f"the Run ended ({st.status.value}) first."}))
            st.inbox = []
        live = [d for d in st.devboxes if d.removed_at is None]
        if not st.status.finished:
            self._set_status(RunStatus.failed if st.error else RunStatus.completed, finished=True)
        # A failed first attempt takes its DevBox with it (whatever broke it goes too); after
        # a completion the DevBox holds work to accept or follow up, whatever came later.
        keep = ((st.status == RunStatus.completed or st.completed_once)
                and self.spec.keep_alive.total_seconds() > 0
                and bool(live) and not any(d.died for d in live))
        until = workflow.now() + (self.spec.keep_alive if keep else timedelta(0))
        st.keep_alive_until = until if keep else None
        await self._archive_all(archiver)
        st.phase = "done"
        record = RunRecord(run=self.details(), input=RunWorkflowInput(spec=self.spec, state=st),
                           execution=workflow.info().run_id)
        await workflow.execute_activity("write_run_record", record,
                                        start_to_close_timeout=SHORT_ACTIVITY, retry_policy=RETRY)
        if live:
            await workflow.start_child_workflow(
                DevBoxKeeper.run,
                KeeperInput(run_id=self.spec.id, devboxes=live, until=until,
                            host_lost_after=self.spec.host_lost_after),
                id=keeper_id_for(self.spec.id), task_queue=workflow.info().task_queue,
                parent_close_policy=workflow.ParentClosePolicy.ABANDON)

    # ------------------------------------------------------------------ ticket

    async def _resolve(self) -> None:
        """A ticket URL becomes context: title, body, comments, and maybe the repository."""
        st = self.state
        st.phase = "choose_target"
        if not self.spec.ticket_url:
            return
        started = workflow.now()
        ticket: Ticket = await workflow.execute_activity(
            "resolve_ticket", parse_ticket_url(self.spec.ticket_url), result_type=Ticket,
            start_to_close_timeout=SHORT_ACTIVITY,
            retry_policy=RetryPolicy(maximum_attempts=3, non_retryable_error_types=["TicketError"]))
        st.ticket = ticket
        self._add_step(StepIn(kind="ticket", started_at=started, ended_at=workflow.now(), payload={
            "url": ticket.ref.url, "title": ticket.title, "comments": len(ticket.comments),
            "clone_url": ticket.clone_url, "default_branch": ticket.default_branch}))
        if not self.spec.title_given:
            st.title = ticket.title
            workflow.upsert_search_attributes([sa.TITLE.value_set(ticket.title)])
        if self.spec.engine != "script":
            task = self.spec.instructions.strip()
            st.pending_prompt = [(task + "\n\n" if task else "Resolve this ticket.\n\n")
                                 + ticket.markdown()
                                 + "\n(The ticket is also in .ferry/ticket.md.)"]

    # ------------------------------------------------------------------ target

    async def _choose_target(self) -> None:
        """Interactive Runs with no target pinned ask which one when several are up."""
        st = self.state
        st.phase = "launch"
        if st.target is not None or self.spec.mode != "interactive":
            return
        if workflow.patched("list-targets-local"):
            # A local activity: no round trip through a task queue before the launch.
            st.targets = await workflow.execute_local_activity(
                "list_targets", start_to_close_timeout=timedelta(seconds=30), retry_policy=RETRY,
                result_type=list[Target])
        else:  # Runs started before 2026-11-22
            st.targets = await workflow.execute_activity(
                "list_targets", start_to_close_timeout=SHORT_ACTIVITY, retry_policy=RETRY,
                result_type=list[Target],
            )
        if len(st.targets) == 1:
            st.target, st.image = st.targets[0].host, st.image or st.targets[0].default_image
            return
        if len(st.targets) < 2:
            return  # none registered yet: any worker may take the launch
        labels = [_target_label(t) for t in st.targets]
        self._ask(QuestionSet(questions=[Question(
            id=TARGET_QUESTION_ID, kind="single", text="Which target should this Run use?",
            options=labels, default=labels[0])]))

    def _apply_target_answer(self, answers: dict[str, Any]) -> None:
        st = self.state
        chosen = answers.get(TARGET_QUESTION_ID)
        for t in st.targets:
            if _target_label(t) == chosen:
                st.target, st.image = t.host, st.image or t.default_image

    # ------------------------------------------------------------------ launch

    async def _launch(self) -> None:
        st = self.state
        queue = host_queue(st.target) if st.target else workflow.info().task_queue
        started = workflow.now()
        launch = workflow.start_activity(
            "launch_devbox",
            LaunchInput(run_id=self.spec.id, image=st.image, run_as_root=self.spec.run_as_root,
                        network=self.spec.network),
            result_type=DevBoxInfo,
            task_queue=queue,
            start_to_close_timeout=LAUNCH_TIMEOUT,
            heartbeat_timeout=timedelta(seconds=30),
            schedule_to_start_timeout=self.spec.host_lost_after if st.target else None,
            retry_policy=RetryPolicy(maximum_attempts=3, non_retryable_error_types=["DevBoxError"]),
        )
        try:
            devbox: DevBoxInfo = await asyncio.shield(launch)
        except asyncio.CancelledError:
            # Cancelled mid-launch: let the launch finish so teardown knows what to remove.
            st.devboxes.append(await launch)
            raise
        st.devboxes.append(devbox)
        st.target = devbox.host
        workflow.upsert_search_attributes([sa.TARGET.value_set(devbox.host)])
        self._add_step(StepIn(kind="launch_devbox", started_at=started, ended_at=workflow.now(),
                              payload={"backend": devbox.backend, "host": devbox.host,
                                       "name": devbox.name, "image": devbox.image,
                                       "container_id": devbox.container_id,
                                       "workspace": devbox.workspace,
                                       "network": devbox.network}))
        st.started_at = workflow.now()
        self._set_status(RunStatus.in_progress)
        if self.spec.repo or st.ticket:
            started = workflow.now()
            ws: WorkspaceInfo | None = await workflow.execute_activity(
                "prepare_workspace",
                PrepareInput(run_id=self.spec.id, devbox=devbox, repo=self.spec.repo,
                             branch=self.spec.branch, ticket=st.ticket,
                             restore_from=self.spec.restore_from),
                result_type=WorkspaceInfo, **self._on_host(devbox),
                start_to_close_timeout=LAUNCH_TIMEOUT,
                retry_policy=RetryPolicy(maximum_attempts=3,
                                         non_retryable_error_types=["WorkspaceError"]))
            st.workspace = ws
            if ws is not None:
                self._add_step(StepIn(kind="workspace", started_at=started,
                                      ended_at=workflow.now(), payload=ws.model_dump()))
        if st.engine is None:
            await self._choose_engine(devbox)
            if st.error:
                st.phase = "report"
                return
        self._start_turn()

    async def _choose_engine(self, devbox: DevBoxInfo) -> None:
        """`auto`: probe the DevBox for CLIs and the worker for credentials, pick by priority."""
        st = self.state
        started = workflow.now()
        choice: EngineChoice = await workflow.execute_activity(
            "probe_engines", ProbeInput(devbox=devbox), result_type=EngineChoice,
            **self._on_host(devbox), start_to_close_timeout=SHORT_ACTIVITY,
            retry_policy=RETRY)
        self._add_step(StepIn(kind="engine", started_at=started, ended_at=workflow.now(),
                              payload=choice.model_dump()))
        if choice.chosen is None:
            why = "; ".join(f"{name}: {reason}" for name, reason in choice.missing.items())
            st.error = f"engine auto found no usable engine in this DevBox ({why})"
            return
        st.engine = choice.chosen
        workflow.upsert_search_attributes([sa.ENGINE.value_set(choice.chosen)])

    # ------------------------------------------------------------------ turns

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
        res: FollowTurnResult = await workflow.execute_activity(
            "follow_turn",
            FollowTurnInput(run_id=self.spec.id, turn_id=st.turn_id, engine=st.engine or "script",
                            devbox=devbox, cursor=st.turn_cursor,
                            # Only the first slice writes the turn spec; later ones re-attach.
                            commands=st.pending_commands if first else [],
                            prompt=st.turn_prompt if first else None,
                            session_id=st.session_id, model=self.spec.model,
                            effort=self.spec.effort, time_limit=self._turn_time_limit(),
                            engine_max_turns=self.spec.engine_max_turns,
                            index_offset=st.commands_total,
                            answers=st.pending_answers if first else None,
                            env=self.spec.env, output_used=st.output_bytes,
                            max_cost_usd=self.spec.max_cost_usd, spent_usd=st.usage.cost_usd,
                            repo=self.spec.repo),
            result_type=FollowTurnResult,
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
        res: ModelCallResult = await workflow.execute_activity(
            "model_call",
            ModelCallInput(run_id=self.spec.id, turn_id=st.turn_id or "", call=st.turn_count,
                           devbox=devbox, prompt=st.turn_prompt, model=self.spec.model,
                           effort=self.spec.effort),
            result_type=ModelCallResult, **self._on_host(devbox),
            start_to_close_timeout=timedelta(minutes=15), retry_policy=RETRY)
        for step in res.steps:
            self._add_step(step)
        self._on_outcome(res.outcome, more=not res.done)

    def _on_outcome(self, out: TurnOutcome, more: bool = False) -> None:
        """A turn ended: pause for questions, start the next turn, or report."""
        st = self.state
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

    # ------------------------------------------------------------------ questions

    def _ask(self, questions: QuestionSet) -> None:
        """Pause for answers (autonomous Runs answer with the defaults instead)."""
        st = self.state
        st.questions = questions
        st.asked_at = workflow.now()
        st.received_answers = None
        self._add_step(StepIn(kind="question", started_at=workflow.now(),
                              payload=questions.model_dump(mode="json")))
        if self.spec.mode == "autonomous":
            answers, lacking = default_answers(questions)
            if lacking:
                needed = "; ".join(f"{q.id}: {q.text}" for q in lacking)
                st.error = (f"an autonomous Run cannot pause, and question(s) without a default "
                            f"needed an answer: {needed}")
                st.questions = None
                st.phase = "report"
                return
            self._answered(answers, auto="autonomous")
            return
        self._set_status(RunStatus.waiting_for_input)
        st.phase = "waiting"

    async def _wait_for_answers(self) -> None:
        st = self.state
        assert st.asked_at is not None
        deadline = st.asked_at + self.spec.question_timeout
        devbox = st.devboxes[-1] if st.devboxes else None
        idle_until = st.asked_at + self.spec.idle_timeout
        if devbox and devbox.hibernated_at is None and idle_until < deadline:
            if not await self._wait_answers_until(idle_until):
                if st.workspace is not None and workflow.patched(CHECKPOINT_BEFORE_HIBERNATE):
                    # A hibernated DevBox may be removed before the answer comes: its work
                    # is saved first, for a Run started from this one.
                    note = await workflow.execute_activity(
                        "checkpoint_workspace",
                        CollectInput(run_id=self.spec.id, devbox=devbox, attempt=st.attempt,
                                     base_commit=st.workspace.base_commit, workspace=st.workspace),
                        **self._on_host(devbox),
                        start_to_close_timeout=WORKSPACE_ACTIVITY, retry_policy=RETRY)
                    if isinstance(note, str) and note:
                        self._add_step(StepIn(kind="message", started_at=workflow.now(),
                                              payload={"role": "system", "text": note}))
                await workflow.execute_activity(
                    "hibernate_devbox", DevBoxAction(devbox=devbox), **self._on_host(devbox),
                    start_to_close_timeout=SHORT_ACTIVITY, retry_policy=RETRY)
                devbox.hibernated_at = workflow.now()
                self._add_step(StepIn(kind="message", started_at=workflow.now(), payload={
                    "role": "system", "text": "DevBox hibernated while waiting for input."}))
                return  # loop again (a chance to continue-as-new), then wait for the rest
        if not await self._wait_answers_until(deadline):
            questions = st.questions
            assert questions is not None
            if self.spec.on_timeout == "use_defaults":
                answers, lacking = default_answers(questions)
                if not lacking:
                    self._answered(answers, auto="timeout")
                    await self._wake()
                    return
                why = f"; question(s) without a default: {', '.join(q.id for q in lacking)}"
            else:
                why = ""
            st.error = (f"no answer within {self.spec.question_timeout} "
                        f"(on_timeout: {self.spec.on_timeout}){why}")
            st.questions = None
            self._set_status(RunStatus.in_progress)
            st.phase = "report"
            return
        assert st.received_answers is not None
        self._answered(st.received_answers, auto=None)
        await self._wake()

    async def _wait_answers_until(self, until) -> bool:
        st = self.state
        remaining = (until - workflow.now()).total_seconds()
        if st.received_answers is not None:
            return True
        if remaining <= 0:
            return False
        try:
            await workflow.wait_condition(lambda: st.received_answers is not None,
                                          timeout=timedelta(seconds=remaining))
        except TimeoutError:
            return False
        return True

    async def _wake(self) -> None:
        st = self.state
        if not st.devboxes:
            return
        devbox = st.devboxes[-1]
        if devbox.hibernated_at is not None and devbox.removed_at is None:
            await workflow.execute_activity(
                "wake_devbox", DevBoxAction(devbox=devbox), **self._on_host(devbox),
                start_to_close_timeout=SHORT_ACTIVITY, retry_policy=RETRY)
            devbox.hibernated_at = None
            self._add_step(StepIn(kind="message", started_at=workflow.now(),
                                  payload={"role": "system", "text": "DevBox woken up."}))

    def _answered(self, answers: dict[str, Any], auto: str | None) -> None:
        st = self.state
        payload: dict[str, Any] = {"answers": answers, "auto": auto is not None}
        if auto:
            payload["reason"] = auto
        self._add_step(StepIn(kind="answer", started_at=workflow.now(), payload=payload))
        st.questions = None
        st.received_answers = None
        if st.status == RunStatus.waiting_for_input:
            self._set_status(RunStatus.in_progress if st.devboxes else RunStatus.pending)
        if not st.devboxes:  # the only question before launch is which target
            self._apply_target_answer(answers)
            st.phase = "launch"
            return
        st.pending_answers = answers
        if st.engine != "script":
            st.pending_prompt.append(
                "The person answered your questions (also in the JSON file $FERRY_ANSWERS):\n"
                + json.dumps({"answers": answers}))
        self._start_turn()

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

    # ------------------------------------------------------------------ results

    async def _report(self, failed_with: str | None = None) -> None:
        st = self.state
        outcome = st.turn_outcome
        if failed_with is not None:
            summary = f"The Run failed: {failed_with}"
        elif st.error:
            summary = f"The Run failed: {st.error}"
        elif outcome is not None and outcome.ok and st.engine != "script":
            summary = st.final_text or "The engine finished without a final message."
        elif outcome is not None and outcome.ok:
            summary = summarize(st.commands_total - st.attempt_commands_base, True, None, None)
        else:
            assert outcome is not None
            st.error = outcome.error or "the turn failed"
            summary = (summarize(outcome.failed_index or 0, False, outcome.failed_command,
                                 outcome.exit_code)
                       if outcome.failed_command else f"The Run failed: {st.error}")
        st.summary = summary
        status = RunStatus.failed if st.error else RunStatus.completed
        started = workflow.now()
        awake = [d for d in st.devboxes if d.removed_at is None and d.hibernated_at is None
                 and d.died is None]
        if awake:
            result: AttemptResult = await workflow.execute_activity(
                "collect_results",
                CollectInput(run_id=self.spec.id, devbox=awake[-1], attempt=st.attempt,
                             turn_ids=[f"t{i}" for i in range(1, st.turn_count + 1)],
                             base_commit=st.workspace.base_commit if st.workspace else None,
                             artifacts=self.spec.artifacts, workspace=st.workspace),
                result_type=AttemptResult, **self._on_host(awake[-1]),
                start_to_close_timeout=WORKSPACE_ACTIVITY, retry_policy=RETRY)
            st.attempts = [a for a in st.attempts if a.attempt != st.attempt] + [result]
        await workflow.execute_activity(
            "report_result",
            ReportInput(run_id=self.spec.id, spec=self.spec, status=status, summary=summary,
                        error=st.error, step_count=st.next_seq),
            start_to_close_timeout=SHORT_ACTIVITY,
            retry_policy=RETRY,
        )
        payload: dict[str, object] = {"status": status.value, "summary": summary,
                                      "attempt": st.attempt}
        current = [a for a in st.attempts if a.attempt == st.attempt]
        if current:
            payload["files"] = [f.model_dump() for f in current[0].files]
            payload["artifacts"] = current[0].artifacts
        if st.error:
            payload["error"] = st.error
        if outcome is not None and outcome.failed_index is not None:
            payload["failed_step"] = {"index": outcome.failed_index,
                                      "command": outcome.failed_command,
                                      "exit_code": outcome.exit_code}
        self._add_step(StepIn(kind="report_result", started_at=started, ended_at=workflow.now(),
                              payload=payload))
        live = any(d.removed_at is None and d.died is None for d in st.devboxes)
        self._set_status(status, finished=True)
        st.completed_once = st.completed_once or status == RunStatus.completed
        # A message that arrived while reporting still gets its follow-up turn. A failed
        # Run's DevBox is not kept: whatever broke it (or was done in it) goes with it.
        st.phase = "keep_alive" if live and st.inbox and status == RunStatus.completed \
            else "close"

    async def _keep_alive(self) -> None:
        """A finished Run with its DevBox: a message starts a new turn in it, a reject a new
        attempt, an accept runs in its handler. Entered when a message arrived while
        reporting, or as a reopened execution whose action comes as an Update-with-start."""
        st = self.state
        st.completed_once = True  # only a completed Run, or one reopened from it, gets here
        if not st.inbox and st.reject_with is None and not self._reviewed:
            try:
                await workflow.wait_condition(
                    lambda: bool(st.inbox) or st.reject_with is not None or self._reviewed,
                    timeout=RESUME_GRACE)
            except TimeoutError:
                pass
        # An accept in progress needs the workspace: the Run closes after it.
        await workflow.wait_condition(lambda: not self._reviewing)
        self._reviewed = False
        if st.reject_with is not None:
            await self._start_attempt(st.reject_with)
            return
        if not st.inbox:
            st.phase = "close"
            return
        await self._wake()
        st.keep_alive_until = None
        st.error = None
        st.completed_at = None
        self._set_status(RunStatus.in_progress)
        self._start_turn()

    async def _start_attempt(self, instructions: str) -> None:
        """reject: discard the workspace changes and try again (attempts are numbered)."""
        st = self.state
        st.reject_with = None
        st.phase = "turn"  # no review may start while the workspace is reset
        await self._wake()
        devbox = st.devboxes[-1]
        if st.workspace is not None:
            await workflow.execute_activity(
                "reset_workspace", ResetInput(run_id=self.spec.id, devbox=devbox,
                                              base_commit=st.workspace.base_commit),
                **self._on_host(devbox), start_to_close_timeout=WORKSPACE_ACTIVITY,
                retry_policy=RETRY)
        st.attempt += 1
        st.attempt_commands_base = st.commands_total
        # Earlier attempts keep their lists in the artifact store; the state stays small.
        for earlier in st.attempts:
            earlier.files = earlier.files[:20]
            earlier.artifacts = earlier.artifacts[:20]
        text = instructions or self.spec.instructions
        st.keep_alive_until = None
        st.error = None
        st.completed_at = None
        st.session_id = None
        st.final_text = None
        st.accepted = None
        if st.engine == "script":
            st.pending_commands = split_script(text)
        else:
            st.pending_prompt = [text + (("\n\n" + st.ticket.markdown()) if st.ticket else "")]
        self._add_step(StepIn(kind="message", started_at=workflow.now(), payload={
            "role": "system", "text": f"Attempt {st.attempt} started (previous one rejected)."}))
        self._set_status(RunStatus.in_progress)
        self._start_turn()

    # ------------------------------------------------------------------ timeline

    def _add_step(self, step: StepIn) -> None:
        st = self.state
        st.steps.append(Step(seq=st.next_seq, **step.model_dump()))
        st.next_seq += 1

    def _take_chunk(self) -> list[Step]:
        chunk: list[Step] = []
        size = 0
        for step in self.state.steps:
            if chunk and (len(chunk) >= CHUNK_STEPS or size >= CHUNK_BYTES):
                break
            chunk.append(step)
            size += len(step.model_dump_json())
        return chunk

    async def _archive_chunk(self) -> None:
        chunk = self._take_chunk()
        await workflow.execute_activity(
            "archive_steps", ArchiveInput(run_id=self.spec.id, steps=chunk),
            start_to_close_timeout=SHORT_ACTIVITY, retry_policy=RETRY,
        )
        st = self.state
        st.archived_upto = chunk[-1].seq
        st.steps = [s for s in st.steps if s.seq > st.archived_upto]

    async def _archive_loop(self) -> None:
        while True:
            await workflow.wait_condition(lambda: len(self.state.steps) > KEEP_LIVE_STEPS)
            self._archiving = True
            try:
                await self._archive_chunk()
            finally:
                self._archiving = False

    async def _archive_all(self, archiver: asyncio.Task[None]) -> None:
        """Stop the background archiver and archive every live step (before CAN or the end)."""
        await workflow.wait_condition(lambda: not self._archiving)
        archiver.cancel()
        while self.state.steps:
            await self._archive_chunk()

    # ------------------------------------------------------------------ status

    def _set_status(self, status: RunStatus, finished: bool = False) -> None:
        self.state.status = status
        if finished:
            self.state.completed_at = workflow.now()
        workflow.upsert_search_attributes([sa.STATUS.value_set(status.value)])

    # ------------------------------------------------------------------ messages

    @workflow.signal(name="add_steps")
    def add_steps(self, batch: StepBatch) -> None:
        st = self.state
        if batch.turn_id != st.turn_id or batch.cursor.lines < st.turn_cursor.lines:
            return
        for step in batch.steps:
            if step.line is None or step.line >= st.turn_cursor.lines:
                self._add_step(step)
        st.turn_cursor = batch.cursor
        st.running = batch.running

    @workflow.update(name="answer")
    def answer(self, body: AnswersIn) -> RunPublic:
        self._check_answers(body)
        st = self.state
        assert st.questions is not None
        st.received_answers = validate_answers(st.questions, body.answers)
        return self.details()

    @answer.validator
    def _validate_answer(self, body: AnswersIn) -> None:
        self._check_answers(body)

    def _check_answers(self, body: AnswersIn) -> None:
        st = self.state
        if st.phase != "waiting" or st.questions is None or st.received_answers is not None:
            raise ApplicationError(f"Run is not waiting for input (status {st.status.value})",
                                   type="NotWaiting")
        try:
            validate_answers(st.questions, body.answers)
        except AnswerError as e:
            raise ApplicationError(str(e), type="InvalidAnswer") from e

    @workflow.update(name="send_message")
    def send_message(self, body: MessageIn) -> RunPublic:
        self._check_message(body)
        self.state.inbox.append(InboxMessage(text=body.text, received_at=workflow.now()))
        return self.details()

    @send_message.validator
    def _validate_message(self, body: MessageIn) -> None:
        self._check_message(body)

    def _check_message(self, body: MessageIn) -> None:
        st = self.state
        if st.phase in ("close", "done") and st.keep_alive_until is not None:
            raise ApplicationError("the Run is closing; send again to reopen it", type="Closing")
        if st.phase in ("teardown", "done") or (st.status.finished and st.phase != "keep_alive"):
            raise ApplicationError(
                f"Run {self.spec.id} has finished and its DevBox is gone; continue in a new "
                f"Run from this one's spec and last workspace checkpoint with POST /runs "
                f"{{\"from_run\": \"{self.spec.id}\", \"instructions\": \"...\"}} "
                f"(ferry run --from-run {self.spec.id} \"...\")",
                type="DevBoxGone")

    @workflow.update(name="review")
    async def review(self, body: ReviewIn) -> RunPublic:
        """accept (commit, push, pull request), request_changes (a follow-up), reject (retry)."""
        self._check_review(body)
        st = self.state
        self._add_step(StepIn(kind="review", started_at=workflow.now(), payload={
            "action": body.action, "message": body.message, "attempt": st.attempt}))
        if body.action == "request_changes":
            st.inbox.append(InboxMessage(text=body.message or "Please revise your changes.",
                                         received_at=workflow.now()))
        elif body.action == "reject":
            st.reject_with = body.message or ""
        else:
            await self._accept(body.message)
        return self.details()

    async def _accept(self, message: str | None) -> None:
        st = self.state
        assert st.workspace is not None
        if st.accepted is not None and st.accepted_turns == st.turn_count:
            return  # accepting twice changes nothing
        self._reviewing = True
        try:
            devbox = st.devboxes[-1]
            lines = [st.title, "", st.summary or "", "", f"Ferry Run {self.spec.id}, "
                     f"attempt {st.attempt}."]
            if message:
                lines += ["", message]
            current = [a for a in st.attempts if a.attempt == st.attempt]
            result: AcceptResult = await workflow.execute_activity(
                "accept_changes",
                AcceptInput(run_id=self.spec.id, devbox=devbox, workspace=st.workspace,
                            message="\n".join(lines).strip() + "\n", ticket=st.ticket,
                            snapshot_commit=current[0].snapshot_commit if current else None,
                            previous_commit=st.accepted.commit if st.accepted else None,
                            pr_url=st.accepted.pr_url if st.accepted else None),
                result_type=AcceptResult, **self._on_host(devbox),
                start_to_close_timeout=SHORT_ACTIVITY,
                retry_policy=RetryPolicy(maximum_attempts=3,
                                         non_retryable_error_types=["WorkspaceError",
                                                                    "TicketError"]))
        except ActivityError as e:
            raise ApplicationError(f"accept failed: {_error_text(e)}", type="AcceptFailed") from e
        finally:
            self._reviewing = False
        st.accepted = result
        st.accepted_turns = st.turn_count
        self._reviewed = True
        self._add_step(StepIn(kind="review", started_at=workflow.now(), payload={
            "action": "accepted", **result.model_dump()}))

    @review.validator
    def _validate_review(self, body: ReviewIn) -> None:
        self._check_review(body)

    def _check_review(self, body: ReviewIn) -> None:
        st = self.state
        if st.phase in ("close", "done") and st.keep_alive_until is not None:
            raise ApplicationError("the Run is closing; review again to reopen it",
                                   type="Closing")
        if st.phase != "keep_alive" or st.reject_with is not None or st.inbox:
            raise ApplicationError(
                f"Run {self.spec.id} cannot be reviewed now (status {st.status.value}): review a "
                "finished Run while its DevBox is kept alive", type="NotReviewable")
        if body.action == "accept" and st.workspace is None:
            raise ApplicationError("nothing to accept: this Run has no repository",
                                   type="NotReviewable")
        if self._reviewing:
            raise ApplicationError("an accept is already in progress", type="NotReviewable")

    @workflow.update(name="rename")
    def rename(self, body: RunRename) -> RunPublic:
        self.state.title = body.title
        workflow.upsert_search_attributes([sa.TITLE.value_set(body.title)])
        return self.details()

    @workflow.query(name="details")
    def details(self) -> RunPublic:
        st, spec = self.state, self.spec
        end = st.completed_at or workflow.now()
        duration = (end - st.started_at).total_seconds() if st.started_at else None
        return RunPublic(
            id=spec.id, title=st.title, status=st.status, engine=spec.engine, mode=spec.mode,
            target=st.target, image=st.image, instructions=spec.instructions,
            created_at=st.created_at, started_at=st.started_at, completed_at=st.completed_at,
            duration_seconds=duration, devboxes=st.devboxes, summary=st.summary, error=st.error,
            running=st.running, step_count=st.next_seq - 1,
            temporal_workflow_id=workflow.info().workflow_id,
            questions=st.questions if st.phase == "waiting" else None,
            waiting_since=st.asked_at if st.phase == "waiting" else None,
            queued_messages=len(st.inbox), keep_alive_until=st.keep_alive_until,
            from_run=spec.from_run, keep_alive_seconds=spec.keep_alive.total_seconds(),
            idle_timeout_seconds=spec.idle_timeout.total_seconds(),
            question_timeout_seconds=spec.question_timeout.total_seconds(),
            repo=spec.repo, branch=spec.branch, ticket_url=spec.ticket_url,
            ticket_title=st.ticket.title if st.ticket else None, workspace=st.workspace,
            schedule_id=workflow.info().typed_search_attributes.get(sa.SCHEDULE),
            trigger=workflow.info().typed_search_attributes.get(sa.TRIGGER),
            attempt=st.attempt, attempts=st.attempts, accepted=st.accepted,
            on_timeout=spec.on_timeout, engine_used=st.engine, model=spec.model,
            effort=spec.effort, session_id=st.session_id, usage=st.usage,
            turn_usage=st.turn_usage, run_as_root=spec.run_as_root, env=spec.env,
            network=st.devboxes[-1].network if st.devboxes else spec.network,
            artifacts=spec.artifacts,
            budgets={k: v for k, v in {
                "max_turns": spec.max_turns, "max_cost_usd": spec.max_cost_usd,
                "max_duration_seconds": spec.max_duration.total_seconds() if spec.max_duration
                else None,
                "turn_timeout_seconds": spec.turn_timeout.total_seconds() if spec.turn_timeout
                else None, "engine_max_turns": spec.engine_max_turns}.items() if v is not None},
        )

    @workflow.query(name="tail")
    def tail(self, after: int) -> TimelineTail:
        st = self.state
        return TimelineTail(steps=[s for s in st.steps if s.seq > after],
                            archived_upto=st.archived_upto, status=st.status,
                            next_seq=st.next_seq)
