"""RunWorkflow: the durable life of one Run, from DevBox launch to result and teardown.

Deterministic code only: every side effect is an activity. Steps stream in as
`add_steps` signals from the turn activity; older steps are archived to the artifact
store so the workflow keeps only a live tail, and history is kept small by
continuing-as-new between turn slices when Temporal suggests it.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    FailureError,
    is_cancelled_exception,
)

with workflow.unsafe.imports_passed_through():
    from activities.engines.script import summarize
    from ferry import search_attributes as sa
    from ferry.schemas import (
        ArchiveInput,
        DevBoxInfo,
        FollowTurnInput,
        FollowTurnResult,
        LaunchInput,
        ReportInput,
        RunPublic,
        RunRename,
        RunState,
        RunStatus,
        RunWorkflowInput,
        Step,
        StepBatch,
        StepIn,
        TimelineTail,
    )
    from ferry.settings import host_queue

# Steps kept in workflow memory before the oldest are archived, and chunk bounds.
KEEP_LIVE_STEPS = 300
CHUNK_STEPS = 100
CHUNK_BYTES = 120_000

LAUNCH_TIMEOUT = timedelta(minutes=10)
TURN_HEARTBEAT = timedelta(seconds=10)
SHORT_ACTIVITY = timedelta(minutes=2)
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10),
                    maximum_attempts=20, non_retryable_error_types=["DevBoxError"])


def _error_text(err: BaseException) -> str:
    """The message an activity failed with (not the generic "activity error" wrapper)."""
    while isinstance(err, ActivityError) and err.cause is not None:
        err = err.cause
    return str(err.message if isinstance(err, FailureError) else err) or type(err).__name__


@workflow.defn(name="RunWorkflow")
class RunWorkflow:
    @workflow.init
    def __init__(self, inp: RunWorkflowInput) -> None:
        self.spec = inp.spec
        self.state = inp.state or RunState(title=inp.spec.title)
        self._archiving = False

    # ------------------------------------------------------------------ run

    @workflow.run
    async def run(self, inp: RunWorkflowInput) -> RunPublic:
        st = self.state
        if st.created_at is None:
            st.created_at = workflow.now()
            self._add_step(StepIn(kind="message", started_at=workflow.now(),
                                  payload={"role": "user", "text": self.spec.instructions}))
        archiver = asyncio.create_task(self._archive_loop())
        try:
            if st.phase == "launch":
                await self._launch()
            while st.phase == "turn":
                await self._follow_turn_slice()
                if st.phase == "turn" and workflow.info().is_continue_as_new_suggested():
                    await self._archive_all(archiver)
                    await workflow.wait_condition(workflow.all_handlers_finished)
                    workflow.continue_as_new(RunWorkflowInput(spec=self.spec, state=st))
            if st.phase == "report":
                await self._report()
        except (asyncio.CancelledError, ActivityError) as e:
            if not is_cancelled_exception(e):
                assert isinstance(e, ActivityError)
                st.error = _error_text(e)
                st.running = None
                await self._report(failed_with=st.error)
                return await self._finish(archiver)
            st.running = None
            self._add_step(StepIn(kind="message", started_at=workflow.now(),
                                  payload={"role": "system", "text": "Run cancelled by request."}))
            await self._teardown()
            self._set_status(RunStatus.cancelled, finished=True)
            await self._archive_all(archiver)
            raise
        return await self._finish(archiver)

    async def _finish(self, archiver: asyncio.Task[None]) -> RunPublic:
        st = self.state
        await self._teardown()
        self._set_status(RunStatus.failed if st.error else RunStatus.completed, finished=True)
        await self._archive_all(archiver)
        if st.error:
            raise ApplicationError(st.error, type="RunFailed", non_retryable=True)
        return self.details()

    async def _launch(self) -> None:
        st = self.state
        queue = host_queue(self.spec.target) if self.spec.target else workflow.info().task_queue
        started = workflow.now()
        launch = workflow.start_activity(
            "launch_devbox",
            LaunchInput(run_id=self.spec.id, image=self.spec.image),
            result_type=DevBoxInfo,
            task_queue=queue,
            start_to_close_timeout=LAUNCH_TIMEOUT,
            retry_policy=RetryPolicy(maximum_attempts=3, non_retryable_error_types=["DevBoxError"]),
        )
        try:
            devbox: DevBoxInfo = await asyncio.shield(launch)
        except asyncio.CancelledError:
            # Cancelled mid-launch: let the launch finish so teardown knows what to remove.
            st.devboxes.append(await launch)
            raise
        st.devboxes.append(devbox)
        self._add_step(StepIn(kind="launch_devbox", started_at=started, ended_at=workflow.now(),
                              payload={"backend": devbox.backend, "host": devbox.host,
                                       "name": devbox.name, "image": devbox.image,
                                       "container_id": devbox.container_id,
                                       "workspace": devbox.workspace}))
        st.started_at = workflow.now()
        self._set_status(RunStatus.in_progress)
        st.turn_count += 1
        st.turn_id = f"t{st.turn_count}"
        st.phase = "turn"

    async def _follow_turn_slice(self) -> None:
        st = self.state
        assert st.turn_id is not None
        devbox = st.devboxes[-1]
        res: FollowTurnResult = await workflow.execute_activity(
            "follow_turn",
            FollowTurnInput(run_id=self.spec.id, turn_id=st.turn_id, engine=self.spec.engine,
                            # Only the first slice writes the turn spec; later ones re-attach.
                            instructions=self.spec.instructions if st.turn_cursor.lines == 0 else "",
                            devbox=devbox,
                            cursor=st.turn_cursor),
            result_type=FollowTurnResult,
            task_queue=devbox.task_queue,
            start_to_close_timeout=timedelta(hours=2),
            heartbeat_timeout=TURN_HEARTBEAT,
            retry_policy=RETRY,
        )
        # Signals sent before the activity returned are applied first; wait for them anyway.
        await workflow.wait_condition(lambda: st.turn_cursor.lines >= res.cursor.lines)
        if res.outcome is not None:
            st.turn_outcome = res.outcome
            st.running = None
            st.phase = "report"

    async def _report(self, failed_with: str | None = None) -> None:
        st = self.state
        outcome = st.turn_outcome
        if failed_with is not None:
            summary = f"The Run failed: {failed_with}"
        elif outcome is not None and outcome.ok:
            summary = summarize(outcome.commands_run, True, None, None)
        else:
            assert outcome is not None
            st.error = outcome.error or "the turn failed"
            summary = (summarize(outcome.commands_run, False, outcome.failed_command,
                                 outcome.exit_code)
                       if outcome.failed_command else f"The Run failed: {st.error}")
        st.summary = summary
        status = RunStatus.failed if st.error else RunStatus.completed
        started = workflow.now()
        await workflow.execute_activity(
            "report_result",
            ReportInput(run_id=self.spec.id, spec=self.spec, status=status, summary=summary,
                        error=st.error, step_count=st.next_seq),
            start_to_close_timeout=SHORT_ACTIVITY,
            retry_policy=RETRY,
        )
        payload: dict[str, object] = {"status": status.value, "summary": summary}
        if st.error:
            payload["error"] = st.error
        if outcome is not None and outcome.failed_index is not None:
            payload["failed_step"] = {"index": outcome.failed_index,
                                      "command": outcome.failed_command,
                                      "exit_code": outcome.exit_code}
        self._add_step(StepIn(kind="report_result", started_at=started, ended_at=workflow.now(),
                              payload=payload))
        st.phase = "teardown"

    async def _teardown(self) -> None:
        st = self.state
        for devbox in st.devboxes:
            if devbox.removed_at is None:
                await workflow.execute_activity(
                    "teardown_devbox", devbox, task_queue=devbox.task_queue,
                    start_to_close_timeout=SHORT_ACTIVITY, retry_policy=RETRY,
                )
                devbox.removed_at = workflow.now()
        st.phase = "done"

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
            target=spec.target, image=spec.image, instructions=spec.instructions,
            created_at=st.created_at, started_at=st.started_at, completed_at=st.completed_at,
            duration_seconds=duration, devboxes=st.devboxes, summary=st.summary, error=st.error,
            running=st.running, step_count=st.next_seq - 1,
            temporal_workflow_id=workflow.info().workflow_id,
        )

    @workflow.query(name="tail")
    def tail(self, after: int) -> TimelineTail:
        st = self.state
        return TimelineTail(steps=[s for s in st.steps if s.seq > after],
                            archived_upto=st.archived_upto, status=st.status,
                            next_seq=st.next_seq)
