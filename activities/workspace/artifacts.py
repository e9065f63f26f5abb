"""Artifacts out of a DevBox: a tar stream it printed, read as data.

The DevBox tars `.ferry/artifacts/` and the Run's named paths (links stored as links).
The host keeps regular files only, under names that cannot leave the attempt's folder,
with a cap on the whole stream; link members, devices and odd names are skipped and
counted, never followed or created.
"""

from __future__ import annotations

import tarfile
from pathlib import Path, PurePosixPath

from activities.secrets import StreamRedactor
from ferry.artifact_store import ArtifactStore, UnsafePath, safe_relative

ARTIFACTS_DIR = ".ferry/artifacts"


def artifact_name(member: str) -> str | None:
    """Where a tar member lands under the attempt's `artifacts/` (None: refused)."""
    parts = [p for p in PurePosixPath(member).parts if p not in (".", "")]
    if not parts:
        return None
    name = "/".join(parts)
    if name == ARTIFACTS_DIR or name.startswith(ARTIFACTS_DIR + "/"):
        name = name[len(ARTIFACTS_DIR) + 1:]
    try:
        return safe_relative(name).as_posix() if name else None
    except UnsafePath:
        return None


def import_tar(tar_path: Path, store: ArtifactStore, run_id: str, prefix: str,
               secret_values: list[str]) -> tuple[list[str], int]:
    """Store the tar's regular files under `prefix/artifacts/`: (stored paths, skipped)."""
    stored: dict[str, None] = {}
    skipped = 0
    try:
        with tarfile.open(tar_path, mode="r:") as tar:
            for member in tar:
                name = artifact_name(member.name)
                if member.isdir():
                    continue
                if not member.isreg() or name is None:
                    skipped += 1
                    continue
                src = tar.extractfile(member)
                if src is None:
                    skipped += 1
                    continue
                target = f"{prefix}/artifacts/{name}"
                try:
                    with store.writer(run_id, target) as f:
                        redactor = StreamRedactor(secret_values, f.write)
                        for chunk in iter(lambda: src.read(1 << 20), b""):  # noqa: B023
                            redactor.feed(chunk)
                        redactor.close()
                except (IsADirectoryError, NotADirectoryError, FileExistsError):
                    skipped += 1  # a file and a folder of the same name
                    continue
                stored[target] = None
    except (tarfile.TarError, EOFError, OSError, ValueError, UnsafePath):
        skipped += 1
    return list(stored), skipped
