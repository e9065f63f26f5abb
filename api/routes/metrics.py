"""`GET /metrics`: this API replica's series in Prometheus text (same auth as the API)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import Response

from api.responses import TEXT, errors
from ferry.metrics import CONTENT_TYPE_LATEST, metrics_text

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response, responses={200: TEXT, **errors(401)})
async def metrics() -> Response:
    """Prometheus text: Ferry's series (webhook deliveries, API errors by kind, …) and the
    Temporal SDK's client series. Each worker serves its own on FERRY_METRICS_PORT."""
    body = await asyncio.to_thread(metrics_text)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
