"""`/metrics` on the API and on a worker after real Runs, and one OpenTelemetry trace from
the API request through the Run's workflow to its activities (in-memory exporter)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.fake_openai import FakeOpenAI, reply, tool_call
from tests.integration.harness import FerryStack, free_port


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(found: dict, name: str, **labels: str) -> float:
    """Sum of a series over every label set that has these labels."""
    return sum(v for (n, ls), v in found.items() if n == name
               and all((k, want) in ls for k, want in labels.items()))


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    f = FakeOpenAI(free_port()).start()
    yield f
    f.stop()


def test_metrics_on_the_api_and_on_a_worker(tmp_path: Path, fake: FakeOpenAI, docker_client) -> None:
    metrics_port = free_port()
    stack = FerryStack(tmp_path / "data", env={
        "FERRY_METRICS_PORT": str(metrics_port), "FERRY_OPENAI_BASE_URL": fake.base_url,
        "FERRY_OPENAI_API_KEY": "sk-metrics-test", "FERRY_OPENAI_MODEL": "gpt-4o"})
    try:
        stack.start()
        fake.scenarios["TASK-metrics"] = lambda messages: reply(
            [tool_call("finish", json.dumps({"summary": "done"}))])
        script = stack.create_run("echo hi")
        model = stack.create_run("TASK-metrics: finish", engine="openai")
        for run in (script, model):
            assert stack.wait_status(run["id"], {"completed", "failed"})["status"] == "completed"
        with stack.client() as c:
            assert c.get("/runs/no-such-run").status_code == 404
            assert c.post("/triggers", json={"name": "m1", "secret": "s" * 16,
                                             "run": {"instructions": "echo hook",
                                                     "target": stack.settings.worker_host}}
                          ).status_code == 201
            body = b'{"action": "opened"}'
            sig = "sha256=" + hmac.new(b"s" * 16, body, hashlib.sha256).hexdigest()
            assert c.post("/hooks/m1", content=body,
                          headers={"X-Hub-Signature-256": sig}).status_code == 202
            assert c.post("/hooks/m1", content=body,
                          headers={"X-Hub-Signature-256": "sha256=00"}).status_code == 401
            api = c.get("/metrics")
        assert api.status_code == 200 and api.headers["content-type"].startswith("text/plain")
        a = samples(api.text)
        assert total(a, "ferry_errors_total", where="api", kind="not_found") >= 1
        assert total(a, "ferry_webhook_deliveries_total", outcome="started") == 1
        assert total(a, "ferry_webhook_deliveries_total", outcome="bad_signature") == 1
        assert any(n.startswith("temporal_") for n, _ in a)  # the SDK's client series

        worker = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
        assert worker.status_code == 200
        w = samples(worker.text)
        assert total(w, "ferry_runs_started_total", engine="script") >= 1
        assert total(w, "ferry_runs_started_total", engine="openai") >= 1
        assert total(w, "ferry_runs_finished_total", status="completed", engine="script") >= 1
        assert total(w, "ferry_turn_duration_seconds_count", engine="script") >= 1
        assert total(w, "ferry_turn_duration_seconds_sum", engine="script") > 0
        # Buckets in seconds, not the SDK's default milliseconds.
        assert total(w, "ferry_turn_duration_seconds_bucket", engine="script", le="60") >= 1
        assert total(w, "ferry_activity_queue_wait_seconds_count", activity="launch_devbox") >= 2
        assert total(w, "ferry_activity_queue_wait_seconds_count", activity="follow_turn",
                     queue="host") >= 1
        assert total(w, "ferry_devboxes") >= 2  # kept for follow-ups
        # The stand-in answers as `fake-model`, which has no price entry of its own: the
        # series is labelled `other` (names a DevBox chooses never make series of their own).
        assert total(w, "ferry_model_tokens_total", provider="openai", model="other",
                     kind="input") == 100
        assert total(w, "ferry_model_tokens_total", kind="output") == 20
        assert total(w, "ferry_model_cost_usd_total", provider="openai") > 0
        assert total(w, "temporal_workflow_completed_total") >= 2
        assert total(w, "temporal_activity_execution_latency_count") > 0
        assert "sk-metrics-test" not in worker.text + api.text
    finally:
        stack.stop()


def test_one_trace_spans_the_api_the_workflow_and_its_activities(tmp_path: Path) -> None:
    """In one process: the API app, a worker (local DevBox backend) and an in-memory span
    exporter; the dev server is the real one."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

    stack = FerryStack(tmp_path / "data", env={"FERRY_DEVBOX_BACKEND": "local",
                                               "FERRY_METRICS_PORT": "0"})
    try:
        stack.start_temporal()
        asyncio.run(_traced_run(stack.settings))
    finally:
        stack.stop()
    spans = exporter.get_finished_spans()
    post = next(s for s in spans if s.name == "POST /runs")
    assert any(s.name == "GET /runs/{run_id}" for s in spans)  # named by route, not by id
    same_trace = {s.name for s in spans if s.context.trace_id == post.context.trace_id}
    for name in ("StartWorkflow:RunWorkflow", "RunWorkflow:RunWorkflow",
                 "StartActivity:launch_devbox", "RunActivity:launch_devbox",
                 "RunActivity:follow_turn", "RunActivity:write_run_record"):
        assert name in same_trace, (name, sorted(same_trace))
    by_id = {s.context.span_id: s for s in spans}
    start = next(s for s in spans if s.name == "StartWorkflow:RunWorkflow")
    chain = []
    while start.parent is not None and start.parent.span_id in by_id:
        start = by_id[start.parent.span_id]
        chain.append(start.name)
    assert chain[-1] == "POST /runs", chain  # the request is the trace's root


async def _traced_run(settings) -> None:
    from activities.devbox import get_backend
    from api.main import create_app
    from ferry.temporal_client import connect, ensure_search_attributes
    from worker.main import build_workers

    client = await connect(settings)
    await ensure_search_attributes(client, settings.temporal_namespace)
    workers = build_workers(client, settings, get_backend(settings))
    app = create_app(settings)
    async with workers[0], workers[1], app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            r = await c.post("/runs", json={"instructions": "echo traced", "keep_alive": "0s"})
            assert r.status_code == 201, r.text
            run_id = r.json()["id"]
            for _ in range(300):
                status = (await c.get(f"/runs/{run_id}")).json()["status"]
                if status in ("completed", "failed"):
                    break
                await asyncio.sleep(0.1)
            assert status == "completed"
            # The last activity (the record) may end just after the Run shows completed.
            await client.get_workflow_handle(f"run-{run_id}").result()
