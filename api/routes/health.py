"""`GET /healthz`: is the API up and can it reach Temporal."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.responses import Health, errors

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health,
            responses={**errors(401),
                       503: {"model": Health, "description": "Temporal is unreachable or unhealthy."}})
async def healthz(request: Request) -> JSONResponse:
    client = request.app.state.client
    try:
        ok = await client.service_client.check_health()
    except Exception as e:  # any failure to reach Temporal is "unhealthy", not a 500
        return JSONResponse({"ok": False, "temporal": f"unreachable: {e}"}, status_code=503)
    return JSONResponse({"ok": bool(ok), "temporal": "ok" if ok else "unhealthy"},
                        status_code=200 if ok else 503)
