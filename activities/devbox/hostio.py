"""Reading files a DevBox wrote, without trusting them: no symlinks, regular files only, capped.

Every host-side read of a DevBox-writable directory goes through here. A path is walked
one component at a time from a directory the host created itself, each component opened
with O_NOFOLLOW (a planted symlink fails instead of being followed), the file must be a
regular file (a FIFO or device is refused instead of blocking or streaming forever), and
every read has a byte cap. Writes into DevBox-visible places never go through here: the
host writes only into directories the DevBox cannot write (see DevBoxLayout).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
CHUNK = 1024 * 1024


class UnsafeFile(Exception):
    """The DevBox-written path is missing, a link, not a regular file, or otherwise refused."""


def _parts(rel: str) -> list[str]:
    parts = rel.split("/")
    if not rel or any(p in ("", ".", "..") or "\x00" in p for p in parts):
        raise UnsafeFile(f"refusing path {rel[:80]!r}")
    return parts


@contextmanager
def open_beneath(root: Path, rel: str, *, directory: bool = False) -> Iterator[int]:
    """A file descriptor for `root/rel`, opened without following any link under `root`.

    `root` itself must be a directory the host created and the DevBox cannot replace.
    """
    parts = _parts(rel)
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise UnsafeFile(f"{root}: {e.strerror}") from e
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt = os.open(part, _FILE if last and not directory else _DIR, dir_fd=fd)
            os.close(fd)
            fd = nxt
        if not directory and not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafeFile(f"{rel[:80]!r} is not a regular file")
    except OSError as e:
        os.close(fd)
        raise UnsafeFile(f"{rel[:80]!r}: {e.strerror}") from e
    except UnsafeFile:
        os.close(fd)
        raise
    try:
        yield fd
    finally:
        os.close(fd)


def size(root: Path, rel: str) -> int:
    with open_beneath(root, rel) as fd:
        return os.fstat(fd).st_size


def read_capped(root: Path, rel: str, cap: int) -> tuple[bytes, bool]:
    """Up to `cap` bytes from the start of the file, and whether there was more."""
    with open_beneath(root, rel) as fd:
        data = _read_at(fd, 0, cap + 1)
    return data[:cap], len(data) > cap


def read_tail(root: Path, rel: str, cap: int) -> bytes:
    """The last `cap` bytes of the file."""
    with open_beneath(root, rel) as fd:
        end = os.fstat(fd).st_size
        return _read_at(fd, max(0, end - cap), cap)


def read_from(root: Path, rel: str, offset: int, cap: int) -> tuple[bytes, int]:
    """Up to `cap` bytes from `offset`, and the file's size when read."""
    with open_beneath(root, rel) as fd:
        end = os.fstat(fd).st_size
        return _read_at(fd, offset, cap), end


def copy_capped(root: Path, rel: str, write: Callable[[bytes], object], cap: int) -> tuple[int, int]:
    """Stream the file into `write`, at most `cap` bytes: (bytes copied, file size)."""
    with open_beneath(root, rel) as fd:
        total = os.fstat(fd).st_size
        copied = 0
        while copied < cap:
            chunk = os.pread(fd, min(CHUNK, cap - copied), copied)
            if not chunk:
                break
            write(chunk)
            copied += len(chunk)
    return copied, total


def mtime(root: Path, rel: str) -> float | None:
    """Modification time of a regular file (no links followed), or None."""
    try:
        with open_beneath(root, rel) as fd:
            return os.fstat(fd).st_mtime
    except UnsafeFile:
        return None


class Beneath:
    """Files under `prefix` of a host-created `root`, every component of `prefix` included
    opened without following links (a DevBox may replace its own dirs with links)."""

    def __init__(self, root: Path, prefix: str) -> None:
        self.root = root
        self.prefix = prefix.strip("/")

    def rel(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def read_capped(self, name: str, cap: int) -> tuple[bytes, bool]:
        return read_capped(self.root, self.rel(name), cap)

    def read_tail(self, name: str, cap: int) -> bytes:
        return read_tail(self.root, self.rel(name), cap)

    def read_from(self, name: str, offset: int, cap: int) -> tuple[bytes, int]:
        return read_from(self.root, self.rel(name), offset, cap)

    def copy_capped(self, name: str, write: Callable[[bytes], object], cap: int) -> tuple[int, int]:
        return copy_capped(self.root, self.rel(name), write, cap)


def _read_at(fd: int, offset: int, cap: int) -> bytes:
    out = bytearray()
    while len(out) < cap:
        chunk = os.pread(fd, min(CHUNK, cap - len(out)), offset + len(out))
        if not chunk:
            break
        out += chunk
    return bytes(out)
