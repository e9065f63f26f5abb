"""Worker hosts (the targets registry) and the DevBoxes on them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from ferry.models.common import Network


class EngineStatus(BaseModel):
    """Whether a worker host can run an engine, and if not, why."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    available: bool
    """It can: the CLI is in its default DevBox image and a credential is on the worker."""
    missing_credential: str | None = None
    """Which credential the worker lacks (e.g. `set CLAUDE_CODE_OAUTH_TOKEN on the worker`)."""
    missing_cli: str | None = None
    """Why the CLI is not there (it may still be in another image a Run names)."""


ENGINE_LABELS = {
    "claude-code-plan": "Claude Code — Plan", "claude-code-api": "Claude Code — API credits",
    "claude-code": "Claude Code (either credential)", "codex": "Codex",
    "openai": "Built-in (OpenAI-compatible)", "script": "Script", "auto": "auto",
}


class EngineInfo(BaseModel):
    """`GET /engines`: an engine, and whether this worker pool can run it."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    name: str
    """What `engine` takes."""
    label: str
    """Its name in the product."""
    available: bool
    """A healthy worker host can run it."""
    hosts: list[str] = Field(default_factory=list)
    """The healthy hosts that can."""
    reason: str | None = None
    """Why none can (the missing credential or CLI)."""


class Target(BaseModel):
    """A worker host that is polling, with the DevBox images it has."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    host: str
    """The worker host's name (FERRY_WORKER_HOST)."""
    task_queue: str
    """Its own task queue."""
    backend: str
    """`docker` or `local`."""
    images: list[str] = Field(default_factory=list)
    """DevBox images it has."""
    engines: dict[str, EngineStatus] = Field(default_factory=dict)
    """Each engine: whether this host can run it, and why not."""
    default_image: str | None = None
    """The image Runs get by default."""
    seen_at: datetime
    """When it last reported in."""


class TargetPublic(Target):
    model_config = ConfigDict(use_attribute_docstrings=True)

    healthy: bool
    """Seen in the last 45 s."""


class TargetsInput(BaseModel):
    targets: list[Target] = Field(default_factory=list)


class DevBoxInfo(BaseModel):
    """Where a DevBox lives and how to reach it."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    run_id: str
    """The Run the DevBox belongs to."""
    backend: str
    """`docker` (a container) or `local` (a directory, no isolation: tests)."""
    host: str
    """The worker host it runs on."""
    task_queue: str
    """That host's own task queue."""
    name: str
    """Container name."""
    container_id: str | None = None
    """Docker container id."""
    image: str | None = None
    """The DevBox image."""
    workspace: str
    """The workspace path inside the DevBox."""
    in_dir: str  # read-only in the DevBox: runner, tools, turn specs, answers
    """Host directory of what the host gives the DevBox."""
    out_dir: str  # written by the turn runner only: signed events, outputs
    """Host directory of what the DevBox writes back."""
    state_dir: str  # the turn user's scratch: shell state, ferry-ask files
    """Host directory of the Run's state on that host."""
    home: str | None = None
    """Home directory of the agent user inside the DevBox."""
    user: str = "agent"  # agent (uid 1000), root (uid 0 without capabilities), worker (local)
    """The agent user's name."""
    uid: int | None = None
    """The agent user's uid."""
    gid: int | None = None
    """The agent user's gid."""
    caps: list[str] = Field(default_factory=list)  # capabilities of root turn commands
    """Capabilities the container keeps."""
    disk_bytes: int | None = None  # the DevBox's disk quota; None: no quota on this host
    """The DevBox's disk quota, in bytes (0: none)."""
    network: Network = "none"
    """`gateway`, `none` or `open`."""
    launched_at: datetime | None = None
    """When it started."""
    hibernated_at: datetime | None = None
    """When it was stopped to save resources during a long pause."""
    removed_at: datetime | None = None
    """When it was removed."""
    died: str | None = None  # why the container stopped without Ferry stopping it
    """Why it stopped unexpectedly, if it did."""
