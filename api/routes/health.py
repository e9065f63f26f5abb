"""`GET /healthz`: is the API up and can it reach Temporal."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.responses import Health, errors

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health,
            responses={**errors(401),
                       503: {"model": Health, "description": "Temporal is unreachable or unhealthy."}})
async def healthz(request: Request) -> JSONResponse:
    """Temporal answers, and the artifact store does (a read of a small object)."""
    client = request.app.state.client
    try:
        ok = await client.service_client.check_health()
        temporal = "ok" if ok else "unhealthy"
    except Exception as e:  # any failure to reach Temporal is "unhealthy", not a 500
        ok, temporal = False, f"unreachable: {e}"
    try:
        await asyncio.to_thread(request.app.state.store.blobs.size, "health/api")
        store = "ok"
    except OSError as e:
        ok, store = False, str(e)
    return JSONResponse({"ok": bool(ok), "temporal": temporal, "store": store},
                        status_code=200 if ok else 503)
