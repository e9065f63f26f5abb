"""OpenTelemetry tracing, off by default: the standard OTEL_* variables turn it on.

With it on, one trace follows a Run from the API request through its workflow to every
activity (Temporal's TracingInterceptor carries the context in headers).
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry import trace


def tracing_requested() -> bool:
    """OTEL_TRACES_EXPORTER (other than `none`) or an OTLP endpoint is set, and the SDK is
    not disabled."""
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    return bool(exporter or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def tracing_on() -> bool:
    """A tracer provider is installed (by `setup_tracing`, or by a process embedding Ferry)."""
    from opentelemetry.sdk.trace import TracerProvider

    return isinstance(trace.get_tracer_provider(), TracerProvider)


def setup_tracing(service: str) -> None:
    """Install a tracer provider exporting as the OTEL_* variables say (OTLP over HTTP by
    default, or `console`), when they ask for tracing."""
    if not tracing_requested() or tracing_on():
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    exporter: SpanExporter
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()  # endpoint, headers, … from OTEL_EXPORTER_OTLP_*
    name = os.environ.get("OTEL_SERVICE_NAME") or service  # the variable wins
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)


def tracing_interceptors() -> list[Any]:
    """Temporal client (and so worker) interceptors: the tracing one when tracing is on."""
    if not tracing_on():
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]


def flush_traces() -> None:
    provider = trace.get_tracer_provider()
    force = getattr(provider, "force_flush", None)
    if force is not None:
        force()
