"""Questions a Run asks a person, and the rules answers must follow.

The same shapes are used by `ferry-ask` in the DevBox, `POST /runs/{id}/answers`, the
answers file in the DevBox (`$FERRY_ANSWERS`) and the workflow's Update validator.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ferry.inputs import ApiInput

MAX_QUESTIONS = 20
MAX_TEXT_ANSWER = 10_000
MAX_ANSWERS_BYTES = MAX_QUESTIONS * (MAX_TEXT_ANSWER + 1000)
QUESTION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"

QuestionKind = Literal["single", "multi", "text"]


class Question(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    id: str = Field(pattern=QUESTION_ID_PATTERN)
    """Stable id; answers are keyed by it."""
    kind: QuestionKind
    """`single`, `multi` or `text`."""
    text: str = Field(min_length=1, max_length=4000)
    """The question as the agent asked it."""
    options: list[Annotated[str, Field(min_length=1, max_length=500)]] = Field(
        default_factory=list, max_length=50)
    """The choices (single and multi)."""
    default: Annotated[str, Field(max_length=MAX_TEXT_ANSWER)] | list[str] | None = None
    """The recommended answer, used when the Run is autonomous or a question times out."""
    allow_other: bool = False
    """Whether an answer of your own (`{"other": text}`) is allowed."""
    required: bool = True
    """Whether a text answer may be empty."""

    @model_validator(mode="after")
    def _consistent(self) -> Question:
        if self.kind == "text":
            if self.options or self.allow_other:
                raise ValueError(f"question {self.id!r}: options/allow_other are only for choice kinds")
            if self.default is not None and not isinstance(self.default, str):
                raise ValueError(f"question {self.id!r}: a text default must be a string")
            return self
        if not self.options:
            raise ValueError(f"question {self.id!r}: a {self.kind} question needs options")
        if len(set(self.options)) != len(self.options):
            raise ValueError(f"question {self.id!r}: options must be unique")
        if self.default is None:
            return self
        if self.kind == "single":
            if not isinstance(self.default, str) or self.default not in self.options:
                raise ValueError(f"question {self.id!r}: default must be one of the options")
        else:
            if not isinstance(self.default, list) or not set(self.default) <= set(self.options):
                raise ValueError(f"question {self.id!r}: a multi default must be a list of options")
        return self


class QuestionSet(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    questions: list[Question] = Field(min_length=1, max_length=MAX_QUESTIONS)
    """Asked together; answered together."""

    @field_validator("questions")
    @classmethod
    def _unique_ids(cls, qs: list[Question]) -> list[Question]:
        ids = [q.id for q in qs]
        if len(set(ids)) != len(ids):
            raise ValueError("question ids must be unique")
        return qs


class AnswersIn(ApiInput):
    """Body of `POST /runs/{id}/answers`: question id -> answer."""

    answers: dict[str, Any] = Field(max_length=MAX_QUESTIONS)
    """Question id → answer: an option, a list of options (multi), text, or `{"other": text}`."""

    @field_validator("answers")
    @classmethod
    def _small(cls, v: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(v)) > MAX_ANSWERS_BYTES:
            raise ValueError(f"answers are larger than {MAX_ANSWERS_BYTES} bytes in all")
        return v


class AnswerError(ValueError):
    pass


def _short(value: Any) -> str:
    """An answer quoted in an error message: never the whole of a large payload."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _other_text(value: Any) -> str | None:
    if isinstance(value, dict) and set(value) == {"other"} and isinstance(value["other"], str):
        return value["other"]
    return None


def _check_other(q: Question, text: str) -> dict[str, str]:
    if not q.allow_other:
        raise AnswerError(f"question {q.id!r} does not allow an 'other' answer")
    if not text.strip():
        raise AnswerError(f"question {q.id!r}: an 'other' answer needs text")
    if len(text) > MAX_TEXT_ANSWER:
        raise AnswerError(f"question {q.id!r}: answer is longer than {MAX_TEXT_ANSWER} characters")
    return {"other": text}


def validate_answers(qs: QuestionSet, answers: dict[str, Any]) -> dict[str, Any]:
    """Check answers against the questions; returns them normalised or raises AnswerError."""
    by_id = {q.id: q for q in qs.questions}
    unknown = sorted(set(answers) - set(by_id))
    if unknown:
        ids = ", ".join(unknown)
        raise AnswerError(f"unknown question id(s): {ids if len(ids) <= 80 else ids[:77] + '...'} "
                          f"(asked: {', '.join(by_id)})")
    missing = [q.id for q in qs.questions if q.required and q.id not in answers]
    if missing:
        raise AnswerError(f"missing answer(s) for required question(s): {', '.join(missing)}")
    out: dict[str, Any] = {}
    for qid, value in answers.items():
        q = by_id[qid]
        if q.kind == "text":
            if not isinstance(value, str):
                raise AnswerError(f"question {qid!r} takes free text (a string)")
            if len(value) > MAX_TEXT_ANSWER:
                raise AnswerError(f"question {qid!r}: answer is longer than {MAX_TEXT_ANSWER} characters")
            out[qid] = value
        elif q.kind == "single":
            if isinstance(value, list):
                raise AnswerError(f"question {qid!r} takes a single choice, not several")
            other = _other_text(value)
            if other is not None:
                out[qid] = _check_other(q, other)
            elif isinstance(value, str) and value in q.options:
                out[qid] = value
            else:
                raise AnswerError(f"question {qid!r}: {_short(value)} is not one of {q.options}"
                                  + (" (or {'other': text})" if q.allow_other else ""))
        else:
            items = value if isinstance(value, list) else [value]
            chosen: list[Any] = []
            for item in items:
                other = _other_text(item)
                if other is not None:
                    chosen.append(_check_other(q, other))
                elif isinstance(item, str) and item in q.options:
                    if item in chosen:
                        raise AnswerError(f"question {qid!r}: {_short(item)} is chosen twice")
                    chosen.append(item)
                else:
                    raise AnswerError(f"question {qid!r}: {_short(item)} is not one of {q.options}")
            if q.required and not chosen:
                raise AnswerError(f"question {qid!r} needs at least one choice")
            out[qid] = chosen
    return out


def default_answers(qs: QuestionSet) -> tuple[dict[str, Any], list[Question]]:
    """The recommended defaults, and the required questions that have none."""
    answers: dict[str, Any] = {}
    lacking: list[Question] = []
    for q in qs.questions:
        if q.default is not None:
            answers[q.id] = q.default
        elif q.required:
            lacking.append(q)
    return answers, lacking
