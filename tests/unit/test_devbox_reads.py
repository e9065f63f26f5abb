"""Host-side reads of DevBox-written files: no links, no special files, capped; signed events."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from activities.devbox import events, hostio
from activities.secrets import StreamRedactor


def test_links_fifos_and_dirs_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("host secret")
    box = tmp_path / "box"
    (box / "turns").mkdir(parents=True)
    (box / "ok.txt").write_text("fine")
    (box / "link.txt").symlink_to(outside)
    (box / "dirlink").symlink_to(tmp_path)
    (box / "zero").symlink_to("/dev/zero")
    os.mkfifo(box / "fifo")
    assert hostio.read_capped(box, "ok.txt", 100) == (b"fine", False)
    for rel in ("link.txt", "dirlink/outside.txt", "zero", "fifo", "turns", "../outside.txt",
                "missing", "", "a//b"):
        with pytest.raises(hostio.UnsafeFile):
            hostio.read_capped(box, rel, 100)
    assert hostio.mtime(box, "link.txt") is None


def test_reads_are_capped(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"x" * 5000 + b"END")
    assert hostio.read_capped(tmp_path, "big", 10) == (b"x" * 10, True)
    assert hostio.read_tail(tmp_path, "big", 3) == b"END"
    got: list[bytes] = []
    assert hostio.copy_capped(tmp_path, "big", got.append, 100) == (100, 5003)
    assert b"".join(got) == b"x" * 100


def _signed(key: str, n: int, **event) -> bytes:
    body = json.dumps({**event, "n": n}).encode()
    return events.sign(key, body) + b" " + body + b"\n"


def test_only_lines_the_runner_signed_are_believed(tmp_path: Path) -> None:
    key, other = events.new_key(), events.new_key()
    good = _signed(key, 0, type="exec_end")
    forged = _signed(other, 1, type="question")
    tampered = good.replace(b"exec_end", b"exec_xxx")
    (tmp_path / "events.jsonl").write_bytes(good + forged + tampered + b"not json\n"
                                            + _signed(key, 1, type="turn_end") + b"partial")
    turn = hostio.Beneath(tmp_path, "")
    got = events.read_lines(turn, key, 0, 0)
    assert [(x.event or {}).get("type") for x in got.lines] == ["exec_end", None, None, None,
                                                               "turn_end"]
    assert "not signed" in got.lines[1].why and not got.overlong
    assert got.offset == (tmp_path / "events.jsonl").stat().st_size - len(b"partial")
    assert events.read_lines(turn, key, got.offset + 10**6, 0).truncated


def test_a_line_longer_than_the_runner_writes_stops_the_reading(tmp_path: Path) -> None:
    key = events.new_key()
    first = _signed(key, 0, type="exec_end")
    turn = hostio.Beneath(tmp_path, "")
    for tail in (b"y" * (events.MAX_LINE + 10) + b"\n", b"\0" * (events.MAX_LINE + 10)):
        (tmp_path / "events.jsonl").write_bytes(first + tail + _signed(key, 1, type="turn_end"))
        got = events.read_lines(turn, key, 0, 0)
        assert got.overlong and [x.event["type"] for x in got.lines] == ["exec_end"]
        assert got.offset == len(first)


def test_a_turn_dir_replaced_by_a_link_is_not_followed(tmp_path: Path) -> None:
    other = tmp_path / "other-run" / "turns" / "t1"
    other.mkdir(parents=True)
    (other / "events.jsonl").write_text("another Run's events\n")
    out = tmp_path / "out"
    (out / "turns").mkdir(parents=True)
    (out / "turns" / "t1").symlink_to(other)
    with pytest.raises(hostio.UnsafeFile):
        events.read_lines(hostio.Beneath(out, "turns/t1"), events.new_key(), 0, 0)


def test_the_heartbeat_cannot_be_faked(tmp_path: Path) -> None:
    key = events.new_key()
    stamp = b"1700000000.000"
    assert events.verify_alive(key, stamp + b" " + events.sign(key, b"alive " + stamp)) == 1.7e9
    assert events.verify_alive(key, b"9999999999.000 " + events.sign(key, b"alive " + stamp)) is None
    assert events.verify_alive(key, b"garbage") is None


def test_redaction_holds_across_chunk_boundaries() -> None:
    out: list[bytes] = []
    r = StreamRedactor(["sk-SECRET-123456"], out.append)
    for chunk in (b"token=sk-SEC", b"RET-1", b"23456 done sk-SECRET-", b"123456"):
        r.feed(chunk)
    r.close()
    assert b"".join(out) == b"token=[REDACTED] done [REDACTED]"


def test_artifact_records_are_parsed_strictly(tmp_path: Path) -> None:
    from activities.workspace.artifacts import import_records
    from ferry.artifact_store import ArtifactStore

    def records(*parts: bytes) -> Path:
        p = tmp_path / f"stream-{len(list(tmp_path.iterdir()))}"
        p.write_bytes(b"".join(parts))
        return p

    def rec(path: str, data: bytes) -> bytes:
        return json.dumps({"path": path, "size": len(data)}).encode() + b"\n" + data

    store = ArtifactStore(tmp_path / "store")
    ok = records(rec(".ferry/artifacts/a.txt", b"A"), rec("../../etc/x", b"X"),
                 rec("/abs", b"Y"), rec("sub/b.txt", b"B"), b'{"skipped": 2}\n')
    paths, skipped, problem = import_records(ok, store, "r1", "attempts/1", [])
    assert paths == ["attempts/1/artifacts/a.txt", "attempts/1/artifacts/sub/b.txt"]
    assert (skipped, problem) == (4, None)
    for bad in (b'{"path": "a", "size": -5}\n', b'{"path": "a", "size": 99999999999}\nshort',
                b"not json\n", b"x" * 20000, b'{"path": "a", "size": true}\n'):
        paths, _, problem = import_records(records(bad), store, "r2", "attempts/1", [])
        assert problem is not None and paths == [], bad[:40]
    # A stream without its end marker keeps what came complete, and says so.
    paths, _, problem = import_records(records(rec("a", b"A")), store, "r3", "attempts/1", [])
    assert paths == ["attempts/1/artifacts/a"] and problem is not None
