"""Worker entry point: one Worker on the shared queue, one on this host's own queue.

The shared queue carries workflows and host-agnostic activities; a DevBox launch taken
from it lands on whichever host picks it up, and every later DevBox activity goes to
that host's queue (`ferry-host-<host>`), where only this process listens.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities.devbox import DevBoxBackend, get_backend
from activities.devbox.warm_pool import WarmPool
from activities.devbox_lifecycle import DevBoxActivities
from activities.engine_probe import ProbeActivities
from activities.engines.openai_loop import ModelCallActivities
from activities.gateway.service import GatewayService
from activities.reaper import Reaper
from activities.reporting import ReportActivities
from activities.targets import TargetActivities, heartbeat_forever
from activities.tickets import TicketActivities
from activities.timeline_archive import ArchiveActivities
from activities.turns import TurnActivities
from activities.workspace import WorkspaceActivities
from ferry.artifact_store import StoreProblem, check_store, open_store
from ferry.settings import Settings, SettingsError, get_settings
from ferry.temporal_client import connect, ensure_search_attributes
from ferry.tracing import flush_traces, setup_tracing
from worker.metrics import MetricsInterceptor, serve_metrics
from workflows.devbox_keeper import DevBoxKeeper
from workflows.run.workflow import RunWorkflow
from workflows.targets_workflow import TargetsWorkflow

log = logging.getLogger("ferry.worker")


def build_workers(client: Client, settings: Settings, backend: DevBoxBackend,
                  gateway: GatewayService | None = None) -> list[Worker]:
    store = open_store(settings)
    book = gateway.book if gateway else None
    devbox = DevBoxActivities(backend, book)
    turns = TurnActivities(settings, backend, store, client, book)
    archive = ArchiveActivities(store)
    report = ReportActivities(store)
    targets = TargetActivities(client)
    probe = ProbeActivities(settings, backend)
    model = ModelCallActivities(settings, backend, store, turns.secret_values)
    tickets = TicketActivities(settings)
    workspace = WorkspaceActivities(settings, backend, store, turns.secret_values)
    throttle: dict[str, Any] = {"max_heartbeat_throttle_interval": timedelta(seconds=1),
                                "default_heartbeat_throttle_interval": timedelta(seconds=1)}
    shared = Worker(
        client,
        task_queue=settings.task_queue,
        interceptors=[MetricsInterceptor()],
        workflows=[RunWorkflow, DevBoxKeeper, TargetsWorkflow],
        activities=[devbox.launch_devbox, archive.archive_steps, report.report_result,
                    report.write_run_record, report.mark_devboxes_removed,
                    targets.list_targets, tickets.resolve_ticket],
        **throttle,
    )
    host = Worker(
        client,
        task_queue=settings.host_task_queue,
        interceptors=[MetricsInterceptor()],
        activities=[devbox.launch_devbox, devbox.teardown_devbox, devbox.hibernate_devbox,
                    devbox.wake_devbox, turns.follow_turn, turns.stop_turn, probe.probe_engines,
                    model.model_call, workspace.prepare_workspace,
                    workspace.collect_results, workspace.checkpoint_workspace,
                    workspace.accept_changes,
                    workspace.reset_workspace],
        max_concurrent_activities=200,
        **throttle,
    )
    return [shared, host]


async def run_worker(settings: Settings) -> None:
    # Activities do their blocking work (Docker, git, files) in threads: give them room.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=64))
    setup_tracing("ferry-worker")
    await asyncio.to_thread(check_store, settings, f"worker-{settings.worker_host}")
    client = await connect(settings)
    await ensure_search_attributes(client, settings.temporal_namespace)
    backend = get_backend(settings)
    metrics = serve_metrics(settings.metrics_host, settings.metrics_port, backend) \
        if settings.metrics_port else None
    gateway = GatewayService(settings)
    await gateway.start()
    workers = build_workers(client, settings, backend, gateway)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker up: host=%s queues=%s,%s", settings.worker_host, settings.task_queue,
             settings.host_task_queue)
    async with workers[0], workers[1]:
        heartbeat = asyncio.create_task(heartbeat_forever(client, settings, backend))
        reaper = asyncio.create_task(Reaper(client, backend).forever(settings.reap_interval))
        pool = WarmPool(backend, settings.warm_pool)
        warm = asyncio.create_task(pool.forever())
        print(f"ferry worker ready on {settings.task_queue} + {settings.host_task_queue}",
              flush=True)
        await stop.wait()
        heartbeat.cancel()
        reaper.cancel()
        warm.cancel()
        await asyncio.to_thread(pool.drain)
    await gateway.stop()
    if metrics is not None:
        metrics.shutdown()
    flush_traces()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        settings = get_settings()
    except SettingsError as e:
        print(f"ferry worker: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        asyncio.run(run_worker(settings))
    except StoreProblem as e:
        print(f"ferry worker: {e}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
