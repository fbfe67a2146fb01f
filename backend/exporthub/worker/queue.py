"""The export queue: `create_queue(settings)` builds the broker and registers the task.

The web process uses `enqueue`; worker processes also open connections at WORKER_STARTUP and run
the recovery sweep that re-sends work a killed worker or a lost message left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from typing import Any

from taskiq import AsyncBroker, AsyncTaskiqDecoratedTask, Context, TaskiqDepends, TaskiqEvents, TaskiqState
from taskiq.exceptions import SendTaskError

from exporthub.catalog import load_catalog
from exporthub.connections import Connections, open_connections
from exporthub.exports import jobs
from exporthub.exports.models import ExportJob, ExportStatus
from exporthub.exports.pipeline import PipelineConfig, run_export
from exporthub.progress import export_event, publish_event
from exporthub.settings import Settings
from exporthub.storage import Storage
from exporthub.storage.links import sign_download_link
from exporthub.webhooks import WebhookDispatcher
from exporthub.worker.broker import create_stream_broker
from exporthub.worker.scheduler import register_expiry_sweep

log = logging.getLogger(__name__)

TASK_NAME = "exporthub.run_export"


@dataclasses.dataclass(frozen=True, slots=True)
class ExportQueue:
    broker: AsyncBroker
    task: AsyncTaskiqDecoratedTask[Any, Any]

    async def enqueue(self, export_id: uuid.UUID) -> None:
        # The task id is the job id, so a re-send names the same job.
        try:
            await self.task.kicker().with_task_id(str(export_id)).kiq(str(export_id))
        except SendTaskError:
            # After Redis restarts, a pooled connection fails on first use ("Connection closed by
            # server") and the kick does not retry: drop the idle connections and send once more, so
            # the export starts now rather than at the recovery sweep's next re-send.
            log.info("enqueue of export %s failed; retrying on a fresh connection", export_id)
            pool = getattr(self.broker, "connection_pool", None)
            if pool is not None:
                await pool.disconnect(inuse_connections=False)  # the worker's listener keeps its own
            await self.task.kicker().with_task_id(str(export_id)).kiq(str(export_id))


def pipeline_config(settings: Settings) -> PipelineConfig:
    return PipelineConfig(
        batch_size=settings.batch_size,
        lease_seconds=settings.lease_seconds,
        link_ttl_seconds=settings.link_ttl_seconds,
        max_rows_per_sheet=settings.max_rows_per_sheet,
        max_attempts=settings.max_attempts,
        statement_timeout_ms=int(settings.source_statement_timeout_seconds * 1000),
    )


def download_url_for(settings: Settings, job: ExportJob) -> str | None:
    """Our signed link (the download route serves a local file, or redirects to a fresh presigned URL
    for one in S3). Callers with the storage at hand use `download_link`."""
    if job.expires_at is None or job.file_key is None:
        return None
    return sign_download_link(settings.public_url, settings.secret_keys, job.id, job.expires_at)


async def download_link(settings: Settings, job: ExportJob, storage: Storage) -> str | None:
    """The one place that decides a finished export's link: the storage's own (S3: a presigned GET
    straight from the bucket, valid until expires_at) when it has one, else our signed link."""
    if job.status is not ExportStatus.COMPLETED or job.expires_at is None or job.file_key is None:
        return None
    try:
        direct = await storage.download_url(
            job.file_key,
            filename=job.file_name or job.file_key.rsplit("/", 1)[-1],
            media_type=job.format.media_type,
            expires_at=job.expires_at,
        )
    except Exception:  # e.g. credentials that cannot be refreshed now: our link still works (it redirects)
        log.warning("could not presign the download of export %s; handing out our signed link", job.id, exc_info=True)
        direct = None
    return direct or download_url_for(settings, job)


def _connections(context: Context = TaskiqDepends()) -> Connections:
    return context.state.connections


def _webhooks(context: Context = TaskiqDepends()) -> WebhookDispatcher:
    return context.state.webhooks


def create_queue(settings: Settings) -> ExportQueue:
    broker = create_stream_broker(settings.redis_url, settings.queue_name)
    catalog = load_catalog(settings.catalog_path)

    @broker.task(task_name=TASK_NAME)
    async def run_export_task(
        export_id: str,
        conns: Connections = TaskiqDepends(_connections),
        webhooks: WebhookDispatcher = TaskiqDepends(_webhooks),
    ) -> str | None:
        async def publish(job: ExportJob) -> None:
            download_url = await download_link(settings, job, conns.storage)
            await publish_event(conns.redis, settings.queue_name, job.account_id, export_event(job, download_url))
            # An export that ended records its webhook event; the dispatcher sends it outside this run.
            await webhooks.record(job, download_url)

        status = await run_export(
            uuid.UUID(export_id),
            pool=conns.pool,
            source=conns.source,
            catalog=catalog,
            storage=conns.storage,
            publish=publish,
            config=pipeline_config(settings),
        )
        return status.value if status else None

    queue = ExportQueue(broker, run_export_task)
    register_expiry_sweep(broker, settings)  # sent every minute by `exporthub scheduler`

    @broker.on_event(TaskiqEvents.WORKER_STARTUP)
    async def startup(state: TaskiqState) -> None:
        state.exit_stack = contextlib.AsyncExitStack()
        state.connections = await state.exit_stack.enter_async_context(
            open_connections(settings, pool_size=settings.worker_concurrency * 2 + 2)
        )
        state.sweeper = asyncio.create_task(recovery_loop(state.connections, queue, settings))
        state.webhooks = WebhookDispatcher(
            state.connections.pool, settings, download_url=lambda job: download_url_for(settings, job)
        )
        state.webhooks.start()

    @broker.on_event(TaskiqEvents.WORKER_SHUTDOWN)
    async def shutdown(state: TaskiqState) -> None:
        await state.webhooks.stop()  # an attempt cut short here is claimed again once its claim lapses
        state.sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await state.sweeper
        await state.exit_stack.aclose()

    return queue


async def recover_once(conns: Connections, queue: ExportQueue, settings: Settings) -> list[uuid.UUID]:
    async with conns.pool.acquire() as conn:
        requeue, ended = await jobs.recover_stale(
            conn, max_claims=settings.max_claims, requeue_after_seconds=settings.requeue_after_seconds
        )
    for job in ended:
        await publish_event(conns.redis, settings.queue_name, job.account_id, export_event(job))
    for export_id in requeue:
        log.info("re-sending export %s (lease ran out or message lost)", export_id)
        await queue.enqueue(export_id)
    return requeue


async def recovery_loop(conns: Connections, queue: ExportQueue, settings: Settings) -> None:
    while True:
        try:
            await recover_once(conns, queue, settings)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("recovery sweep failed; trying again")
        await asyncio.sleep(settings.sweep_interval_seconds)
