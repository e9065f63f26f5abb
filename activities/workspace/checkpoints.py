"""Workspace checkpoints: a Run's work saved where any host can reach it, and restored.

A checkpoint is the snapshot commit the host imported from the DevBox (its work tree,
new files included, on top of the agent's own commits), bundled by the host against the
Run's base commit into the artifact store (`checkpoint/workspace.bundle`), with
`checkpoint/checkpoint.json` saying where the base came from. Everything in it was made
by the host's git from its own repository, so restoring it trusts no DevBox byte: a new
Run's host fetches it into its own repository and hands the DevBox a bundle, as for a
clone. Only the workspace's files are kept; installed packages, running processes, shell
state and an engine's session are not.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from activities.workspace.host_git import GitError, HostGit
from ferry.artifact_store import CHECKPOINT_DIR, ArtifactStore
from ferry.models.results import Checkpoint

BUNDLE = f"{CHECKPOINT_DIR}/workspace.bundle"
META = f"{CHECKPOINT_DIR}/checkpoint.json"
CHECKPOINT_REF = "refs/ferry/checkpoint"  # what a checkpoint bundle holds
RESTORE_REF = "refs/ferry/restore"  # where a restoring Run's host repository takes it


class CheckpointTooLarge(GitError):
    """The checkpoint is over FERRY_MAX_CHECKPOINT_BYTES: not kept (the message says so)."""


def discard(store: ArtifactStore, run_id: str) -> None:
    """Remove a Run's checkpoint (its metadata first: never metadata without a bundle)."""
    for rel in (META, BUNDLE):
        store.delete(run_id, rel)


def save(store: ArtifactStore, git: HostGit, scratch: Path, checkpoint: Checkpoint,
         cap: int) -> None:
    """Bundle the snapshot commit against the base into the store; the metadata last, so a
    reader never finds metadata naming a bundle that is not there yet. A bundle over `cap`
    bytes is not kept, and the older checkpoint goes too (it no longer matches the work)."""
    git.update_ref(CHECKPOINT_REF, checkpoint.commit)
    tmp = scratch / "checkpoint.bundle"
    tmp.unlink(missing_ok=True)
    try:
        git.run("bundle", "create", "--quiet", str(tmp), CHECKPOINT_REF,
                f"^{checkpoint.base_commit}", what="bundling the checkpoint")
        size = tmp.stat().st_size
        if size > cap:
            discard(store, checkpoint.run_id)
            raise CheckpointTooLarge(
                f"no workspace checkpoint was kept: it is {size / 2**20:.1f} MiB, over "
                f"FERRY_MAX_CHECKPOINT_BYTES ({cap / 2**20:.1f} MiB)")
        with store.writer(checkpoint.run_id, BUNDLE) as out, open(tmp, "rb") as src:
            shutil.copyfileobj(src, out)
    finally:
        tmp.unlink(missing_ok=True)
    store.write_bytes(checkpoint.run_id, META, checkpoint.model_dump_json().encode())


def load(store: ArtifactStore, run_id: str) -> Checkpoint | None:
    try:
        data = store.read_bytes(run_id, META)
        return Checkpoint.model_validate_json(data) if data is not None else None
    except (OSError, ValidationError):
        return None


def fetch(store: ArtifactStore, git: HostGit, checkpoint: Checkpoint, scratch: Path) -> None:
    """Import a checkpoint into this Run's host repository as RESTORE_REF (the bundle is
    copied from the store, which may be another machine's, into the host's scratch)."""
    scratch.mkdir(parents=True, exist_ok=True)
    bundle = scratch / "restore.bundle"
    bundle.unlink(missing_ok=True)
    try:
        if not store.download(checkpoint.run_id, BUNDLE, bundle):
            raise GitError("its bundle is missing")
        if git.fetch_bundle(bundle, CHECKPOINT_REF, RESTORE_REF) != checkpoint.commit:
            raise GitError("its bundle does not hold the commit it names")
    finally:
        bundle.unlink(missing_ok=True)


def now() -> datetime:
    return datetime.now(UTC)
