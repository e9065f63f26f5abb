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

from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    is_cancelled_exception,
)

with workflow.unsafe.imports_passed_through():
    from ferry import search_attributes as sa
    from ferry.models.api import MessageIn, ReviewIn, RunPublic, RunRename, TimelineTail
    from ferry.models.common import RunStatus
    from ferry.models.state import InboxMessage, RunState, RunWorkflowInput
    from ferry.models.steps import StepBatch, StepIn
    from ferry.questions import (
        AnswersIn,
        validate_answers,
    )
    from ferry.script_commands import split_script

from workflows.run import metrics
from workflows.run.errors import error_text, host_gone
from workflows.run.lifecycle import LifecycleMixin
from workflows.run.projection import public_view
from workflows.run.questions import QuestionsMixin
from workflows.run.review import ReviewMixin
from workflows.run.timeline import TimelineMixin
from workflows.run.turns import TurnsMixin


@workflow.defn(name="RunWorkflow")
class RunWorkflow(LifecycleMixin, TurnsMixin, QuestionsMixin, ReviewMixin, TimelineMixin):
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
        self._turn_started = None

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
            metrics.runs_started(self.spec.engine, self.spec.mode)
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
                st.error = error_text(e, st.target)
                st.running = None
                if host_gone(e):  # nothing more can be read from, or done on, that host
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

    @workflow.update(name="send_message")
    def send_message(self, body: MessageIn) -> RunPublic:
        self._check_message(body)
        self.state.inbox.append(InboxMessage(text=body.text, received_at=workflow.now()))
        return self.details()

    @send_message.validator
    def _validate_message(self, body: MessageIn) -> None:
        self._check_message(body)

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

    @review.validator
    def _validate_review(self, body: ReviewIn) -> None:
        self._check_review(body)

    @workflow.update(name="rename")
    def rename(self, body: RunRename) -> RunPublic:
        self.state.title = body.title
        workflow.upsert_search_attributes([sa.TITLE.value_set(body.title)])
        return self.details()

    @workflow.query(name="details")
    def details(self) -> RunPublic:
        return public_view(self.spec, self.state)

    @workflow.query(name="tail")
    def tail(self, after: int) -> TimelineTail:
        st = self.state
        return TimelineTail(steps=[s for s in st.steps if s.seq > after],
                            archived_upto=st.archived_upto, status=st.status,
                            next_seq=st.next_seq)
