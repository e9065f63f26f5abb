"""A real S3 protocol server on loopback (moto's server mode) for the object-store tests.

Speaks the S3 REST API over HTTP like MinIO or AWS; Ferry reaches it through its real
client (obstore) with FERRY_S3_ENDPOINT_URL and the usual AWS_* variables.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "ferry-test", "AWS_SECRET_ACCESS_KEY": "ferry-test-secret",
               "AWS_REGION": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    def __init__(self, log: Path) -> None:
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self) -> S3Server:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **CREDENTIALS}, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto server exited: {self.log.read_text()[-2000:]}")
            try:
                httpx.get(self.endpoint, timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("moto server did not answer in 30 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def bucket(self, name: str | None = None) -> str:
        """A new empty bucket; its name."""
        name = name or f"ferry-{uuid.uuid4().hex[:12]}"
        r = httpx.put(f"{self.endpoint}/{name}", timeout=10)
        r.raise_for_status()
        return name

    def env(self, url: str) -> dict[str, str]:
        """What a Ferry process needs to use `url` (s3://bucket/prefix) on this server."""
        return {"FERRY_ARTIFACTS_URL": url, "FERRY_S3_ENDPOINT_URL": self.endpoint, **CREDENTIALS}

    def keys(self, bucket: str) -> list[str]:
        """Every key in the bucket (through the real client, not moto's internals)."""
        from obstore import list as list_objects
        from obstore.store import S3Store

        store = S3Store(bucket, config={"endpoint": self.endpoint,
                                        "access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
                                        "secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                                        "region": CREDENTIALS["AWS_REGION"]},
                        client_options={"allow_http": True})
        return [m["path"] for page in list_objects(store) for m in page]
