"""Record the histories of representative Runs into tests/histories/vN/*.json.

    .venv/bin/python -m tests.histories.record v4

Each recording goes to a directory of its own, next to the older ones, which stay: a
patched workflow must keep replaying what older code wrote.

Starts a stack of its own (real dev server, worker, API, Docker), runs each kind of Run to
its end, and writes every execution of its workflows (the Run's, its continue-as-new and
reopened executions, its DevBoxKeeper's). Run it when a workflow change is meant to be
compatible and new kinds of history should be guarded too; never to "fix" a failing replay.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from tests.integration.harness import FerryStack
from tests.integration.test_repos_review import make_origin

HERE = Path(__file__).resolve().parent
# Low, so the long Run below really continues-as-new (more than once) in a small history.
FLAGS = ["--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=40"]


def _scenarios(stack: FerryStack) -> dict[str, str]:
    """name -> Run id, each Run driven to its end."""
    runs: dict[str, str] = {}
    script = stack.create_run("echo one\necho two > out.txt", keep_alive="0s")
    runs["script"] = script["id"]
    failed = stack.create_run("echo fine\nfalse", keep_alive="0s")
    runs["failed"] = failed["id"]
    ask = stack.create_run('ferry-ask "Pick one" --id pick --options red,blue\necho "$?"',
                           keep_alive="0s")
    runs["questions"] = ask["id"]
    stack.wait_status(ask["id"], {"waiting_for_input"})
    with stack.client() as c:
        c.post(f"/runs/{ask['id']}/answers", json={"answers": {"pick": "blue"}})
    follow = stack.create_run("export N=1\necho first", keep_alive="10s")
    runs["follow_up"] = follow["id"]
    stack.wait_status(follow["id"], {"completed"})
    with stack.client() as c:
        c.post(f"/runs/{follow['id']}/messages", json={"text": "echo $N"})
    stack.wait_until(lambda: len([s for s in stack.timeline(follow["id"])
                                  if s["kind"] == "report_result"]) == 2, 60, "follow-up")
    review = stack.create_run("echo attempt", keep_alive="20s")
    runs["review"] = review["id"]
    stack.wait_status(review["id"], {"completed"})
    with stack.client() as c:
        c.post(f"/runs/{review['id']}/review", json={"action": "reject", "message": "echo again"})
    stack.wait_until(lambda: stack.get_run(review["id"])["attempt"] == 2
                     and stack.get_run(review["id"])["status"] == "completed", 60, "attempt 2")
    with stack.client() as c:
        c.post(f"/runs/{review['id']}/review", json={"action": "request_changes",
                                                     "message": "echo changed"})
    stack.wait_until(lambda: len([s for s in stack.timeline(review["id"])
                                  if s["kind"] == "report_result"]) == 3, 60, "changes")
    with stack.client() as c:
        c.delete(f"/runs/{review['id']}/devbox")
    long = stack.create_run("\n".join(f"echo line {i}; sleep 0.05" for i in range(150)),
                            keep_alive="0s")
    runs["continue_as_new"] = long["id"]
    cancelled = stack.create_run("sleep 60", keep_alive="0s")
    runs["cancelled"] = cancelled["id"]
    stack.wait_until(lambda: stack.get_run(cancelled["id"]).get("running") is not None, 30,
                     "sleep to start")
    with stack.client() as c:
        c.post(f"/runs/{cancelled['id']}/cancel")
    # v3: a cancelled follow-up stops its turn and keeps the DevBox (released below).
    kept = stack.create_run("echo kept", keep_alive="30s")
    runs["cancelled_follow_up"] = kept["id"]
    stack.wait_status(kept["id"], {"completed"})
    with stack.client() as c:
        c.post(f"/runs/{kept['id']}/messages", json={"text": "sleep 60"})
    stack.wait_until(lambda: (stack.get_run(kept["id"]).get("running") or {}).get("command")
                     == "sleep 60", 30, "the follow-up to start")
    with stack.client() as c:
        c.post(f"/runs/{kept['id']}/cancel")
    stack.wait_status(kept["id"], {"cancelled"})
    with stack.client() as c:
        c.delete(f"/runs/{kept['id']}/devbox")
    # v4: a pause long enough to hibernate saves a checkpoint of the repository first.
    origin = make_origin(Path(tempfile.mkdtemp(prefix="ferry-record-")))
    paused = stack.create_run('echo work > w.txt\nferry-ask "Go on?" --id go --options yes,no',
                              repo=str(origin), idle_timeout="1s", keep_alive="0s")
    runs["hibernated_checkpoint"] = paused["id"]
    stack.wait_until(lambda: any(s["kind"] == "message" and "hibernated" in s["payload"]["text"]
                                 for s in stack.timeline(paused["id"])), 60, "hibernation")
    with stack.client() as c:
        c.post(f"/runs/{paused['id']}/answers", json={"answers": {"go": "yes"}})
    for run_id in runs.values():
        stack.wait_status(run_id, {"completed", "failed", "cancelled"}, timeout=120)
    # The keepers end too (keep-alive 0 s, or released).
    stack.wait_until(lambda: all(d["removed_at"] for r in runs.values()
                                 for d in stack.get_run(r)["devboxes"]), 60, "keepers")
    return runs


async def _save(address: str, runs: dict[str, str], out: Path) -> None:
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    for name, run_id in runs.items():
        executions = []
        for wf_id in (f"run-{run_id}", f"devbox-{run_id}"):
            async for wf in client.list_workflows(f"WorkflowId = '{wf_id}'"):
                history = await client.get_workflow_handle(wf_id, run_id=wf.run_id) \
                    .fetch_history()
                executions.append({"workflow_id": wf_id, "history": history.to_json_dict()})
        (out / f"{name}.json").write_text(json.dumps(executions, separators=(",", ":")) + "\n")
        print(f"{name}: {len(executions)} execution(s)")


def main() -> None:
    if len(sys.argv) != 2 or not sys.argv[1].startswith("v"):
        raise SystemExit("usage: python -m tests.histories.record vN  (a new directory name)")
    out = HERE / sys.argv[1]
    out.mkdir(exist_ok=False)
    with tempfile.TemporaryDirectory() as tmp:
        stack = FerryStack(Path(tmp) / "data", env={"FERRY_TURN_SLICE_SECONDS": "2"},
                           server_flags=FLAGS)
        try:
            stack.start()
            runs = _scenarios(stack)
            asyncio.run(_save(stack.settings.effective_temporal_address, runs, out))
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
