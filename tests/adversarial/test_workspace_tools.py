"""The host's execs into a DevBox (reset, snapshot, artifacts) are bounded by the host.

What runs in the DevBox during them is the DevBox's business — its git filters may print
without end, hang, or name files so the host cannot hold them — but none of it may grow
the worker's memory, hold one of its threads past the activity's time, or fail the Run
with a host-side message.
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.testing import ActivityEnvironment

from activities.devbox import get_backend
from activities.workspace import WorkspaceActivities
from ferry.artifact_store import ArtifactStore
from ferry.models.activity_io import CollectInput
from ferry.models.hosts import DevBoxInfo
from ferry.models.results import AttemptResult
from tests.integration.harness import FerryStack
from tests.integration.test_repos_review import make_origin

FLOOD = 600 * 1000 * 1000


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def in_devbox(devbox: dict, script: str, stdin: str = "") -> str:
    """Run a shell script in the DevBox as its turn user — what a background process left
    by the agent could do at any time."""
    proc = subprocess.run(["docker", "exec", "-i", "-u", f"{devbox['uid']}:{devbox['gid']}",
                           "-w", devbox["workspace"], devbox["name"], "sh", "-c", script],
                          input=stdin, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_a_filter_flooding_stderr_during_reject_does_not_grow_the_worker(
        astack: FerryStack, tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    # The smudge filter runs when the reset checks README.md out again.
    run = astack.create_run("\n".join([
        f"git config filter.flood.smudge \"sh -c 'head -c {FLOOD} /dev/zero >&2; cat'\"",
        "echo '* filter=flood' > .git/info/attributes",
        "echo changed >> README.md",
    ]), repo=str(origin), keep_alive="300s")
    done = astack.wait_status(run["id"], {"completed", "failed"}, timeout=90)
    assert done["status"] == "completed", done
    worker = astack.procs["worker"].pid
    before = peak_rss(worker)
    with astack.client() as c:
        r = c.post(f"/runs/{run['id']}/review",
                   json={"action": "reject",
                         "message": "grep -q changed README.md && echo dirty || echo clean"})
        assert r.status_code == 200, r.text
    astack.wait_until(lambda: astack.get_run(run["id"])["attempt"] == 2 and
                      astack.get_run(run["id"])["status"] in ("completed", "failed"), 180,
                      "attempt 2")
    grown = peak_rss(worker) - before
    assert grown < 128 * 1024 * 1024, f"the worker grew by {grown} bytes reading the flood"
    second = astack.get_run(run["id"])
    assert second["status"] == "completed", second
    execs = [s["payload"] for s in astack.timeline(run["id"]) if s["kind"] == "exec"]
    assert execs[-1]["output_excerpt"].strip() == "clean"  # the reset still happened


def collect_within(stack: FerryStack, done: dict, limit: timedelta) -> AttemptResult:
    """Run the worker's collect_results as Temporal would, with this time limit; fail
    if it keeps its thread past the limit."""
    settings = stack.settings
    activities = WorkspaceActivities(settings, get_backend(settings),
                                     ArtifactStore(settings.artifacts_dir), [])
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, start_to_close_timeout=limit,
                                   started_time=datetime.now(UTC))
    inp = CollectInput(run_id=done["id"], devbox=DevBoxInfo.model_validate(done["devboxes"][-1]),
                       attempt=9, base_commit=done["workspace"]["base_commit"])
    started = time.monotonic()
    result: AttemptResult = asyncio.run(env.run(activities.collect_results, inp))
    took = time.monotonic() - started
    assert took < limit.total_seconds(), f"the collect held its thread for {took:.0f} s"
    return result


HANG = "#!/bin/sh\nwhile :; do echo tick >&2; sleep 3; done\n"
# Exits at once, leaving a child in a session of its own that holds the exec's stderr
# open: `timeout` in the DevBox cannot reach it; only the host's own deadline ends the read.
ESCAPE = "#!/bin/sh\n(setsid sh -c 'while :; do echo tick >&2; sleep 3; done' &)\ncat\n"


def test_a_hanging_filter_releases_the_collect_before_its_time_limit(
        astack: FerryStack, tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    run = astack.create_run("echo one > one.txt", repo=str(origin), keep_alive="300s")
    done = astack.wait_status(run["id"], {"completed", "failed"}, timeout=90)
    assert done["status"] == "completed", done
    devbox = done["devboxes"][-1]
    for name, script in (("hang", HANG), ("escape", ESCAPE)):
        # A clean filter that never ends but prints now and then, so the stream stays alive.
        in_devbox(devbox, f"cat > .git/{name} && chmod +x .git/{name} && "
                  f"git config filter.{name}.clean \"$PWD/.git/{name}\" && "
                  f"echo '* filter={name}' > .git/info/attributes && echo {name} >> one.txt",
                  stdin=script)
        result = collect_within(astack, done, timedelta(seconds=35))
        assert any("did not finish in time" in n for n in result.notes), (name, result.notes)
        if name == "hang":  # `timeout` took the filter's whole process group with it
            time.sleep(8)
            left = in_devbox(devbox, "ps -eo args | grep -c '^/bin/sh .*/.git/hang' || true")
            assert left.strip() == "0", "the hanging filter still runs"


def test_artifact_names_the_host_cannot_hold_are_skipped(astack: FerryStack) -> None:
    long_name = "n" * 250  # fine in the DevBox (NAME_MAX 255); not with the host's ".ferry-partial"
    deep = "/".join(["d" * 60] * 60)  # 3.6 KB: fine in the DevBox, too deep for the host
    run = astack.create_run("\n".join([
        "mkdir -p .ferry/artifacts",
        f"echo long > .ferry/artifacts/{long_name}",
        f"mkdir -p .ferry/artifacts/{deep} && echo deep > .ferry/artifacts/{deep}/f.txt",
        "echo fine > .ferry/artifacts/report.txt",
        "touch \"$(printf '.ferry/artifacts/x\\377')\"",  # not UTF-8
    ]))
    done = astack.wait_status(run["id"], {"completed", "failed"}, timeout=90)
    assert done["status"] == "completed", done
    assert done.get("error") is None
    attempt = done["attempts"][-1]
    assert attempt["artifacts"] == ["attempts/1/artifacts/report.txt"], attempt
    assert any("3 artifact entries were skipped" in n for n in attempt["notes"]), attempt["notes"]
    assert str(astack.data_dir) not in str(done)


# Left behind by the agent: waits for Ferry's artifact tool, stops it, writes records of
# its own into the tool's stdout through /proc (costly ones: after a file `a/b`, every
# `a` fails to store) and kills the tool. The tool makes itself non-dumpable, which refuses
# the open unless the injector catches it in the moment between its exec and that call;
# either way the host takes the stream for what it is, the DevBox's data, and bounds it.
INJECTOR = r"""
import json, os, signal, time
deadline = time.time() + 60
while time.time() < deadline:
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if any(c.endswith(b"ferry-workspace") for c in cmd) and b"artifacts" in cmd:
            os.kill(int(pid), signal.SIGSTOP)
            try:
                fd = os.open(f"/proc/{pid}/fd/1", os.O_WRONLY)
                one = json.dumps({"path": "a", "size": 1}).encode() + b"\ny"
                os.write(fd, json.dumps({"path": "a/b", "size": 1}).encode() + b"\nx")
                for _ in range(200):
                    os.write(fd, one * 1000)
                os.kill(int(pid), signal.SIGKILL)
                result = "wrote"
            except OSError as e:
                result = f"refused: {e.strerror}"
                os.kill(int(pid), signal.SIGCONT)
            open("/home/agent/injector.log", "w").write(result)
            raise SystemExit
