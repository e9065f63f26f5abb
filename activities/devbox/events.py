"""The turn runner's event stream as the host reads it: signed lines, read with hard caps.

The runner (`bin/ferry-runner`) appends one line per event to `events.jsonl`:
`<HMAC-SHA256 hex of JSON> <JSON>`, with a counter `n` inside the JSON. The key is derived
per turn from the DevBox's key, which the host made and handed only to the runner process
(its environment, which the turn's commands cannot read: they run as another user, or
without the runner's capabilities). A line that fails the check was not written by the runner: it is reported
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
BOX_KEY_ENV = "FERRY_BOX_KEY"
MAC_HEX = 64
MAX_LINE = 2 * 1024 * 1024  # the runner never writes longer lines
MAX_READ = 4 * 1024 * 1024  # bytes read from the stream per poll (more than MAX_LINE)
MAX_ALIVE = 256


def new_key() -> str:
    return secrets.token_hex(32)


def derive_turn_key(box_key: str, turn_id: str) -> str:
    """A turn's key from its DevBox's (ferry-runner `serve` derives the same)."""
    return hmac.new(bytes.fromhex(box_key), b"turn " + turn_id.encode(), hashlib.sha256).hexdigest()


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
    return _clean(event)


def _clean(value: Any) -> Any:
    """Lone surrogates (JSON allows `\\ud800`) replaced: they break everything downstream."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8") if not value.isascii() else value
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


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
    overlong: bool = False  # a line longer than the runner ever writes: not its stream


def read_lines(turn: hostio.Beneath, key: str, offset: int, first_index: int,
               cap: int = MAX_READ) -> ReadResult:
    """Complete lines after `offset` (at most `cap` bytes of them), checked one by one.

    A line longer than MAX_LINE, ended or not, cannot be the runner's: reading stops there
    with `overlong` (never scanning on: a sparse file could be terabytes of nothing).
    Raises hostio.UnsafeFile when the file is missing or not a plain file.
    """
    data, size = turn.read_from("events.jsonl", offset, cap)
    out = ReadResult(offset=offset, truncated=size < offset)
    pos, index = 0, first_index
    while True:
        end = data.find(b"\n", pos)
        if (end < 0 and len(data) - pos > MAX_LINE) or (end >= 0 and end - pos > MAX_LINE):
            out.overlong = True
            break
        if end < 0:
            break
        raw = data[pos:end]
        event = verify_line(key, raw)
        out.lines.append(Line(index, offset + end + 1, event,
                              excerpt="" if event else _excerpt(raw[:200]),
                              why="" if event else "not signed by the turn runner"))
        index += 1
        pos = end + 1
    out.offset = offset + pos
    out.more = len(data) >= cap and not out.overlong
    return out


def _excerpt(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")
