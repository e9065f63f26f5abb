"""The running command's output is mirrored by the host while it runs (the web UI's and
`ferry logs -f`'s live output). The DevBox owns that file: it may swap it for a link to a
host file, a FIFO, or something huge. The host reads it without following links, without
blocking, never more than its tail, and redacts secrets."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from activities.devbox.hostio import Beneath
from activities.live_output import LIVE_TAIL_BYTES, LiveMirror
from ferry.artifact_store import LIVE_OUTPUT, ArtifactStore
from ferry.models.steps import RunningCommand
from tests.adversarial.conftest import HostWatch, everything_about
from tests.integration.harness import FerryStack

OUT = "/ferry/out/turns/t1/out"


def test_a_devbox_swapping_its_output_file_gets_no_host_file_read(
        astack: FerryStack, host: HostWatch) -> None:
    script = "\n".join([
        # Each line is one command (`&&` keeps a chain whole); command N writes out/0000N.log.
        "echo honest-output && sleep 1",
        f"rm -f {OUT}/00002.log && ln -s {host.secret} {OUT}/00002.log && sleep 2",
        f"rm -f {OUT}/00003.log && mkfifo {OUT}/00003.log && sleep 2",
        f"rm -f {OUT}/00004.log && ln -s /proc/1/environ {OUT}/00004.log && sleep 2",
        "echo still-fine",
    ])
    run = astack.create_run(script, run_as_root=True)
    outputs = []
    for event, _, data in astack.sse(run["id"]):
        if event == "output":
            outputs.append(json.dumps(data))
        if event == "end":
            assert data["status"] == "completed"
            break
    assert outputs, "the first command's output was never mirrored live"
    assert any("honest-output" in o for o in outputs), outputs
    host.assert_not_leaked(*outputs, *everything_about(astack, run["id"]))
    host.assert_untouched()


def test_the_mirror_reads_only_regular_files_only_their_tail_and_redacts(tmp_path: Path) -> None:
    box = tmp_path / "box"
    (box / "out").mkdir(parents=True)
    store = ArtifactStore(tmp_path / "store")
    canary = tmp_path / "host-secret.txt"
    canary.write_text("HOST-CANARY\n")
    mirror = LiveMirror(store, "r1", "t1", ["sk-live-secret-value"])
    turn = Beneath(box, "")

    def running(index: int) -> RunningCommand:
        return RunningCommand(command="cmd", index=index, started_at=datetime.now(UTC))

    def live() -> dict | None:
        data = store.read_live("r1")
        return json.loads(data) if data else None

    os.symlink(canary, box / "out" / "00001.log")
    mirror.update(turn, running(1))
    assert live() is None
    os.mkfifo(box / "out" / "00002.log")
    mirror.update(turn, running(2))  # would block forever if opened for reading blindly
    assert live() is None
    huge = box / "out" / "00003.log"
    with huge.open("wb") as f:
        f.write(b"x" * (5 * LIVE_TAIL_BYTES) + b"\nkey sk-live-secret-value end\n")
    mirror.update(turn, running(3))
    record = live()
    assert record is not None and record["index"] == 3 and record["size"] == huge.stat().st_size
    assert len(record["tail"]) <= LIVE_TAIL_BYTES and record["tail_start"] > 0
    assert "sk-live-secret-value" not in record["tail"] and "key " in record["tail"]
    mirror.update(turn, None)
    assert live()["done"] is True
    assert not (tmp_path / "store" / "runs" / "r1" / LIVE_OUTPUT).is_symlink()
    assert store.list_files("r1") == []  # internal: not an artifact
