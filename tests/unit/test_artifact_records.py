"""The host's parser of the artifact records a DevBox prints: names, counts, time."""

from __future__ import annotations

import json
import time
from pathlib import Path

from activities.workspace.artifacts import MAX_RECORDS, artifact_name, import_records
from ferry.artifact_store import ArtifactStore


def stream(tmp_path: Path, records: list[tuple[str, bytes]], skipped: int = 0) -> Path:
    path = tmp_path / "records.bin"
    with path.open("wb") as f:
        for name, data in records:
            f.write(json.dumps({"path": name, "size": len(data)}).encode() + b"\n" + data)
        f.write(json.dumps({"skipped": skipped}).encode() + b"\n")
    return path


def test_names_the_host_cannot_hold_are_refused() -> None:
    assert artifact_name(".ferry/artifacts/report.txt") == "report.txt"
    assert artifact_name(".ferry/artifacts/x\udcff") is None  # not UTF-8 in the DevBox
    assert artifact_name("n" * 201) is None
    assert artifact_name("/".join(["d"] * 40)) is None
    assert artifact_name("../../etc/passwd") is None


def test_a_surrogate_name_is_skipped_not_fatal(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    kept, skipped, problem = import_records(
        stream(tmp_path, [("x\udcff", b"bad"), ("ok.txt", b"fine"), ("scratch.tmp", b"t")]),
        store, "r1", "attempts/1", [])
    assert kept == ["attempts/1/artifacts/ok.txt", "attempts/1/artifacts/scratch.tmp"]
    assert skipped == 1 and problem is None
    # What a Run kept is what its listing shows (".tmp" is an ordinary name).
    assert [f["path"] for f in store.list_files("r1")] == kept


def test_the_number_of_records_is_capped_whatever_becomes_of_them(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    # A file and a folder of one name: every later record fails to store (and is skipped).
    records = [("a/b", b"x")] + [("a", b"y")] * (MAX_RECORDS + 500)
    kept, skipped, problem = import_records(stream(tmp_path, records), store, "r1", "attempts/1", [])
    assert problem == f"the DevBox's artifact stream has more than {MAX_RECORDS} records"
    assert len(kept) + skipped <= MAX_RECORDS + 1


def test_the_import_stops_at_its_deadline(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    records = [(f"f{i}.txt", b"z") for i in range(50)]
    kept, _, problem = import_records(stream(tmp_path, records), store, "r1", "attempts/1", [],
                                      deadline=time.monotonic() - 1)
    assert kept == [] and problem == "importing the artifacts ran out of time"
