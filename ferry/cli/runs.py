"""Commands on Runs: run, ls, show, logs, timeline, answer, say, diff, artifacts, review, cancel, release."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.table import Table

from ferry.cli.apps import app
from ferry.cli.client import Api, resolve_run_id
from ferry.cli.logs import follow_output
from ferry.cli.output import (
    STATUS_STYLE,
    ago,
    err,
    esc,
    fail,
    out,
    print_step,
    segment,
    short_ids,
    status_text,
)
from ferry.cli.prompts import answer_interactively, watch_run


def _resolve(ctx: typer.Context, value: str) -> str:
    if ctx.resilient_parsing or value is None:  # shell completion: no requests
        return value
    return resolve_run_id(Api(), value)


RunId = Annotated[str, typer.Argument(
    help="Run id, or the start of one as `ferry ls` shows it.", callback=_resolve)]
FINISHED = ("completed", "failed", "cancelled")
STATUS_ALIASES = {"waiting": "waiting_for_input", "working": "in_progress",
                  "running": "in_progress"}
# API field → the `ferry run` option that sets it, for error messages.
RUN_FLAGS = {"ticket_url": "--ticket", "max_cost_usd": "--max-cost", "run_as_root": "--root",
             **{f: "--" + f.replace("_", "-") for f in (
                 "engine", "title", "mode", "target", "image", "repo", "branch", "model",
                 "effort", "keep_alive", "idle_timeout", "question_timeout", "on_timeout",
                 "network", "max_turns", "max_duration", "turn_timeout", "engine_max_turns",
                 "from_run", "fresh", "env", "permission_mode")}}


def stopped_watching(run_id: RunId) -> typer.Exit:
    """Ctrl-C while following: the Run is not affected; say so, and how to stop it."""
    err.print(f"\n[yellow]stopped watching[/yellow]; Run {esc(run_id)} goes on. Follow it again "
              f"with `ferry logs -f {esc(run_id)}`, cancel it with `ferry cancel {esc(run_id)}`.")
    return typer.Exit(130)


@app.command()
def run(
    instructions: Annotated[str, typer.Argument(help="The task; '-' reads it from stdin.")] = "",
    file: Annotated[Path | None, typer.Option("--file", "-f", help="Read instructions from a file.")] = None,
    engine: Annotated[str | None, typer.Option(
        help="script (default) | claude-code-plan (Claude Code on a subscription) | "
             "claude-code-api (Claude Code on API credits) | claude-code (whichever the worker "
             "has, API key first) | codex | openai | auto")] = None,
    title: Annotated[str | None, typer.Option(help="Title (default: first line).")] = None,
    mode: Annotated[str | None, typer.Option(
        help="interactive (default) | autonomous (needs --target)")] = None,
    target: Annotated[str | None, typer.Option(help="Worker host to run on.")] = None,
    image: Annotated[str | None, typer.Option(help="DevBox image.")] = None,
    repo: Annotated[str | None, typer.Option(help="Git repository (URL or path on the worker).")] = None,
    branch: Annotated[str | None, typer.Option(help="Branch to start from.")] = None,
    ticket: Annotated[str | None, typer.Option(help="GitHub issue / Azure work item URL.")] = None,
    model: Annotated[str | None, typer.Option(help="Model (engine-specific).")] = None,
    effort: Annotated[str | None, typer.Option(help="Reasoning effort: low|medium|high.")] = None,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Follow the Run live.")] = False,
    answer: Annotated[bool | None, typer.Option(
        "--answer/--no-answer", help="While watching, prompt for questions (default: on a terminal).")
    ] = None,
    keep_alive: Annotated[str | None, typer.Option(help="DevBox keep-alive after the Run, e.g. 30m.")] = None,
    idle_timeout: Annotated[str | None, typer.Option(help="Hibernate after this long paused.")] = None,
    question_timeout: Annotated[str | None, typer.Option(help="How long questions wait, e.g. 7d.")] = None,
    on_timeout: Annotated[str | None, typer.Option(help="use_defaults | fail")] = None,
    root: Annotated[bool, typer.Option(
        "--root", help="Run turn commands as root (to install packages) instead of the agent user.")] = False,
    env: Annotated[list[str] | None, typer.Option(
        "--env", "-e", help="NAME=value for the Run's commands (repeatable; not for secrets).")] = None,
    network: Annotated[str | None, typer.Option(
        help="DevBox network: gateway (default: model gateway and allowlisted egress) | none | open.")] = None,
    max_cost_usd: Annotated[float | None, typer.Option(
        "--max-cost", "--max-cost-usd", help="Stop the Run once it has spent this much (USD).")] = None,
    max_turns: Annotated[int | None, typer.Option(help="At most this many turns.")] = None,
    max_duration: Annotated[str | None, typer.Option(help="Stop the Run after this long, e.g. 2h.")] = None,
    turn_timeout: Annotated[str | None, typer.Option(help="Kill a turn that runs longer, e.g. 30m.")] = None,
    engine_max_turns: Annotated[int | None, typer.Option(
        help="The agent CLI's own loop limit per turn (claude --max-turns).")] = None,
    from_run: Annotated[str | None, typer.Option(
        help="Copy this Run's task and settings, and continue from its last workspace checkpoint.")] = None,
    plan_only: Annotated[bool, typer.Option(
        "--plan-only", help="Claude Code engines: read and plan, edit nothing "
                            "(--permission-mode plan).")] = False,
    permission_mode: Annotated[str | None, typer.Option(
        help="Claude Code's permission mode: default | acceptEdits | bypassPermissions | plan.")
    ] = None,
    fresh: Annotated[bool, typer.Option(
        "--fresh", help="With --from-run: start from the repository, not from its checkpoint.")] = False,
) -> None:
    """Start a Run. With --watch, print its steps live (answering questions inline) and exit
    non-zero if it fails."""
    if file is not None:
        try:
            instructions = file.read_text()
        except OSError as e:
            fail(f"cannot read {file}: {e.strerror}")
    elif instructions == "-":
        instructions = sys.stdin.read()
    # Unset options stay unset: the server's defaults apply, or with --from-run the copied Run's.
    body: dict[str, Any] = {}
    if instructions or not (ticket or from_run):
        body["instructions"] = instructions
    for key, value in (("engine", engine), ("mode", mode), ("title", title), ("target", target),
                       ("image", image),
                       ("keep_alive", keep_alive), ("idle_timeout", idle_timeout),
                       ("question_timeout", question_timeout), ("on_timeout", on_timeout),
                       ("repo", repo), ("branch", branch), ("ticket_url", ticket),
                       ("model", model), ("effort", effort), ("network", network),
                       ("max_cost_usd", max_cost_usd), ("max_turns", max_turns),
                       ("max_duration", max_duration), ("turn_timeout", turn_timeout),
                       ("engine_max_turns", engine_max_turns), ("from_run", from_run)):
        if value is not None:
            body[key] = value
    if root:
        body["run_as_root"] = True
    if fresh:
        body["fresh"] = True
    if plan_only and permission_mode not in (None, "plan"):
        raise typer.BadParameter(f"--plan-only means --permission-mode plan, not "
                                 f"{permission_mode}: give one of them",
                                 param_hint="--plan-only / --permission-mode")
    if plan_only or permission_mode:
        body["permission_mode"] = "plan" if plan_only else permission_mode
    if env:
        pairs = [item.partition("=") for item in env]
        if any(not sep or not name for name, sep, _ in pairs):
            fail("--env takes NAME=value")
        body["env"] = {name: value for name, _, value in pairs}
    api = Api()
    if from_run:
        body["from_run"] = resolve_run_id(api, from_run)
    created = api.json("POST", "/runs", RUN_FLAGS, json=body)
    run_id = created["id"]
    out.print(f"Run [bold]{esc(run_id)}[/bold] {status_text(created['status'])}: {esc(created['title'])}")
    if not watch:
        return
    try:
        status = watch_run(api, run_id, answer=sys.stdin.isatty() if answer is None else answer)
    except KeyboardInterrupt:
        raise stopped_watching(run_id) from None
    final = api.json("GET", f"/runs/{segment(run_id)}")
    out.print(f"Run [bold]{esc(run_id)}[/bold] {status_text(final['status'])}"
              + (f": {esc(final['error'])}" if final.get("error") else ""))
    if status != "completed":
        raise typer.Exit(1)


@app.command("ls")
def list_runs(
    status: Annotated[str | None, typer.Option(
        help="Only Runs with this status (`waiting` and `working` for short).")] = None,
    engine: Annotated[str | None, typer.Option(help="Only Runs of this engine.")] = None,
    target: Annotated[str | None, typer.Option(help="Only Runs on this worker host.")] = None,
    schedule: Annotated[str | None, typer.Option(help="Only this schedule's Runs.")] = None,
    limit: Annotated[int, typer.Option(help="How many (1-500).", min=1, max=500)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="The API's JSON, one list.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Full Run ids only, one a line.")] = False,
) -> None:
    """List Runs, newest first. IDs are shown as their shortest unique start: any command
    takes that."""
    params: dict[str, Any] = {"limit": limit}
    for key, value in (("status", STATUS_ALIASES.get(status or "", status)), ("engine", engine),
                       ("target", target), ("schedule", schedule)):
        if value:
            params[key] = value
    flags = {k: f"--{k}" for k in ("status", "engine", "target", "schedule", "limit")}
    runs = Api().json("GET", "/runs", flags, params=params)["runs"]
    if as_json:
        sys.stdout.write(json.dumps(runs, indent=2) + "\n")
        return
    if quiet:
        for r in runs:
            sys.stdout.write(r["id"] + "\n")
        return
    if not runs:
        out.print("[dim]no Runs[/dim]")
        return
    short = short_ids([r["id"] for r in runs])
    rows = [(short[r["id"]], "waiting" if r["status"] == "waiting_for_input" else r["status"],
             r["engine"][:16], ago(r["created_at"]), r["title"], r["status"]) for r in runs]
    widths = [max(len(h), *(len(row[i]) for row in rows))
              for i, h in enumerate(("ID", "STATUS", "ENGINE", "CREATED"))]
    # The title gets what is left of the terminal, cut with an ellipsis: ids never are.
    room = max(8, out.width - sum(widths) - 2 * len(widths))
    width = max(out.width, sum(widths) + 2 * len(widths) + room)  # a narrow terminal wraps
    table = Table(box=None, pad_edge=False, show_edge=False)
    for name in ("ID", "STATUS", "ENGINE", "CREATED", "TITLE"):
        table.add_column(name, no_wrap=True)
    for rid, shown, engine, created, title, status in rows:
        cut = title if len(title) <= room else title[:room - 1] + "…"
        table.add_row(esc(rid), f"[{STATUS_STYLE.get(status, 'white')}]{shown}[/]", esc(engine),
                      created, esc(cut))
    out.print(table, soft_wrap=False, width=width)


@app.command()
def show(run_id: RunId) -> None:
    """Show a Run's details."""
    r = Api().json("GET", f"/runs/{segment(run_id)}")
    out.print(f"[bold]{esc(r['title'])}[/bold]  ({esc(r['id'])})")
    for label, key in (("status", "status"), ("engine", "engine"), ("mode", "mode"),
                       ("target", "target"), ("created", "created_at"), ("started", "started_at"),
                       ("completed", "completed_at"), ("duration", "duration_seconds"),
                       ("steps", "step_count"), ("summary", "summary"), ("error", "error")):
        value = r.get(key)
        if value is None:
            continue
        if key == "status":
            value = status_text(value)
        elif key == "duration_seconds":
            value = f"{value:.1f} s"
        else:
            value = esc(value)
        out.print(f"{label:>10}  {value}")
    ws = r.get("workspace")
    if ws:
        out.print(f"{'repo':>10}  {esc(ws['repo'])} ({esc(ws['base_branch'])} @ "
                  f"{esc(ws['base_commit'][:12])} → {esc(ws['work_branch'])})")
    elif r.get("repo"):
        out.print(f"{'repo':>10}  {esc(r['repo'])}"
                  + (f" (branch {esc(r['branch'])})" if r.get("branch") else ""))
    if r.get("ticket_url"):
        out.print(f"{'ticket':>10}  {esc(r.get('ticket_title') or '')} {esc(r['ticket_url'])}")
    for a in r.get("attempts") or []:
        files = a.get("files") or []
        added = sum(f.get("added", 0) for f in files)
        removed = sum(f.get("removed", 0) for f in files)
        out.print(f"{'attempt':>10}  {a['attempt']}: {len(files)} files changed "
                  f"([green]+{added}[/green] [red]-{removed}[/red])"
                  + (" (diff truncated)" if a.get("diff_truncated") else "")
                  + (" ← current" if a["attempt"] == r.get("attempt") and
                     len(r.get("attempts") or []) > 1 else ""))
    acc = r.get("accepted")
    if acc:
        out.print(f"{'accepted':>10}  branch {esc(acc['branch'])} at {esc(acc['commit'][:12])}, "
                  f"{'pushed' if acc.get('pushed') else 'not pushed'}"
                  + (f", pull request {esc(acc['pr_url'])}" if acc.get("pr_url") else ""))
    budgets = r.get("budgets") or {}
    if budgets:
        spent = (r.get("usage") or {}).get("cost_usd", 0)
        shown = {
            "max_turns": lambda v: f"at most {v:g} turns",
            "max_cost_usd": lambda v: f"${spent:.4f} of ${v:g} spent",
            "max_duration_seconds": lambda v: f"{r.get('duration_seconds') or 0:.0f} s of {v:g} s",
            "turn_timeout_seconds": lambda v: f"{v:g} s per turn",
            "engine_max_turns": lambda v: f"{v:g} agent turns per engine turn",
        }
        parts = [shown[k](v) if k in shown else f"{k} {v}" for k, v in budgets.items()]
        out.print(f"{'budgets':>10}  {esc('; '.join(parts))}")
    if r.get("queued_messages"):
        out.print(f"{'messages':>10}  {r['queued_messages']} queued (delivered at the next turn)")
    if r.get("from_run"):
        how = ("; workspace restored from its checkpoint" if ws and ws.get("restored_from")
               else f"; not restored: {ws['restore_note']}" if ws and ws.get("restore_note")
               else "")
        out.print(f"{'from run':>10}  {esc(r['from_run'])}{esc(how)}")
    if r.get("running"):
        out.print(f"{'running':>10}  $ {esc(r['running']['command'])}")
    if r.get("questions"):
        for q in r["questions"]["questions"]:
            out.print(f"{'question':>10}  {esc(q['id'])}: {esc(q['text'])} ({q['kind']})")
            default = q.get("default")
            for opt in q.get("options") or []:
                rec = default == opt or (isinstance(default, list) and opt in default)
                out.print(f"{'':>10}    - {esc(opt)}{' [green](recommended)[/green]' if rec else ''}")
            if q.get("allow_other"):
                out.print(f"{'':>10}    - Other (your own answer)")
            if q["kind"] == "text" and default:
                out.print(f"{'':>10}    default: {esc(default)}")
        out.print(f"{'':>10}  answer with `ferry answer {esc(r['id'])}`")
    if r.get("keep_alive_until"):
        out.print(f"{'follow-up':>10}  until {r['keep_alive_until'][:19]}: "
                  f"`ferry say {esc(r['id'])} …`")
    if r.get("engine_used") and r.get("engine_used") != r.get("engine"):
        out.print(f"{'engine used':>10}  {esc(r['engine_used'])}")
    usage = r.get("usage") or {}
    if usage.get("input_tokens") or usage.get("cost_usd"):
        calls = sum(len(t.get("calls") or []) for t in r.get("turn_usage") or [])
        budget = (r.get("budgets") or {}).get("max_cost_usd")
        limit = f" of ${budget:.4f}" if budget else ""
        out.print(f"{'usage':>10}  ${usage.get('cost_usd', 0):.4f}{limit}, "
                  f"{usage.get('input_tokens', 0)} tokens in, {usage.get('output_tokens', 0)} out"
                  f"{f', {calls} model calls' if calls else ''} "
                  f"over {len(r.get('turn_usage') or [])} turns")
    for d in r.get("devboxes", []):
        gone = " (removed)" if d.get("removed_at") else ""
        out.print(f"{'devbox':>10}  {esc(d['name'])} on {esc(d['host'])}, network "
                  f"{esc(d.get('network', 'none'))}{gone}")
    if r.get("devbox_note"):
        out.print(f"{'':>10}  {esc(r['devbox_note'])}")


