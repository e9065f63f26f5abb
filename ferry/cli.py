"""The `ferry` command line: talks to the HTTP API at FERRY_URL (and runs the embedded stack)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn, cast
from urllib.parse import quote

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ferry.settings import SettingsError, get_settings

app = typer.Typer(help="Ferry: run AI coding agents on real work.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
devbox_app = typer.Typer(help="DevBox images and containers.", no_args_is_help=True)
app.add_typer(devbox_app, name="devbox")
# soft_wrap: long lines stay whole when the output is piped or logged (no 80-column cuts)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

STATUS_STYLE = {"pending": "dim", "in_progress": "cyan", "waiting_for_input": "yellow",
                "completed": "green", "failed": "red", "cancelled": "magenta"}


def fail(msg: str, code: int = 1) -> NoReturn:
    """Print an error and exit; the message is shown as written, never read as markup."""
    err.print(f"[red]error:[/red] {escape(msg)}")
    raise typer.Exit(code)


def _e(value: Any) -> str:
    """Server data (titles, errors, ids) for a Rich string: brackets stay text."""
    return escape(str(value))


def _seg(value: str, what: str = "Run id") -> str:
    """One URL path segment from user input: never empty, never another route."""
    if not value.strip():
        fail(f"the {what} is empty")
    return quote(value, safe="")


class Api:
    def __init__(self) -> None:
        s = get_settings()
        self.url = s.api_url
        headers = {"Authorization": f"Bearer {s.api_token}"} if s.api_token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            r = self.http.request(method, path, **kw)
        except httpx.HTTPError as e:
            fail(f"cannot reach the Ferry API at {self.url} ({e.__class__.__name__}); "
                 "is `ferry up` running, or FERRY_URL set?")
        if r.status_code >= 400:
            fail(_error_message(r))
        return r

    def json(self, method: str, path: str, **kw: Any) -> Any:
        r = self.request(method, path, **kw)
        try:
            return r.json()
        except ValueError:
            fail(f"the Ferry API at {self.url} answered {method} {path} with HTTP "
                 f"{r.status_code} and no JSON; is FERRY_URL the Ferry API?")

    def sse(self, path: str) -> Iterator[tuple[str, str]]:
        """(event, data) pairs of a server-sent event stream."""
        try:
            with self.http.stream("GET", path, timeout=None) as r:
                if r.status_code >= 400:
                    r.read()
                    fail(_error_message(r))
                event, data = "message", cast(list[str], [])
                for line in r.iter_lines():
                    if not line:
                        if data:
                            yield event, "\n".join(data)
                        event, data = "message", []
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].lstrip())
        except httpx.HTTPError as e:
            fail(f"lost the event stream from {self.url}: {e}")


def _error_message(r: httpx.Response) -> str:
    try:
        detail = r.json().get("detail")
    except ValueError:
        return f"HTTP {r.status_code}: {r.text[:300]}"
    if isinstance(detail, list):
        parts = []
        for d in detail:
            loc = ".".join(str(x) for x in d.get("loc", []) if x != "body")
            parts.append(f"{loc}: {d.get('msg')}" if loc else str(d.get("msg")))
        return f"HTTP {r.status_code}: " + "; ".join(parts)
    return f"HTTP {r.status_code}: {detail}"


def _status(s: str) -> str:
    return f"[{STATUS_STYLE.get(s, 'white')}]{escape(s)}[/]"


def _first_line(text: str, limit: int = 160) -> str:
    lines = text.strip().splitlines()
    first = lines[0][:limit] if lines else ""
    return escape(first + (" …" if len(lines) > 1 or (lines and len(lines[0]) > limit) else ""))


def _excerpt_lines(text: str, last: int) -> None:
    for line in text.rstrip("\n").splitlines()[-last:]:
        out.print("       │ " + line, markup=False)


def _tool_input(value: Any) -> str:
    if isinstance(value, dict):
        for key in ("command", "cmd", "file_path", "path", "pattern", "url"):
            if isinstance(value.get(key), str):
                return value[key]
    return json.dumps(value)[:200] if value is not None else ""


def print_step(step: dict[str, Any]) -> None:
    """One timeline step as a line (or a few); what the agent wrote is never markup."""
    kind, p = step["kind"], step["payload"]
    seq = f"[dim]{step['seq']:>4}[/dim]"
    if kind == "exec":
        mark = "[green]✓[/green]" if p["exit_code"] == 0 else f"[red]✗ {p['exit_code']}[/red]"
        out.print(f"{seq} $ {escape(p['command'])}  {mark} [dim]{p['duration_ms']} ms[/dim]")
        _excerpt_lines(p.get("output_excerpt", ""), 20)
    elif kind == "launch_devbox":
        out.print(f"{seq} [bold]DevBox[/bold] {escape(str(p.get('name')))} on "
                  f"{escape(str(p.get('host')))} ({p.get('backend')}, "
                  f"{escape(str(p.get('image') or 'no image'))}, network "
                  f"{p.get('network', 'none')})")
    elif kind == "message":
        out.print(f"{seq} [bold]{escape(str(p.get('role', 'message')))}[/bold]: "
                  f"{_first_line(str(p.get('text', '')))}")
    elif kind == "thought":
        out.print(f"{seq} [dim italic]thinking: {_first_line(str(p.get('text', '')))}[/]")
    elif kind == "tool":
        code = p.get("exit_code")
        mark = ("[red]✗[/red]" if p.get("is_error") else "[green]✓[/green]") if code is None \
            else ("[green]✓[/green]" if code == 0 else f"[red]✗ {code}[/red]")
        out.print(f"{seq} [cyan]{escape(str(p.get('name', 'tool')))}[/cyan] "
                  f"{_first_line(_tool_input(p.get('input')))}  {mark}")
        _excerpt_lines(str(p.get("output_excerpt") or ""), 8)
    elif kind == "file_change":
        paths = [str(c.get("path")) for c in p.get("changes") or [] if isinstance(c, dict)]
        out.print(f"{seq} [magenta]files[/magenta] {escape(', '.join(paths[:8]))}"
                  f"{' …' if len(paths) > 8 else ''}")
    elif kind == "todo_list":
        items = [str(i.get("text", i)) if isinstance(i, dict) else str(i)
                 for i in p.get("items") or []]
        out.print(f"{seq} [bold]plan[/bold]: {escape('; '.join(items)[:200])}")
    elif kind == "engine":
        out.print(f"{seq} [bold]engine[/bold] {escape(str(p.get('chosen')))} "
                  f"[dim](usable: {escape(', '.join(p.get('usable') or []) or 'none')})[/dim]")
    elif kind == "egress_denied":
        out.print(f"{seq} [red]egress denied[/red] {escape(str(p.get('host')))}:{p.get('port')}"
                  f" — {escape(str(p.get('why', '')))}")
    elif kind == "question":
        for q in p.get("questions", []):
            extra = f" [{', '.join(q['options'])}]" if q.get("options") else ""
            out.print(f"{seq} [yellow]question[/yellow] {escape(q['id'])}: "
                      f"{escape(q['text'] + extra)}")
    elif kind == "answer":
        how = f" (auto: {p.get('reason')})" if p.get("auto") else ""
        out.print(f"{seq} [bold]answer[/bold]{escape(how)}: {escape(json.dumps(p.get('answers')))}")
    elif kind == "report_result":
        out.print(f"{seq} [bold]result[/bold] {_status(p.get('status', ''))}: "
                  f"{escape(str(p.get('summary')))}")
    else:
        out.print(f"{seq} {escape(kind)} {escape(json.dumps(p)[:200])}")


def _ask_one(q: dict[str, Any]) -> Any:
    """Prompt for one question; returns the answer in the API's shape."""
    out.print(f"[bold yellow]?[/bold yellow] [bold]{_e(q['text'])}[/bold] [dim]({_e(q['id'])})[/dim]")
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
        out.print(f"  {i}. {_e(opt)}{mark}")
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
                out.print(f"  [red]{_e(repr(pick))} is not one of the numbers above[/red]")
                ok = False
        if ok and chosen:
            return chosen if many else chosen[0]


