"""DevBoxKeeper: keeps a closed Run's DevBoxes for follow-ups, then removes them.

A Run's own workflow closes when the Run ends (Completed / Failed / Canceled, as Ferry
shows it) and hands its live DevBoxes to a keeper, `devbox-<run id>`. The keeper waits
out the keep-alive window, then removes them. A follow-up or review `claim`s them first
(the keeper closes and a new execution of `run-<run id>` owns them again); `release`
removes them at once. Removal never waits on a host that is gone for longer than the
Run's `host_lost_after`: the host's reaper removes what is left when it comes back.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.devbox_lifecycle import DevBoxActivities
    from activities.reporting import ReportActivities
    from ferry.models.common import KEEPER_CLAIMED
    from ferry.models.state import DevBoxesRemoved, KeeperClaim, KeeperInput

TEARDOWN = timedelta(minutes=2)


@workflow.defn(name="DevBoxKeeper")
class DevBoxKeeper:
    @workflow.init
    def __init__(self, inp: KeeperInput) -> None:
        self.inp = inp
        self.claimed = False
        self.released = False
        self.removing = False

    @workflow.run
    async def run(self, inp: KeeperInput) -> str:
        wait = (inp.until - workflow.now()).total_seconds()
        if wait > 0:
            try:
                await workflow.wait_condition(lambda: self.claimed or self.released,
                                              timeout=timedelta(seconds=wait))
            except TimeoutError:
                pass
        if self.claimed:
            await workflow.wait_condition(workflow.all_handlers_finished)
            return KEEPER_CLAIMED
        self.removing = True
        gone: list[str] = []
        for devbox in inp.devboxes:
            try:
                await workflow.execute_activity_method(
                    DevBoxActivities.teardown_devbox, devbox, task_queue=devbox.task_queue,
                    start_to_close_timeout=TEARDOWN,
                    schedule_to_start_timeout=inp.host_lost_after,
                    retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10),
                                             maximum_attempts=10))
            except ActivityError:
                gone.append(devbox.host)
        note = (f"host {', '.join(sorted(set(gone)))} did not remove the DevBox; its reaper "
                "removes it when the host is back") if gone else None
        await workflow.execute_activity_method(
            ReportActivities.mark_devboxes_removed,
            DevBoxesRemoved(run_id=inp.run_id, removed_at=workflow.now(), note=note),
            start_to_close_timeout=TEARDOWN,
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)))
        await workflow.wait_condition(workflow.all_handlers_finished)
        return note or ("released" if self.released else "keep-alive window ended")

    def _check_open(self) -> None:
        if self.claimed or self.released or self.removing:
            raise ApplicationError(f"the DevBox of Run {self.inp.run_id} is no longer kept",
                                   type="DevBoxGone")

    @workflow.update(name="claim")
    def claim(self) -> KeeperClaim:
        self._check_open()
        self.claimed = True
        return KeeperClaim(devboxes=self.inp.devboxes)

    @claim.validator
    def _validate_claim(self) -> None:
        self._check_open()

    @workflow.update(name="release")
    def release(self) -> None:
        self._check_open()
        self.released = True

    @release.validator
    def _validate_release(self) -> None:
        self._check_open()

    @workflow.query(name="claimed")
    def was_claimed(self) -> bool:
        return self.claimed

    @workflow.query(name="until")
    def until(self) -> str:
        return self.inp.until.isoformat()