@app.command()
def logs(
    run_id: RunId,
    follow: Annotated[bool, typer.Option(
        "--follow", "-f", help="Stream the output live, the running command's included.")] = False,
) -> None:
    """Print a Run's command output (all of it); with -f, stream it as it is written."""
    api = Api()
    if follow:
        try:
            follow_output(api, run_id)
        except KeyboardInterrupt:
            raise stopped_watching(run_id) from None
        return
    text = api.request("GET", f"/runs/{segment(run_id)}/logs").text
    sys.stdout.write(text)
    if not text.strip():
        run = api.json("GET", f"/runs/{segment(run_id)}")
        if run["status"] not in FINISHED:
            err.print(f"[dim]no command has finished yet: `ferry logs -f {esc(run_id)}` "
                      "streams the output as it is written[/dim]")
        elif (run.get("engine_used") or run.get("engine")) != "script":
            err.print(f"[dim]no command output: the "
                      f"{esc(run.get('engine_used') or run.get('engine'))} engine's steps are in "
                      f"`ferry timeline {esc(run_id)}` (or -f here)[/dim]")


@app.command()
def timeline(run_id: RunId) -> None:
    """Print a Run's timeline."""
    for step in Api().json("GET", f"/runs/{segment(run_id)}/timeline")["steps"]:
        print_step(step)


