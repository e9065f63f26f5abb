"""The `ferry` command line: talks to the HTTP API at FERRY_URL (and runs the embedded stack).

One module per concern: the HTTP client, output, live watching and prompts, and the
commands by resource (runs, schedules and triggers, the stack itself).
"""

from __future__ import annotations

import sys

from rich.markup import escape

from ferry.cli import runs, schedules, stack  # noqa: F401  (they register their commands)
from ferry.cli.apps import app
from ferry.cli.output import err
from ferry.settings import SettingsError

__all__ = ["app", "main"]


def main() -> None:
    try:
        app(prog_name="ferry")
    except SettingsError as e:
        err.print(f"[red]error:[/red] {escape(str(e))}")
        sys.exit(2)
