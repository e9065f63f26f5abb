"""Questions: the target question before launch, pausing for answers (hibernating an idle
DevBox, saving its work first), timeouts and defaults."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import (
    ApplicationError,
)

with workflow.unsafe.imports_passed_through():
    from activities.devbox_lifecycle import DevBoxActivities
    from activities.targets import TargetActivities
    from activities.workspace.activities import WorkspaceActivities
    from ferry.models.activity_io import CollectInput, DevBoxAction
    from ferry.models.common import RunStatus
    from ferry.models.hosts import Target
    from ferry.models.steps import StepIn
    from ferry.questions import (
        AnswerError,
        AnswersIn,
        Question,
        QuestionSet,
        default_answers,
        validate_answers,
    )

from workflows.run.base import RunBase
from workflows.run.options import (
    RETRY,
    SHORT_ACTIVITY,
    WORKSPACE_ACTIVITY,
)
from workflows.run.patches import CHECKPOINT_BEFORE_HIBERNATE, LIST_TARGETS_LOCAL

TARGET_QUESTION_ID = "target"


def _target_label(t: Target) -> str:
    return f"{t.host} ({t.default_image or t.backend})"


class QuestionsMixin(RunBase):
    async def _choose_target(self) -> None:
        """Interactive Runs with no target pinned ask which one when several are up."""
        st = self.state
        st.phase = "launch"
        if st.target is not None or self.spec.mode != "interactive" or self.spec.any_host:
            return
        if workflow.patched(LIST_TARGETS_LOCAL):
            # A local activity: no round trip through a task queue before the launch.
            st.targets = await workflow.execute_local_activity_method(
                TargetActivities.list_targets, start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RETRY)
        else:  # Runs started before 2026-11-22
            st.targets = await workflow.execute_activity_method(
                TargetActivities.list_targets, start_to_close_timeout=SHORT_ACTIVITY,
                retry_policy=RETRY)
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
                    note = await workflow.execute_activity_method(
                        WorkspaceActivities.checkpoint_workspace,
                        CollectInput(run_id=self.spec.id, devbox=devbox, attempt=st.attempt,
                                     base_commit=st.workspace.base_commit, workspace=st.workspace),
                        **self._on_host(devbox),
                        start_to_close_timeout=WORKSPACE_ACTIVITY, retry_policy=RETRY)
                    if isinstance(note, str) and note:
                        self._add_step(StepIn(kind="message", started_at=workflow.now(),
                                              payload={"role": "system", "text": note}))
                await workflow.execute_activity_method(
                    DevBoxActivities.hibernate_devbox, DevBoxAction(devbox=devbox), **self._on_host(devbox),
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
            await workflow.execute_activity_method(
                DevBoxActivities.wake_devbox, DevBoxAction(devbox=devbox), **self._on_host(devbox),
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

    def _check_answers(self, body: AnswersIn) -> None:
        st = self.state
        if st.phase != "waiting" or st.questions is None or st.received_answers is not None:
            raise ApplicationError(f"Run is not waiting for input (status {st.status.value})",
                                   type="NotWaiting")
        try:
            validate_answers(st.questions, body.answers)
        except AnswerError as e:
            raise ApplicationError(str(e), type="InvalidAnswer") from e
