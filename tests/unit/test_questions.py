"""Question specs and answer validation (the rules the answers Update enforces)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ferry.durations import parse_duration
from ferry.questions import AnswerError, QuestionSet, default_answers, validate_answers

QS = QuestionSet.model_validate({"questions": [
    {"id": "color", "kind": "single", "text": "Colour?", "options": ["red", "blue"],
     "default": "red", "allow_other": True},
    {"id": "tags", "kind": "multi", "text": "Tags?", "options": ["a", "b", "c"], "default": ["a"]},
    {"id": "note", "kind": "text", "text": "Anything else?", "required": False},
]})


def test_valid_answers_are_normalised() -> None:
    got = validate_answers(QS, {"color": "blue", "tags": ["a", "c"], "note": "hi"})
    assert got == {"color": "blue", "tags": ["a", "c"], "note": "hi"}
    got = validate_answers(QS, {"color": {"other": "green"}, "tags": "b"})
    assert got == {"color": {"other": "green"}, "tags": ["b"]}


@pytest.mark.parametrize(("answers", "message"), [
    ({"color": "red", "tags": ["a"], "zzz": "x"}, "unknown question id(s): zzz"),
    ({"color": "green", "tags": ["a"]}, "'green' is not one of"),
    ({"color": ["red", "blue"], "tags": ["a"]}, "single choice, not several"),
    ({"tags": ["a"]}, "missing answer(s) for required question(s): color"),
    ({"color": "red", "tags": ["a"], "note": "x" * 10_001}, "longer than 10000"),
    ({"color": {"other": ""}, "tags": ["a"]}, "needs text"),
    ({"color": "red", "tags": [{"other": "z"}]}, "does not allow an 'other'"),
    ({"color": "red", "tags": ["a", "a"]}, "chosen twice"),
    ({"color": "red", "tags": []}, "at least one choice"),
    ({"color": "red", "tags": ["a"], "note": 5}, "free text"),
])
def test_invalid_answers_rejected(answers, message) -> None:
    with pytest.raises(AnswerError) as e:
        validate_answers(QS, answers)
    assert message in str(e.value)


@pytest.mark.parametrize(("spec", "message"), [
    ({"questions": []}, "at least 1"),
    ({"questions": [{"id": "x", "kind": "single", "text": "?"}]}, "needs options"),
    ({"questions": [{"id": "x", "kind": "single", "text": "?", "options": ["a"], "default": "b"}]},
     "default must be one of"),
    ({"questions": [{"id": "x", "kind": "multi", "text": "?", "options": ["a"], "default": "a"}]},
     "multi default must be a list"),
    ({"questions": [{"id": "x", "kind": "text", "text": "?", "options": ["a"]}]}, "only for choice"),
    ({"questions": [{"id": "x", "kind": "pick", "text": "?"}]}, "single"),
    ({"questions": [{"id": "x", "kind": "text", "text": "?"}, {"id": "x", "kind": "text", "text": "?"}]},
     "unique"),
    ({"questions": [{"id": "bad id", "kind": "text", "text": "?"}]}, "pattern"),
])
def test_invalid_question_specs(spec, message) -> None:
    with pytest.raises(ValidationError) as e:
        QuestionSet.model_validate(spec)
    assert message in str(e.value)


def test_defaults() -> None:
    answers, lacking = default_answers(QS)
    assert answers == {"color": "red", "tags": ["a"]} and lacking == []
    qs = QuestionSet.model_validate({"questions": [{"id": "q", "kind": "text", "text": "?"}]})
    assert default_answers(qs)[1][0].id == "q"


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("15m", 900), ("2h", 7200), ("7d", 604800), ("1h30m", 5400), ("PT2S", 2),
    ("P1DT2H", 93600), (5, 5), ("500ms", 0.5),
])
def test_durations(text, seconds) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("bad", ["", "abc", "-5s", "P", "5x", True, None])
def test_bad_durations(bad) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)
