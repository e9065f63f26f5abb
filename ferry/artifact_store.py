"""The artifact store: big things a Run produces (command output, archived timeline chunks).

A directory under the data dir. Workflow history only holds references into it.
"""

from __future__ import annotations

import json
import mimetypes
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from ferry.models.state import RunRecord
from ferry.models.steps import Step

TIMELINE_DIR = "timeline"
CHECKPOINT_DIR = "checkpoint"  # the last workspace checkpoint (internal: not an artifact)
RECORD = "run.json"
LIVE_DIR = "live"
LIVE_OUTPUT = f"{LIVE_DIR}/output.json"  # the running command's output tail (internal)


# The suffix of a file still being written (hidden from listings until it is complete).
PARTIAL = ".ferry-partial"


class UnsafePath(ValueError):
    pass


def safe_relative(path: str) -> PurePosixPath:
    """A relative path that cannot leave its root; raises UnsafePath otherwise."""
    p = PurePosixPath(path)
    if not path or p.is_absolute() or path.startswith("\\") or ".." in p.parts or "\x00" in path:
        raise UnsafePath(f"path {path!r} must be relative and stay inside the Run's artifacts")
    return p


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def run_dir(self, run_id: str) -> Path:
        return self.root / "runs" / run_id

    def path(self, run_id: str, rel: str) -> Path:
        return self.run_dir(run_id) / safe_relative(rel)

    def write_bytes(self, run_id: str, rel: str, data: bytes) -> None:
        dest = self.path(run_id, rel)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + PARTIAL)
        tmp.write_bytes(data)
        os.replace(tmp, dest)

    @contextmanager
    def writer(self, run_id: str, rel: str) -> Iterator[BinaryIO]:
        """A file to stream into; it appears under `rel` only when the block succeeds."""
        dest = self.path(run_id, rel)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + PARTIAL)
        try:
            with tmp.open("wb") as f:
                yield f
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    def write_record(self, record: RunRecord) -> None:
        self.write_bytes(record.run.id, RECORD, record.model_dump_json().encode())

    def read_record(self, run_id: str) -> RunRecord | None:
        """A closed Run's final record; None if it never closed through Ferry."""
        try:
            data = self.path(run_id, RECORD).read_bytes()
        except (OSError, UnsafePath):
            return None
        return RunRecord.model_validate_json(data)

    def read_live(self, run_id: str) -> bytes | None:
        """The running command's output record (`LiveOutput` JSON), if one was written."""
        try:
            return self.path(run_id, LIVE_OUTPUT).read_bytes()
        except (OSError, UnsafePath):
            return None

    def copy_in(self, run_id: str, rel: str, src: Path) -> None:
        dest = self.path(run_id, rel)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)

    def attempts(self, run_id: str) -> list[int]:
        base = self.run_dir(run_id) / "attempts"
        if not base.is_dir():
            return []
        return sorted(int(p.name) for p in base.iterdir() if p.name.isdigit()
                      and (p / "diff.patch").exists())

    def list_files(self, run_id: str, limit: int = 10_000) -> list[dict[str, object]]:
        root = self.run_dir(run_id)
        if not root.is_dir():
            return []
        out: list[dict[str, object]] = []
        for p in sorted(root.rglob("*")):
            if len(out) >= limit:
                break
            rel = p.relative_to(root).as_posix()
            if p.is_file() and not rel.startswith((TIMELINE_DIR + "/", CHECKPOINT_DIR + "/",
                                                   LIVE_DIR + "/", "openai/")) \
                    and not rel.endswith(PARTIAL):
                out.append({"path": rel, "size": p.stat().st_size,
                            "content_type": mimetypes.guess_type(rel)[0]
                            or "application/octet-stream"})
        return out

    # -- timeline archive: sealed chunks named by their seq range

    def write_timeline_chunk(self, run_id: str, steps: list[Step]) -> str:
        rel = f"{TIMELINE_DIR}/{steps[0].seq:09d}-{steps[-1].seq:09d}.json"
        data = json.dumps([s.model_dump(mode="json") for s in steps]).encode()
        self.write_bytes(run_id, rel, data)
        return rel

    def read_timeline(self, run_id: str, after: int = 0) -> list[Step]:
        directory = self.run_dir(run_id) / TIMELINE_DIR
        if not directory.is_dir():
            return []
        steps: list[Step] = []
        for f in sorted(directory.glob("*.json")):
            first, last = (int(x) for x in f.stem.split("-"))
            if last <= after:
                continue
            steps += [Step.model_validate(s) for s in json.loads(f.read_bytes()) if s["seq"] > after]
        return steps
