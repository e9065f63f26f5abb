"""What the parts of RunWorkflow share: the Run's spec and state, and each part's view of
the methods the others define (RunWorkflow puts the parts together)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING, Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from ferry.models.api import RunPublic
    from ferry.models.common import RunStatus
    from ferry.models.hosts import DevBoxInfo
    from ferry.models.state import RunSpec, RunState
    from ferry.models.steps import StepIn
    from ferry.questions import QuestionSet


class RunBase:
    spec: RunSpec
    state: RunState
    _archiving: bool  # the archiver is writing a chunk
    _reviewing: bool  # an accept is running
    _reviewed: bool  # a review happened in this execution
    _turn_started: datetime | None  # when this execution began the current turn

    if TYPE_CHECKING:
        def _add_step(self, step: StepIn) -> None: ...
        async def _archive_all(self, archiver: asyncio.Task[None]) -> None: ...
        def _ask(self, questions: QuestionSet) -> None: ...
        async def _choose_engine(self, devbox: DevBoxInfo) -> None: ...
        def _on_host(self, devbox: DevBoxInfo | None=None) -> dict[str, Any]: ...
        def _set_status(self, status: RunStatus, finished: bool=False) -> None: ...
        def _start_turn(self) -> None: ...
        async def _wake(self) -> None: ...
        def details(self) -> RunPublic: ...
