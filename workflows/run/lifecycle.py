"""The Run's way through its DevBox: ticket, launch and workspace, report, and closing
(final record, keeper)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.devbox_lifecycle import DevBoxActivities
    from activities.reporting import ReportActivities
    from activities.tickets import TicketActivities
    from activities.workspace.activities import WorkspaceActivities
    from ferry import search_attributes as sa
    from ferry.models.activity_io import CollectInput, LaunchInput, PrepareInput, ReportInput
    from ferry.models.common import RunStatus, keeper_id_for
    from ferry.models.hosts import DevBoxInfo
    from ferry.models.results import AttemptResult, WorkspaceInfo
    from ferry.models.state import KeeperInput, RunRecord, RunWorkflowInput
    from ferry.models.steps import StepIn
    from ferry.script_commands import summarize
    from ferry.settings import host_queue
    from ferry.tickets import Ticket, parse_ticket_url
    from workflows.devbox_keeper import DevBoxKeeper

from workflows.run import metrics
from workflows.run.base import RunBase
from workflows.run.options import (
    LAUNCH_TIMEOUT,
    RETRY,
    SHORT_ACTIVITY,
    WORKSPACE_ACTIVITY,
)


class LifecycleMixin(RunBase):
    async def _resolve(self) -> None:
        """A ticket URL becomes context: title, body, comments, and maybe the repository."""
        st = self.state
        st.phase = "choose_target"
        if not self.spec.ticket_url:
            return
        started = workflow.now()
        ticket: Ticket = await workflow.execute_activity_method(
            TicketActivities.resolve_ticket, parse_ticket_url(self.spec.ticket_url),
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

    async def _launch(self) -> None:
        st = self.state
        queue = host_queue(st.target) if st.target else workflow.info().task_queue
        started = workflow.now()
        launch = workflow.start_activity_method(
            DevBoxActivities.launch_devbox,
            LaunchInput(run_id=self.spec.id, image=st.image, run_as_root=self.spec.run_as_root,
                        network=self.spec.network),
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
            ws: WorkspaceInfo | None = await workflow.execute_activity_method(
                WorkspaceActivities.prepare_workspace,
                PrepareInput(run_id=self.spec.id, devbox=devbox, repo=self.spec.repo,
                             branch=self.spec.branch, ticket=st.ticket,
                             restore_from=self.spec.restore_from),
                **self._on_host(devbox),
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
            result: AttemptResult = await workflow.execute_activity_method(
                WorkspaceActivities.collect_results,
                CollectInput(run_id=self.spec.id, devbox=awake[-1], attempt=st.attempt,
                             turn_ids=[f"t{i}" for i in range(1, st.turn_count + 1)],
                             base_commit=st.workspace.base_commit if st.workspace else None,
                             artifacts=self.spec.artifacts, workspace=st.workspace),
                **self._on_host(awake[-1]),
                start_to_close_timeout=WORKSPACE_ACTIVITY, retry_policy=RETRY)
            st.attempts = [a for a in st.attempts if a.attempt != st.attempt] + [result]
        await workflow.execute_activity_method(
            ReportActivities.report_result,
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
        metrics.runs_finished(st.status.value, st.engine or self.spec.engine)
        record = RunRecord(run=self.details(), input=RunWorkflowInput(spec=self.spec, state=st),
                           execution=workflow.info().run_id)
        await workflow.execute_activity_method(ReportActivities.write_run_record, record,
                                        start_to_close_timeout=SHORT_ACTIVITY, retry_policy=RETRY)
        if live:
            await workflow.start_child_workflow(
                DevBoxKeeper.run,
                KeeperInput(run_id=self.spec.id, devboxes=live, until=until,
                            host_lost_after=self.spec.host_lost_after),
                id=keeper_id_for(self.spec.id), task_queue=workflow.info().task_queue,
                parent_close_policy=workflow.ParentClosePolicy.ABANDON)

    def _on_host(self, devbox: DevBoxInfo | None = None) -> dict[str, Any]:
        """Options of an activity bound to a DevBox's host: it fails, rather than waits
        forever, when nothing polls that host's queue for `host_lost_after`."""
        queue = devbox.task_queue if devbox else host_queue(self.state.target or "")
        return {"task_queue": queue, "schedule_to_start_timeout": self.spec.host_lost_after}
