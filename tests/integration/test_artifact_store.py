"""The artifact store against both backends: a local directory and a real S3 protocol server
on loopback. The same tests run on each; then a whole stack whose API keeps nothing on disk
but its logs serves a Run's timeline, diff, artifacts and logs from the store."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ferry.artifact_backends import LocalBlobs, S3Blobs, StoreUnavailable, open_blobs
from ferry.artifact_store import ArtifactStore, UnsafePath
from ferry.models.steps import Step
from tests.integration.harness import FerryStack
from tests.integration.test_repos_review import make_origin
from tests.s3_server import CREDENTIALS, S3Server


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server(tmp_path_factory.mktemp("s3") / "moto.log").start()
    yield server
    server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in CREDENTIALS.items():
        monkeypatch.setenv(k, v)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path, s3: S3Server, aws_env) -> ArtifactStore:
    if request.param == "local":
        return ArtifactStore(open_blobs(tmp_path / "artifacts"))
    blobs = open_blobs(f"s3://{s3.bucket()}/deploy-1", s3.endpoint)
    assert isinstance(blobs, S3Blobs)
    return ArtifactStore(blobs)


def _step(seq: int) -> Step:
    return Step(seq=seq, kind="message", payload={"role": "assistant", "text": f"s{seq}"},
                started_at=datetime(2026, 12, 5, tzinfo=UTC))


def test_bytes_round_trip_and_missing_objects(store: ArtifactStore) -> None:
    store.write_bytes("r1", "outputs/1.txt", b"hello")
    assert store.read_bytes("r1", "outputs/1.txt") == b"hello"
    assert store.size("r1", "outputs/1.txt") == 5 and store.exists("r1", "outputs/1.txt")
    assert store.read_bytes("r1", "outputs/2.txt") is None
    assert store.size("r1", "nope") is None and store.chunks("r1", "nope") is None
    assert store.read_bytes("other", "outputs/1.txt") is None  # Runs do not see each other
    store.write_bytes("r1", "outputs/1.txt", b"replaced")
    assert store.read_bytes("r1", "outputs/1.txt") == b"replaced"


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "a/../../b", "", "a\x00b", "\\x"])
def test_paths_cannot_leave_the_run(store: ArtifactStore, bad: str) -> None:
    with pytest.raises(UnsafePath):
        store.write_bytes("r1", bad, b"x")
    assert store.read_bytes("r1", bad) is None
    for run_id in ("..", "a/b", ""):
        with pytest.raises(UnsafePath):
            store.write_bytes(run_id, "x.txt", b"x")


def test_a_writer_shows_its_object_only_when_complete(store: ArtifactStore) -> None:
    with store.writer("r1", "big.bin") as f:
        f.write(b"part one")
        assert not store.exists("r1", "big.bin")
        assert store.list_files("r1") == []
        f.write(b" and two")
    assert store.read_bytes("r1", "big.bin") == b"part one and two"
    with pytest.raises(RuntimeError), store.writer("r1", "failed.bin") as f:
        f.write(b"half")
        raise RuntimeError("the copy failed")
    assert not store.exists("r1", "failed.bin")
    assert [f["path"] for f in store.list_files("r1")] == ["big.bin"]


def test_large_objects_stream_in_chunks_both_ways(store: ArtifactStore, tmp_path: Path) -> None:
    block = os.urandom(1 << 20)
    with store.writer("r1", "outputs/large.bin") as f:
        for _ in range(24):  # 24 MiB: past the writer's memory spool, so it goes via disk
            f.write(block)
    chunks = store.chunks("r1", "outputs/large.bin")
    assert chunks is not None
    sizes = []
    for chunk in chunks:
        assert chunk == block[:len(chunk)] or len(chunk) <= 8 << 20
        sizes.append(len(chunk))
    assert sum(sizes) == 24 << 20 and len(sizes) > 3 and max(sizes) <= 8 << 20
    dest = tmp_path / "copy.bin"
    assert store.download("r1", "outputs/large.bin", dest)
    assert dest.stat().st_size == 24 << 20 and dest.read_bytes()[:1 << 20] == block
    assert not store.download("r1", "outputs/none.bin", tmp_path / "none.bin")


def test_listing_is_ordered_paginated_and_leaves_out_internal_objects(store: ArtifactStore) -> None:
    names = [f"attempts/1/artifacts/f{i:02d}.txt" for i in range(25)]
    for n in reversed(names):
        store.write_bytes("r1", n, b"x" * 3)
    for internal in ("timeline/000000001-000000002.json", "checkpoint/workspace.bundle",
                     "live/output.json", "openai/call-0001.json", "run.json"):
        store.write_bytes("r1", internal, b"{}")
    pages, after = [], None
    while True:
        page = store.list_files("r1", limit=10, after=after)
        if not page:
            break
        pages.append([f["path"] for f in page])
        after = str(page[-1]["path"])
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [n for p in pages for n in p] == names
    assert store.list_files("r1")[0] == {"path": names[0], "size": 3, "content_type": "text/plain"}


def test_attempts_timeline_records_and_removal(store: ArtifactStore) -> None:
    for n in (1, 2, 10):
        store.write_bytes("r1", f"attempts/{n}/diff.patch", b"")
    store.write_bytes("r1", "attempts/3/files.json", b"[]")  # no diff: not an attempt yet
    assert store.attempts("r1") == [1, 2, 10]
    steps = [_step(i) for i in range(1, 251)]
    for lo in range(0, 250, 100):
        store.write_timeline_chunk("r1", steps[lo:lo + 100])
    assert [s.seq for s in store.read_timeline("r1")] == list(range(1, 251))
    assert [s.seq for s in store.read_timeline("r1", after=150)] == list(range(151, 251))
    assert store.read_timeline("r2") == []
    store.write_bytes("r1", "run.json", b"{}")
    store.delete_tree("r1", "attempts")
    assert store.attempts("r1") == [] and store.exists("r1", "run.json")
    store.delete("r1", "run.json")
    assert not store.exists("r1", "run.json") and store.read_record("r1") is None


def test_an_unreachable_object_store_is_a_clear_error(aws_env) -> None:
    blobs = open_blobs("s3://nowhere/x", "http://127.0.0.1:9")
    with pytest.raises(StoreUnavailable, match="artifact store could not write"):
        ArtifactStore(blobs).write_bytes("r1", "a.txt", b"x")
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        open_blobs("gs://bucket/x")
    assert isinstance(open_blobs("relative/dir"), LocalBlobs)


# ------------------------------------------------------------------ a whole stack on the store


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_an_api_with_no_shared_disk_serves_everything_from_the_store(
        backend: str, tmp_path: Path, s3: S3Server, docker_client) -> None:
    worker_dir, api_dir = tmp_path / "worker", tmp_path / "api"
    if backend == "s3":
        bucket = s3.bucket()
        store_env = s3.env(f"s3://{bucket}/ferry")
    else:  # the local backend shares a directory (what NFS would be between machines)
        store_env = {"FERRY_ARTIFACTS_URL": str(tmp_path / "shared-artifacts")}
    stack = FerryStack(worker_dir, env={**store_env, "FERRY_TURN_SLICE_SECONDS": "4"})
    try:
        stack.start_temporal()
        stack.start_worker()
        (api_dir / "logs").mkdir(parents=True)
        stack.start_api(env={"FERRY_DATA_DIR": str(api_dir)}, log=api_dir / "logs" / "api.log")
        origin = make_origin(tmp_path)
        # 320 lines: more steps than the workflow keeps, so the oldest are archived.
        lines = ["sed -i 's/b = 2/b = 20/' app.py",
                 "mkdir -p .ferry/artifacts && echo report > .ferry/artifacts/report.txt",
                 "seq 1 20000"] + [f"echo line-{i}" for i in range(320)]
        run = stack.create_run("\n".join(lines), repo=str(origin))
        done = stack.wait_status(run["id"], {"completed", "failed"}, timeout=240)
        assert done["status"] == "completed", done
        rid = run["id"]
        with stack.client() as c:
            steps = c.get(f"/runs/{rid}/timeline").json()["steps"]
            diff = c.get(f"/runs/{rid}/diff").text
            listed = c.get(f"/runs/{rid}/artifacts", params={"limit": 2}).json()
            report = c.get(f"/runs/{rid}/artifacts/attempts/1/artifacts/report.txt")
            head = c.head(f"/runs/{rid}/artifacts/attempts/1/artifacts/report.txt")
            logs = c.get(f"/runs/{rid}/logs").text
            seq_step = next(s for s in steps if s["kind"] == "exec"
                            and s["payload"]["command"] == "seq 1 20000")
            output = c.get(f"/runs/{rid}/artifacts/{seq_step['payload']['output_path']}")
            health = c.get("/healthz").json()
        assert health == {"ok": True, "temporal": "ok", "store": "ok"}
        seqs = [s["seq"] for s in steps]
        assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) > 320  # archive + live tail
        assert "+b = 20" in diff
        assert len(listed["artifacts"]) == 2 and listed["next_after"]
        assert report.status_code == 200 and report.text == "report\n"
        assert report.headers["content-disposition"] == 'attachment; filename="report.txt"'
        assert head.status_code == 200 and head.headers["content-length"] == "7"
        assert output.text == "".join(f"{i}\n" for i in range(1, 20001))
        assert "$ echo line-319\nline-319\n" in logs and "19999\n20000\n" in logs
        # The API's own data dir holds its log and nothing else.
        held = sorted(p.relative_to(api_dir).as_posix() for p in api_dir.rglob("*"))
        assert held == ["logs", "logs/api.log"], held
        if backend == "s3":
            keys = s3.keys(bucket)
            assert f"ferry/runs/{rid}/run.json" in keys
            assert any(k.startswith(f"ferry/runs/{rid}/timeline/") for k in keys)
            assert not (worker_dir / "artifacts").exists()
    finally:
        stack.stop()


@pytest.mark.parametrize("role", ["worker.main", "api.main"])
def test_a_role_refuses_to_start_on_a_store_it_cannot_use(role: str, tmp_path: Path,
                                                         s3: S3Server) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_")}
    env.update(s3.env("s3://no-such-bucket/ferry"), FERRY_DATA_DIR=str(tmp_path),
               PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    out = subprocess.run([sys.executable, "-m", role], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2, out.stderr
    assert "FERRY_ARTIFACTS_URL s3://no-such-bucket/ferry" in out.stderr
    assert "NoSuchBucket" in out.stderr and "Traceback" not in out.stderr
    env["FERRY_ARTIFACTS_URL"] = "s3:/one-slash/ferry"  # a typo is not a local directory
    out = subprocess.run([sys.executable, "-m", role], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and "not an S3 URL" in out.stderr, out.stderr


def test_triggers_are_shared_by_api_replicas_through_the_store(tmp_path: Path, s3: S3Server,
                                                              aws_env) -> None:
    from api.schedule_service import TriggerStore
    from ferry.schedules import TriggerCreate

    url = f"s3://{s3.bucket()}/ferry"
    one, two = (TriggerStore(open_blobs(url, s3.endpoint)) for _ in range(2))
    one.save(TriggerCreate.model_validate({"name": "ci", "secret": "s" * 24,
                                           "run": {"instructions": "echo hi"}}))
    assert [t.name for t in two.all()] == ["ci"] and two.get("ci").secret == "s" * 24
    two.delete("ci")
    assert one.all() == []
