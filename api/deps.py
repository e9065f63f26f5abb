"""FastAPI dependencies: settings, the Temporal-backed RunService, the artifact store, auth."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from api.run_service import RunService
from ferry.artifact_store import ArtifactStore
from ferry.settings import Settings


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_runs(request: Request) -> RunService:
    return request.app.state.runs


def get_store(request: Request) -> ArtifactStore:
    return request.app.state.store


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
RunsDep = Annotated[RunService, Depends(get_runs)]
StoreDep = Annotated[ArtifactStore, Depends(get_store)]


def require_token(request: Request) -> None:
    """With FERRY_API_TOKEN set, every request must carry `Authorization: Bearer <token>`."""
    token = request.app.state.settings.api_token
    if not token:
        return
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="missing or wrong API token: send 'Authorization: Bearer <FERRY_API_TOKEN>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
