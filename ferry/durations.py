"""Durations as users write them: `30s`, `15m`, `2h`, `7d`, `1h30m`, or ISO 8601 (`PT2S`, `P7D`)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_SHORT = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*([wdhms]|ms))+\s*$")
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|[wdhms])")
_ISO = re.compile(
    r"^P(?:(?P<w>\d+(?:\.\d+)?)W)?(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)
MAX_SECONDS = 3650 * 86400.0
_UNITS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(value: Any) -> timedelta:
    """A timedelta from a number of seconds, `15m`-style text, or ISO 8601."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a duration must be like 30s, 15m, 2h, 7d or ISO 8601 (PT2S)")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        iso = _ISO.match(text.upper())
        if text and _SHORT.match(text.lower()):
            seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text.lower()))
        elif iso and text.upper() not in ("P", "PT") and any(iso.groupdict().values()):
            seconds = sum(float(v) * _UNITS[k] for k, v in iso.groupdict().items() if v)
        else:
            shown = repr(value) if len(value) <= 40 else repr(value[:37] + "...")
            raise ValueError(f"{shown} is not a duration: use e.g. 30s, 15m, 2h, 7d or PT2S")
    else:
        raise ValueError("a duration must be like 30s, 15m, 2h, 7d or ISO 8601 (PT2S)")
    if seconds != seconds:  # NaN
        raise ValueError("a duration must be a number of seconds")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if seconds > MAX_SECONDS:
        raise ValueError("a duration cannot be longer than 3650d")
    return timedelta(seconds=seconds)


def format_duration(td: timedelta) -> str:
    seconds = td.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(lambda td: td.total_seconds(), return_type=float, when_used="json"),
]
