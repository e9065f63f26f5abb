"""Building the DevBox base image `ferry-devbox`: a Dockerfile build, else debootstrap + import.

Machines without registry access cannot pull `debian:bookworm-slim`; then the root
filesystem is built with debootstrap from the machine's own Debian mirror and imported.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import docker
from docker.errors import BuildError, DockerException, ImageNotFound

PACKAGES = ["bash", "coreutils", "git", "python3", "ca-certificates", "procps"]
IMAGE_LABEL = "ferry.devbox"
# Bumped whenever the image's contents change; an older image is rebuilt by setup.
IMAGE_VERSION = "2"
VERSION_LABEL = "ferry.devbox.version"
# Turn commands run as this unprivileged user (uid/gid 1000, see docs/security.md).
AGENT_PASSWD = "agent:x:1000:1000:Ferry agent:/home/agent:/bin/bash\n"
AGENT_GROUP = "agent:x:1000:\n"

DOCKERFILE = f"""\
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends {" ".join(PACKAGES)} \\
    && rm -rf /var/lib/apt/lists/* \\
    && groupadd -g 1000 agent && useradd -u 1000 -g 1000 -d /home/agent -s /bin/bash agent
LABEL {IMAGE_LABEL}=1 {VERSION_LABEL}={IMAGE_VERSION}
WORKDIR /workspace
CMD ["sleep", "infinity"]
"""


class ImageBuildError(Exception):
    pass


def image_exists(name: str) -> bool:
    """The image is there and built from this version of its definition."""
    try:
        labels = docker.from_env().images.get(name).labels or {}
    except ImageNotFound:
        return False
    return labels.get(VERSION_LABEL) == IMAGE_VERSION


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


def build_with_dockerfile(name: str, log: Callable[[str], None]) -> None:
    client = docker.from_env()
    try:
        client.images.build(fileobj=io.BytesIO(DOCKERFILE.encode()), tag=name, rm=True,
                            pull=False, timeout=600)
    except (BuildError, DockerException) as e:
        raise ImageBuildError(f"Dockerfile build failed: {str(e).strip()[:300]}") from e


def build_with_debootstrap(name: str, log: Callable[[str], None]) -> None:
    if not shutil.which("debootstrap"):
        raise ImageBuildError("debootstrap is not installed (apt-get install debootstrap)")
    mirror, suite = debian_mirror()
    with tempfile.TemporaryDirectory(prefix="ferry-rootfs-") as root:
        log(f"debootstrap {suite} from {mirror} (about a minute)")
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
        log("docker import")
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        imp = subprocess.run(
            ["docker", "import", "--change", 'CMD ["sleep", "infinity"]',
             "--change", "WORKDIR /workspace", "--change", f"LABEL {IMAGE_LABEL}=1",
             "--change", f"LABEL {VERSION_LABEL}={IMAGE_VERSION}", "-", name],
            stdin=tar.stdout, capture_output=True, text=True,
        )
        tar.wait()
        if imp.returncode != 0:
            raise ImageBuildError(f"docker import failed: {imp.stderr.strip()}")


def build_image(name: str, *, force: bool = False, log: Callable[[str], None] = print) -> str:
    """Build the DevBox image unless present; returns how it was obtained."""
    if not force and image_exists(name):
        return "present"
    try:
        log("trying a Dockerfile build")
        build_with_dockerfile(name, log)
        return "dockerfile"
    except ImageBuildError as e:
        log(f"{e}; falling back to debootstrap")
    build_with_debootstrap(name, log)
    return "debootstrap"
