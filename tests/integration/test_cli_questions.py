"""The CLI side of human-in-the-loop: answer inline while watching, `answer`, `say`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.integration.harness import ROOT, FerryStack

FERRY = [sys.executable, "-m", "ferry.cli"]
TWO = {"questions": [
    {"id": "color", "kind": "single", "text": "Which colour?", "options": ["red", "blue"],
     "default": "red", "allow_other": True},
    {"id": "tags", "kind": "multi", "text": "Which tags?", "options": ["a", "b", "c"]},
]}
SCRIPT = f"ferry-ask --json '{json.dumps(TWO)}'\ncat \"$FERRY_ANSWERS\""


def _env(stack: FerryStack) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_")}
    env.update({"FERRY_URL": stack.api_url, "PYTHONPATH": str(ROOT)})
    return env


def test_watch_answers_questions_inline(stack: FerryStack) -> None:
    # colour: 3 = Other -> "green"; tags: 1,3
    proc = subprocess.run([*FERRY, "run", SCRIPT, "--watch", "--answer"], env=_env(stack),
                          input="3\ngreen\n1,3\n", capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Which colour?" in proc.stdout and "(recommended)" in proc.stdout
    assert "answers sent" in proc.stdout
    assert '{"answers": {"color": {"other": "green"}, "tags": ["a", "c"]}}' in proc.stdout
    assert "completed" in proc.stdout


def test_watch_without_answering_points_to_ferry_answer(stack: FerryStack) -> None:
    run = stack.create_run(SCRIPT)
    env = _env(stack)
    stack.wait_status(run["id"], {"waiting_for_input"})
    show = subprocess.run([*FERRY, "show", run["id"]], env=env, capture_output=True, text=True,
                          timeout=30)
    assert "color: Which colour? (single)" in show.stdout and "ferry answer" in show.stdout
    bad = subprocess.run([*FERRY, "answer", run["id"], "--json", '{"color": "pink", "tags": ["a"]}'],
                         env=env, capture_output=True, text=True, timeout=30)
    assert bad.returncode == 1 and "'pink' is not one of" in bad.stderr
    assert "Traceback" not in bad.stderr
    prompted = subprocess.run([*FERRY, "answer", run["id"]], env=env, input="\n2\n",
                              capture_output=True, text=True, timeout=30)
    assert prompted.returncode == 0, prompted.stdout + prompted.stderr
    done = stack.wait_status(run["id"], {"completed"})
    last = [s for s in stack.timeline(done["id"]) if s["kind"] == "exec"][-1]
    assert json.loads(last["payload"]["output_excerpt"]) == {"answers": {"color": "red", "tags": ["b"]}}
    again = subprocess.run([*FERRY, "answer", run["id"], "--json", "{}"], env=env,
                           capture_output=True, text=True, timeout=30)
    assert again.returncode == 1 and "not waiting" in again.stderr


def test_say_steers_a_running_run(stack: FerryStack) -> None:
    run = stack.create_run("sleep 4")
    stack.wait_until(lambda: (stack.get_run(run["id"]).get("running") or {}).get("command")
                     == "sleep 4", 20, "sleep to start")
    r = subprocess.run([*FERRY, "say", run["id"], "echo from-say"], env=_env(stack),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "message queued" in r.stdout
    stack.wait_until(lambda: len([s for s in stack.timeline(run["id"]) if s["kind"] == "exec"]) == 2,
                     30, "the steered command")
    execs = [s["payload"] for s in stack.timeline(run["id"]) if s["kind"] == "exec"]
    assert execs[-1]["command"] == "echo from-say" and execs[-1]["output_excerpt"] == "from-say\n"


def test_run_as_root_with_env_from_the_cli(stack: FerryStack) -> None:
    r = subprocess.run([*FERRY, "run", "id -u\necho $GREETING\nchown 4321 /tmp && stat -c %u /tmp",
                        "--root", "--env", "GREETING=hello there", "--watch", "--no-answer"],
                       env=_env(stack), capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stdout + r.stderr
    run_id = r.stdout.split()[1]
    out = [s["payload"]["output_excerpt"] for s in stack.timeline(run_id) if s["kind"] == "exec"]
    assert out == ["0\n", "hello there\n", "4321\n"]  # root, with chown allowed
    bad = subprocess.run([*FERRY, "run", "true", "--env", "NOEQUALS"], env=_env(stack),
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 1 and "NAME=value" in bad.stderr


def test_brackets_in_titles_and_errors_are_text_not_markup(stack: FerryStack) -> None:
    """Titles, errors and ids come from users, tickets and agents: `[/]` or `[bold]` in them
    must print as written, never crash the CLI or vanish."""
    title = "fix [/] and [bold]x[/bold] [link=http://e]y"
    proc = stack.cli("run", "echo '[red]boom[/red]' >&2; exit 3", "--title", title, "--watch",
                     "--no-answer")
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1 and title in proc.stdout, proc.stdout
    run_id = proc.stdout.split()[1]
    listing = stack.cli("ls", env={"COLUMNS": "200"})
    assert listing.returncode == 0 and "Traceback" not in listing.stderr, listing.stderr
    assert "[/]" in listing.stdout and "[bold]x[/bold]" in listing.stdout
    show = stack.cli("show", run_id)
    assert show.returncode == 0 and title in show.stdout, show.stdout + show.stderr
    assert "[red]boom[/red]" in show.stdout or "exit 3" in show.stdout
    missing = stack.cli("show", "no-[such]-run")
    # The API's message names the id pattern, brackets and all.
    assert missing.returncode == 1 and "[A-Za-z0-9]" in missing.stderr, missing.stderr
    empty = stack.cli("show", "")
    assert empty.returncode == 1 and "the Run id is empty" in empty.stderr, empty.stderr
    assert "Traceback" not in missing.stderr + empty.stderr
