"""TargetsWorkflow: the registry of worker hosts (targets), kept alive by worker heartbeats.

Each worker signals `seen` every few seconds with its host, queue and images. The API
and RunWorkflow (through the `list_targets` activity) read it with the `targets` query
and judge health by how recently a host was seen. One long-lived workflow, `ferry-targets`,
continuing-as-new to keep its history short.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from ferry.models.hosts import Target, TargetsInput

SIGNALS_PER_RUN = 500


@workflow.defn(name="TargetsWorkflow")
class TargetsWorkflow:
    @workflow.init
    def __init__(self, inp: TargetsInput) -> None:
        self._targets = {t.host: t for t in inp.targets}
        self._signals = 0

    @workflow.run
    async def run(self, inp: TargetsInput) -> None:
        await workflow.wait_condition(
            lambda: self._signals >= SIGNALS_PER_RUN or workflow.info().is_continue_as_new_suggested()
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(TargetsInput(targets=list(self._targets.values())))

    @workflow.signal(name="seen")
    def seen(self, target: Target) -> None:
        self._targets[target.host] = target
        self._signals += 1

    @workflow.query(name="targets")
    def targets(self) -> list[Target]:
        return sorted(self._targets.values(), key=lambda t: t.host)