"""


def test_a_left_behind_process_writing_into_the_tools_output_gains_nothing(
        astack: FerryStack, tmp_path: Path) -> None:
    origin = make_origin(tmp_path)
    run = astack.create_run("mkdir -p .ferry/artifacts\n"
                            "head -c 30000000 /dev/urandom > .ferry/artifacts/big.bin",
                            repo=str(origin), keep_alive="300s")
    done = astack.wait_status(run["id"], {"completed", "failed"}, timeout=90)
    assert done["status"] == "completed", done
    devbox = done["devboxes"][-1]
    in_devbox(devbox, "cat > /home/agent/injector.py && "
              "(setsid python3 /home/agent/injector.py >/dev/null 2>&1 &)", stdin=INJECTOR)
    time.sleep(1)
    result = collect_within(astack, done, timedelta(seconds=60))
    log = ""
    for _ in range(20):
        log = in_devbox(devbox, "cat /home/agent/injector.log 2>/dev/null || true")
        if log:
            break
        time.sleep(0.5)
    assert log, "the injector never caught the tool"
    if log.startswith("refused"):
        assert result.artifacts == ["attempts/9/artifacts/big.bin"], result
    else:  # a killed tool's stream is not imported at all
        assert result.artifacts == [] and any("artifact tool exited" in n for n in result.notes), \
            result.notes