@app.command("answer")
def answer_cmd(
    run_id: RunId,
    json_: Annotated[str | None, typer.Option(
        "--json", help='Answers as JSON: {"answers": {...}} or just {...}; - reads stdin.')] = None,
) -> None:
    """Answer a waiting Run's questions (prompts for each, or --json)."""
    api = Api()
    if json_ is None:
        if not answer_interactively(api, run_id):
            fail(f"Run {run_id} is not waiting for input")
        return
    raw = sys.stdin.read() if json_ == "-" else json_
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as e:
        fail(f"--json is not valid JSON: {e}")
    if not isinstance(data, dict):
        fail('--json must be an object: {"answers": {"question id": answer}}')
    body = data if "answers" in data else {"answers": data}
    api.json("POST", f"/runs/{segment(run_id)}/answers", json=body)
    out.print("[green]answers sent[/green]")


@app.command()
def say(run_id: RunId, text: str) -> None:
    """Send a message: steering while the Run works, a follow-up after it has finished."""
    api = Api()
    before = api.json("GET", f"/runs/{segment(run_id)}")["status"]
    r = api.json("POST", f"/runs/{segment(run_id)}/messages", json={"text": text})
    if before in FINISHED:
        out.print(f"follow-up sent: Run {esc(r['id'])} starts a new turn in its kept DevBox "
                  f"(`ferry logs -f {esc(r['id'])}` to follow it)")
    else:
        out.print(f"message queued for Run {esc(r['id'])}: the agent gets it at its next turn")


