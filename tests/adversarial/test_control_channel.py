"""The turn's control channel: forged events, links and special files where the host reads.

By default turn commands run as an unprivileged user that cannot write the runner's
directory at all. A Run that asks for root can write it (root without capabilities still
owns root's files), so these attacks run as root: the host must still believe only lines
the runner signed, open nothing through a link, refuse FIFOs and devices, cap what it
reads, and end the Run with a clear status instead of crashing or hanging.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from tests.adversarial.conftest import HostWatch, everything_about
from tests.integration.harness import FerryStack, all_history

T1 = "/ferry/out/turns/t1"
RUNNER = "$(pgrep -u 0 -f '^python3 -I /ferry/in/bin/ferry-runner start' | head -1)"
READ_KEY = (f"cat /proc/{RUNNER}/environ 2>/dev/null | tr '\\0' '\\n' | grep -c FERRY_TURN_KEY "
            "|| echo refused-environ")


def execs(stack: FerryStack, run_id: str) -> list[dict]:
    return [s["payload"] for s in stack.timeline(run_id) if s["kind"] == "exec"]


def test_unprivileged_turns_cannot_touch_the_runner(astack: FerryStack, host: HostWatch) -> None:
    script = "\n".join([
        "id -u",
        f"echo forged >> {T1}/events.jsonl 2>/dev/null || echo refused-events",
        "touch /ferry/in/planted 2>/dev/null || echo refused-inbox",
        "touch /usr/local/bin/evil 2>/dev/null || echo refused-rootfs",
        READ_KEY,
        f"kill -9 {RUNNER} 2>/dev/null || echo refused-kill",
        "grep -c ' /ferry/out ' /proc/self/mountinfo",
        f"grep -F -c '{astack.data_dir}' /proc/self/mountinfo || echo no-host-path",
    ])
    run = astack.create_run(script)
    done = astack.wait_status(run["id"], {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed", done
    # The last line of each command's output (the shell's own complaint comes first).
    out = [e["output_excerpt"].strip().split("\n")[-1] for e in execs(astack, run["id"])]
    assert out[0] == "1000"  # the agent user, not root
    assert out[1:6] == ["refused-events", "refused-inbox", "refused-rootfs", "refused-environ",
                        "refused-kill"]
    assert out[7] == "no-host-path"  # the DevBox cannot learn the host's data dir
    keys = list((astack.data_dir / "devboxes").glob("*/keys/*.key"))
    texts = everything_about(astack, run["id"])
    for key in keys:
        assert all(key.read_text() not in t for t in texts)
    host.assert_untouched()


def test_forged_malformed_and_huge_event_lines_are_not_believed(astack: FerryStack,
                                                               host: HostWatch) -> None:
    forged_exec = json.dumps({"type": "exec_end", "index": 1, "command": "FORGED-EXEC",
                              "exit_code": 0, "started_at": "2026-01-01T00:00:00+00:00",
                              "ended_at": "2026-01-01T00:00:01+00:00", "duration_ms": 1,
                              "excerpt": "forged", "output_bytes": 1,
                              "output_file": "out/00001.log", "n": 0})
    forged_question = json.dumps({"type": "question", "n": 3, "questions": [
        {"id": "q", "kind": "text", "text": "FORGED-QUESTION"}]})
    forged_end = json.dumps({"type": "turn_end", "ok": False, "error": "FORGED-END", "n": 4})
    script = "\n".join([
        f"printf '%s\\n' '{forged_exec}' >> {T1}/events.jsonl",
        f"printf '%064d %s\\n' 0 '{forged_question}' >> {T1}/events.jsonl",
        f"printf '%s\\n' 'not json <img src=x onerror=alert(1)>' '{forged_end}' >> {T1}/events.jsonl",
        f"printf '%s\\n' '{forged_exec}' >> {T1}/events.jsonl",
        f"echo real-5 && ln -sf {host.secret} {T1}/out/00005.log",
        f"echo real-6 && rm {T1}/out/00006.log && mkfifo {T1}/out/00006.log",
        f"echo real-7 && ln -sf /dev/zero {T1}/out/00007.log && "
        f"{{ ln -sf {host.secret} /ferry/in/answers.json 2>/dev/null || echo refused-inbox; }}",
        READ_KEY,  # root, with fewer capabilities than the runner, cannot read its key
    ])
    run = astack.create_run(script, run_as_root=True)
    done = astack.wait_status(run["id"], {"completed", "failed", "waiting_for_input"}, timeout=90)
    assert done["status"] == "completed", done  # the real stream was intact
    steps = astack.timeline(run["id"])
    commands = [s["payload"]["command"] for s in steps if s["kind"] == "exec"]
    assert len(commands) == 8 and "FORGED-EXEC" not in commands
    assert not any(s["kind"] == "question" for s in steps)
    forged = [s for s in steps if s["kind"] == "raw"]
    assert forged and all(s["payload"]["forged"] for s in forged)
    assert all("not signed by the turn runner" in s["payload"]["why"] for s in forged)
    by_index = {s["payload"]["index"]: s["payload"] for s in steps if s["kind"] == "exec"}
    for i in (5, 6, 7):  # the runner's excerpt stands; the host refused to open the file
        assert by_index[i]["output_excerpt"].startswith(f"real-{i}\n")
        assert "output_path" not in by_index[i]
    assert by_index[7]["output_excerpt"].endswith("refused-inbox\n")  # read-only, even for root
    assert by_index[8]["output_excerpt"].strip().split("\n")[-1] == "refused-environ"
    assert by_index[8]["output_path"] == "turns/t1/out/00008.log"
    host.assert_not_leaked(*everything_about(astack, run["id"]))
    host.assert_untouched()


@pytest.mark.parametrize("plant", ["links-in-dir", "dir-is-link"])
def test_a_runner_that_cannot_start_is_reported_without_reading_through_links(
        astack: FerryStack, host: HostWatch, tmp_path: Path, plant: str) -> None:
    # Turn 1 plants turn 2's directory: its runner will find it taken and not start, and
    # the host, looking for why, meets links to host files — or the directory itself is a
    # link to a host directory laid out like a turn (as another Run's would be).
    t2 = "/ferry/out/turns/t2"
    if plant == "links-in-dir":
        script = (f"mkdir -p {t2} && ln -s {host.secret} {t2}/runner.log && "
                  f"ln -s {host.secret} {t2}/alive && ln -s {host.secret} {t2}/events.jsonl")
    else:
        lookalike = tmp_path / "lookalike-turn"
        (lookalike / "out").mkdir(parents=True)
        for name in ("runner.log", "events.jsonl", "alive", "out/00001.log"):
            (lookalike / name).write_text(host.secret_text + "\n")
        script = f"ln -s {lookalike} {t2}"
    run = astack.create_run(script, run_as_root=True, keep_alive="120s")
    astack.wait_status(run["id"], {"completed"}, timeout=60)
    with astack.client() as c:
        r = c.post(f"/runs/{run['id']}/messages", json={"text": "echo second"})
        assert r.status_code == 202, r.text
    done = astack.wait_status(run["id"], {"failed"}, timeout=90)
    assert "the turn runner did not start in the DevBox" in done["error"], done["error"]
    host.assert_not_leaked(*everything_about(astack, run["id"]))
    host.assert_untouched()


@pytest.mark.parametrize("grow", [
    "(head -c 50000000 /dev/zero | tr '\\0' x; echo) >> {events}",  # a 50 MB line
    "truncate -s 15T {events}",  # terabytes of nothing (sparse): never scanned
])
def test_an_overlong_line_voids_the_turn_at_once(astack: FerryStack, grow: str) -> None:
    started = time.monotonic()
    run = astack.create_run(grow.format(events=f"{T1}/events.jsonl") + "\nsleep 30",
                            run_as_root=True)
    done = astack.wait_status(run["id"], {"completed", "failed"}, timeout=60)
    assert done["status"] == "failed"
    assert "a line longer than" in done["error"], done["error"]
    assert time.monotonic() - started < 30  # not after the sleep: the runner was stopped


def test_a_root_turn_replacing_python_cannot_steal_this_turns_key(astack: FerryStack) -> None:
    # The runner starts each command without executing anything from the image with its
    # own capabilities; a replaced python3 is never run by it during the turn.
    trojan = ("#!/bin/sh\nfor p in /proc/[0-9]*; do tr '\\0' '\\n' < $p/environ 2>/dev/null "
              "| grep FERRY_TURN_KEY >> /tmp/stolen; done\nexec /usr/bin/python3.11.real \"$@\"\n")
    script = "\n".join([
        "mv /usr/bin/python3.11 /usr/bin/python3.11.real",
        f"printf '{trojan}' > /usr/bin/python3.11 && chmod 755 /usr/bin/python3.11",
        "echo next-command",
        "sleep 1",
        "grep -c FERRY_TURN_KEY /tmp/stolen 2>/dev/null || echo nothing-stolen",
    ])
    run = astack.create_run(script, run_as_root=True)
    done = astack.wait_status(run["id"], {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed", done
    last = [s["payload"] for s in astack.timeline(run["id"]) if s["kind"] == "exec"][-1]
    assert last["output_excerpt"].strip().split("\n")[-1] == "nothing-stolen"


def test_a_shrunk_event_stream_voids_the_turn(astack: FerryStack) -> None:
    run = astack.create_run(f"echo one\nsleep 1\n: > {T1}/events.jsonl\nsleep 2\necho never-believed",
                            run_as_root=True)
    done = astack.wait_status(run["id"], {"completed", "failed"}, timeout=60)
    assert done["status"] == "failed"
    assert "event stream was tampered with" in done["error"], done["error"]
    assert "never-believed" not in json.dumps(execs(astack, run["id"]))


def test_a_line_left_open_swallows_the_runners_next_line_and_voids_the_turn(
        astack: FerryStack) -> None:
    run = astack.create_run(f"printf 'unterminated' >> {T1}/events.jsonl\necho next",
                            run_as_root=True)
    done = astack.wait_status(run["id"], {"completed", "failed"}, timeout=60)
    assert done["status"] == "failed"
    assert "event stream was tampered with (event" in done["error"], done["error"]


def test_a_replaced_event_stream_ends_the_run_clearly(astack: FerryStack) -> None:
    # The runner keeps writing to the file it opened; the name now holds a FIFO, which the
    # host refuses to open (it would block). The Run fails once the runner's signed
    # heartbeat stops, instead of hanging.
    run = astack.create_run(f"mv {T1}/events.jsonl {T1}/moved && mkfifo {T1}/events.jsonl\necho x",
                            run_as_root=True)
    done = astack.wait_status(run["id"], {"completed", "failed"}, timeout=90)
    assert done["status"] == "failed"
    assert "the turn runner stopped without finishing" in done["error"], done["error"]


def test_a_stream_of_unsigned_lines_costs_no_fast_polling(astack: FerryStack) -> None:
    # Past the first few (shown as forged), unsigned lines make no step: they must not keep
    # the host reading every few milliseconds, nor cost the Run's history a signal each.
    run = astack.create_run(
        f"for i in $(seq 400); do echo junk >> {T1}/events.jsonl; sleep 0.01; done\necho done",
        run_as_root=True, keep_alive="0s")
    done = astack.wait_status(run["id"], {"completed", "failed"}, timeout=90)
    assert done["status"] in ("completed", "failed"), done
    forged = [s for s in astack.timeline(run["id"]) if s["kind"] == "raw"]
    assert 0 < len(forged) <= 20
    history = json.loads("[" + asyncio.run(all_history(
        astack.settings.effective_temporal_address, f"run-{run['id']}")).replace("}\n{", "},{")
        + "]")
    signals = sum(1 for h in history for e in h["events"]
                  if e.get("workflowExecutionSignaledEventAttributes"))
    # ~4 s of junk: at most one cursor signal per poll interval (0.15 s), plus the steps.
    assert signals < 80, signals


SERVER = "^python3 -I /ferry/in/bin/ferry-runner serve"


def _answer(stack: FerryStack, run_id: str) -> None:
    stack.wait_status(run_id, {"waiting_for_input"}, timeout=60)
    with stack.client() as c:
        r = c.post(f"/runs/{run_id}/answers", json={"answers": {"go": "yes"}})
        assert r.status_code == 200, r.text


def test_an_agent_turn_cannot_reach_the_turn_servers_key_fifo_or_turn_env(
        astack: FerryStack, host: HostWatch) -> None:
    # The second turn is started by the DevBox's turn server, which holds the DevBox's key
    # (every later turn's key derives from it) and reads the host's turn FIFO.
    script = "\n".join([
        'ferry-ask "Go on?" --id go --options yes,no',
        f"for p in $(pgrep -f '{SERVER}'); do cat /proc/$p/environ; done 2>/dev/null "
        "| tr '\\0' '\\n' | grep -c -e FERRY_BOX_KEY -e FERRY_TURN_KEY || echo refused-environ",
        "echo t9 > /ferry/in/turns.fifo 2>/dev/null || echo refused-fifo",
        "cat /ferry/in/turns/t2/env.json 2>/dev/null || echo refused-env",
        f"{{ pkill -f '{SERVER}' 2>/dev/null; pgrep -c -f '{SERVER}'; }}",
    ])
    run = astack.create_run(script)
    _answer(astack, run["id"])
    done = astack.wait_status(run["id"], {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed", done["error"]
    out = [e["output_excerpt"].strip().split("\n")[-1] for e in execs(astack, run["id"])]
    assert out[1:4] == ["refused-environ", "refused-fifo", "refused-env"]
    assert int(out[4]) >= 1  # the server (and this turn's runner, its child) live on
    keys = list((astack.data_dir / "devboxes").glob("*/keys/*.key"))
    assert any(k.name == "box.key" for k in keys)
    texts = everything_about(astack, run["id"])
    for key in keys:
        assert all(key.read_text() not in t for t in texts)
    host.assert_untouched()


def test_a_root_turn_that_kills_the_turn_server_and_eats_its_messages_delays_only_itself(
        astack: FerryStack) -> None:
    # Root turns own the FIFO and may kill the server: the host then starts each turn by
    # `docker exec` (at once when nobody reads the FIFO, after a second when somebody
    # reads it but no turn shows up). Every turn still runs, once.
    script = "\n".join([
        # (the server starts beside the first turn: wait for it, then kill it)
        f"{{ for i in $(seq 100); do pgrep -f '{SERVER}' >/dev/null && break; sleep 0.1; done; "
        f"pkill -f '{SERVER}'; sleep 0.2; pgrep -c -f '{SERVER}' || echo no-server; }}",
        "setsid sh -c 'while :; do cat /ferry/in/turns.fifo; done' > /tmp/eaten 2>&1 < /dev/null &",
        'ferry-ask "Go on?" --id go --options yes,no',
        "echo second-turn",
    ])
    run = astack.create_run(script, run_as_root=True, keep_alive="5m")
    _answer(astack, run["id"])
    done = astack.wait_status(run["id"], {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed", done
    with astack.client() as c:
        assert c.post(f"/runs/{run['id']}/messages", json={"text": "cat /tmp/eaten"}).status_code == 202
    astack.wait_until(lambda: any(e["command"] == "cat /tmp/eaten" for e in execs(astack, run["id"])),
                      30, "the follow-up's step")
    assert astack.wait_status(run["id"], {"completed", "failed"}, timeout=60)["status"] == "completed"
    got = execs(astack, run["id"])
    assert [e["command"] for e in got] == [
        script.split("\n")[0], script.split("\n")[1], script.split("\n")[2], "echo second-turn",
        "cat /tmp/eaten"]
    assert got[0]["output_excerpt"].strip().split("\n")[-1] == "no-server"
    assert got[3]["output_excerpt"] == "second-turn\n"
    # The reader planted by the first turn took the host's messages: the turns ran anyway.
    assert "t3" in got[4]["output_excerpt"]
    with astack.client() as c:
        c.delete(f"/runs/{run['id']}/devbox")
