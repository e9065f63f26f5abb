"""`GET /engines`: every engine, and whether the worker pool can run it (and why not)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import RunsDep
from api.responses import COMMON
from ferry.models.hosts import EngineInfo

router = APIRouter(prefix="/engines", tags=["engines"], responses=COMMON)


@router.get("", response_model=list[EngineInfo])
async def list_engines(runs: RunsDep) -> list[EngineInfo]:
    """Each engine by its product name, available when a healthy worker host has its CLI
    (in the default DevBox image) and a credential for it; otherwise the reason. A Run for
    an engine no host can run is refused with that reason (422)."""
    return await runs.engines()
