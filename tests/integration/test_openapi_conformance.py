"""Schemathesis against the real API's own `/openapi.json`: no 5xx, and no status code the
schema does not declare. Operations that would start Runs are left out (POST /runs, a
schedule's trigger, webhooks); what the others create (schedules, triggers) is removed
with the test's own stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.integration.harness import FerryStack

# Each of these can start a Run: a new Run, a schedule (created, resumed or triggered),
# a webhook delivery.
EXCLUDED = [f"--exclude-operation-id={op}" for op in (
    "create_run_runs_post", "create_schedule_schedules_post",
    "unpause_schedule_schedules__schedule_id__unpause_post",
    "trigger_schedule_schedules__schedule_id__trigger_post", "hook_hooks__name__post")]


def test_every_operation_answers_only_what_it_documents(tmp_path: Path, docker_client) -> None:
    stack = FerryStack(tmp_path / "data")
    try:
        stack.start()
        st = Path(sys.executable).parent / "schemathesis"
        proc = subprocess.run(
            [str(st), "run", f"{stack.api_url}/openapi.json",
             "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                         "response_schema_conformance",
             "--max-examples", "8", "--seed", "1", "--generation-deterministic",
             "--request-timeout", "20", "--phases", "examples,coverage,fuzzing",
             "--no-color", *EXCLUDED],
            capture_output=True, text=True, timeout=900, cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout[-12000:] + proc.stderr[-3000:]
    finally:
        stack.stop()
