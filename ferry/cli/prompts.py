"""Watching a Run live and answering its questions at the terminal."""

from __future__ import annotations

import json
from typing import Any

import typer

from ferry.cli.client import Api, error_message
from ferry.cli.output import err, esc, out, print_step, segment


def _ask_one(q: dict[str, Any]) -> Any:
    """Prompt for one question; returns the answer in the API's shape."""
    out.print(f"[bold yellow]?[/bold yellow] [bold]{esc(q['text'])}[/bold] [dim]({esc(q['id'])})[/dim]")
    default = q.get("default")
    if q["kind"] == "text":
        hint = f" [{default}]" if default else (" (optional)" if not q.get("required", True) else "")
        while True:
            text = typer.prompt(f"  answer{hint}", default=default or "", show_default=False)
            if text or not q.get("required", True):
                return text
            out.print("  [red]an answer is required[/red]")
    options = list(q["options"])
    for i, opt in enumerate(options, 1):
        mark = " [green](recommended)[/green]" if opt == default or (
            isinstance(default, list) and opt in default) else ""
        out.print(f"  {i}. {esc(opt)}{mark}")
    if q.get("allow_other"):
        out.print(f"  {len(options) + 1}. Other (type your own)")
    if isinstance(default, list):
        default_text = ",".join(str(options.index(d) + 1) for d in default)
    else:
        default_text = str(options.index(default) + 1) if default in options else ""
    many = q["kind"] == "multi"
    while True:
        raw = typer.prompt("  choose (numbers, comma-separated)" if many else "  choose",
                           default=default_text, show_default=bool(default_text))
        picks = [x.strip() for x in raw.split(",") if x.strip()] if many else [raw.strip()]
        chosen: list[Any] = []
        ok = True
        for pick in picks:
            if pick.isdigit() and 1 <= int(pick) <= len(options):
                chosen.append(options[int(pick) - 1])
            elif q.get("allow_other") and pick.isdigit() and int(pick) == len(options) + 1:
                chosen.append({"other": typer.prompt("  other")})
            elif pick in options:
                chosen.append(pick)
            else:
                out.print(f"  [red]{esc(repr(pick))} is not one of the numbers above[/red]")
                ok = False
        if ok and chosen:
            return chosen if many else chosen[0]


def answer_interactively(api: Api, run_id: str) -> bool:
    """Prompt for every pending question and send the answers; False if nothing to answer."""
    run = api.json("GET", f"/runs/{segment(run_id)}")
    if run["status"] != "waiting_for_input" or not run.get("questions"):
        return False
    while True:
        answers = {q["id"]: _ask_one(q) for q in run["questions"]["questions"]}
        r = api.http.post(f"/runs/{segment(run_id)}/answers", json={"answers": answers})
        if r.status_code < 400:
            out.print("[green]answers sent[/green]")
            return True
        err.print(f"[red]error:[/red] {esc(error_message(r))}")
        if r.status_code == 409:
            return False


def watch_run(api: Api, run_id: str, answer: bool = False) -> str:
    """Print steps live; with `answer`, prompt for questions when the Run pauses, then go
    on from the last step printed."""
    status = "pending"
    last_seq = 0
    while True:
        paused = False
        for event, data in api.sse(f"/runs/{segment(run_id)}/events",
                                   params={"after": last_seq}):
            if event == "step":
                step = json.loads(data)
                last_seq = max(last_seq, int(step["seq"]))
                print_step(step)
            elif event in ("status", "end"):
                status = json.loads(data)["status"]
                if event == "end":
                    return status
                if status == "waiting_for_input":
                    if answer:
                        paused = True
                        break
                    out.print(f"[yellow]waiting for input[/yellow]: answer with "
                              f"`ferry answer {esc(run_id)}`")
        if not paused:
            return status
        answer_interactively(api, run_id)