@app.command()
def diff(
    run_id: RunId,
    attempt: Annotated[int | None, typer.Option(help="Attempt number (default: the latest).")] = None,
    stat: Annotated[bool, typer.Option("--stat", help="Changed files with line counts only.")] = False,
) -> None:
    """Show a Run's diff against its base commit."""
    params: dict[str, Any] = {"format": "json"}
    if attempt is not None:
        params["attempt"] = attempt
    data = Api().json("GET", f"/runs/{segment(run_id)}/diff", params=params)
    if stat:
        for f in data["files"]:
            out.print(f"{esc(f['path'])}  [green]+{f['added']}[/green] [red]-{f['removed']}[/red] "
                      f"[dim]{esc(f['status'])}[/dim]")
        attempts = data["attempts"]
        total = max(attempts) if isinstance(attempts, list) and attempts else attempts
        out.print(f"[dim]attempt {data['attempt']} of {total}[/dim]")
        return
    sys.stdout.write(data["diff"])


@app.command()
def artifacts(
    run_id: RunId,
    get: Annotated[str | None, typer.Option("--get", help="Download this path.")] = None,
    output: Annotated[Path | None, typer.Option("-o", help="Write to this file.")] = None,
) -> None:
    """List a Run's stored files, or download one with --get PATH."""
    api = Api()
    if get is None:
        table = Table("PATH", "SIZE", "TYPE", box=None)
        after: str | None = None
        while True:  # every page
            page = api.json("GET", f"/runs/{segment(run_id)}/artifacts",
                            params={"after": after} if after else None)
            for a in page["artifacts"]:
                table.add_row(esc(a["path"]), str(a["size"]), esc(a["content_type"]))
            after = page.get("next_after")
            if not after:
                break
        out.print(table)
        return
    # Encoded whole, so the server (not the HTTP client) judges paths like ../x.
    data = api.request("GET", f"/runs/{segment(run_id)}/artifacts/{quote(get, safe='')}").content
    if output is None:
        sys.stdout.buffer.write(data)
    else:
        output.write_bytes(data)
        out.print(f"wrote {len(data)} bytes to {esc(output)}")


