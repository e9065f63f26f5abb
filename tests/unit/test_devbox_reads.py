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
                                            + b"y" * (events.MAX_LINE + 10) + b"\n"
                                            + _signed(key, 1, type="turn_end") + b"partial")
    turn = hostio.Beneath(tmp_path, "")
    got = events.read_lines(turn, key, 0, 0)
    assert [line.event["type"] if line.event else None for line in got.lines] == [
        "exec_end", None, None, None, None, "turn_end"][:len(got.lines)]
    offset, index, seen = 0, 0, []
    while True:
        got = events.read_lines(turn, key, offset, index)
        if got.offset == offset:
            break
        seen += got.lines
        offset, index = got.offset, index + len(got.lines)
    assert [(x.event or {}).get("type") for x in seen] == ["exec_end", None, None, None, None,
                                                            "turn_end"]
    assert "longer than" in seen[4].why and "not signed" in seen[1].why
    assert offset == (tmp_path / "events.jsonl").stat().st_size - len(b"partial")
    assert events.read_lines(turn, key, offset + 10**6, 0).truncated


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
