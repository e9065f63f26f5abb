"""The Typer apps every command registers on (`ferry`, and its groups)."""

from __future__ import annotations

import typer

# rich_markup_mode=None: usage errors are one plain line ("Error: Invalid value for
# '--limit': …"), like every other error of the CLI, not a box.
app = typer.Typer(help="Ferry: run AI coding agents on real work.", no_args_is_help=True,
                  pretty_exceptions_enable=False, rich_markup_mode=None)
devbox_app = typer.Typer(help="DevBox images and containers.", no_args_is_help=True)
schedule_app = typer.Typer(help="Schedules: Runs on cron, interval or once.", no_args_is_help=True)
trigger_app = typer.Typer(help="Triggers: webhooks that start Runs.", no_args_is_help=True)
app.add_typer(devbox_app, name="devbox")
app.add_typer(schedule_app, name="schedule")
app.add_typer(trigger_app, name="trigger")
