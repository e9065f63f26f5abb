"""One Docker exec, read with a deadline: what a DevBox prints can neither fill the
worker's memory nor hold one of its threads.

Docker multiplexes an exec's stdout and stderr on one socket (an 8-byte header per
frame: stream id, then length). docker-py's own reader waits without a limit, so a
program in the DevBox that keeps the socket open and quiet (a hanging git filter, a
daemonised child holding stdout) would block the reading thread for good. This reader
polls with the time left and gives up at the deadline, closing the socket.
"""

from __future__ import annotations

import select
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

HEADER = struct.Struct(">BxxxL")
STDOUT, STDERR = 1, 2
CHUNK = 1 << 16
# A program writing a byte at a time would cost the host a read and a frame per byte.
# After a small piece the reader waits a moment: the output piles up in the DevBox's pipe
# and arrives in larger frames (or the writer blocks), at no cost to ordinary output.
SMALL, PAUSE = 1024, 0.005


class ExecDeadline(Exception):
    """The exec's output did not end before the deadline."""


def _read(sock: Any, n: int, deadline: float) -> bytes:
    """Up to n bytes; b"" at end of stream. Raises ExecDeadline when time is up."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise ExecDeadline
    ready, _, _ = select.select([sock], [], [], left)
    if not ready:
        raise ExecDeadline
    if hasattr(sock, "recv"):
        return sock.recv(n)
    return sock.read(n) or b""


def _exactly(sock: Any, n: int, deadline: float) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        data = _read(sock, n - len(buf), deadline)
        if not data:
            break
        buf += data
    return bytes(buf)


def frames(sock: Any, deadline: float) -> Iterator[tuple[int, bytes]]:
    """(stream id, data) pieces until the exec's output ends or the deadline passes."""
    while True:
        header = _exactly(sock, HEADER.size, deadline)
        if len(header) < HEADER.size:
            return
        stream, size = HEADER.unpack(header)
        while size > 0:
            data = _read(sock, min(size, CHUNK), deadline)
            if not data:
                return
            size -= len(data)
            yield stream, data
            if len(data) < SMALL:
                time.sleep(PAUSE)


Ending = Literal["ended", "stopped", "deadline"]


def pump(sock: Any, deadline: float, on_out: Callable[[bytes], bool],
         on_err: Callable[[bytes], object]) -> Ending:
    """Feed the exec's output to the callbacks until it ends, `on_out` returns False
    ("stopped") or the deadline passes. The socket is closed either way."""
    try:
        for stream, data in frames(sock, deadline):
            if stream == STDERR:
                on_err(data)
            elif on_out(data) is False:
                return "stopped"
        return "ended"
    except ExecDeadline:
        return "deadline"
    finally:
        try:
            sock.close()
        except OSError:
            pass