def answer_interactively(api: Api, run_id: str) -> bool:
    """Prompt for every pending question and send the answers; False if nothing to answer."""
    run = api.json("GET", f"/runs/{_seg(run_id)}")
    if run["status"] != "waiting_for_input" or not run.get("questions"):
        return False
    while True:
        answers = {q["id"]: _ask_one(q) for q in run["questions"]["questions"]}
        r = api.http.post(f"/runs/{_seg(run_id)}/answers", json={"answers": answers})
        if r.status_code < 400:
            out.print("[green]answers sent[/green]")
            return True
        err.print(f"[red]error:[/red] {_e(_error_message(r))}")
        if r.status_code == 409:
            return False


def watch_run(api: Api, run_id: str, answer: bool = False) -> str:
    """Print steps live; with `answer`, prompt for questions when the Run pauses."""
    status = "pending"
    while True:
        paused = False
        for event, data in api.sse(f"/runs/{_seg(run_id)}/events"):
            if event == "step":
                print_step(json.loads(data))
            elif event in ("status", "end"):
                status = json.loads(data)["status"]
                if event == "end":
                    return status
                if status == "waiting_for_input":
                    if answer:
                        paused = True
                        break
                    out.print(f"[yellow]waiting for input[/yellow]: answer with "
                              f"`ferry answer {run_id}`")
        if not paused:
            return status
        answer_interactively(api, run_id)


