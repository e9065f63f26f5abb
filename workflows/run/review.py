"""After the work: keep-alive follow-ups, review (accept, request changes, reject and
retry) and what may be sent when."""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
)

with workflow.unsafe.imports_passed_through():
    from activities.workspace.activities import WorkspaceActivities
    from ferry.models.activity_io import AcceptInput, ResetInput
    from ferry.models.api import MessageIn, ReviewIn
    from ferry.models.common import RunStatus
    from ferry.models.results import AcceptResult
    from ferry.models.steps import StepIn
    from ferry.script_commands import split_script

from workflows.run.base import RunBase
from workflows.run.errors import error_text
from workflows.run.options import (
    RESUME_GRACE,
    RETRY,
    SHORT_ACTIVITY,
    WORKSPACE_ACTIVITY,
)


class ReviewMixin(RunBase):
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
            await workflow.execute_activity_method(
                WorkspaceActivities.reset_workspace, ResetInput(run_id=self.spec.id, devbox=devbox,
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
            result: AcceptResult = await workflow.execute_activity_method(
                WorkspaceActivities.accept_changes,
                AcceptInput(run_id=self.spec.id, devbox=devbox, workspace=st.workspace,
                            message="\n".join(lines).strip() + "\n", ticket=st.ticket,
                            snapshot_commit=current[0].snapshot_commit if current else None,
                            previous_commit=st.accepted.commit if st.accepted else None,
                            pr_url=st.accepted.pr_url if st.accepted else None),
                **self._on_host(devbox),
                start_to_close_timeout=SHORT_ACTIVITY,
                retry_policy=RetryPolicy(maximum_attempts=3,
                                         non_retryable_error_types=["WorkspaceError",
                                                                    "TicketError"]))
        except ActivityError as e:
            raise ApplicationError(f"accept failed: {error_text(e)}", type="AcceptFailed") from e
        finally:
            self._reviewing = False
        st.accepted = result
        st.accepted_turns = st.turn_count
        self._reviewed = True
        self._add_step(StepIn(kind="review", started_at=workflow.now(), payload={
            "action": "accepted", **result.model_dump()}))

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

    def _check_message(self, body: MessageIn) -> None:
        st = self.state
        if st.phase in ("close", "done") and st.keep_alive_until is not None:
            raise ApplicationError("the Run is closing; send again to reopen it", type="Closing")
        if st.phase in ("teardown", "done") or (st.status.finished and st.phase != "keep_alive"):
            raise ApplicationError(
                f"Run {self.spec.id} has finished and its DevBox is gone; continue in a new "
                f"Run from this one's spec"
                f"{' and last workspace checkpoint' if st.workspace else ''} with POST /runs "
                f"{{\"from_run\": \"{self.spec.id}\", \"instructions\": \"...\"}} "
                f"(ferry run --from-run {self.spec.id} \"...\")",
                type="DevBoxGone")
