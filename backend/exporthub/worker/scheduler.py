"""Periodic work: `exporthub scheduler` sends the expiry sweep to the workers every minute.

Run exactly one scheduler (taskiq's TaskiqScheduler over a LabelScheduleSource: every process reads
the schedule from the task's label, none stores it). The sweep runs in a worker, with the worker's
connections; the scheduler itself needs only Redis, plus S3 once at start-up to set the bucket's
lifecycle rule. Several sweeps at once are safe (rows are claimed), and messages that piled up while
no worker ran collapse into one sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import Any

from taskiq import AsyncBroker, AsyncTaskiqDecoratedTask, Context, TaskiqDepends, TaskiqScheduler
from taskiq.cli.scheduler.run import SchedulerLoop
from taskiq.schedule_sources import LabelScheduleSource

from exporthub.connections import Connections, open_storage
from exporthub.progress import export_event, publish_event
from exporthub.settings import Settings
from exporthub.storage.expiry import sweep_expired

log = logging.getLogger(__name__)

EXPIRY_TASK_NAME = "exporthub.sweep_expired"


def _connections(context: Context = TaskiqDepends()) -> Connections:
    return context.state.connections


def register_expiry_sweep(broker: AsyncBroker, settings: Settings) -> AsyncTaskiqDecoratedTask[Any, Any]:
    """The sweep as a task on the export broker, labelled with its schedule for LabelScheduleSource."""

    @broker.task(
        task_name=EXPIRY_TASK_NAME,
        schedule=[{"interval": settings.expiry_sweep_seconds, "schedule_id": "exporthub-expiry-sweep"}],
    )
    async def sweep_expired_task(conns: Connections = TaskiqDepends(_connections)) -> None:
        # One sweep per half interval is plenty: skip messages that piled up while no worker ran.
        lock = f"{settings.queue_name}:expiry-sweep"
        if not await conns.redis.set(lock, "1", nx=True, ex=max(1, settings.expiry_sweep_seconds // 2)):
            return
        result = await sweep_expired(conns.pool, conns.storage)
        for job in result.expired:
            await publish_event(conns.redis, settings.queue_name, job.account_id, export_event(job))

    return sweep_expired_task


async def apply_lifecycle_rule(settings: Settings) -> dict[str, Any] | None:
    """S3 only: objects under our prefix expire after 2 days, unfinished uploads after 1 (a safety net
    under the app's 24 h expiry; lifecycle rules work in whole days). None for local storage."""
    if not settings.storage_url.startswith("s3://"):
        return None
    from exporthub.storage.s3 import S3Storage

    async with open_storage(settings) as storage:
        assert isinstance(storage, S3Storage)
        return await storage.ensure_lifecycle()


async def run_scheduler(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    from exporthub.worker.queue import create_queue  # queue.py registers the sweep: import it late

    broker = create_queue(settings).broker
    broker.is_scheduler_process = True
    source = LabelScheduleSource(broker)
    scheduler = TaskiqScheduler(broker, [source])
    await source.startup()
    await scheduler.startup()
    try:
        rule = await apply_lifecycle_rule(settings)
        if rule is not None:
            log.info("bucket lifecycle rule %s is set", rule["ID"])
    except Exception as exc:  # missing permission, say: the sweep still deletes files and aborts uploads
        log.warning("could not set the bucket's lifecycle rule (%r); see `exporthub storage setup`", exc)
    log.info("scheduler ready: expiry sweep every %d s", settings.expiry_sweep_seconds)
    loop = SchedulerLoop(scheduler, event_loop=asyncio.get_running_loop())
    runner = asyncio.create_task(loop.run(update_interval=dt.timedelta(hours=1), send_timeout=30))
    try:
        if stop is None:
            await runner
        else:
            await stop.wait()
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        await scheduler.shutdown()
        await source.shutdown()
