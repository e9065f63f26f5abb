"""What a Run's work produced: diffs, files, the workspace, checkpoints, accepted changes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class FileChange(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    path: str
    """File path in the repository."""
    added: int
    """Lines added."""
    removed: int
    """Lines removed."""
    status: str
    """`added`, `modified`, `deleted` or `renamed`."""


class AttemptResult(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    attempt: int
    """Attempt number (a reject starts the next)."""
    diff_path: str
    """Where the attempt's diff is stored, under the Run's artifacts."""
    files: list[FileChange] = Field(default_factory=list)
    """Files the attempt changed, with line counts."""
    artifacts: list[str] = Field(default_factory=list)
    """Workspace files kept as artifacts."""
    # The DevBox's work as imported into the host-only repository: what the diff shows
    # is exactly what an accept pushes.
    snapshot_commit: str | None = None
    """The host-side commit holding the attempt's work (what an accept pushes)."""
    diff_truncated: bool = False
    """The diff was larger than the limit and is cut."""
    notes: list[str] = Field(default_factory=list)  # why something could not be collected
    """Why something could not be collected."""


class WorkspaceInfo(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    repo: str
    """The repository as given."""
    clone_url: str
    """The URL cloned (credentials never shown)."""
    base_branch: str
    """The branch started from."""
    base_commit: str
    """The commit started from; diffs are against it."""
    work_branch: str
    """The branch the work is on (`ferry/<run-id>`)."""
    restored_from: str | None = None  # the Run whose checkpoint the workspace was restored from
    """The Run whose checkpoint the workspace was restored from."""
    restore_note: str | None = None  # why a checkpoint asked for was not restored
    """Why a checkpoint asked for was not restored."""


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
    model_config = ConfigDict(use_attribute_docstrings=True)

    branch: str
    """The branch the change was committed on (`ferry/<run-id>`)."""
    commit: str
    """The commit pushed."""
    pushed: bool
    """Whether the branch reached the repository's origin."""
    pr_url: str | None = None
    """The pull request opened (GitHub), if any."""


class EngineChoice(BaseModel):
    """What `auto` found in the DevBox and on the worker, and what it picked."""

    chosen: str | None
    usable: list[str] = Field(default_factory=list)
    missing: dict[str, str] = Field(default_factory=dict)
