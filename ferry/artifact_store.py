"""The artifact store: big things a Run produces (command output, diffs, artifacts, archived
timeline chunks, final records, checkpoints), keyed by Run.

Workflow history only holds references into it. The bytes live in a local directory
(default, under the data dir) or in object storage (`FERRY_ARTIFACTS_URL=s3://…`), see
`artifact_backends`; every role reads and writes them only through this class, so API
replicas and worker hosts share nothing but the store.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from ferry.artifact_backends import PARTIAL, Blobs, LocalBlobs, check, open_blobs
from ferry.models.state import RunRecord
from ferry.models.steps import Step
from ferry.settings import Settings

__all__ = ["PARTIAL", "ArtifactStore", "UnsafePath", "open_store", "open_trigger_blobs", "safe_relative"]

TIMELINE_DIR = "timeline"
CHECKPOINT_DIR = "checkpoint"  # the last workspace checkpoint (internal: not an artifact)
RECORD = "run.json"
LIVE_DIR = "live"
LIVE_OUTPUT = f"{LIVE_DIR}/output.json"  # the running command's output tail (internal)
# Stored for the Run's own machinery, not listed as its artifacts.
INTERNAL = (TIMELINE_DIR + "/", CHECKPOINT_DIR + "/", LIVE_DIR + "/", "openai/")


class UnsafePath(ValueError):
    pass


def safe_relative(path: str) -> PurePosixPath:
    """A relative path that cannot leave its root; raises UnsafePath otherwise."""
    p = PurePosixPath(path)
    if not path or p.is_absolute() or path.startswith("\\") or ".." in p.parts \
            or any(ord(c) < 32 or ord(c) == 127 for c in path) or path.endswith(PARTIAL):
        raise UnsafePath(f"path {path[:200]!r} must be relative, stay inside the Run's "
                         "artifacts, and hold no control character")
    return p


def _run_prefix(run_id: str) -> str:
    if not run_id or "/" in run_id or "\\" in run_id or run_id in (".", "..") or "\x00" in run_id:
        raise UnsafePath(f"Run id {run_id!r} cannot name a folder of the store")
    return f"runs/{run_id}"


class ArtifactStore:
    def __init__(self, where: Path | Blobs) -> None:
        self.blobs: Blobs = LocalBlobs(where) if isinstance(where, Path) else where

    def key(self, run_id: str, rel: str) -> str:
        return f"{_run_prefix(run_id)}/{safe_relative(rel).as_posix()}"

    # -- bytes in

    def write_bytes(self, run_id: str, rel: str, data: bytes) -> None:
        self.blobs.put(self.key(run_id, rel), data)

    def writer(self, run_id: str, rel: str) -> AbstractContextManager[BinaryIO]:
        """A file to stream into; it appears under `rel` only when the block succeeds."""
        return self.blobs.writer(self.key(run_id, rel))

    def write_record(self, record: RunRecord) -> None:
        self.write_bytes(record.run.id, RECORD, record.model_dump_json().encode())

    # -- bytes out

    def read_bytes(self, run_id: str, rel: str) -> bytes | None:
        """The object's bytes, or None when there is none (or the path is unsafe)."""
        try:
            return self.blobs.get(self.key(run_id, rel))
        except UnsafePath:
            return None

    def size(self, run_id: str, rel: str) -> int | None:
        try:
            return self.blobs.size(self.key(run_id, rel))
        except UnsafePath:
            return None

    def exists(self, run_id: str, rel: str) -> bool:
        return self.size(run_id, rel) is not None

    def chunks(self, run_id: str, rel: str) -> Iterator[bytes] | None:
        """The object streamed in chunks, or None when there is none."""
        try:
            return self.blobs.chunks(self.key(run_id, rel))
        except (FileNotFoundError, UnsafePath):
            return None

    def download(self, run_id: str, rel: str, dest: Path) -> bool:
        """Copy the object to a local file; False when there is none."""
        return self.blobs.download(self.key(run_id, rel), dest)

    def read_record(self, run_id: str) -> RunRecord | None:
        """A closed Run's final record; None if it never closed through Ferry."""
        data = self.read_bytes(run_id, RECORD)
        return RunRecord.model_validate_json(data) if data is not None else None

    def read_live(self, run_id: str) -> bytes | None:
        """The running command's output record (`LiveOutput` JSON), if one was written."""
        return self.read_bytes(run_id, LIVE_OUTPUT)

    # -- removal

    def delete(self, run_id: str, rel: str) -> None:
        self.blobs.delete([self.key(run_id, rel)])

    def delete_tree(self, run_id: str, rel: str) -> None:
        """Every object under the folder `rel`."""
        prefix = self.key(run_id, rel)
        self.blobs.delete([k for k, _ in self.blobs.scan(prefix)])

    # -- listings

    def objects(self, run_id: str, rel: str = "", after: str | None = None
                ) -> Iterator[tuple[str, int]]:
        """(path within the Run, size) in path order, after the path `after`."""
        root = _run_prefix(run_id)
        prefix = f"{root}/{safe_relative(rel).as_posix()}" if rel else root
        start = f"{root}/{safe_relative(after).as_posix()}" if after else None
        for key, size in self.blobs.scan(prefix, start):
            yield key[len(root) + 1:], size

    def attempts(self, run_id: str) -> list[int]:
        found = set()
        for path, _ in self.objects(run_id, "attempts"):
            parts = path.split("/")
            if len(parts) == 3 and parts[1].isdigit() and parts[2] == "diff.patch":
                found.add(int(parts[1]))
        return sorted(found)

    def list_files(self, run_id: str, limit: int = 10_000, after: str | None = None
                   ) -> list[dict[str, object]]:
        """The Run's artifacts in path order (internal objects left out), a page at a time:
        at most `limit`, starting after the path `after`."""
        out: list[dict[str, object]] = []
        for rel, size in self.objects(run_id, after=after):
            if rel.startswith(INTERNAL) or rel == RECORD:
                continue
            out.append({"path": rel, "size": size,
                        "content_type": mimetypes.guess_type(rel)[0] or "application/octet-stream"})
            if len(out) >= limit:
                break
        return out

    # -- timeline archive: sealed chunks named by their seq range

    def write_timeline_chunk(self, run_id: str, steps: list[Step]) -> str:
        rel = f"{TIMELINE_DIR}/{steps[0].seq:09d}-{steps[-1].seq:09d}.json"
        data = json.dumps([s.model_dump(mode="json") for s in steps]).encode()
        self.write_bytes(run_id, rel, data)
        return rel

    def read_timeline(self, run_id: str, after: int = 0) -> list[Step]:
        steps: list[Step] = []
        for rel, _ in self.objects(run_id, TIMELINE_DIR):
            stem = rel.rsplit("/", 1)[-1].removesuffix(".json")
            try:
                _first, last = (int(x) for x in stem.split("-"))
            except ValueError:
                continue
            if last <= after:
                continue
            data = self.read_bytes(run_id, rel)
            if data is not None:
                steps += [Step.model_validate(s) for s in json.loads(data) if s["seq"] > after]
        return steps


def open_trigger_blobs(settings: Settings) -> Blobs:
    """Where triggers (and their webhook secrets) are kept, shared by every API replica:
    `triggers/` beside `runs/` in object storage, else under the data dir, owner-only."""
    if settings.artifacts_url and settings.artifacts_url.startswith("s3://"):
        return open_blobs(settings.artifacts_url, settings.s3_endpoint_url)
    return LocalBlobs(settings.data_path, private=True)


class StoreProblem(Exception):
    """The configured artifact store cannot be used; the message names the setting."""


def check_store(settings: Settings, who: str) -> None:
    """Refuse to start on a store that cannot be written and read back."""
    where = settings.artifacts_url or str(settings.artifacts_dir)
    try:
        check(open_store(settings).blobs, who)
    except (OSError, UnsafePath) as e:
        raise StoreProblem(f"FERRY_ARTIFACTS_URL {where}: {e}") from None


def open_store(settings: Settings) -> ArtifactStore:
    """The store this deployment configured: FERRY_ARTIFACTS_URL, else under the data dir."""
    where = settings.artifacts_url or settings.artifacts_dir
    return ArtifactStore(open_blobs(where, settings.s3_endpoint_url))
