"""The worker's tasks on the export broker: run one export, and the periodic sweeps the scheduler sends.

Each task is a thin wrapper over the domain (`exports.Exports`), built once per worker process at
WORKER_STARTUP with the worker's connections. A periodic task carries its interval as a label, which
the scheduler reads (worker/scheduler.py); messages that piled up while no worker ran collapse into
one run (a short Redis lock per sweep), and running a sweep twice is safe anyway (rows are claimed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from taskiq import AsyncBroker, Context, TaskiqDepends, TaskiqEvents, TaskiqState

from exporthub.catalog import Catalog
from exporthub.connections import open_connections
from exporthub.exports.pipeline import PipelineConfig, run_export
from exporthub.exports.service import Exports
from exporthub.queue import RUN_EXPORT, ExportQueue, ExportStreamBroker
from exporthub.settings import Settings
from exporthub.webhooks import WebhookDispatcher

log = logging.getLogger(__name__)

PRUNE_EVERY_SECONDS = 3600  # retention is counted in days: hourly keeps each run's backlog small


@dataclasses.dataclass(frozen=True, slots=True)
class Periodic:
    name: str
    every_seconds: int
    run: Callable[[Exports], Awaitable[Any]]


def periodic_work(settings: Settings) -> list[Periodic]:
    """All periodic work, in one place: the scheduler sends each at its interval."""
    often = max(1, round(settings.recovery.sweep_interval_seconds))
    return [
        Periodic("exporthub.recover", often, Exports.recover),
        Periodic("exporthub.record_missed_webhook_events", often, Exports.record_missed_webhook_events),
        Periodic("exporthub.sweep_expired", settings.recovery.expiry_sweep_seconds, Exports.expire),
        # Scheduled exports: each due time is claimed in PostgreSQL, so a repeated message runs nothing twice.
        Periodic("exporthub.run_due_schedules", often, Exports.run_due_schedules),
        # Retention: download records and finished webhook events past their age, in short batches.
        Periodic("exporthub.prune_old_records", PRUNE_EVERY_SECONDS, Exports.prune),
    ]


def _exports(context: Context = TaskiqDepends()) -> Exports:
    return context.state.exports


def register_tasks(broker: ExportStreamBroker, settings: Settings, catalog: Catalog) -> None:
    @broker.task(task_name=RUN_EXPORT)
    async def run_export_task(export_id: str, exports: Exports = TaskiqDepends(_exports)) -> str | None:
        status = await run_export(
            uuid.UUID(export_id),
            pool=exports.pool,
            source=exports.source,
            catalog=exports.catalog,
            storage=exports.storage,
            publish=exports.announce,  # progress to live clients; the end also records the webhook event
            config=PipelineConfig.from_settings(settings),
            enqueue=exports.enqueue,
        )
        return status.value if status else None

    for work in periodic_work(settings):
        _register_periodic(broker, settings, work)

    @broker.on_event(TaskiqEvents.WORKER_STARTUP)
    async def startup(state: TaskiqState) -> None:
        state.exit_stack = contextlib.AsyncExitStack()
        conns = await state.exit_stack.enter_async_context(
            open_connections(settings, pool_size=settings.exports.worker_concurrency * 2 + 2)
        )
        state.webhooks = WebhookDispatcher(conns.pool, settings)
        state.exports = Exports.over(
            conns, catalog=catalog, settings=settings, enqueue=ExportQueue(broker), webhook_recorded=state.webhooks.wake
        )
        state.webhooks.start()

    @broker.on_event(TaskiqEvents.WORKER_SHUTDOWN)
    async def shutdown(state: TaskiqState) -> None:
        await state.webhooks.stop()  # an attempt cut short here is claimed again once its claim lapses
        await state.exit_stack.aclose()


def _register_periodic(broker: AsyncBroker, settings: Settings, work: Periodic) -> None:
    @broker.task(task_name=work.name, schedule=[{"interval": work.every_seconds, "schedule_id": work.name}])
    async def periodic_task(exports: Exports = TaskiqDepends(_exports)) -> None:
        # One run per half interval is plenty: skip messages that piled up while no worker ran.
        lock = f"{settings.redis.queue_name}:periodic:{work.name}"
        if not await exports.redis.set(lock, "1", nx=True, px=max(500, work.every_seconds * 500)):
            return
        await work.run(exports)
