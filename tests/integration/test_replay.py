"""RunWorkflow is deterministic: real histories replay without nondeterminism errors."""

from __future__ import annotations

import asyncio

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.integration.harness import FerryStack
from workflows.run.workflow import RunWorkflow


async def _replay(address: str, workflow_ids: list[str]) -> int:
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    replayer = Replayer(workflows=[RunWorkflow], data_converter=pydantic_data_converter)
    replayed = 0
    for wf_id in workflow_ids:
        async for wf in client.list_workflows(f"WorkflowId = '{wf_id}'"):
            history = await client.get_workflow_handle(wf_id, run_id=wf.run_id).fetch_history()
            await replayer.replay_workflow(history)
            replayed += 1
    return replayed


def test_histories_replay(stack: FerryStack) -> None:
    ok = stack.create_run("echo a\necho b")
    bad = stack.create_run("false")
    cancelled = stack.create_run("sleep 30")
    stack.wait_status(ok["id"], {"completed"})
    stack.wait_status(bad["id"], {"failed"})
    stack.wait_until(lambda: stack.get_run(cancelled["id"]).get("running") is not None, 20, "start")
    with stack.client() as c:
        c.post(f"/runs/{cancelled['id']}/cancel")
    stack.wait_status(cancelled["id"], {"cancelled"})
    ids = [f"run-{r['id']}" for r in (ok, bad, cancelled)]
    assert asyncio.run(_replay(stack.settings.effective_temporal_address, ids)) >= 3
