"""Engine credentials on the worker, and redacting their values from anything Ferry keeps.

Secrets come from the worker's environment (the names engines declare) and from
`FERRY_SECRETS_FILE` (KEY=VALUE lines). They reach a turn only as process environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from activities.engines.registry import ADAPTERS
from ferry.settings import Settings

KNOWN = sorted({name for a in ADAPTERS.values() for name in a.credentials})
REDACTED = "[REDACTED]"


def load_secrets(settings: Settings) -> dict[str, str]:
    found = {n: os.environ[n] for n in KNOWN if os.environ.get(n)}
    if settings.secrets_file and Path(settings.secrets_file).is_file():
        for line in Path(settings.secrets_file).read_text().splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and key and not key.startswith("#"):
                found[key.strip()] = value.strip().strip('"').strip("'")
    return found


def redact(value: Any, secrets: list[str]) -> Any:
    """`value` with every secret string replaced, through dicts and lists."""
    if not secrets:
        return value
    if isinstance(value, str):
        for s in secrets:
            value = value.replace(s, REDACTED)
        return value
    if isinstance(value, dict):
        return {k: redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, secrets) for v in value]
    return value


def secret_values(settings: Settings) -> list[str]:
    """Every secret value the worker knows (engine keys and Ferry's own tokens), longest
    first so a value containing another is redacted whole."""
    values = set(load_secrets(settings).values()) | {t for t in (
        settings.openai_api_key, settings.github_token, settings.git_token,
        settings.azure_token, settings.api_token,
        # The object store's credentials (read by obstore from the environment).
        os.environ.get("AWS_SECRET_ACCESS_KEY"), os.environ.get("AWS_SESSION_TOKEN")) if t}
    return sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)


class StreamRedactor:
    """Redacts secrets from a byte stream fed in chunks, even across chunk boundaries."""

    def __init__(self, secrets: list[str], write) -> None:
        self.secrets = [s.encode() for s in secrets]
        self.keep = max((len(s) for s in self.secrets), default=1) - 1
        self.write = write
        self.carry = b""

    def feed(self, chunk: bytes) -> None:
        data = self.carry + chunk
        for s in self.secrets:
            data = data.replace(s, REDACTED.encode())
        cut = max(0, len(data) - self.keep)
        if cut:
            self.write(data[:cut])
        self.carry = data[cut:]

    def close(self) -> None:
        if self.carry:
            self.write(self.carry)
        self.carry = b""