@app.command()
def up() -> None:
    """Start the embedded stack: Temporal dev server, a worker and the API. Ctrl-C stops it."""
    from ferry.launcher import LaunchError, Stack

    stack = Stack(get_settings(), echo=lambda m: out.print(f"[dim]{_e(m)}[/dim]"))
    try:
        stack.start()
    except LaunchError as e:
        stack.stop()
        fail(str(e))
    for name, url in stack.urls().items():
        out.print(f"[bold]{name:>12}[/bold]  {_e(url)}")
    out.print("[dim]Ferry is up; Ctrl-C stops it.[/dim]")
    died = stack.watch()
    stack.stop()
    if died:
        fail(f"the {died} process exited; see {get_settings().logs_dir / (died + '.log')}")
    out.print("stopped")


@app.command()
def run(
    instructions: Annotated[str, typer.Argument(help="The task; '-' reads it from stdin.")] = "",
    file: Annotated[Path | None, typer.Option("--file", "-f", help="Read instructions from a file.")] = None,
    engine: Annotated[str, typer.Option(
        help="script | claude-code | claude-code-plan | codex | openai | auto")] = "script",
    title: Annotated[str | None, typer.Option(help="Title (default: first line).")] = None,
    mode: Annotated[str, typer.Option(help="interactive | autonomous (needs --target)")] = "interactive",
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
        help="Stop the Run once it has spent this much (USD).")] = None,
    max_turns: Annotated[int | None, typer.Option(help="At most this many turns.")] = None,
    max_duration: Annotated[str | None, typer.Option(help="Stop the Run after this long, e.g. 2h.")] = None,
    turn_timeout: Annotated[str | None, typer.Option(help="Kill a turn that runs longer, e.g. 30m.")] = None,
    engine_max_turns: Annotated[int | None, typer.Option(
        help="The agent CLI's own loop limit per turn (claude --max-turns).")] = None,
    from_run: Annotated[str | None, typer.Option(
        help="Copy this Run's task and settings, and continue from its last workspace checkpoint.")] = None,
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
    body: dict[str, Any] = {"engine": engine, "mode": mode}
    if instructions or not (ticket or from_run):
        body["instructions"] = instructions
    for key, value in (("title", title), ("target", target), ("image", image),
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
    if env:
        pairs = [item.partition("=") for item in env]
        if any(not sep or not name for name, sep, _ in pairs):
            fail("--env takes NAME=value")
        body["env"] = {name: value for name, _, value in pairs}
    api = Api()
    created = api.json("POST", "/runs", json=body)
    run_id = created["id"]
    out.print(f"Run [bold]{_e(run_id)}[/bold] {_status(created['status'])}: {_e(created['title'])}")
    if not watch:
        return
    status = watch_run(api, run_id, answer=sys.stdin.isatty() if answer is None else answer)
    final = api.json("GET", f"/runs/{_seg(run_id)}")
    out.print(f"Run [bold]{_e(run_id)}[/bold] {_status(final['status'])}"
              + (f": {_e(final['error'])}" if final.get("error") else ""))
    if status != "completed":
        raise typer.Exit(1)


@app.command("ls")
def list_runs(
    status: Annotated[str | None, typer.Option(help="Only Runs with this status.")] = None,
    limit: Annotated[int, typer.Option(help="How many.")] = 20,
) -> None:
    """List Runs, newest first."""
    params: dict[str, Any] = {"limit": limit}
    if status:
        params["status"] = status
    data = Api().json("GET", "/runs", params=params)
    table = Table("ID", "STATUS", "ENGINE", "CREATED", "TITLE", box=None)
    for r in data["runs"]:
        table.add_row(_e(r["id"]), _status(r["status"]), _e(r["engine"]),
                      (r["created_at"] or "")[:19], _e(r["title"]))
    out.print(table)
    if not data["runs"]:
        out.print("[dim]no Runs[/dim]")


@app.command()
def show(run_id: str) -> None:
    """Show a Run's details."""
    r = Api().json("GET", f"/runs/{_seg(run_id)}")
    out.print(f"[bold]{_e(r['title'])}[/bold]  ({_e(r['id'])})")
    for label, key in (("status", "status"), ("engine", "engine"), ("mode", "mode"),
                       ("target", "target"), ("created", "created_at"), ("started", "started_at"),
                       ("completed", "completed_at"), ("duration", "duration_seconds"),
                       ("steps", "step_count"), ("summary", "summary"), ("error", "error")):
        value = r.get(key)
        if value is None:
            continue
        if key == "status":
            value = _status(value)
        elif key == "duration_seconds":
            value = f"{value:.1f} s"
        else:
            value = _e(value)
        out.print(f"{label:>10}  {value}")
    if r.get("running"):
        out.print(f"{'running':>10}  $ {_e(r['running']['command'])}")
    if r.get("questions"):
        for q in r["questions"]["questions"]:
            out.print(f"{'question':>10}  {_e(q['id'])}: {_e(q['text'])} ({q['kind']})")
        out.print(f"{'':>10}  answer with `ferry answer {_e(r['id'])}`")
    if r.get("keep_alive_until"):
        out.print(f"{'follow-up':>10}  until {r['keep_alive_until'][:19]}: "
                  f"`ferry say {_e(r['id'])} …`")
    if r.get("engine_used") and r.get("engine_used") != r.get("engine"):
        out.print(f"{'engine used':>10}  {_e(r['engine_used'])}")
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
        out.print(f"{'devbox':>10}  {_e(d['name'])} on {_e(d['host'])}, network "
                  f"{_e(d.get('network', 'none'))}{gone}")
    if r.get("devbox_note"):
        out.print(f"{'':>10}  {_e(r['devbox_note'])}")


@app.command()
def logs(
    run_id: str,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Stream steps live.")] = False,
) -> None:
    """Print a Run's command output (all of it); with -f, follow its steps live."""
    api = Api()
    if follow:
        watch_run(api, run_id, answer=False)
        return
    text = api.request("GET", f"/runs/{_seg(run_id)}/logs").text
    sys.stdout.write(text)
    if not text.strip():
        run = api.json("GET", f"/runs/{_seg(run_id)}")
        if (run.get("engine_used") or run.get("engine")) != "script":
            err.print(f"[dim]no command output: the "
                      f"{_e(run.get('engine_used') or run.get('engine'))} engine's steps are in "
                      f"`ferry timeline {_e(run_id)}` (or -f here)[/dim]")


@app.command()
def timeline(run_id: str) -> None:
    """Print a Run's timeline."""
    for step in Api().json("GET", f"/runs/{_seg(run_id)}/timeline")["steps"]:
        print_step(step)


@app.command("answer")
def answer_cmd(
    run_id: str,
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
    api.json("POST", f"/runs/{_seg(run_id)}/answers", json=body)
    out.print("[green]answers sent[/green]")


@app.command()
def say(run_id: str, text: str) -> None:
    """Send a message: steering while the Run works, a follow-up after it has finished."""
    r = Api().json("POST", f"/runs/{_seg(run_id)}/messages", json={"text": text})
    out.print(f"message queued for Run {_e(r['id'])} ({_e(r['status'])})")


@app.command()
def diff(
    run_id: str,
    attempt: Annotated[int | None, typer.Option(help="Attempt number (default: the latest).")] = None,
    stat: Annotated[bool, typer.Option("--stat", help="Changed files with line counts only.")] = False,
) -> None:
    """Show a Run's diff against its base commit."""
    params: dict[str, Any] = {"format": "json"}
    if attempt is not None:
        params["attempt"] = attempt
    data = Api().json("GET", f"/runs/{_seg(run_id)}/diff", params=params)
    if stat:
        for f in data["files"]:
            out.print(f"{_e(f['path'])}  [green]+{f['added']}[/green] [red]-{f['removed']}[/red] "
                      f"[dim]{_e(f['status'])}[/dim]")
        out.print(f"[dim]attempt {data['attempt']} of {data['attempts']}[/dim]")
        return
    sys.stdout.write(data["diff"])


@app.command()
def artifacts(
    run_id: str,
    get: Annotated[str | None, typer.Option("--get", help="Download this path.")] = None,
    output: Annotated[Path | None, typer.Option("-o", help="Write to this file.")] = None,
) -> None:
    """List a Run's stored files, or download one with --get PATH."""
    api = Api()
    if get is None:
        table = Table("PATH", "SIZE", "TYPE", box=None)
        for a in api.json("GET", f"/runs/{_seg(run_id)}/artifacts")["artifacts"]:
            table.add_row(_e(a["path"]), str(a["size"]), _e(a["content_type"]))
        out.print(table)
        return
    # Encoded whole, so the server (not the HTTP client) judges paths like ../x.
    data = api.request("GET", f"/runs/{_seg(run_id)}/artifacts/{quote(get, safe='')}").content
    if output is None:
        sys.stdout.buffer.write(data)
    else:
        output.write_bytes(data)
        out.print(f"wrote {len(data)} bytes to {_e(output)}")


def _review(run_id: str, action: str, message: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"action": action}
    if message:
        body["message"] = message
    return Api().json("POST", f"/runs/{_seg(run_id)}/review", json=body)


@app.command()
def accept(run_id: str, message: Annotated[str | None, typer.Option("-m")] = None) -> None:
    """Commit the Run's changes on ferry/<run-id>, push, and open a pull request (GitHub)."""
    r = _review(run_id, "accept", message)
    acc = r.get("accepted") or {}
    out.print(f"pushed {_e(acc.get('branch'))} at {_e(str(acc.get('commit'))[:12])}"
              + (f"; pull request {_e(acc['pr_url'])}" if acc.get("pr_url") else ""))


@app.command("request-changes")
def request_changes(run_id: str, message: str) -> None:
    """Ask for changes: a follow-up turn in the same DevBox."""
    _review(run_id, "request_changes", message)
    out.print(f"changes requested; Run {_e(run_id)} works on them")


@app.command()
def reject(run_id: str, message: Annotated[str | None, typer.Option(
        "-m", help="New instructions for the next attempt.")] = None) -> None:
    """Discard the changes and start a new attempt."""
    _review(run_id, "reject", message)
    out.print(f"rejected; Run {_e(run_id)} starts a new attempt")


@app.command()
def targets() -> None:
    """List the worker hosts (targets) and their DevBox images."""
    table = Table("HOST", "HEALTHY", "BACKEND", "IMAGES", "LAST SEEN", box=None)
    for t in Api().json("GET", "/targets"):
        table.add_row(_e(t["host"]), "[green]yes[/green]" if t["healthy"] else "[red]no[/red]",
                      _e(t["backend"]), _e(", ".join(t["images"])), t["seen_at"][:19])
    out.print(table)


@app.command()
def cancel(run_id: str) -> None:
    """Cancel a Run that has not finished."""
    r = Api().json("POST", f"/runs/{_seg(run_id)}/cancel")
    out.print(f"cancelling Run {_e(r['id'])}")


@app.command()
def release(run_id: str) -> None:
    """Remove a finished Run's kept DevBox now (no more follow-ups or reviews for it)."""
    r = Api().json("DELETE", f"/runs/{_seg(run_id)}/devbox")
    out.print(f"Run {_e(r['run_id'])}: {_e(r['detail'])}")


@app.command()
def rename(run_id: str, title: str) -> None:
    """Give a Run a new title."""
    r = Api().json("PATCH", f"/runs/{_seg(run_id)}", json={"title": title})
    out.print(f"Run {_e(r['id'])} is now titled: {_e(r['title'])}")


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
                    log=lambda m: out.print(f"[dim]{_e(m)}[/dim]"))
    except (ImageBuildError, DockerException) as e:
        fail(f"could not build {image}: {e}")
    out.print(_e(f"{image}: {'already present' if how == 'present' else 'built (' + how + ')'}"))


schedule_app = typer.Typer(help="Schedules: Runs on cron, interval or once.", no_args_is_help=True)
trigger_app = typer.Typer(help="Triggers: webhooks that start Runs.", no_args_is_help=True)
app.add_typer(schedule_app, name="schedule")
app.add_typer(trigger_app, name="trigger")


def _run_body(instructions: str, target: str | None, engine: str, image: str | None,
              keep_alive: str | None = None) -> dict:
    body: dict[str, Any] = {"instructions": instructions, "engine": engine, "mode": "autonomous"}
    if target:
        body["target"] = target
    if image:
        body["image"] = image
    if keep_alive:
        body["keep_alive"] = keep_alive
    return body


def _print_schedule(sc: dict[str, Any]) -> None:
    state = "paused" if sc["paused"] else "finished" if sc["finished"] else "active"
    out.print(f"[bold]{_e(sc['id'])}[/bold]  {state}  {_e(json.dumps(sc['spec']))}")
    if sc.get("note"):
        out.print(f"  note: {_e(sc['note'])}")
    for t in sc["next_action_times"]:
        out.print(f"  next: {_e(t)}")
    for r in sc.get("recent_runs", []):
        out.print(f"  run {_e(r['id'])}  {_status(r['status'])}")


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
) -> None:
    """Create a schedule of autonomous Runs."""
    spec: dict[str, Any] = {}
    if cron:
        spec = {"cron": cron, "time_zone": time_zone}
    elif every:
        spec = {"interval": {"every": every}}
    elif at:
        spec = {"at": at}
    body = {"name": name, "run": _run_body(instructions, target, engine, image, keep_alive),
            "spec": spec,
            "overlap": overlap, "paused": paused}
    _print_schedule(Api().json("POST", "/schedules", json=body))