def _review(run_id: RunId, action: str, message: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"action": action}
    if message:
        body["message"] = message
    return Api().json("POST", f"/runs/{segment(run_id)}/review", json=body)


@app.command()
def accept(run_id: RunId, message: Annotated[str | None, typer.Option("-m")] = None) -> None:
    """Commit the Run's changes on ferry/<run-id>, push, and open a pull request (GitHub)."""
    r = _review(run_id, "accept", message)
    acc = r.get("accepted") or {}
    out.print(f"pushed {esc(acc.get('branch'))} at {esc(str(acc.get('commit'))[:12])}"
              + (f"; pull request {esc(acc['pr_url'])}" if acc.get("pr_url") else ""))


@app.command("request-changes")
def request_changes(run_id: RunId, message: str) -> None:
    """Ask for changes: a follow-up turn in the same DevBox."""
    _review(run_id, "request_changes", message)
    out.print(f"changes requested; Run {esc(run_id)} works on them")


@app.command()
def reject(run_id: RunId, message: Annotated[str | None, typer.Option(
        "-m", help="New instructions for the next attempt.")] = None) -> None:
    """Discard the changes and start a new attempt."""
    _review(run_id, "reject", message)
    out.print(f"rejected; Run {esc(run_id)} starts a new attempt")


@app.command()
def targets() -> None:
    """List the worker hosts (targets) and their DevBox images."""
    table = Table("HOST", "HEALTHY", "BACKEND", "IMAGES", "LAST SEEN", box=None)
    for t in Api().json("GET", "/targets"):
        table.add_row(esc(t["host"]), "[green]yes[/green]" if t["healthy"] else "[red]no[/red]",
                      esc(t["backend"]), esc(", ".join(t["images"])), t["seen_at"][:19])
    out.print(table)


@app.command()
def cancel(run_id: RunId) -> None:
    """Cancel a Run that has not finished."""
    r = Api().json("POST", f"/runs/{segment(run_id)}/cancel")
    out.print(f"cancelling Run {esc(r['id'])}")


@app.command()
def release(run_id: RunId) -> None:
    """Remove a finished Run's kept DevBox now (no more follow-ups or reviews for it)."""
    r = Api().json("DELETE", f"/runs/{segment(run_id)}/devbox")
    out.print(f"Run {esc(r['run_id'])}: {esc(r['detail'])}")


@app.command()
def rename(run_id: RunId, title: str) -> None:
    """Give a Run a new title."""
    r = Api().json("PATCH", f"/runs/{segment(run_id)}", json={"title": title})
    out.print(f"Run {esc(r['id'])} is now titled: {esc(r['title'])}")
