"""Worker hosts (the targets registry) and the DevBoxes on them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from ferry.models.common import Network


class Target(BaseModel):
    """A worker host that is polling, with the DevBox images it has."""

    host: str
    task_queue: str
    backend: str
    images: list[str] = Field(default_factory=list)
    default_image: str | None = None
    seen_at: datetime


class TargetPublic(Target):
    healthy: bool


class TargetsInput(BaseModel):
    targets: list[Target] = Field(default_factory=list)


class DevBoxInfo(BaseModel):
    """Where a DevBox lives and how to reach it."""

    run_id: str
    backend: str
    host: str
    task_queue: str
    name: str
    container_id: str | None = None
    image: str | None = None
    workspace: str
    in_dir: str  # read-only in the DevBox: runner, tools, turn specs, answers
    out_dir: str  # written by the turn runner only: signed events, outputs
    state_dir: str  # the turn user's scratch: shell state, ferry-ask files
    home: str | None = None
    user: str = "agent"  # agent (uid 1000), root (uid 0 without capabilities), worker (local)
    uid: int | None = None
    gid: int | None = None
    caps: list[str] = Field(default_factory=list)  # capabilities of root turn commands
    disk_bytes: int | None = None  # the DevBox's disk quota; None: no quota on this host
    network: Network = "none"
    launched_at: datetime | None = None
    hibernated_at: datetime | None = None
    removed_at: datetime | None = None
    died: str | None = None  # why the container stopped without Ferry stopping it
