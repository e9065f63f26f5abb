"""A disk quota per DevBox: a sparse ext4 image, loop-mounted, holding everything it can write.

Docker's own per-container size limit needs overlay2 on XFS with project quotas, which
most hosts (this one included: ext4) do not have. Instead each DevBox gets a filesystem
of its own: `disk.img` (sparse: it costs only what is written) formatted ext4 and mounted
with `-o loop,nosuid,nodev` at the DevBox's `mnt/`. The workspace, home, tmp dirs and
Ferry's in/out dirs are bind-mounted from it, and the container's root filesystem is
read-only for unprivileged turns, so a full disk is ENOSPC inside that DevBox only.
It also keeps the host's data-dir path out of the DevBox's /proc/self/mountinfo.

Needs root and loop devices on the worker host; without them (or with
FERRY_DEVBOX_DISK=0) DevBoxes get plain directories and no quota, and the worker says so.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

log = logging.getLogger("ferry.devbox.disk")

IMAGE = "disk.img"


class DiskError(Exception):
    pass


def quota_supported() -> str | None:
    """Why per-DevBox filesystems cannot be used on this host, or None when they can."""
    if os.geteuid() != 0:
        return "the worker does not run as root (loop mounts need root)"
    for tool in ("mkfs.ext4", "mount", "umount"):
        if not shutil.which(tool):
            return f"`{tool}` is not installed"
    if not Path("/dev/loop-control").exists():
        return "this host has no loop devices (/dev/loop-control)"
    return None


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"})
    if proc.returncode != 0:
        raise DiskError(f"{argv[0]} failed: {(proc.stderr or proc.stdout).strip()[-300:]}")


def mount_quota_fs(root: Path, mnt: Path, size_bytes: int) -> None:
    """Create (first time) and mount (if not mounted) the DevBox's own filesystem at `mnt`."""
    if os.path.ismount(mnt):
        return
    mnt.mkdir(parents=True, exist_ok=True)
    image = root / IMAGE
    if not image.exists():
        tmp = root / (IMAGE + ".new")
        with open(tmp, "wb") as f:
            f.truncate(size_bytes)
        # Lazy init: a sparse, new image reads as zeros, so nothing needs zeroing now.
        _run(["mkfs.ext4", "-q", "-F", "-m", "0", "-E",
              "lazy_itable_init=1,lazy_journal_init=1", "-L", "ferry-devbox", str(tmp)])
        os.replace(tmp, image)
    _run(["mount", "-o", "loop,nosuid,nodev,noinit_itable", str(image), str(mnt)])


def unmount_quota_fs(root: Path, mnt: Path) -> None:
    if os.path.ismount(mnt):
        try:
            _run(["umount", str(mnt)])
        except DiskError:
            # Something still holds it (a container being removed): detach it lazily.
            _run(["umount", "-l", str(mnt)])
    (root / IMAGE).unlink(missing_ok=True)


def usage(mnt: Path) -> tuple[int, int] | None:
    """(bytes used, bytes total) of a mounted quota filesystem."""
    if not os.path.ismount(mnt):
        return None
    st = os.statvfs(mnt)
    return (st.f_blocks - st.f_bfree) * st.f_frsize, st.f_blocks * st.f_frsize
