"""`exporthub scheduler`: sends the periodic work (worker/tasks.py `periodic_work`) to the workers.

Run exactly one. The schedule is each task's label, read with taskiq's LabelScheduleSource, and sent
with TaskiqScheduler.on_ready, as taskiq's own `taskiq scheduler` command does; the loop that decides
when is ours (a few lines over those public APIs), since taskiq's is part of its CLI. The work runs in
a worker, with the worker's connections; the scheduler needs only Redis, plus S3 once at start-up to
set the bucket's lifecycle rule.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from typing import Any

from taskiq import ScheduledTask, TaskiqScheduler
from taskiq.schedule_sources import LabelScheduleSource

from exporthub.catalog import load_catalog
from exporthub.connections import open_storage
from exporthub.queue import create_broker
from exporthub.settings import Settings
from exporthub.worker.tasks import register_tasks

log = logging.getLogger(__name__)

SEND_TIMEOUT_SECONDS = 30


async def apply_lifecycle_rule(settings: Settings) -> dict[str, Any] | None:
    """S3 only: objects under our prefix expire after 2 days, unfinished uploads after 1 (a safety net
    under the app's 24 h expiry; lifecycle rules work in whole days). None for local storage."""
    if not settings.storage.url.startswith("s3://"):
        return None
    from exporthub.storage.s3 import S3Storage

    async with open_storage(settings) as storage:
        assert isinstance(storage, S3Storage)
        return await storage.ensure_lifecycle()


def interval_seconds(task: ScheduledTask) -> float:
    interval = task.interval
    if interval is None:
        raise ValueError(f"periodic task {task.task_name} has no interval")
    return interval.total_seconds() if isinstance(interval, dt.timedelta) else float(interval)


async def send_due(
    scheduler: TaskiqScheduler, source: LabelScheduleSource, tasks: list[ScheduledTask], last_sent: dict[str, float]
) -> float:
    """Send every task whose interval has passed (each at once on the first call). Returns the seconds
    until the next one is due."""
    now = time.monotonic()
    for task in tasks:
        previous = last_sent.get(task.schedule_id)
        if previous is not None and now - previous < interval_seconds(task):
            continue
        last_sent[task.schedule_id] = now
        try:
            async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                await scheduler.on_ready(source, task)
        except Exception as exc:  # Redis away: the next interval sends again
            log.warning("could not send %s (%r); trying at its next interval", task.task_name, exc)
    return min(last_sent[t.schedule_id] + interval_seconds(t) for t in tasks) - time.monotonic()


async def run_scheduler(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    broker = create_broker(settings)
    register_tasks(broker, settings, load_catalog(settings.exports.catalog_path))
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
    tasks = await source.get_schedules()
    log.info("scheduler ready: %s", ", ".join(f"{t.task_name} every {interval_seconds(t):g} s" for t in tasks))
    stop = stop or asyncio.Event()
    last_sent: dict[str, float] = {}
    try:
        while not stop.is_set():
            wait = await send_due(scheduler, source, tasks, last_sent)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.05, wait)):
                    await stop.wait()
    finally:
        await scheduler.shutdown()
        await source.shutdown()