@schedule_app.command("ls")
def schedule_ls() -> None:
    """List schedules."""
    for sc in Api().json("GET", "/schedules"):
        _print_schedule(sc)


@schedule_app.command("show")
def schedule_show(schedule_id: str) -> None:
    """A schedule: spec, state, next fire times, recent Runs."""
    _print_schedule(Api().json("GET", f"/schedules/{_seg(schedule_id, 'schedule id')}"))


@schedule_app.command("pause")
def schedule_pause(schedule_id: str) -> None:
    _print_schedule(Api().json("POST", f"/schedules/{_seg(schedule_id, 'schedule id')}/pause"))


@schedule_app.command("resume")
def schedule_resume(schedule_id: str) -> None:
    _print_schedule(Api().json("POST", f"/schedules/{_seg(schedule_id, 'schedule id')}/unpause"))


@schedule_app.command("trigger")
def schedule_trigger(schedule_id: str) -> None:
    """Start one Run now."""
    Api().json("POST", f"/schedules/{_seg(schedule_id, 'schedule id')}/trigger")
    out.print(f"triggered {_e(schedule_id)}")


@schedule_app.command("rm")
def schedule_rm(schedule_id: str) -> None:
    Api().request("DELETE", f"/schedules/{_seg(schedule_id, 'schedule id')}")
    out.print(f"deleted {_e(schedule_id)}")


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
        help="Keep each Run's DevBox this long for follow-ups and review, e.g. 2h.")] = None,
) -> None:
    """Create a webhook trigger at /hooks/NAME."""
    flt: dict[str, Any] = {"headers": {}, "payload": {}}
    if event:
        flt["headers"]["X-GitHub-Event"] = event
    if action:
        flt["payload"]["action"] = action
    t = Api().json("POST", "/triggers", json={"name": name, "secret": secret, "filter": flt,
                                              "run": _run_body(instructions, target, engine,
                                                               None, keep_alive)})
    out.print(f"trigger {_e(t['name'])}: POST {_e(Api().url)}{_e(t['hook_url'])}")


@trigger_app.command("ls")
def trigger_ls() -> None:
    for t in Api().json("GET", "/triggers"):
        out.print(f"[bold]{_e(t['name'])}[/bold]  {_e(t['hook_url'])}  "
                  f"filter {_e(json.dumps(t['filter']))}")


@trigger_app.command("rm")
def trigger_rm(name: str) -> None:
    Api().request("DELETE", f"/triggers/{_seg(name, 'trigger name')}")
    out.print(f"deleted trigger {_e(name)}")


def main() -> None:
    try:
        app()
    except SettingsError as e:
        err.print(f"[red]error:[/red] {escape(str(e))}")
        sys.exit(2)


if __name__ == "__main__":
    main()
