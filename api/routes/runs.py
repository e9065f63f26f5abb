"""Routes of the `runs` resource: create, list, show, timeline, live events, logs, cancel,
rename, release the DevBox."""

from __future__ import annotations

import asyncio
import json
import mimetypes
from collections.abc import AsyncIterator
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Header, HTTPException, Path, Query, Request, status
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
from sse_starlette.sse import EventSourceResponse

from api.deps import RunsDep, StoreDep
from api.responses import COMMON, EVENTS, FILE, TEXT, ArtifactList, DiffOut, errors
from api.security import INERT_CSP
from ferry.artifact_store import UnsafePath, safe_relative
from ferry.models.api import (
    MessageIn,
    ReleaseResult,
    ReviewIn,
    RunCreate,
    RunList,
    RunPublic,
    RunRename,
    Timeline,
)
from ferry.models.common import RUN_ID_PATTERN, Engine, RunStatus
from ferry.models.steps import LiveOutput
from ferry.questions import AnswersIn

router = APIRouter(prefix="/runs", tags=["runs"], responses=COMMON)

RunId = Annotated[str, Path(pattern=RUN_ID_PATTERN, description="Run id (without `run-`)")]
INERT = {"Content-Security-Policy": INERT_CSP}
MAX_SEQ = 2**53
SSE_POLL_SECONDS = 0.25


@router.post("", status_code=status.HTTP_201_CREATED, response_model=RunPublic,
             responses=errors(404, 409))
async def create_run(body: RunCreate, runs: RunsDep) -> RunPublic:
    """Start a Run. For the `script` engine the instructions are a shell script.

    `from_run` copies another Run's spec (fields given here override it).
    """
    return await runs.create(body)


@router.get("", response_model=RunList)
async def list_runs(
    runs: RunsDep,
    status_: Annotated[RunStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    page_token: str | None = None,
    schedule: Annotated[str | None, Query(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$",
                                          description="Only this schedule's Runs.")] = None,
    engine: Annotated[Engine | None, Query(description="Only Runs of this engine.")] = None,
    target: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                                        description="Only Runs on this worker host.")] = None,
) -> RunList:
    """List Runs, newest first, through Temporal visibility."""
    return await runs.list_runs(status_, limit, page_token, schedule, engine, target)


@router.get("/{run_id}", response_model=RunPublic, responses=errors(404))
async def get_run(run_id: RunId, runs: RunsDep) -> RunPublic:
    return await runs.get(run_id)


@router.patch("/{run_id}", response_model=RunPublic, responses=errors(404, 409))
async def rename_run(run_id: RunId, body: RunRename, runs: RunsDep) -> RunPublic:
    return await runs.rename(run_id, body)


@router.post("/{run_id}/cancel", status_code=status.HTTP_202_ACCEPTED, response_model=RunPublic,
             responses=errors(404, 409))
async def cancel_run(run_id: RunId, runs: RunsDep) -> RunPublic:
    return await runs.cancel(run_id)


@router.delete("/{run_id}/devbox", status_code=status.HTTP_202_ACCEPTED,
               response_model=ReleaseResult, responses=errors(404, 409))
async def release_devbox(run_id: RunId, runs: RunsDep) -> ReleaseResult:
    """Remove a finished Run's kept DevBox now instead of at the end of its keep-alive
    window (409 while the Run is working, or when nothing is kept)."""
    return await runs.release(run_id)


@router.post("/{run_id}/answers", response_model=RunPublic, responses=errors(404, 409))
async def answer_run(run_id: RunId, body: AnswersIn, runs: RunsDep) -> RunPublic:
    """Answer the Run's pending questions; the Run resumes. Invalid answers change nothing."""
    return await runs.answer(run_id, body)


@router.post("/{run_id}/messages", status_code=status.HTTP_202_ACCEPTED, response_model=RunPublic,
             responses=errors(404, 409))
async def message_run(run_id: RunId, body: MessageIn, runs: RunsDep) -> RunPublic:
    """Steer a working Run (delivered at the next turn boundary), or follow up on a finished
    one while its DevBox is kept alive (starts a new turn in the same DevBox)."""
    return await runs.send_message(run_id, body)


