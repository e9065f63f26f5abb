"""The `ferry` CLI against the real stack: listing, showing, following, Ctrl-C, flags."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.harness import FerryStack
from tests.integration.test_web_ui import make_origin

FERRY = [sys.executable, "-m", "ferry.cli"]
LONG_TITLE = "a rather long title that cannot fit [/] beside the other columns " * 2


def test_ls_fits_80_columns_and_lists_as_json_or_ids(stack: FerryStack) -> None:
    runs = [stack.create_run("echo ls-test", title=LONG_TITLE) for _ in range(2)]
    for r in runs:
        stack.wait_status(r["id"], {"completed"})
    listing = stack.cli("ls", "--limit", "5", env={"COLUMNS": "80"})
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    assert lines[0].split()[:4] == ["ID", "STATUS", "ENGINE", "CREATED"]
    row = next(line for line in lines if line.startswith(runs[-1]["id"][:8]))
    short = row.split()[0]
    assert runs[-1]["id"].startswith(short) and "just now" in row and "…" in row
    # The short id is enough for every command.
    show = stack.cli("show", short)
    assert show.returncode == 0 and f"({runs[-1]['id']})" in show.stdout, show.stderr
    as_json = json.loads(stack.cli("ls", "--json", "--limit", "2").stdout)
    assert [r["id"] for r in as_json] == [runs[1]["id"], runs[0]["id"]]
    assert stack.cli("ls", "-q", "--limit", "2").stdout.split() == [runs[1]["id"], runs[0]["id"]]
    engine = stack.cli("ls", "-q", "--engine", "codex", "--limit", "50").stdout.split()
    assert runs[0]["id"] not in engine
    assert "no Runs" in stack.cli("ls", "--schedule", "no-such-schedule").stdout
    bad = stack.cli("ls", "--limit", "0")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_show_has_repo_budgets_questions_attempts_and_the_accepted_branch(
        stack: FerryStack, tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    started = stack.cli("run", 'ferry-ask "Which way?" --id way --options left,right '
                               '--default right --other\necho x > X.txt',
                        "--repo", str(origin), "--branch", "main", "--max-turns", "5",
                        "--max-cost", "3", "--max-duration", "1h", "--title", "show all")
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.split()[1]
    stack.wait_status(run_id, {"waiting_for_input"})
    waiting = stack.cli("show", run_id).stdout
    assert "way: Which way? (single)" in waiting
    assert "- right (recommended)" in waiting and "- left" in waiting and "Other" in waiting
    assert "at most 5 turns" in waiting and "$0.0000 of $3 spent" in waiting
    assert "of 3600 s" in waiting
    assert str(origin) in waiting and "main" in waiting
    assert stack.cli("answer", run_id, "--json", '{"way": "left"}').returncode == 0
    stack.wait_status(run_id, {"completed"})
    assert stack.cli("accept", run_id).returncode == 0
    done = stack.cli("show", run_id).stdout
    assert "attempt  1: 1 files changed (+1 -0)" in done
    assert f"accepted  branch ferry/{run_id} at" in done and "pushed" in done


def test_watch_goes_on_after_an_inline_answer_without_repeating(stack: FerryStack) -> None:
    proc = stack.cli("run", "echo before-question\n"
                            'ferry-ask "Go on?" --id go --options yes,no --default yes\n'
                            "echo after-answer", "--watch", "--answer", input="\n")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("$ echo before-question") == 1, proc.stdout
    assert proc.stdout.count("$ echo after-answer") == 1, proc.stdout
    assert proc.stdout.index("answers sent") < proc.stdout.index("$ echo after-answer")


def test_logs_follow_streams_the_running_command_and_ends_as_logs(stack: FerryStack) -> None:
    script = ("seq 1 2000\n"
              "for i in 1 2 3 4 5 6; do echo tick-$i; sleep 0.5; done\n"
              "echo done")
    run = stack.create_run(script)
    proc = subprocess.Popen([*FERRY, "logs", "-f", run["id"]], env=stack.cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    seen = ""
    while "tick-2" not in seen:
        line = proc.stdout.readline()
        assert line, "logs -f ended before the loop printed"
        seen += line
    # The loop is still running: its output came live, not from its finished step.
    assert stack.get_run(run["id"])["status"] == "in_progress"
    assert not [s for s in stack.timeline(run["id"])
                if s["kind"] == "exec" and "tick" in s["payload"]["command"]]
    rest, errors = proc.communicate(timeout=60)
    assert proc.returncode == 0, errors
    followed = seen + rest
    # Everything, not excerpts: the same text `ferry logs` prints afterwards.
    assert followed == stack.cli("logs", run["id"]).stdout
    assert "\n1000\n" in followed and "tick-6" in followed


def test_ctrl_c_while_watching_leaves_the_run_going(stack: FerryStack) -> None:
    # Long enough that the Run is still going however late the watch shows `started`.
    # SIGINT as a terminal delivers it, even when the suite itself runs in the background
    # (where the shell starts jobs with SIGINT ignored, and children inherit that).
    proc = subprocess.Popen([*FERRY, "run", "echo started\nsleep 60\necho end", "--watch"],
                            env=stack.cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stdout is not None
    first = proc.stdout.readline()
    run_id = first.split()[1]
    deadline = time.monotonic() + 30
    while "started" not in proc.stdout.readline():
        assert time.monotonic() < deadline
    proc.send_signal(signal.SIGINT)
    _, errors = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert "Traceback" not in errors
    assert f"Run {run_id} goes on" in errors and f"ferry cancel {run_id}" in errors
    assert stack.get_run(run_id)["status"] in ("pending", "in_progress")  # the Run goes on
    assert stack.cli("cancel", run_id).returncode == 0
    assert stack.wait_status(run_id, {"completed", "cancelled", "failed"})["status"] == "cancelled"


def test_say_after_the_end_is_a_follow_up(stack: FerryStack) -> None:
    run = stack.create_run("echo one")
    stack.wait_status(run["id"], {"completed"})
    said = stack.cli("say", run["id"], "echo two")
    assert said.returncode == 0 and "follow-up sent" in said.stdout, said.stdout + said.stderr


def test_schedule_and_trigger_create_take_the_run_flags(stack: FerryStack) -> None:
    target = stack.cli("targets").stdout.splitlines()[1].split()[0]
    made = stack.cli("schedule", "create", "cli-flags", "echo hi", "--every", "1h", "--paused",
                     "--target", target, "--repo", "/srv/repo.git", "--branch", "dev",
                     "--title", "nightly [x]", "--keep-alive", "10m", "--engine", "script")
    assert made.returncode == 0, made.stderr
    with stack.client() as c:
        run = c.get("/schedules/cli-flags").json()["run"]
        assert (run["repo"], run["branch"], run["title"], run["engine"]) == \
            ("/srv/repo.git", "dev", "nightly [x]", "script")
        assert run["keep_alive"] == "PT10M"
        assert c.delete("/schedules/cli-flags").status_code == 204
    hook = stack.cli("trigger", "create", "cli-flags", "echo hi", "--secret", "s3cret-value",
                     "--target", target, "--repo", "/srv/repo.git", "--branch", "dev",
                     "--title", "hook run", "--keep-alive", "5m", "--engine", "script")
    assert hook.returncode == 0, hook.stderr
    with stack.client() as c:
        run = c.get("/triggers/cli-flags").json()["run"]
        assert (run["repo"], run["branch"], run["title"], run["keep_alive"]) == \
            ("/srv/repo.git", "dev", "hook run", 300)
        assert c.delete("/triggers/cli-flags").status_code == 204
    # A bad name: the API's pattern is printed as written (brackets are not markup).
    bad = stack.cli("schedule", "create", "Bad Name", "echo", "--every", "1m", "--target", target)
    assert bad.returncode == 1 and "^[a-z0-9][a-z0-9-]{0,31}$" in bad.stderr, bad.stderr


def test_shell_completion_can_be_installed(stack: FerryStack) -> None:
    # The shell named, not detected from the process tree (CI may run without a shell).
    shown = stack.cli("--show-completion", "bash",
                      env={"SHELL": "/bin/bash", "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert shown.returncode == 0, shown.stderr
    assert "complete" in shown.stdout and "_FERRY_COMPLETE" in shown.stdout


def test_run_errors_name_the_cli_options(stack: FerryStack) -> None:
    bad = stack.cli("run", "echo x", "--max-cost", "-1", "--branch", "../up")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "--max-cost:" in bad.stderr and "--branch:" in bad.stderr, bad.stderr
    assert "max_cost_usd" not in bad.stderr
    plan = stack.cli("run", "echo x", "--engine", "script", "--plan-only")
    assert plan.returncode == 1 and "--permission-mode:" in plan.stderr, plan.stderr
    assert "Claude Code option" in plan.stderr
