"""docker-compose.yml: it validates, and it has the shape docs/deployment.md describes.

Runs the compose tool itself (`docker-compose config`, Debian's v1, installed by
scripts/setup.sh; or the `docker compose` plugin) and checks its resolved output, so a
broken file, a missing variable default or an unpinned image fails here."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
# The variables the file requires (`${VAR:?…}`); everything else has a default.
REQUIRED = {"FERRY_API_TOKEN": "test-token", "MINIO_ROOT_PASSWORD": "test-minio-password"}
# Variables of the caller's environment that would change the resolved file.
CALLER_PREFIXES = ("FERRY_", "MINIO_", "POSTGRES_", "COMPOSE_", "AWS_", "ANTHROPIC_", "OPENAI_",
                   "CODEX_", "CLAUDE_")


def compose_command() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"],
                                                 capture_output=True).returncode == 0:
        return ["docker", "compose"]
    pytest.fail("neither docker-compose nor `docker compose` is installed (run scripts/setup.sh)")


def compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(CALLER_PREFIXES)}
    return subprocess.run([*compose_command(), "-f", str(COMPOSE_FILE), *args], cwd=ROOT,
                          env={**clean, **(env if env is not None else REQUIRED)},
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    proc = compose("config")
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)["services"]


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # KEY=VALUE items
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def mounts_of(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(source, target, options) of each volume, from v1's short or v2's long form."""
    out = []
    for v in service.get("volumes") or []:
        if isinstance(v, str):
            parts = v.split(":")
            out.append((parts[0], parts[1] if len(parts) > 1 else parts[0], ",".join(parts[2:])))
        else:
            opts = [v.get("bind", {}).get("propagation", "")] + (["ro"] if v.get("read_only") else [])
            out.append((str(v.get("source", "")), v["target"], ",".join(o for o in opts if o)))
    return out


def command_text(service: dict[str, Any]) -> str:
    parts = []
    for key in ("entrypoint", "command"):
        value = service.get(key) or []
        parts.extend(value if isinstance(value, list) else [value])
    return " ".join(parts)


def with_image(services: dict[str, dict[str, Any]], repository: str) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services.items() if s["image"].rsplit(":", 1)[0] == repository}


def one(found: dict[str, dict[str, Any]], what: str) -> tuple[str, dict[str, Any]]:
    assert len(found) == 1, f"expected one {what}, found {sorted(found)}"
    return next(iter(found.items()))


def ferry_role(services: dict[str, dict[str, Any]], role: str) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services.items()
            if "build" in s and (s.get("command") or [])[:2] == ["ferry", role]}


def test_compose_file_validates() -> None:
    proc = compose("config", "-q")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_compose_file_requires_its_secrets(missing: str) -> None:
    proc = compose("config", "-q", env={k: v for k, v in REQUIRED.items() if k != missing})
    assert proc.returncode != 0
    assert missing in proc.stderr


def test_every_image_is_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service.get("image")
        assert image, f"{name} has no image"
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest", f"{name}: {image} is not pinned"


def test_temporal_on_postgresql_with_its_ui(services: dict[str, dict[str, Any]]) -> None:
    _, server = one(with_image(services, "temporalio/server"), "Temporal server")
    env = env_of(server)
    assert env["DB"] == "postgres12"
    db_name, _ = one(with_image(services, "postgres"), "PostgreSQL")
    assert env["POSTGRES_SEEDS"] == db_name
    # Its schema is set up by a one-shot admin-tools service it waits for.
    setup = [n for n, s in with_image(services, "temporalio/admin-tools").items()
             if "setup-schema" in command_text(s)]
    assert setup and server["depends_on"][setup[0]]["condition"] == "service_completed_successfully"
    _, ui = one(with_image(services, "temporalio/ui"), "Temporal UI")
    assert env_of(ui)["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert ui.get("ports")
    # Every file mounted from the repository exists, and the setup scripts parse.
    for service in services.values():
        for source, _, _ in mounts_of(service):
            if source.startswith(str(ROOT)):
                assert Path(source).exists(), source
    for script in (ROOT / "deploy" / "temporal").glob("*.sh"):
        assert subprocess.run(["sh", "-n", str(script)]).returncode == 0, script


def test_minio_with_its_bucket_created_at_start(services: dict[str, dict[str, Any]]) -> None:
    minio_name, _ = one(with_image(services, "minio/minio"), "MinIO")
    mc_name, mc = one(with_image(services, "minio/mc"), "bucket creation")
    script = command_text(mc)
    assert "mc mb" in script and f"http://{minio_name}:9000" in script
    bucket = env_of(mc)["BUCKET"]
    for name in [*ferry_role(services, "api"), *ferry_role(services, "worker")]:
        env = env_of(services[name])
        assert env["FERRY_ARTIFACTS_URL"].startswith(f"s3://{bucket}/"), name
        assert env["FERRY_S3_ENDPOINT_URL"] == f"http://{minio_name}:9000", name
        assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"], name
        assert env["FERRY_TEMPORAL_ADDRESS"] == "temporal:7233", name
        assert services[name]["depends_on"][mc_name]["condition"] == "service_completed_successfully"


def test_two_stateless_api_replicas_behind_a_load_balancer(services: dict[str, dict[str, Any]]) -> None:
    apis = ferry_role(services, "api")
    replicas = sum(int((s.get("deploy") or {}).get("replicas", 1)) for s in apis.values())
    assert replicas >= 2, f"API replicas: {replicas}"
    for name, api in apis.items():
        env = env_of(api)
        assert env["FERRY_API_HOST"] == "0.0.0.0" and env["FERRY_API_TOKEN"] == REQUIRED["FERRY_API_TOKEN"]
        assert not api.get("volumes"), f"{name} must need no disk of its own: {api['volumes']}"
        assert not api.get("ports"), f"{name}: replicas are reached through the load balancer"
    _, lb = one(with_image(services, "nginx"), "load balancer")
    assert any("8000" in str(p) for p in lb["ports"])
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    for name in apis:
        assert f"server {name}:8000 resolve;" in conf
    assert "proxy_buffering off;" in conf  # server-sent events


def test_worker_drives_the_hosts_docker_with_its_data_dir_at_the_same_path(
        services: dict[str, dict[str, Any]]) -> None:
    workers = ferry_role(services, "worker")
    assert workers
    for name, worker in workers.items():
        env = env_of(worker)
        mounts = mounts_of(worker)
        assert ("/var/run/docker.sock", "/var/run/docker.sock") in [(s, t) for s, t, _ in mounts]
        data_dir = env["FERRY_DATA_DIR"]
        [(source, target, options)] = [m for m in mounts if m[1] == data_dir]
        assert source == target == data_dir, f"{name}: {source} -> {target}"
        assert "rshared" in options  # the worker's DevBox disk mounts must reach the host
        assert worker.get("privileged") is True
        assert env["FERRY_WORKER_HOST"]
        assert env["FERRY_METRICS_HOST"] == "0.0.0.0" and env["FERRY_METRICS_PORT"] == "9464"


def test_api_and_worker_share_no_volume(services: dict[str, dict[str, Any]]) -> None:
    def sources(names: dict[str, dict[str, Any]]) -> set[str]:
        return {source for s in names.values() for source, _, _ in mounts_of(s)}

    shared = sources(ferry_role(services, "api")) & sources(ferry_role(services, "worker"))
    assert not shared