@router.get("/{run_id}/timeline", response_model=Timeline, responses=errors(404))
async def get_timeline(
    run_id: RunId, runs: RunsDep, after: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0
) -> Timeline:
    """All steps with `seq > after`, in order (archived chunks and the live tail merged)."""
    read = await runs.timeline(run_id, after)
    return Timeline(steps=read.steps)


@router.get("/{run_id}/events", response_class=EventSourceResponse,
            responses={200: EVENTS, **errors(404)})
async def run_events(
    run_id: RunId,
    request: Request,
    runs: RunsDep,
    store: StoreDep,
    after: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventSourceResponse:
    """Server-sent events: `step` (id = seq), `status`, `output` (the running command's
    latest output, `LiveOutput`), and `end` when the Run has finished.

    Reconnect with `Last-Event-ID` (or `?after=`) to resume after the last step seen.
    """
    if last_event_id is not None:
        if not (last_event_id.isascii() and last_event_id.isdigit()) or \
                int(last_event_id) > MAX_SEQ:
            raise HTTPException(422, detail=[{"loc": ["header", "Last-Event-ID"],
                                              "msg": "must be a step seq", "type": "value_error"}])
        after = int(last_event_id)
    first = await runs.timeline(run_id, after)

    async def stream() -> AsyncIterator[dict[str, str]]:
        nonlocal after
        read = first
        last_status: RunStatus | None = None
        last_live: bytes | None = None
        while True:
            for step in read.steps:
                after = step.seq
                yield {"event": "step", "id": str(step.seq), "data": step.model_dump_json()}
            live = None if read.finished else await asyncio.to_thread(store.read_live, run_id)
            if live is not None and live != last_live:
                last_live = live
                try:
                    yield {"event": "output",
                           "data": LiveOutput.model_validate_json(live).model_dump_json()}
                except ValueError:
                    pass  # caught mid-write by another reader's clock: the next poll has it
            if read.status != last_status:
                last_status = read.status
                yield {"event": "status", "data": json.dumps({"status": read.status.value})}
            if read.finished:
                yield {"event": "end", "data": json.dumps({"status": read.status.value})}
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(SSE_POLL_SECONDS)
            read = await runs.timeline(run_id, after)

    return EventSourceResponse(stream(), ping=15)


@router.get("/{run_id}/logs", response_class=StreamingResponse,
            responses={200: TEXT, **errors(404)})
async def get_logs(run_id: RunId, runs: RunsDep, store: StoreDep) -> StreamingResponse:
    """The Run's full command output as plain text, one block per exec step, and the
    running command's latest output while it runs."""
    read = await runs.timeline(run_id, 0)

    def blocks():
        for step in read.steps:
            if step.kind != "exec":
                continue
            p = step.payload
            yield f"$ {p.get('command', '')}\n".encode()
            output = store.chunks(run_id, str(p["output_path"])) if p.get("output_path") else None
            if output is not None:
                yield from output
                if p.get("output_truncated"):
                    yield b"\n[... stored output truncated: the Run's output limit was reached ...]\n"
            else:
                # Only the excerpt exists (the full output was refused or not stored).
                yield str(p.get("output_excerpt", "")).encode()
            yield f"[exit {p.get('exit_code')}, {p.get('duration_ms')} ms]\n\n".encode()
        if live is not None and not live.done:
            cut = f"[... {live.tail_start} earlier bytes ...]\n" if live.tail_start else ""
            yield f"$ {live.command}\n{cut}{live.tail}\n[running ...]\n".encode()

    live = None
    if not read.finished:
        raw = await asyncio.to_thread(store.read_live, run_id)
        try:
            live = LiveOutput.model_validate_json(raw) if raw else None
        except ValueError:
            live = None
    return StreamingResponse(blocks(), media_type="text/plain; charset=utf-8", headers=INERT)


@router.post("/{run_id}/review", response_model=RunPublic, responses=errors(404, 409))
async def review_run(run_id: RunId, body: ReviewIn, runs: RunsDep) -> RunPublic:
    """accept: commit on `ferry/<run-id>`, push, open a pull request (GitHub; idempotent).
    request_changes: a follow-up turn with the message. reject: reset and start a new attempt
    (the message, if any, replaces the instructions)."""
    return await runs.review(run_id, body)


@router.get("/{run_id}/diff", response_model=DiffOut,
            responses={200: TEXT, **errors(404)})
async def get_diff(
    run_id: RunId, runs: RunsDep, store: StoreDep,
    attempt: Annotated[int | None, Query(ge=1, le=10_000)] = None,
    format: Annotated[str, Query(pattern="^(text|json)$")] = "text",
):
    """The workspace diff against the base commit (new files included), per attempt."""
    attempts = await asyncio.to_thread(store.attempts, run_id)
    if not attempts:
        await runs.get(run_id)  # 404 for an unknown Run
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail=f"Run {run_id} has no results yet (no finished turn)")
    n = attempt or attempts[-1]
    if n not in attempts:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail=f"Run {run_id} has no attempt {n} (attempts: {attempts})")
    raw = await asyncio.to_thread(store.read_bytes, run_id, f"attempts/{n}/diff.patch")
    diff = (raw or b"").decode(errors="replace")
    if format == "json":
        listed = await asyncio.to_thread(store.read_bytes, run_id, f"attempts/{n}/files.json")
        files = json.loads(listed or b"[]")
        return JSONResponse({"attempt": n, "attempts": attempts, "files": files, "diff": diff},
                            headers=INERT)
    return PlainTextResponse(diff, headers={"X-Ferry-Attempt": str(n), **INERT})


