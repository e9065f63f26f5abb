"""Splitting a shell script into commands (one exec step each)."""

from __future__ import annotations

import pytest

from ferry.script_commands import split_script, summarize

CASES = [
    ("echo a; sleep 3; echo b", ["echo a", "sleep 3", "echo b"]),
    ("echo 'a;b'; echo \"c;d\"", ["echo 'a;b'", 'echo "c;d"']),
    ("# comment\necho x # trailing\n\n", ["echo x"]),
    ("if true; then\n echo y; echo z\nfi\necho w", ["if true; then\n echo y; echo z\nfi", "echo w"]),
    ("for i in 1 2; do echo $i; done; echo done", ["for i in 1 2; do echo $i; done", "echo done"]),
    ("case $x in a) echo a;; b) echo b;; esac; echo q",
     ["case $x in a) echo a;; b) echo b;; esac", "echo q"]),
    ("cat <<EOF\nline; one\nEOF\necho after", ["cat <<EOF\nline; one\nEOF", "echo after"]),
    ("cat <<-'X'\n\tquoted $y;\n\tX\nls", ["cat <<-'X'\n\tquoted $y;\n\tX", "ls"]),
    ("echo $(echo a; echo b); echo c", ["echo $(echo a; echo b)", "echo c"]),
    ("make && \\\n make test", ["make && \\\n make test"]),
    ("a &&\nb", ["a &&\nb"]),
    ("ls | \n wc -l", ["ls | \n wc -l"]),
    ("f() { echo a; echo b; }\nf", ["f() { echo a; echo b; }", "f"]),
    ("(cd x; ls)\nls", ["(cd x; ls)", "ls"]),
    ("echo done; echo fi", ["echo done", "echo fi"]),
    ("while read l; do\n  echo $l\ndone < f", ["while read l; do\n  echo $l\ndone < f"]),
    ("echo \\; x", ["echo \\; x"]),
    ("echo `date; whoami`; echo z", ["echo `date; whoami`", "echo z"]),
    ("   \n\n# only comments\n", []),
]


@pytest.mark.parametrize(("script", "expected"), CASES)
def test_split(script: str, expected: list[str]) -> None:
    assert split_script(script) == expected


def test_summaries() -> None:
    assert summarize(1, True, None, None) == "Ran 1 command; all succeeded."
    assert summarize(3, True, None, None) == "Ran 3 commands; all succeeded."
    assert summarize(2, False, "false", 1) == "Command 2 failed with exit code 1: false"
