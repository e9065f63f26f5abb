"""FastAPI dependencies: settings, the Temporal-backed RunService, the artifact store, auth."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

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


def token_ok(header: str, token: str) -> bool:
    """Does an Authorization header carry `Bearer <token>`? (constant-time compare)"""
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


UNAUTHORIZED_DETAIL = "missing or wrong API token: send 'Authorization: Bearer <FERRY_API_TOKEN>'"
