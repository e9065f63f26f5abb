"""Connecting to Temporal with Ferry's data converter, and registering its search attributes."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode

from ferry import search_attributes
from ferry.metrics import temporal_runtime
from ferry.settings import Settings
from ferry.tracing import tracing_interceptors


async def connect(settings: Settings) -> Client:
    """A client on the process's Temporal runtime (its SDK metrics go to `/metrics`),
    tracing through OpenTelemetry when the OTEL_* variables turn it on."""
    return await Client.connect(
        settings.effective_temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        runtime=temporal_runtime(),
        interceptors=tracing_interceptors(),
    )


async def ensure_search_attributes(client: Client, namespace: str) -> None:
    """Register Ferry's search attributes on clusters that lack them (idempotent)."""
    try:
        existing = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
        known = set(existing.custom_attributes)
    except RPCError as e:
        # The time-skipping test server can add search attributes but not list them.
        if e.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        known = set()
    missing = {
        key.name: IndexedValueType.ValueType(int(key.indexed_value_type))
        for key in search_attributes.ALL
        if key.name not in known
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
