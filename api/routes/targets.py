"""`GET /targets`: the worker hosts that are polling, with their DevBox images."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import RunsDep
from api.responses import COMMON
from ferry.models.hosts import TargetPublic

router = APIRouter(prefix="/targets", tags=["targets"], responses=COMMON)


@router.get("", response_model=list[TargetPublic])
async def list_targets(runs: RunsDep) -> list[TargetPublic]:
    """Every worker host that reported in; `healthy` when seen in the last 45 s."""
    return await runs.targets()
