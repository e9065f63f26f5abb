"""Ferry's Prometheus series, and the Temporal SDK's own, served as one `/metrics` text.

Each process (API replica, worker) counts what happens in it; Prometheus adds them up
across processes. The SDK's metrics (task latencies, slots, polls, …) come from its
Prometheus exporter, bound on loopback and appended to Ferry's text.
"""

from __future__ import annotations

import logging
import socket
import threading

import httpx
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Histogram,
    generate_latest,
)
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from ferry.pricing import Price, Usage

__all__ = ["CONTENT_TYPE_LATEST", "metrics_text", "temporal_runtime"]

log = logging.getLogger("ferry.metrics")

# Runs started/finished and turn durations are counted by the workflow itself, replay-safe,
# through the Temporal SDK's meter (workflows/run/metrics.py); they appear with its series.
QUEUE_WAIT = Histogram("ferry_activity_queue_wait_seconds",
                       "From an activity being scheduled to a worker starting it.",
                       ["activity", "queue"],
                       buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
                                180, 600))
MODEL_TOKENS = Counter("ferry_model_tokens", "Model tokens through the gateway.",
                       ["provider", "model", "kind"])
MODEL_COST = Counter("ferry_model_cost_usd", "Dollar cost of billed model calls.",
                     ["provider", "model"])
MODEL_CALLS = Counter("ferry_model_calls", "Model calls through the gateway, by outcome.",
                      ["provider", "status"])
WEBHOOKS = Counter("ferry_webhook_deliveries", "Webhook deliveries, by outcome.",
                   ["outcome"])
ERRORS = Counter("ferry_errors", "Errors, by where they happened and their kind.",
                 ["where", "kind"])

def count_model_call(provider: str, usage: Usage, cost: float, status: int,
                     prices: dict[str, Price]) -> None:
    # Labelled by the price table's entry, not the name the call gave: a DevBox choosing
    # model names must not grow a worker's series without bound.
    name = (usage.model or "").lower()
    model = max((k for k in prices if k != "*" and name.startswith(k.lower())),
                key=len, default="other")
    for kind, n in (("input", usage.input), ("output", usage.output),
                    ("cache_read", usage.cache_read), ("cache_write", usage.cache_write)):
        if n:
            MODEL_TOKENS.labels(provider, model, kind).inc(n)
    if cost:
        MODEL_COST.labels(provider, model).inc(cost)
    MODEL_CALLS.labels(provider, str(status)).inc()


TURN_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200]

_runtime: Runtime | None = None
_sdk_address: str | None = None
_lock = threading.Lock()


def _free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def temporal_runtime() -> Runtime:
    """The process's one Temporal runtime, exporting the SDK's metrics on loopback."""
    global _runtime, _sdk_address
    with _lock:
        if _runtime is None:
            _sdk_address = f"127.0.0.1:{_free_loopback_port()}"
            _runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(
                bind_address=_sdk_address, counters_total_suffix=True,
                # The workflow's own histogram is in seconds (the SDK's default buckets are
                # milliseconds).
                histogram_bucket_overrides={"ferry_turn_duration_seconds": TURN_BUCKETS})))
        return _runtime


def _sdk_text() -> str:
    if _sdk_address is None:
        return ""
    try:
        return httpx.get(f"http://{_sdk_address}/metrics", timeout=2).text
    except httpx.HTTPError as e:
        log.warning("the Temporal SDK's metrics could not be read: %s", e)
        return ""


def metrics_text() -> bytes:
    """Ferry's series, then the Temporal SDK's (names prefixed `temporal_`)."""
    return generate_latest(REGISTRY) + _sdk_text().encode()