@router.get("/{run_id}/artifacts", response_model=ArtifactList, responses=errors(404))
async def list_artifacts(
    run_id: RunId, runs: RunsDep, store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=10_000, description="At most this many files.")] = 1000,
    after: Annotated[str | None, Query(max_length=4096, description=(
        "Start after this path: the `next_after` of the previous page."))] = None,
) -> JSONResponse:
    """The Run's stored files (outputs, diffs, artifacts, logs) with size and type, in path
    order, a page at a time."""
    try:
        files = await asyncio.to_thread(store.list_files, run_id, limit + 1, after)
    except UnsafePath as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, detail=f"after: {e}") from None
    if not files and after is None:
        await runs.get(run_id)
    more = len(files) > limit
    files = files[:limit]
    for f in files:  # as served: a DevBox-made page is text here
        f["content_type"] = served_type(str(f["path"]))
    return JSONResponse({"artifacts": files,
                         "next_after": files[-1]["path"] if more else None})


SAFE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf",
              "application/zip", "application/gzip", "application/json"}


def served_type(path: str) -> str:
    """What a DevBox-made file is served as: never a type a browser would run."""
    guessed = mimetypes.guess_type(path)[0] or ""
    if guessed in SAFE_TYPES:
        return guessed
    if guessed.startswith("text/") or "xml" in guessed or "javascript" in guessed \
            or guessed.endswith(("+json", "x-sh", "x-python")):
        return "text/plain; charset=utf-8"
    return "application/octet-stream"


@router.head("/{run_id}/artifacts/{path:path}", response_class=FileResponse,
             responses={200: FILE, **errors(404)}, operation_id="head_artifact")
@router.get("/{run_id}/artifacts/{path:path}", response_class=FileResponse,
            responses={200: FILE, **errors(404)})
async def get_artifact(run_id: RunId, path: str, store: StoreDep, request: Request
                       ) -> StreamingResponse:
    """One stored file of a Run, e.g. a command's full output (`output_path` of an exec step).

    Served as an attachment with a sandboxing CSP: it is the DevBox's data, never a page.
    Streamed from the store (local or object storage), never loaded whole."""
    safe_relative(path)  # an unsafe path is a 400 (UnsafePath's handler), not a 404
    size = await asyncio.to_thread(store.size, run_id, path)
    chunks = None
    if size is not None and request.method != "HEAD":
        chunks = await asyncio.to_thread(store.chunks, run_id, path)
    if size is None or (request.method != "HEAD" and chunks is None):
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail=f"no artifact {path[:200]!r} in Run {run_id}")
    headers = {**INERT, "Content-Length": str(size),
               "Content-Disposition": attachment(path.rsplit("/", 1)[-1])}
    return StreamingResponse(chunks or iter(()), media_type=served_type(path), headers=headers)


def attachment(name: str) -> str:
    """A Content-Disposition for a download, as Starlette's FileResponse writes it."""
    quoted = quote(name)
    if quoted != name:
        return f"attachment; filename*=utf-8''{quoted}"
    return f'attachment; filename="{name}"'

