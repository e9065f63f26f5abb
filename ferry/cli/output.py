"""What the CLI prints: consoles, server text as plain text (never markup), steps, errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, NoReturn
from urllib.parse import quote

import typer
from rich.console import Console
from rich.markup import escape

# soft_wrap: long lines stay whole when the output is piped or logged (no 80-column cuts)
out = Console(highlight=False, soft_wrap=True)


err = Console(stderr=True, highlight=False, soft_wrap=True)


STATUS_STYLE = {"pending": "dim", "in_progress": "cyan", "waiting_for_input": "yellow",
                "completed": "green", "failed": "red", "cancelled": "magenta"}


def fail(msg: str, code: int = 1) -> NoReturn:
    """Print an error and exit; the message is shown as written, never read as markup."""
    err.print(f"[red]error:[/red] {escape(msg)}")
    raise typer.Exit(code)


def esc(value: Any) -> str:
    """Server data (titles, errors, ids) for a Rich string: brackets stay text."""
    return escape(str(value))


def segment(value: str, what: str = "Run id") -> str:
    """One URL path segment from user input: never empty, never another route."""
    if not value.strip():
        fail(f"the {what} is empty")
    return quote(value, safe="")


def ago(iso: str | None, now: datetime | None = None) -> str:
    """`3m ago`-style age of an ISO timestamp."""
    if not iso:
        return ""
    try:
        then = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso[:19]
    seconds = ((now or datetime.now(UTC)) - then).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return "just now"


def short_ids(ids: list[str], least: int = 8) -> dict[str, str]:
    """The shortest prefix (at least `least` characters) telling each id from the others."""
    out: dict[str, str] = {}
    for i in ids:
        n = least
        while n < len(i) and any(o != i and o.startswith(i[:n]) for o in ids):
            n += 1
        out[i] = i[:n]
    return out


def status_text(s: str) -> str:
    return f"[{STATUS_STYLE.get(s, 'white')}]{escape(s)}[/]"


def first_line(text: str, limit: int = 160) -> str:
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
                  f"{first_line(str(p.get('text', '')))}")
    elif kind == "thought":
        out.print(f"{seq} [dim italic]thinking: {first_line(str(p.get('text', '')))}[/]")
    elif kind == "tool":
        code = p.get("exit_code")
        mark = ("[red]✗[/red]" if p.get("is_error") else "[green]✓[/green]") if code is None \
            else ("[green]✓[/green]" if code == 0 else f"[red]✗ {code}[/red]")
        out.print(f"{seq} [cyan]{escape(str(p.get('name', 'tool')))}[/cyan] "
                  f"{first_line(_tool_input(p.get('input')))}  {mark}")
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
    elif kind == "workspace":
        restored = p.get("restored_from")
        out.print(f"{seq} [bold]workspace[/bold] {escape(str(p.get('repo')))} "
                  f"{escape(str(p.get('base_branch')))} @ {escape(str(p.get('base_commit'))[:12])}"
                  f" → {escape(str(p.get('work_branch')))}"
                  + (f", restored from Run {escape(str(restored))}'s checkpoint" if restored else ""))
        if p.get("restore_note"):
            out.print(f"     [yellow]not restored:[/yellow] {escape(str(p['restore_note']))}")
    elif kind == "report_result":
        out.print(f"{seq} [bold]result[/bold] {status_text(p.get('status', ''))}: "
                  f"{escape(str(p.get('summary')))}")
    else:
        out.print(f"{seq} {escape(kind)} {escape(json.dumps(p)[:200])}")
