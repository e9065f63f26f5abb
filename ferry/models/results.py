"""What a Run's work produced: diffs, files, the workspace, checkpoints, accepted changes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class FileChange(BaseModel):
    path: str
    added: int
    removed: int
    status: str


class AttemptResult(BaseModel):
    attempt: int
    diff_path: str
    files: list[FileChange] = Field(default_factory=list)
    artifacts: list[str] = Field(default_factory=list)
    # The DevBox's work as imported into the host-only repository: what the diff shows
    # is exactly what an accept pushes.
    snapshot_commit: str | None = None
    diff_truncated: bool = False
    notes: list[str] = Field(default_factory=list)  # why something could not be collected


class WorkspaceInfo(BaseModel):
    repo: str
    clone_url: str
    base_branch: str
    base_commit: str
    work_branch: str
    restored_from: str | None = None  # the Run whose checkpoint the workspace was restored from
    restore_note: str | None = None  # why a checkpoint asked for was not restored


class Checkpoint(BaseModel):
    """A Run's last saved workspace (artifact store, `checkpoint/`): the host-made bundle of
    its snapshot commit against its base, and where that base came from."""

    run_id: str
    clone_url: str
    base_branch: str
    base_commit: str
    commit: str
    attempt: int
    saved_at: datetime


class AcceptResult(BaseModel):
    branch: str
    commit: str
    pushed: bool
    pr_url: str | None = None


class EngineChoice(BaseModel):
    """What `auto` found in the DevBox and on the worker, and what it picked."""

    chosen: str | None
    usable: list[str] = Field(default_factory=list)
    missing: dict[str, str] = Field(default_factory=dict)
