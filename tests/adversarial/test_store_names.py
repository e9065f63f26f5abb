"""Names a DevBox chooses and cursors an API caller sends behave the same on S3 as on a local
directory: refused or skipped one at a time, never an unhandled error (a lost attempt's
artifacts, a 500), and a half-written object is never served."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from activities.workspace.artifacts import import_records
from ferry.artifact_backends import LocalBlobs, open_blobs
from ferry.artifact_store import ArtifactStore, UnsafePath
from tests.s3_server import CREDENTIALS, S3Server


@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> Iterator[S3Server]:
    for k, v in CREDENTIALS.items():
        os.environ.setdefault(k, v)
    server = S3Server(tmp_path_factory.mktemp("s3") / "moto.log").start()
    yield server
    server.stop()


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path) -> ArtifactStore:
    if request.param == "local":
        return ArtifactStore(LocalBlobs(tmp_path / "artifacts"))
    server = request.getfixturevalue("s3")
    return ArtifactStore(open_blobs(f"s3://{server.bucket()}/ferry", server.endpoint))


def records(tmp_path: Path, files: list[tuple[str, bytes]]) -> Path:
    out = tmp_path / "records.bin"
    with out.open("wb") as f:
        for name, data in files:
            f.write(json.dumps({"path": name, "size": len(data)}).encode() + b"\n" + data)
        f.write(b'{"skipped": 0}\n')
    return out


@pytest.mark.parametrize("odd", ["ctl\x01name.txt", "del\x7f.txt"])
def test_an_odd_artifact_name_loses_only_itself(store, tmp_path, odd) -> None:
    """A DevBox names one file with a control character (a legal Linux name): on S3
    obstore raises ValueError, which _copy does not catch, and the whole collect fails
    ('no artifacts: the worker host could not store them')."""
    stream = records(tmp_path, [(odd, b"x"), ("report.txt", b"the real result")])
    try:
        stored, _skipped, problem = import_records(stream, store, "r1", "attempts/1", [])
    except Exception as e:  # what _collect_artifacts turns into "no artifacts"
        pytest.fail(f"{type(e).__name__}: {e} -- every artifact of the attempt is lost")
    assert "attempts/1/artifacts/report.txt" in stored, (stored, problem)


@pytest.mark.parametrize("after", ["../../triggers/x", "a/./b", "a\x01"])
def test_a_hostile_after_cursor_is_refused_not_a_500(store, after) -> None:
    """GET /runs/{id}/artifacts?after=... : the route maps UnsafePath to 422; anything
    else is a 500. On S3 obstore raises a bare ValueError for these cursors."""
    store.write_bytes("r1", "a.txt", b"x")
    try:
        store.list_files("r1", after=after)
    except UnsafePath:
        pass
    except Exception as e:
        pytest.fail(f"after={after!r}: {type(e).__name__} escapes (a 500): {e}")


@pytest.mark.parametrize("path", ["a\x01b", "x/\x7f"])
def test_a_hostile_artifact_path_is_a_404_or_400_not_a_500(store, path) -> None:
    """GET /runs/{id}/artifacts/a%01b : safe_relative accepts it, obstore does not."""
    try:
        assert store.size("r1", path) is None
    except UnsafePath:
        pass
    except Exception as e:
        pytest.fail(f"{path!r}: {type(e).__name__} escapes (a 500): {e}")


def test_a_half_written_object_is_not_served(tmp_path) -> None:
    """Local backend: `<name>.ferry-partial` is hidden from listings but GET
    /runs/{id}/artifacts/<name>.ferry-partial still serves the half-written bytes."""
    store = ArtifactStore(LocalBlobs(tmp_path / "artifacts"))
    with store.writer("r1", "attempts/1/artifacts/big.bin") as f:
        f.write(b"first half")
        f.flush()
        seen = store.read_bytes("r1", "attempts/1/artifacts/big.bin.ferry-partial")
    assert seen is None, f"a half-written object is readable through the API: {seen!r}"
