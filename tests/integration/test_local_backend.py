"""The `local` DevBox backend: a workspace directory and subprocesses on the worker host."""

from __future__ import annotations

from pathlib import Path

from tests.integration.harness import FerryStack


def test_local_backend_runs_and_cleans_up(tmp_path: Path) -> None:
    s = FerryStack(tmp_path / "data", env={"FERRY_DEVBOX_BACKEND": "local"})
    try:
        s.start()
        run = s.create_run("pwd\necho hi > f.txt && cat f.txt\nexit 4")
        done = s.wait_status(run["id"], {"completed", "failed"})
        assert done["status"] == "failed" and "exited with 4" in done["error"]
        s.wait_until(lambda: s.get_run(run["id"])["devboxes"][0]["removed_at"] is not None, 10,
                     "the DevBox to be removed")
        devbox = s.get_run(run["id"])["devboxes"][0]
        assert devbox["backend"] == "local"
        execs = [x["payload"] for x in s.timeline(run["id"]) if x["kind"] == "exec"]
        assert execs[0]["output_excerpt"].strip() == devbox["workspace"]
        assert execs[1]["output_excerpt"] == "hi\n"
        assert not Path(devbox["workspace"]).exists()
    finally:
        s.stop()
