"""Building the DevBox image `ferry-devbox`: developer tools plus the real agent CLIs.

The CLIs (`claude`, `codex`) are installed from npm on the host into a staging prefix
and copied into the image, so the build itself needs no network. The root filesystem
comes from a Dockerfile build, else (no registry access) from debootstrap with the
machine's own Debian mirror, imported with `docker import`.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

import docker
from docker.errors import BuildError, DockerException, ImageNotFound

# What an agent expects to find: a shell, git, Python, Node.js (the CLIs' runtime and
# the usual JS tooling), a C toolchain, search and HTTP tools.
PACKAGES = ["bash", "coreutils", "git", "python3", "python3-venv", "python3-pip",
            "ca-certificates", "procps", "nodejs", "ripgrep", "curl", "jq", "less",
            "build-essential", "patch", "unzip", "xz-utils", "file", "openssh-client"]
IMAGE_LABEL = "ferry.devbox"
# Bumped whenever the image's contents change; an older image is rebuilt by setup.
IMAGE_VERSION = "3"
VERSION_LABEL = "ferry.devbox.version"
CLIS_LABEL = "ferry.devbox.clis"
# The agent CLIs and their pinned versions: the one place to upgrade them (or pass
# `ferry devbox build-image --cli codex@0.170.0`). Key: the engine; value: npm package.
AGENT_CLIS = {"claude-code": ("@anthropic-ai/claude-code", "2.1.330"),
              "codex": ("@openai/codex", "0.169.0")}
# Turn commands run as this unprivileged user (uid/gid 1000, see docs/security.md).
AGENT_PASSWD = "agent:x:1000:1000:Ferry agent:/home/agent:/bin/bash\n"
AGENT_GROUP = "agent:x:1000:\n"

DOCKERFILE = f"""\
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends {" ".join(PACKAGES)} \\
    && rm -rf /var/lib/apt/lists/* \\
    && groupadd -g 1000 agent && useradd -u 1000 -g 1000 -d /home/agent -s /bin/bash agent
COPY clis/ /usr/local/
WORKDIR /workspace
CMD ["sleep", "infinity"]
"""


class ImageBuildError(Exception):
    pass


def cli_versions(overrides: list[str] | None = None) -> dict[str, str]:
    """The CLI versions to install: the pinned ones, with `engine@version` overrides."""
    versions = {engine: version for engine, (_, version) in AGENT_CLIS.items()}
    for item in overrides or []:
        engine, sep, version = item.partition("@")
        if engine not in AGENT_CLIS or not sep or not re.fullmatch(r"[A-Za-z0-9._-]{1,50}", version):
            raise ImageBuildError(f"--cli {item!r}: expected ENGINE@VERSION with ENGINE one of "
                                  f"{', '.join(AGENT_CLIS)}")
        versions[engine] = version
    return versions


def clis_label(versions: dict[str, str] | None) -> str:
    return ",".join(f"{e}@{v}" for e, v in sorted(versions.items())) if versions else "none"


def image_labels(name: str) -> dict[str, str] | None:
    try:
        return docker.from_env().images.get(name).labels or {}
    except ImageNotFound:
        return None


def image_exists(name: str, versions: dict[str, str] | None = None) -> bool:
    """The image is there, built from this version of its definition (and, when asked,
    with these CLI versions)."""
    labels = image_labels(name)
    if labels is None or labels.get(VERSION_LABEL) != IMAGE_VERSION:
        return False
    return versions is None or labels.get(CLIS_LABEL) == clis_label(versions)


def stage_clis(versions: dict[str, str], dest: Path, log: Callable[[str], None]) -> bool:
    """`npm install -g` the CLIs into `dest` (a /usr/local tree); False when npm cannot."""
    npm = shutil.which("npm")
    if not npm:
        log("npm is not installed on this host: building without the agent CLIs")
        return False
    specs = [f"{AGENT_CLIS[e][0]}@{v}" for e, v in sorted(versions.items())]
    log(f"npm install {' '.join(specs)} (about 20 s)")
    try:
        proc = subprocess.run([npm, "install", "--global", "--prefix", str(dest), "--no-fund",
                               "--no-audit", "--loglevel=error", *specs],
                              capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        log("npm install timed out: building without the agent CLIs")
        return False
    if proc.returncode != 0:
        log(f"npm install failed ({proc.stderr.strip()[-300:]}): building without the agent CLIs")
        return False
    return True


def debian_mirror() -> tuple[str, str]:
    """The machine's own Debian mirror and suite, from its apt sources."""
    texts = [p.read_text() for p in Path("/etc/apt/sources.list.d").glob("*.sources")]
    for text in texts:
        uris = re.search(r"^URIs:\s*(\S+)", text, re.M)
        suites = re.search(r"^Suites:\s*(\S+)", text, re.M)
        if uris and suites and "security" not in uris.group(1):
            return uris.group(1), suites.group(1)
    for p in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*.list")]:
        if p.exists():
            m = re.search(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", p.read_text(), re.M)
            if m and "security" not in m.group(1):
                return m.group(1), m.group(2)
    return "http://deb.debian.org/debian", "bookworm"


def _labels(clis: str) -> dict[str, str]:
    return {IMAGE_LABEL: "1", VERSION_LABEL: IMAGE_VERSION, CLIS_LABEL: clis}


def build_with_dockerfile(name: str, clis_dir: Path, clis: str, log: Callable[[str], None]) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(DOCKERFILE.encode())
        tar.addfile(info, io.BytesIO(DOCKERFILE.encode()))
        tar.add(clis_dir, arcname="clis")
    buf.seek(0)
    try:
        docker.from_env().images.build(fileobj=buf, custom_context=True, tag=name, rm=True,
                                       pull=False, timeout=900, labels=_labels(clis))
    except (BuildError, DockerException) as e:
        raise ImageBuildError(f"Dockerfile build failed: {str(e).strip()[:300]}") from e


def build_with_debootstrap(name: str, clis_dir: Path, clis: str, log: Callable[[str], None]) -> None:
    if not shutil.which("debootstrap"):
        raise ImageBuildError("debootstrap is not installed (apt-get install debootstrap)")
    mirror, suite = debian_mirror()
    with tempfile.TemporaryDirectory(prefix="ferry-rootfs-") as root:
        log(f"debootstrap {suite} from {mirror} (two to three minutes)")
        proc = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", suite,
             root, mirror],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise ImageBuildError(f"debootstrap failed: {proc.stderr.strip()[-500:]}")
        Path(root, "workspace").mkdir(exist_ok=True)
        with open(Path(root, "etc/passwd"), "a") as f:
            f.write(AGENT_PASSWD)
        with open(Path(root, "etc/group"), "a") as f:
            f.write(AGENT_GROUP)
        with open(Path(root, "etc/shadow"), "a") as f:
            f.write("agent:*:19000:0:99999:7:::\n")
        Path(root, "home/agent").mkdir(parents=True, exist_ok=True)
        os.chown(Path(root, "home/agent"), 1000, 1000)
        shutil.rmtree(Path(root, "var/cache/apt/archives"), ignore_errors=True)
        shutil.copytree(clis_dir, Path(root, "usr/local"), symlinks=True, dirs_exist_ok=True)
        log("docker import")
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        changes = ['CMD ["sleep", "infinity"]', "WORKDIR /workspace",
                   *(f"LABEL {k}={v}" for k, v in _labels(clis).items())]
        imp = subprocess.run(
            ["docker", "import", *(a for c in changes for a in ("--change", c)), "-", name],
            stdin=tar.stdout, capture_output=True, text=True,
        )
        tar.wait()
        if imp.returncode != 0:
            raise ImageBuildError(f"docker import failed: {imp.stderr.strip()}")


def build_image(name: str, *, force: bool = False, clis: list[str] | None = None,
                with_clis: bool = True, log: Callable[[str], None] = print) -> str:
    """Build the DevBox image unless present; returns how it was obtained."""
    versions = cli_versions(clis) if with_clis else {}
    if not force and image_exists(name, versions if clis else None):
        return "present"
    with tempfile.TemporaryDirectory(prefix="ferry-clis-") as stage:
        clis_dir = Path(stage)
        clis_dir.chmod(0o755)  # it becomes the image's /usr/local
        if versions and not stage_clis(versions, clis_dir, log):
            versions = {}
        label = clis_label(versions)
        try:
            log("trying a Dockerfile build")
            build_with_dockerfile(name, clis_dir, label, log)
            how = "dockerfile"
        except ImageBuildError as e:
            log(f"{e}; falling back to debootstrap")
            build_with_debootstrap(name, clis_dir, label, log)
            how = "debootstrap"
    log(f"agent CLIs: {label}")
    return how
