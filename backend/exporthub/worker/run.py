"""Run a worker process: taskiq's receiver over our broker, `worker_concurrency` exports at a time."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from taskiq.api import run_receiver_task

from exporthub.catalog import load_catalog
from exporthub.formats import load_writers
from exporthub.heap import settle_heap
from exporthub.queue import create_broker
from exporthub.settings import Settings
from exporthub.worker.tasks import register_tasks

log = logging.getLogger(__name__)


async def run_worker(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    load_writers()  # not during the first export
    broker = create_broker(settings)
    register_tasks(broker, settings, load_catalog(settings.exports.catalog_path))
    broker.is_worker_process = True
    await broker.startup()
    settle_heap()
    log.info("worker ready: %d exports at a time", settings.exports.worker_concurrency)
    receiver = asyncio.create_task(
        run_receiver_task(broker, max_async_tasks=settings.exports.worker_concurrency, run_startup=False)
    )
    try:
        if stop is None:
            await receiver
        else:
            await stop.wait()
    finally:
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await receiver
        await broker.shutdown()
