"""How `ferry run --watch` prints timeline steps: every kind readable, agent text literal."""

from __future__ import annotations

from rich.console import Console

from ferry.cli import output as cli


def printed(step: dict) -> str:
    console = Console(record=True, width=200, color_system=None)
    saved, cli.out = cli.out, console
    try:
        cli.print_step({"seq": 7, **step})
    finally:
        cli.out = saved
    return console.export_text()


def test_agent_text_is_never_taken_as_markup() -> None:
    text = printed({"kind": "message", "payload": {"role": "assistant",
                                                   "text": "closing [/] and [bold]x[/bold]"}})
    assert "closing [/] and [bold]x[/bold]" in text
    tool = printed({"kind": "tool", "payload": {"name": "Bash[/]", "input": {"command": "ls [/]"},
                                                "exit_code": 2, "output_excerpt": "[red]no"}})
    assert "Bash[/] ls [/]" in tool and "✗ 2" in tool and "│ [red]no" in tool


def test_agent_steps_read_as_what_they_are() -> None:
    assert "thinking: Five, seven, five." in printed(
        {"kind": "thought", "payload": {"text": "Five, seven, five.\nMore."}})
    assert "Bash echo hi > a.txt  ✓" in printed(
        {"kind": "tool", "payload": {"name": "Bash", "input": {"command": "echo hi > a.txt"},
                                     "exit_code": 0, "output_excerpt": ""}})
    assert "exec_command git status" in printed(
        {"kind": "tool", "payload": {"name": "exec_command", "input": {"cmd": "git status"}}})
    assert "egress denied evil.example:443" in printed(
        {"kind": "egress_denied", "payload": {"host": "evil.example", "port": 443, "why": "no"}})
    assert "files a.py, b.py" in printed(
        {"kind": "file_change", "payload": {"changes": [{"path": "a.py"}, {"path": "b.py"}]}})
    assert "engine claude-code (usable: claude-code, codex)" in printed(
        {"kind": "engine", "payload": {"chosen": "claude-code",
                                       "usable": ["claude-code", "codex"]}})


def test_a_workspace_step_says_whether_a_checkpoint_was_restored() -> None:
    base = {"kind": "workspace", "payload": {
        "repo": "/srv/repo.git", "clone_url": "/srv/repo.git", "base_branch": "main",
        "base_commit": "0123456789abcdef", "work_branch": "ferry/r2"}}
    restored = printed({**base, "payload": {**base["payload"], "restored_from": "r1"}})
    assert "main @ 0123456789ab → ferry/r2, restored from Run r1's checkpoint" in restored
    skipped = printed({**base, "payload": {**base["payload"],
                                           "restore_note": "Run r1 saved no [b]checkpoint[/b]"}})
    assert "not restored: Run r1 saved no [b]checkpoint[/b]" in skipped
