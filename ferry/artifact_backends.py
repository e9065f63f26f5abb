"""Where the artifact store's bytes live: a local directory, or an S3 bucket (obstore).

Both speak the same small vocabulary of keys (`runs/<id>/<path>`): put, stream a writer,
get, stream out, size, list in key order from a cursor, delete, download to a file.
A key names a complete object or nothing: a write becomes visible only when it finished.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlparse

# The suffix of a local file still being written (hidden from listings until complete).
PARTIAL = ".ferry-partial"
CHUNK = 256 * 1024
# A writer keeps this much in memory before it spills to a temporary file (S3).
SPOOL_BYTES = 8 * 2**20


class Blobs(Protocol):
    """A flat namespace of immutable objects, keyed by `/`-separated relative names."""

    url: str

    def put(self, key: str, data: bytes) -> None: ...

    def writer(self, key: str) -> AbstractContextManager[BinaryIO]: ...

    def get(self, key: str) -> bytes | None: ...

    def size(self, key: str) -> int | None: ...

    def chunks(self, key: str) -> Iterator[bytes]: ...

    def scan(self, prefix: str, after: str | None = None) -> Iterator[tuple[str, int]]: ...

    def delete(self, keys: list[str]) -> None: ...

    def download(self, key: str, dest: Path) -> bool: ...


class LocalBlobs:
    """Objects as files under a directory; a write goes to `<name>.ferry-partial` and is
    renamed into place when complete."""

    def __init__(self, root: Path, private: bool = False) -> None:
        self.root = root
        self.url = str(root)
        self.mode = 0o600 if private else 0o644

    def _path(self, key: str) -> Path:
        return self.root / key

    def put(self, key: str, data: bytes) -> None:
        with self.writer(key) as f:
            f.write(data)

    @contextmanager
    def writer(self, key: str) -> Iterator[BinaryIO]:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + PARTIAL)
        try:
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, self.mode), "wb") as f:
                yield f
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def size(self, key: str) -> int | None:
        p = self._path(key)
        return p.stat().st_size if p.is_file() else None

    def chunks(self, key: str) -> Iterator[bytes]:
        f = self._path(key).open("rb")  # FileNotFoundError before the first chunk

        def read() -> Iterator[bytes]:
            with f:
                yield from iter(lambda: f.read(CHUNK), b"")
        return read()

    def scan(self, prefix: str, after: str | None = None) -> Iterator[tuple[str, int]]:
        base = self._path(prefix)
        if not base.is_dir():
            return
        keys: list[tuple[str, int]] = []
        for dirpath, _dirs, files in os.walk(base):
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in files:
                if name.endswith(PARTIAL):
                    continue
                key = f"{rel}/{name}"
                if after is None or key > after:
                    try:
                        keys.append((key, os.stat(os.path.join(dirpath, name)).st_size))
                    except FileNotFoundError:
                        continue
        yield from sorted(keys)

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            self._path(key).unlink(missing_ok=True)

    def download(self, key: str, dest: Path) -> bool:
        src = self._path(key)
        if not src.is_file():
            return False
        shutil.copyfile(src, dest)
        return True


class StoreUnavailable(OSError):
    """The object store failed (unreachable, refused the credentials, …): the message says how."""


@contextmanager
def _s3_errors(what: str, key: str) -> Iterator[None]:
    from obstore.exceptions import BaseError, NotFoundError

    try:
        yield
    except (FileNotFoundError, NotFoundError) as e:
        if "NoSuchBucket" not in str(e):
            raise
        raise StoreUnavailable(f"the artifact store could not {what} {key!r}: the bucket does "
                               "not exist (NoSuchBucket)") from None
    except ValueError as e:  # a name the object store refuses (obstore checks its own)
        from ferry.artifact_store import UnsafePath

        raise UnsafePath(f"the artifact store refuses the name {key[:200]!r}: {e}") from None
    except BaseError as e:
        text = str(e)
        first = text.strip().splitlines()[0][:300] if text.strip() else type(e).__name__
        code = re.search(r"<Code>([A-Za-z]{1,64})</Code>", text)
        why = f"{code.group(1)}: {first}" if code else first
        raise StoreUnavailable(f"the artifact store could not {what} {key!r}: {why}") from None


def check(blobs: Blobs, who: str) -> None:
    """Write and read back a small object: raises StoreUnavailable (or OSError) saying why
    this store cannot be used, so a role refuses to start rather than fail Runs later."""
    key = f"health/{who}"
    blobs.put(key, b"ok")
    if blobs.get(key) != b"ok":
        raise StoreUnavailable(f"the artifact store did not give back what was written to {key!r}")


class S3Blobs:
    """Objects in an S3 bucket (AWS, MinIO, any S3 protocol server) under a key prefix.

    Credentials and region come from the usual AWS_* variables; `endpoint` points at a
    non-AWS server (plain http is allowed only for it)."""

    def __init__(self, url: str, endpoint: str | None = None) -> None:
        from obstore.store import S3Store

        self.url = url
        plain_http = bool(endpoint and endpoint.startswith("http://"))
        self.store = S3Store.from_url(url, config={"endpoint": endpoint} if endpoint else None,
                                      client_options={"allow_http": plain_http})

    def put(self, key: str, data: bytes) -> None:
        import obstore

        with _s3_errors("write", key):
            obstore.put(self.store, key, data)

    @contextmanager
    def writer(self, key: str) -> Iterator[BinaryIO]:
        """Spooled locally, uploaded whole when the block succeeds (S3 has no rename, and
        a half-written object must never be visible)."""
        import obstore

        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            yield spool  # type: ignore[misc]
            spool.seek(0)
            with _s3_errors("write", key):
                obstore.put(self.store, key, spool)

    def get(self, key: str) -> bytes | None:
        import obstore

        try:
            with _s3_errors("read", key):
                return bytes(obstore.get(self.store, key).bytes())
        except FileNotFoundError:
            return None

    def size(self, key: str) -> int | None:
        import obstore

        try:
            with _s3_errors("read", key):
                return int(obstore.head(self.store, key)["size"])
        except FileNotFoundError:
            return None

    def chunks(self, key: str) -> Iterator[bytes]:
        import obstore

        with _s3_errors("read", key):
            result = obstore.get(self.store, key)  # FileNotFoundError before the first chunk

        def read() -> Iterator[bytes]:
            with _s3_errors("read", key):
                for chunk in result.stream(min_chunk_size=CHUNK):
                    yield bytes(chunk)
        return read()

    def scan(self, prefix: str, after: str | None = None) -> Iterator[tuple[str, int]]:
        import obstore

        with _s3_errors("list", prefix):
            pages = obstore.list(self.store, prefix.rstrip("/") + "/", offset=after,
                                 chunk_size=1000)
            for page in pages:
                for meta in page:
                    yield meta["path"], int(meta["size"])

    def delete(self, keys: list[str]) -> None:
        import obstore

        for start in range(0, len(keys), 1000):
            with _s3_errors("delete", keys[start]):
                obstore.delete(self.store, keys[start:start + 1000])

    def download(self, key: str, dest: Path) -> bool:
        try:
            stream = self.chunks(key)
        except FileNotFoundError:
            return False
        with dest.open("wb") as out:
            for chunk in stream:
                out.write(chunk)
        return True


def open_blobs(location: str | Path, endpoint: str | None = None) -> LocalBlobs | S3Blobs:
    """`s3://bucket/prefix` or a local directory."""
    text = str(location)
    if text.startswith("s3://"):
        parsed = urlparse(text)
        if not parsed.netloc:
            raise ValueError(f"FERRY_ARTIFACTS_URL {text!r} names no bucket (s3://BUCKET/prefix)")
        return S3Blobs(text, endpoint)
    if "://" in text:
        raise ValueError(f"FERRY_ARTIFACTS_URL {text!r}: use a local path or s3://bucket/prefix")
    return LocalBlobs(Path(text).expanduser())
