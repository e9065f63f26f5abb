"""What the API answers besides success, declared for the OpenAPI schema: the error body,
and the error statuses each route can return (schemathesis holds the routes to it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from ferry.models.results import FileChange


class ErrorItem(BaseModel):
    """One invalid field of a request."""

    loc: list[str | int] = Field(description="Where: `body`/`query`/`path`/`header`, then the field.")
    msg: str = Field(description="What is wrong with it.")
    type: str = Field(description="The kind of error, e.g. `value_error`, `missing`.")


class ErrorOut(BaseModel):
    """Every error answer: a message, or (422) the list of invalid fields."""

    detail: str | list[ErrorItem] = Field(description="The message, or the invalid fields.")


WHY = {
    400: "The body cannot be read (not UTF-8 JSON), a path is not allowed (e.g. `..` in an "
         "artifact path), or the Host header is not one of FERRY_ALLOWED_HOSTS.",
    401: "FERRY_API_TOKEN is set and the request has no valid `Authorization: Bearer` "
         "(webhooks: a missing or wrong signature).",
    404: "No such Run, schedule, trigger or file.",
    409: "Not possible in the current state (e.g. answering a Run that is not waiting); "
         "the message says what is.",
    413: "The body is larger than allowed.",
    422: "Invalid input; `detail` lists each invalid field. Nothing was changed.",
    503: "Temporal could not answer; try again.",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each code with the error body and why it happens."""
    return {code: {"model": ErrorOut, "description": WHY[code]} for code in codes}


COMMON = errors(400, 401, 422, 503)


class ArtifactInfo(BaseModel):
    path: str = Field(description="Path under the Run, for `GET /runs/{id}/artifacts/{path}`.")
    size: int = Field(description="Bytes.")
    content_type: str = Field(description="The type the file is served as (never one a "
                                          "browser runs: pages and SVG are text).")


class ArtifactList(BaseModel):
    artifacts: list[ArtifactInfo] = Field(description="The Run's stored files, in path order.")
    next_after: str | None = Field(default=None, description=(
        "More files follow: pass this as `after` for the next page (null on the last page)."))


class DiffOut(BaseModel):
    """`GET /runs/{id}/diff?format=json`."""

    attempt: int = Field(description="The attempt shown.")
    attempts: list[int] = Field(description="Every attempt with results.")
    files: list[FileChange] = Field(description="Changed files with line counts.")
    diff: str = Field(description="The unified diff against the base commit.")


class HookResult(BaseModel):
    """What a webhook delivery did."""

    started: bool = Field(description="Whether a Run was started.")
    run_id: str | None = Field(default=None, description="The Run started (or the one a "
                                                         "redelivery of the same body started).")
    duplicate: bool | None = Field(default=None, description="The same body was delivered before.")
    reason: str | None = Field(default=None, description="Why nothing started.")


class CronPreview(BaseModel):
    next: list[datetime] = Field(description="The next fire times, in order.")


class Health(BaseModel):
    ok: bool = Field(description="The API is up, and Temporal and the artifact store answer.")
    temporal: str = Field(description="`ok`, `unhealthy`, or why Temporal is unreachable.")
    store: str = Field(default="ok", description="`ok`, or why the artifact store cannot "
                                                 "be read.")


TEXT = {"content": {"text/plain": {"schema": {"type": "string"}}}}
EVENTS = {"content": {"text/event-stream": {"schema": {"type": "string"}}},
          "description": "Server-sent events."}
FILE = {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        "description": "The file, as an attachment."}
