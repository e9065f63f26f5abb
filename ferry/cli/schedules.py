"""Commands on schedules and webhook triggers."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from ferry.cli.apps import schedule_app, trigger_app
from ferry.cli.client import Api
from ferry.cli.output import esc, fail, out, segment, status_text


def _run_body(instructions: str, target: str | None, engine: str, image: str | None,
              keep_alive: str | None = None, repo: str | None = None,
              branch: str | None = None, title: str | None = None) -> dict:
    body: dict[str, Any] = {"instructions": instructions, "engine": engine, "mode": "autonomous"}
    for key, value in (("target", target), ("image", image), ("keep_alive", keep_alive),
                       ("repo", repo), ("branch", branch), ("title", title)):
        if value:
            body[key] = value
    return body


# API field → the option that sets it, for error messages.
FLAGS = {"name": "NAME", "instructions": "INSTRUCTIONS", "secret": "--secret",
         **{f: "--" + f.replace("_", "-") for f in (
             "target", "repo", "branch", "title", "keep_alive", "engine", "image", "cron",
             "every", "at", "time_zone", "overlap")}}


def _seconds(value: Any) -> str:
    """A duration as the API returns it (seconds, or ISO 8601) in the short form: 1h30m."""
    if not isinstance(value, int | float):
        return str(value)
    left, text = float(value), ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if left >= size:
            text += f"{int(left // size)}{unit}"
            left %= size
    return text + (f"{left:g}s" if left or not text else "")


def _spec_text(spec: dict[str, Any]) -> str:
    if spec.get("cron"):
        return f"cron {spec['cron']} ({spec.get('time_zone') or 'UTC'})"
    if spec.get("interval"):
        return f"every {_seconds(spec['interval'].get('every'))}"
    if spec.get("at"):
        return f"once at {spec['at']}"
    return json.dumps(spec)


def _state(sc: dict[str, Any]) -> str:
    return "paused" if sc["paused"] else "finished" if sc["finished"] else "active"


def _print_schedule(sc: dict[str, Any]) -> None:
    run = sc.get("run") or {}
    out.print(f"[bold]{esc(sc['id'])}[/bold]  {_state(sc)}  {esc(_spec_text(sc['spec']))}")
    out.print(f"  runs: {esc(run.get('engine') or 'script')} on {esc(run.get('target') or '?')}"
              + (f", repo {esc(run['repo'])}" if run.get("repo") else "")
              + (f" ({esc(run['branch'])})" if run.get("branch") else "")
              + f"; {sc.get('num_actions', 0)} started")
    instructions = str(run.get("instructions") or "").strip().splitlines()
    if instructions:
        out.print(f"  task: {esc(instructions[0][:100])}{' …' if len(instructions) > 1 else ''}")
    if sc.get("note"):
        out.print(f"  note: {esc(sc['note'])}")
    for t in sc["next_action_times"]:
        out.print(f"  next: {esc(t)}")
    for r in sc.get("recent_runs", []):
        out.print(f"  run {esc(r['id'])}  {status_text(r['status'])}")


@schedule_app.command("create")
def schedule_create(
    name: str,
    instructions: str,
    target: Annotated[str | None, typer.Option(help="Worker host (required).")] = None,
    cron: Annotated[str | None, typer.Option(help="5-field cron expression.")] = None,
    time_zone: Annotated[str, typer.Option(help="IANA time zone for --cron.")] = "UTC",
    every: Annotated[str | None, typer.Option(help="Interval, e.g. 15m.")] = None,
    at: Annotated[str | None, typer.Option(help="One time, ISO 8601.")] = None,
    engine: Annotated[str, typer.Option()] = "script",
    image: Annotated[str | None, typer.Option()] = None,
    overlap: Annotated[str, typer.Option(help="skip|buffer_one|buffer_all|cancel_other|allow_all")] = "skip",
    paused: Annotated[bool, typer.Option("--paused")] = False,
    keep_alive: Annotated[str | None, typer.Option(
        help="Keep each Run's DevBox this long for follow-ups and review, e.g. 2h "
             "(default: none for scheduled Runs).")] = None,
    repo: Annotated[str | None, typer.Option(help="Git repository each Run clones.")] = None,
    branch: Annotated[str | None, typer.Option(help="Branch to start from.")] = None,
    title: Annotated[str | None, typer.Option(help="Title of each Run.")] = None,
) -> None:
    """Create a schedule of autonomous Runs."""
    spec: dict[str, Any] = {}
    if sum(x is not None for x in (cron, every, at)) != 1:
        fail("give exactly one of --cron, --every and --at")
    if cron:
        spec = {"cron": cron, "time_zone": time_zone}
    elif every:
        spec = {"interval": {"every": every}}
    elif at:
        spec = {"at": at}
    body = {"name": name, "run": _run_body(instructions, target, engine, image, keep_alive,
                                           repo, branch, title),
            "spec": spec,
            "overlap": overlap, "paused": paused}
    _print_schedule(Api().json("POST", "/schedules", FLAGS, json=body))


@schedule_app.command("ls")
def schedule_ls() -> None:
    """List schedules: one line each (`ferry schedule show NAME` for the rest)."""
    schedules = Api().json("GET", "/schedules")
    if not schedules:
        out.print("[dim]no schedules[/dim]")
    for sc in schedules:
        nxt = sc["next_action_times"][0][:19] if sc["next_action_times"] else "-"
        out.print(f"[bold]{esc(sc['id'])}[/bold]  {_state(sc)}  {esc(_spec_text(sc['spec']))}"
                  f"  next {esc(nxt)}  {sc.get('num_actions', 0)} Runs")


@schedule_app.command("show")
def schedule_show(schedule_id: str) -> None:
    """A schedule: spec, state, next fire times, recent Runs."""
    _print_schedule(Api().json("GET", f"/schedules/{segment(schedule_id, 'schedule id')}"))


@schedule_app.command("pause")
def schedule_pause(schedule_id: str) -> None:
    _print_schedule(Api().json("POST", f"/schedules/{segment(schedule_id, 'schedule id')}/pause"))


@schedule_app.command("resume")
def schedule_resume(schedule_id: str) -> None:
    _print_schedule(Api().json("POST", f"/schedules/{segment(schedule_id, 'schedule id')}/unpause"))


@schedule_app.command("trigger")
def schedule_trigger(schedule_id: str) -> None:
    """Start one Run now."""
    Api().json("POST", f"/schedules/{segment(schedule_id, 'schedule id')}/trigger")
    out.print(f"triggered {esc(schedule_id)}")


@schedule_app.command("rm")
def schedule_rm(schedule_id: str) -> None:
    Api().request("DELETE", f"/schedules/{segment(schedule_id, 'schedule id')}")
    out.print(f"deleted {esc(schedule_id)}")


@trigger_app.command("create")
def trigger_create(
    name: str,
    instructions: str,
    secret: Annotated[str, typer.Option(help="HMAC secret (shown nowhere after this).")],
    target: Annotated[str | None, typer.Option(help="Worker host (required).")] = None,
    event: Annotated[str | None, typer.Option(help="Only this X-GitHub-Event.")] = None,
    action: Annotated[str | None, typer.Option(help="Only payloads with this action.")] = None,
    engine: Annotated[str, typer.Option()] = "script",
    keep_alive: Annotated[str | None, typer.Option(
        help="Keep each Run's DevBox this long for follow-ups and review, e.g. 2h "
             "(default: 30m).")] = None,
    repo: Annotated[str | None, typer.Option(help="Git repository each Run clones.")] = None,
    branch: Annotated[str | None, typer.Option(help="Branch to start from.")] = None,
    title: Annotated[str | None, typer.Option(
        help="Title of each Run ({{payload.…}} placeholders are filled in).")] = None,
) -> None:
    """Create a webhook trigger at /hooks/NAME."""
    flt: dict[str, Any] = {"headers": {}, "payload": {}}
    if event:
        flt["headers"]["X-GitHub-Event"] = event
    if action:
        flt["payload"]["action"] = action
    t = Api().json("POST", "/triggers", FLAGS, json={"name": name, "secret": secret, "filter": flt,
                                              "run": _run_body(instructions, target, engine,
                                                               None, keep_alive, repo, branch,
                                                               title)})
    out.print(f"trigger {esc(t['name'])}: POST {esc(Api().url)}{esc(t['hook_url'])}")


@trigger_app.command("ls")
def trigger_ls() -> None:
    for t in Api().json("GET", "/triggers"):
        out.print(f"[bold]{esc(t['name'])}[/bold]  {esc(t['hook_url'])}  "
                  f"filter {esc(json.dumps(t['filter']))}")


@trigger_app.command("rm")
def trigger_rm(name: str) -> None:
    Api().request("DELETE", f"/triggers/{segment(name, 'trigger name')}")
    out.print(f"deleted trigger {esc(name)}")
