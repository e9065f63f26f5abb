"""Artifacts out of a DevBox: file records it printed, read as data.

`ferry-workspace artifacts` prints, for each regular file under `.ferry/artifacts/` and
the Run's named paths, a JSON header line `{"path": ..., "size": N}` and exactly N bytes,
then `{"skipped": K}`. The host reads that stream (already capped in size) with a parser
of its own — no tar: Python's tarfile has had infinite-loop and expansion bugs on crafted
input, and anything in the DevBox can write into the tool's stdout. Names must stay inside
the attempt's folder, sizes are literal bytes of the stream (nothing can expand), and the
number of files is capped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from activities.secrets import StreamRedactor
from ferry.artifact_store import PARTIAL, ArtifactStore, UnsafePath, safe_relative

ARTIFACTS_DIR = ".ferry/artifacts"
MAX_HEADER = 8192
MAX_FILES = 1000
# Records read at all (kept, skipped or refused): what the host parses is bounded in
# count and time, not only in bytes.
MAX_RECORDS = MAX_FILES + 1000
# Names the host's filesystem can hold whatever its data dir: a component leaves room for
# the store's ".ferry-partial" suffix under NAME_MAX (255), the whole name for any data-dir prefix
# under PATH_MAX (4096). Longer names are skipped, like links.
MAX_COMPONENT_BYTES = 200
MAX_NAME_BYTES = 1024
MAX_DEPTH = 32


def artifact_name(member: str) -> str | None:
    """Where a file lands under the attempt's `artifacts/` (None: refused)."""
    try:
        member.encode()  # a name that is not UTF-8 in the DevBox arrives with surrogates
    except UnicodeEncodeError:
        return None
    parts = [p for p in PurePosixPath(member).parts if p not in (".", "")]
    if not parts or len(parts) > MAX_DEPTH + 2 or len(member.encode()) > MAX_NAME_BYTES \
            or any(len(p.encode()) > MAX_COMPONENT_BYTES for p in parts):
        return None
    if parts[-1].endswith(PARTIAL):
        return None
    name = "/".join(parts)
    if name == ARTIFACTS_DIR or name.startswith(ARTIFACTS_DIR + "/"):
        name = name[len(ARTIFACTS_DIR) + 1:]
    try:
        return safe_relative(name).as_posix() if name else None
    except UnsafePath:
        return None


def _header(f: BinaryIO) -> dict | None:
    line = f.readline(MAX_HEADER + 1)
    if not line.endswith(b"\n"):
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def import_records(stream: Path, store: ArtifactStore, run_id: str, prefix: str,
                   secret_values: list[str], deadline: float | None = None
                   ) -> tuple[list[str], int, str | None]:
    """Store the stream's files under `prefix/artifacts/`: (paths, skipped, problem).
    Stops (with a problem) after MAX_RECORDS records or at `deadline` (monotonic)."""
    stored: dict[str, None] = {}
    skipped = 0
    with stream.open("rb") as f:
        for _ in range(MAX_RECORDS + 1):
            if deadline is not None and time.monotonic() > deadline:
                return list(stored), skipped, "importing the artifacts ran out of time"
            head = _header(f)
            if head is None:
                return list(stored), skipped, "the DevBox's artifact stream is malformed"
            if set(head) == {"skipped"}:
                count = head["skipped"]
                return list(stored), skipped + (count if type(count) is int and count >= 0 else 0), None
            path, size = head.get("path"), head.get("size")
            if not isinstance(path, str) or type(size) is not int or size < 0:
                return list(stored), skipped, "the DevBox's artifact stream is malformed"
            name = artifact_name(path)
            keep = name is not None and len(stored) < MAX_FILES
            target = f"{prefix}/artifacts/{name}"
            copied = _copy(f, size, store, run_id, target, secret_values) if keep else _skip(f, size)
            if copied < size:
                return list(stored), skipped, "the DevBox's artifact stream ended early"
            if keep and _stored(store, run_id, target):
                stored[target] = None
            else:
                skipped += 1
    return list(stored), skipped, f"the DevBox's artifact stream has more than {MAX_RECORDS} records"


def _copy(f: BinaryIO, size: int, store: ArtifactStore, run_id: str, target: str,
          secret_values: list[str]) -> int:
    """Bytes of the record read from the stream (all of it unless the stream ended).
    A record the host cannot store — a file and a folder of the same name, a name this
    filesystem refuses, a full disk — is read past and not kept."""
    copied = 0

    def count(chunk: bytes) -> None:
        nonlocal copied
        copied += len(chunk)
        redactor.feed(chunk)

    try:
        with store.writer(run_id, target) as out:
            redactor = StreamRedactor(secret_values, out.write)
            _pump(f, size, count)
            redactor.close()
            if copied < size:
                raise EOFError
    except EOFError:
        return copied
    except (OSError, UnsafePath):
        return copied + _skip(f, size - copied)
    return copied


def _stored(store: ArtifactStore, run_id: str, target: str) -> bool:
    try:
        return store.exists(run_id, target)
    except (UnsafePath, OSError):
        return False


def _skip(f: BinaryIO, size: int) -> int:
    return _pump(f, size, lambda _chunk: None)


def _pump(f: BinaryIO, size: int, write) -> int:
    done = 0
    while done < size:
        chunk = f.read(min(1 << 20, size - done))
        if not chunk:
            break
        write(chunk)
        done += len(chunk)
    return done
