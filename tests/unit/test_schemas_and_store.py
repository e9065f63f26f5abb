"""Input validation and the artifact store's path safety and timeline chunks."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from ferry.artifact_store import ArtifactStore, UnsafePath, safe_relative
from ferry.models.api import RunCreate
from ferry.models.common import default_title, is_valid_run_id
from ferry.models.steps import Step
from ferry.settings import Settings


def test_run_create_defaults_and_limits() -> None:
    body = RunCreate(instructions="echo hi")
    # Unset fields stay None so `from_run` can tell them apart; the API fills the defaults.
    assert (body.engine, body.mode, body.title, body.from_run) == (None, None, None, None)
    assert RunCreate(instructions="x", keep_alive="15m").keep_alive.total_seconds() == 900
    with pytest.raises(ValidationError, match="larger than"):
        RunCreate(instructions="x" * (100 * 1024 + 1))
    RunCreate(instructions="x" * (100 * 1024))
    with pytest.raises(ValidationError, match="engine"):
        RunCreate(instructions="x", engine="other")  # type: ignore[arg-type]


def test_default_title_and_ids() -> None:
    assert default_title("\n\n  fix the flaky test  \nmore") == "fix the flaky test"
    assert len(default_title("x" * 200)) == 80
    assert is_valid_run_id("abc123") and is_valid_run_id("a-b_c")
    assert not is_valid_run_id("../x") and not is_valid_run_id("a.b") and not is_valid_run_id("")


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "a/../../b", "", "a\x00b", "\\x"])
def test_unsafe_paths_rejected(bad: str) -> None:
    with pytest.raises(UnsafePath):
        safe_relative(bad)


def test_timeline_chunks_read_in_order_after_n(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    now = datetime.now(UTC)
    steps = [Step(seq=i, kind="message", started_at=now, payload={"i": i}) for i in range(1, 251)]
    for lo in range(0, 250, 100):
        store.write_timeline_chunk("r1", steps[lo:lo + 100])
    assert [s.seq for s in store.read_timeline("r1")] == list(range(1, 251))
    assert [s.seq for s in store.read_timeline("r1", after=150)] == list(range(151, 251))
    assert store.read_timeline("other") == []


def test_settings_data_dir_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERRY_DATA_DIR", str(tmp_path / "d"))
    s = Settings()
    assert s.temporal_db == tmp_path / "d" / "temporal.db"
    assert s.artifacts_dir.parent == s.logs_dir.parent == tmp_path / "d"
    assert s.host_task_queue == f"ferry-host-{s.worker_host}"
    assert s.api_url == "http://127.0.0.1:8000"
