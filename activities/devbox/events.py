"""The turn runner's event stream as the host reads it: signed lines, read with hard caps.

The runner (`bin/ferry-runner`) appends one line per event to `events.jsonl`:
`<HMAC-SHA256 hex of JSON> <JSON>`, with a counter `n` inside the JSON. The key is made
per turn by the host and handed only to the runner process (its environment, which the
turn's commands cannot read: they run as another user, or without the runner's
capabilities). A line that fails the check was not written by the runner: it is reported
as tampering and never becomes a step. A missing `n` means lines were removed.
The runner also refreshes `alive` with a signed timestamp, so liveness cannot be faked.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from activities.devbox import hostio

KEY_ENV = "FERRY_TURN_KEY"
MAC_HEX = 64
MAX_LINE = 1024 * 1024  # the runner never writes longer lines
MAX_READ = 4 * 1024 * 1024  # bytes read from the stream per poll
MAX_ALIVE = 256


def new_key() -> str:
    return secrets.token_hex(32)


def sign(key: str, body: bytes) -> bytes:
    return hmac.new(bytes.fromhex(key), body, hashlib.sha256).hexdigest().encode()


def verify_line(key: str, line: bytes) -> dict[str, Any] | None:
    """The event a line holds if the runner signed it, else None."""
    if len(line) < MAC_HEX + 3 or line[MAC_HEX:MAC_HEX + 1] != b" ":
        return None
    body = line[MAC_HEX + 1:]
    if not hmac.compare_digest(line[:MAC_HEX], sign(key, body)):
        return None
    try:
        event = json.loads(body)
    except ValueError:
        return None
    if not isinstance(event, dict) or type(event.get("n")) is not int:
        return None
    return event


def verify_alive(key: str, data: bytes) -> float | None:
    """The runner's last signed heartbeat time, or None when absent or forged."""
    try:
        stamp, mac = data.strip().split(b" ", 1)
        ts = float(stamp)
    except ValueError:
        return None
    if not hmac.compare_digest(mac, sign(key, b"alive " + stamp)):
        return None
    return ts


@dataclass
class Line:
    """One physical line of the stream: its index, and the event if it is authentic."""

    index: int
    end: int  # stream offset just after this line
    event: dict[str, Any] | None
    excerpt: str = ""
    why: str = ""


@dataclass
class ReadResult:
    lines: list[Line] = field(default_factory=list)
    offset: int = 0
    more: bool = False
    truncated: bool = False  # the file shrank below what was already read


def read_lines(turn: hostio.Beneath, key: str, offset: int, first_index: int,
               cap: int = MAX_READ) -> ReadResult:
    """Complete lines after `offset` (at most `cap` bytes of them), checked one by one.

    A line longer than MAX_LINE is skipped whole without being buffered: it cannot be
    the runner's. Raises hostio.UnsafeFile when the file is missing or not a plain file.
    """
    data, size = turn.read_from("events.jsonl", offset, cap)
    out = ReadResult(offset=offset, truncated=size < offset)
    pos, index = 0, first_index
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            if len(data) - pos >= MAX_LINE:
                skipped = _skip_long_line(turn, offset + pos)
                if skipped is None:  # no end yet: come back when the line is complete
                    break
                out.lines.append(Line(index, offset + pos + skipped, None,
                                      excerpt=_excerpt(data[pos:pos + 200]),
                                      why=f"line longer than {MAX_LINE} bytes"))
                index += 1
                out.offset = offset + pos + skipped
                out.more = True
                return out
            break
        raw = data[pos:end]
        if len(raw) > MAX_LINE:
            out.lines.append(Line(index, offset + end + 1, None, excerpt=_excerpt(raw[:200]),
                                  why=f"line longer than {MAX_LINE} bytes"))
        else:
            event = verify_line(key, raw)
            out.lines.append(Line(index, offset + end + 1, event,
                                  excerpt="" if event else _excerpt(raw[:200]),
                                  why="" if event else "not signed by the turn runner"))
        index += 1
        pos = end + 1
    out.offset = offset + pos
    out.more = len(data) >= cap
    return out


def _skip_long_line(turn: hostio.Beneath, start: int) -> int | None:
    """Bytes up to and including the newline ending the line at `start`, if it has ended."""
    pos = start
    while True:
        chunk, _ = turn.read_from("events.jsonl", pos, hostio.CHUNK)
        if not chunk:
            return None
        end = chunk.find(b"\n")
        if end >= 0:
            return pos + end + 1 - start
        pos += len(chunk)


def _excerpt(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")
