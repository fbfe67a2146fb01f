"""The export queue as its clients see it: a broker over a Redis stream and `ExportQueue.enqueue`.

The web app sends by task name and never imports the code that runs the task (worker/tasks.py
registers it on the same broker). The queue carries only ids; PostgreSQL's export_jobs row is the
truth, so a message delivered twice, or re-sent by the recovery sweep, is harmless.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid

from taskiq.exceptions import SendTaskError
from taskiq.kicker import AsyncKicker

from exporthub.queue.broker import ExportStreamBroker, create_stream_broker
from exporthub.settings import Settings

log = logging.getLogger(__name__)

RUN_EXPORT = "exporthub.run_export"  # the worker registers its task under this name


def create_broker(settings: Settings) -> ExportStreamBroker:
    return create_stream_broker(settings.redis.url, settings.redis.queue_name)


@dataclasses.dataclass(frozen=True, slots=True)
class ExportQueue:
    """What the domain's `Enqueue` is in the web app and the worker: send one export id to the workers."""

    broker: ExportStreamBroker

    async def __call__(self, export_id: uuid.UUID) -> None:
        await self.enqueue(export_id)

    async def enqueue(self, export_id: uuid.UUID) -> None:
        try:
            await self._send(export_id)
        except SendTaskError:
            # After Redis restarts, a pooled connection fails on first use ("Connection closed by
            # server") and the kick does not retry: drop the idle connections and send once more, so
            # the export starts now rather than at the recovery sweep's next re-send.
            log.info("enqueue of export %s failed; retrying on a fresh connection", export_id)
            await self.broker.connection_pool.disconnect(inuse_connections=False)  # a listener keeps its own
            await self._send(export_id)

    async def _send(self, export_id: uuid.UUID) -> None:
        # The task id is the job id, so a re-send names the same job.
        kicker: AsyncKicker[[str], str | None] = AsyncKicker(RUN_EXPORT, self.broker, labels={})
        await kicker.with_task_id(str(export_id)).kiq(str(export_id))


def create_queue(settings: Settings) -> ExportQueue:
    return ExportQueue(create_broker(settings))


__all__ = ["RUN_EXPORT", "ExportQueue", "ExportStreamBroker", "create_broker", "create_queue"]
