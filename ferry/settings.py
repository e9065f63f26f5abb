"""Ferry's settings, read from `FERRY_*` environment variables (pydantic-settings)."""

from __future__ import annotations

import socket
from datetime import timedelta
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Literal

from pydantic import ByteSize, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ferry.durations import Duration
from ferry.pricing import Price, load_prices

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


class Settings(BaseSettings):
    """Every knob of every Ferry role; see docs/configuration.md."""

    model_config = SettingsConfigDict(env_prefix="FERRY_", extra="ignore")

    data_dir: Path = Field(default=Path("~/.local/share/ferry"))
    # Where Runs' artifacts live: a local path (default: `artifacts/` under the data dir) or
    # `s3://bucket/prefix` (credentials from the usual AWS_* variables). Every API replica and
    # worker host of one deployment must name the same store.
    artifacts_url: str | None = None
    # An S3-compatible server that is not AWS (MinIO, Ceph, …), e.g. http://minio:9000.
    s3_endpoint_url: str | None = None

    # Temporal
    temporal_address: str | None = None
    temporal_namespace: str = "default"
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    # Where the web UI links a Run's workflow; the embedded stack's own UI when unset.
    temporal_ui_url: str | None = None
    temporal_retention: str = "720h"
    task_queue: str = "ferry"

    # API
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_token: str | None = None
    url: str | None = None  # where the CLI finds the API
    # Host names the API answers to (DNS-rebinding guard); default: loopback names, or any
    # name when the API listens beyond loopback (a token is required there).
    allowed_hosts: str | None = None
    # Repositories by host path/file:// or on loopback/private addresses (and such image
    # registries); default: allowed only while the API listens on loopback.
    allow_local_repos: bool | None = None

    # Where a worker serves `/metrics` (Prometheus); port 0: not served. The API serves its
    # own on its port.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9464, ge=0, le=65535)

    # Worker / DevBox
    worker_host: str = Field(default_factory=socket.gethostname)
    devbox_backend: str = "docker"
    devbox_image: str = "ferry-devbox"
    # Images a Run may name (comma-separated; `prefix*` allowed); unset: any. A Run's image
    # runs Ferry's turn runner, so where untrusted people start Runs, list the trusted ones.
    allowed_images: str | None = None
    # A Run's network: `gateway` (no interface of its own; the model gateway and an
    # allowlisting proxy), `none` (nothing), `open` (Docker's bridge, unfiltered).
    devbox_network: Literal["none", "gateway", "open", "bridge"] = "gateway"
    # Hosts `gateway` DevBoxes may reach through the proxy (plus the Run's repo host).
    egress_allow: str = ("registry.npmjs.org,registry.yarnpkg.com,pypi.org,files.pythonhosted.org,"
                         "deb.debian.org,security.debian.org,github.com,codeload.github.com,"
                         "objects.githubusercontent.com,raw.githubusercontent.com,"
                         "proxy.golang.org,sum.golang.org,index.crates.io,static.crates.io")
    # Model prices (USD per million tokens) on top of the built-in table: JSON or a file.
    model_prices: str | None = None

    @field_validator("artifacts_url")
    @classmethod
    def _artifacts_url_shape(cls, value: str | None) -> str | None:
        if value and "://" in value and not value.startswith("s3://"):
            raise ValueError("use a local path or s3://bucket/prefix")
        if value and value.startswith("s3://") and not value[5:].split("/", 1)[0]:
            raise ValueError("s3:// needs a bucket name: s3://bucket/prefix")
        if value and not value.startswith("s3://"):
            if value.lower().startswith("s3:"):
                raise ValueError(f"{value!r} is not an S3 URL: write s3://bucket/prefix")
            if not Path(value).expanduser().is_absolute():
                raise ValueError(f"a local store must be an absolute path (got {value!r})")
        return value or None

    @field_validator("model_prices")
    @classmethod
    def _prices_load(cls, value: str | None) -> str | None:
        load_prices(value)  # checked when the settings are read, not when a worker starts
        return value

    @cached_property
    def price_table(self) -> dict[str, Price]:
        """The built-in prices with FERRY_MODEL_PRICES on top (gateway, openai engine)."""
        return load_prices(self.model_prices)

    # Worker environment variables passed to turns as they are (non-secret provider
    # settings such as CLAUDE_CODE_USE_BEDROCK, ANTHROPIC_MODEL); comma-separated.
    engine_env: str = ""
    devbox_cpus: float = 2.0
    devbox_memory: str = "4g"
    devbox_pids: int = 1024
    devbox_disk: ByteSize = ByteSize(10 * 1024**3)  # per-DevBox disk quota; 0: no quota
    devbox_runtime: str | None = None  # e.g. runsc (gVisor); Docker's default when unset
    max_output_per_run: ByteSize = ByteSize(1024**3)  # command output stored per Run
    max_snapshot_bytes: ByteSize = ByteSize(2 * 1024**3)  # one bundle of the DevBox's work
    max_diff_bytes: ByteSize = ByteSize(20 * 1024**2)  # diff text stored per attempt
    max_artifacts_bytes: ByteSize = ByteSize(256 * 1024**2)  # artifacts per attempt
    # A Run's workspace checkpoint (kept after its DevBox is gone, for from_run).
    max_checkpoint_bytes: ByteSize = ByteSize(512 * 1024**2)
    turn_slice_seconds: float = 120.0
    poll_interval: float = 0.15

    secrets_file: Path | None = None
    engine_priority: str = "claude-code,codex,openai"
    openai_base_url: str | None = None
    openai_api_key: str | None = None
    openai_model: str = "gpt-4o-mini"
    openai_timeout: float = 300.0

    # Repositories and tickets
    github_api_url: str | None = None  # default: https://api.github.com or https://HOST/api/v3
    github_token: str | None = None
    azure_api_url: str | None = None  # default: https://HOST (Azure DevOps Services)
    azure_token: str | None = None
    git_token: str | None = None  # for private https remotes; github_token is used if unset
    git_token_hosts: str = "github.com"  # the only hosts git sends the token to
    git_author_name: str = "Ferry"  # author and committer of the commit an accept makes
    git_author_email: str = "ferry@localhost"
    github_hosts: str = "github.com"  # ticket hosts that get FERRY_GITHUB_TOKEN
    azure_hosts: str = "dev.azure.com"  # ticket hosts that get FERRY_AZURE_TOKEN

    # Run defaults (each can be set per Run)
    keep_alive: Duration = timedelta(minutes=30)
    idle_timeout: Duration = timedelta(minutes=10)
    question_timeout: Duration = timedelta(days=7)
    on_timeout: Literal["use_defaults", "fail"] = "fail"
    # A Run's host counts as gone when nothing there takes its work for this long.
    host_lost_after: Duration = timedelta(minutes=3)
    # How often each worker removes DevBoxes no open Run or keeper owns.
    reap_interval: Duration = timedelta(minutes=1)
    # DevBoxes each worker keeps started for new Runs to claim (`ferry up` uses 2).
    warm_pool: int = Field(default=0, ge=0, le=32)

    @property
    def local_repos_allowed(self) -> bool:
        if self.allow_local_repos is not None:
            return self.allow_local_repos
        return self.api_host in LOOPBACK_HOSTS

    @property
    def api_allowed_hosts(self) -> set[str] | None:
        """Host names the API accepts in the Host header (None: any)."""
        names = {h.strip().lower() for h in (self.allowed_hosts or "").split(",") if h.strip()}
        if "*" in names:
            return None
        if not names and self.api_host not in LOOPBACK_HOSTS:
            return None
        return names | LOOPBACK_HOSTS | ({self.api_host.lower()} if self.api_host not in
                                          ("0.0.0.0", "::") else set())

    @property
    def default_network(self) -> Literal["none", "gateway", "open"]:
        return "open" if self.devbox_network == "bridge" else self.devbox_network

    @property
    def egress_allowlist(self) -> list[str]:
        return [h.strip() for h in self.egress_allow.split(",") if h.strip()]

    @property
    def data_path(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def artifacts_dir(self) -> Path:
        return self.data_path / "artifacts"

    @property
    def devboxes_dir(self) -> Path:
        return self.data_path / "devboxes"

    @property
    def logs_dir(self) -> Path:
        return self.data_path / "logs"

    @property
    def temporal_db(self) -> Path:
        return self.data_path / "temporal.db"

    @property
    def effective_temporal_address(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @property
    def effective_temporal_ui_url(self) -> str | None:
        if self.temporal_ui_url:
            return self.temporal_ui_url.rstrip("/")
        return None if self.temporal_address else f"http://127.0.0.1:{self.temporal_ui_port}"

    @property
    def api_url(self) -> str:
        if self.url:
            return self.url.rstrip("/")
        host = "127.0.0.1" if self.api_host in ("0.0.0.0", "::") else self.api_host
        return f"http://{host}:{self.api_port}"

    @property
    def host_task_queue(self) -> str:
        return host_queue(self.worker_host)


def host_queue(host: str) -> str:
    """The task queue of one worker host; DevBox activities for its containers go there."""
    return f"ferry-host-{host}"


class SettingsError(Exception):
    """A FERRY_* variable has a value Ferry cannot use; the message names it."""


def describe(error: ValidationError) -> str:
    """One line per bad variable, named as the user set it."""
    lines = []
    for e in error.errors():
        field = str(e["loc"][0]) if e["loc"] else ""
        msg = str(e["msg"]).removeprefix("Value error, ")
        value = e.get("input")
        shown = f" (got {value!r})" if isinstance(value, str) and len(value) < 80 else ""
        lines.append(f"FERRY_{field.upper()}: {msg}{shown}")
    return "; ".join(lines)


@lru_cache
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as e:
        raise SettingsError(describe(e)) from None
