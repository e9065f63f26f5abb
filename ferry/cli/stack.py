"""`ferry up`, `ferry worker`, `ferry api`, `ferry devbox build-image`: running Ferry itself."""

from __future__ import annotations

from typing import Annotated

import typer

from ferry.cli.apps import app, devbox_app
from ferry.cli.output import esc, fail, out
from ferry.settings import get_settings


@app.command()
def up() -> None:
    """Start the embedded stack: Temporal dev server, a worker and the API. Ctrl-C stops it."""
    from ferry.launcher import LaunchError, Stack

    stack = Stack(get_settings(), echo=lambda m: out.print(f"[dim]{esc(m)}[/dim]"))
    try:
        stack.start()
    except LaunchError as e:
        stack.stop()
        fail(str(e))
    for name, url in stack.urls().items():
        out.print(f"[bold]{name:>12}[/bold]  {esc(url)}")
    out.print("[dim]Ferry is up; Ctrl-C stops it.[/dim]")
    died = stack.watch()
    stack.stop()
    if died:
        fail(f"the {died} process exited; see {get_settings().logs_dir / (died + '.log')}")
    out.print("stopped")


@app.command()
def worker() -> None:
    """Run a worker for this host (workflows + DevBox activities)."""
    from worker.main import main as worker_main

    worker_main()


@app.command()
def api() -> None:
    """Run the HTTP API alone (FERRY_API_HOST/PORT)."""
    from api.main import main as api_main

    api_main()


@devbox_app.command("build-image")
def build_image(
    name: Annotated[str | None, typer.Option(help="Image name (default FERRY_DEVBOX_IMAGE).")] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even if present.")] = False,
    cli: Annotated[list[str] | None, typer.Option(
        help="Install this version of an agent CLI, e.g. --cli codex@0.170.0 (repeatable; "
             "rebuilds when the image has another).")] = None,
    clis: Annotated[bool, typer.Option(help="Install the agent CLIs (claude, codex) from npm.")] = True,
) -> None:
    """Build the DevBox image (developer tools and the agent CLIs): a Dockerfile build, else
    debootstrap + docker import."""
    from docker.errors import DockerException

    from ferry.devbox_image import ImageBuildError
    from ferry.devbox_image import build_image as build

    image = name or get_settings().devbox_image
    try:
        how = build(image, force=force, clis=cli, with_clis=clis,
                    log=lambda m: out.print(f"[dim]{esc(m)}[/dim]"))
    except (ImageBuildError, DockerException) as e:
        fail(f"could not build {image}: {e}")
    out.print(esc(f"{image}: {'already present' if how == 'present' else 'built (' + how + ')'}"))
