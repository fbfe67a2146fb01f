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

from exporthub.connections import Connections, open_connections
from exporthub.exports import jobs
from exporthub.exports.models import ExportJob
from exporthub.exports.pipeline import PipelineConfig, run_export
from exporthub.progress import export_event, publish_event
from exporthub.settings import Settings
from exporthub.storage.links import sign_download_link
from exporthub.worker.broker import create_stream_broker

log = logging.getLogger(__name__)

TASK_NAME = "exporthub.run_export"


@dataclasses.dataclass(frozen=True, slots=True)
class ExportQueue:
    broker: AsyncBroker
    task: AsyncTaskiqDecoratedTask[Any, Any]

    async def enqueue(self, export_id: uuid.UUID) -> None:
        # The task id is the job id, so a re-send names the same job.
        await self.task.kicker().with_task_id(str(export_id)).kiq(str(export_id))


def pipeline_config(settings: Settings) -> PipelineConfig:
    return PipelineConfig(
        batch_size=settings.batch_size,
        lease_seconds=settings.lease_seconds,
        link_ttl_seconds=settings.link_ttl_seconds,
        max_rows_per_sheet=settings.max_rows_per_sheet,
        max_attempts=settings.max_attempts,
    )


def download_url_for(settings: Settings, job: ExportJob) -> str | None:
    if job.expires_at is None or job.file_key is None:
        return None
    return sign_download_link(settings.public_url, settings.secret_key, job.id, job.expires_at)


def _connections(context: Context = TaskiqDepends()) -> Connections:
    return context.state.connections


def create_queue(settings: Settings) -> ExportQueue:
    broker = create_stream_broker(settings.redis_url, settings.queue_name)

    @broker.task(task_name=TASK_NAME)
    async def run_export_task(export_id: str, conns: Connections = TaskiqDepends(_connections)) -> str | None:
        async def publish(job: ExportJob) -> None:
            await publish_event(
                conns.redis, job.account_id, export_event(job, download_url_for(settings, job))
            )

        status = await run_export(
            uuid.UUID(export_id),
            pool=conns.pool,
            storage=conns.storage,
            publish=publish,
            config=pipeline_config(settings),
        )
        return status.value if status else None

    queue = ExportQueue(broker, run_export_task)

    @broker.on_event(TaskiqEvents.WORKER_STARTUP)
    async def startup(state: TaskiqState) -> None:
        state.exit_stack = contextlib.AsyncExitStack()
        state.connections = await state.exit_stack.enter_async_context(
            open_connections(settings, pool_size=settings.worker_concurrency * 2 + 2)
        )
        state.sweeper = asyncio.create_task(recovery_loop(state.connections, queue, settings))

    @broker.on_event(TaskiqEvents.WORKER_SHUTDOWN)
    async def shutdown(state: TaskiqState) -> None:
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
        await publish_event(conns.redis, job.account_id, export_event(job))
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
