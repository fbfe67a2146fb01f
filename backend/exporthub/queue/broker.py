"""taskiq over a Redis stream (consumer group + XACK), hardened for Redis restarts.

The queue only carries job ids; PostgreSQL's export_jobs row is the truth, so a message delivered
twice, or re-sent by the recovery sweep, is harmless (claims are conditional).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from taskiq import AckableMessage
from taskiq_redis import RedisStreamBroker

log = logging.getLogger(__name__)


class ExportStreamBroker(RedisStreamBroker):
    """Re-creates its consumer group when Redis lost it, and waits out a Redis restart."""

    async def ensure_consumer_group(self) -> None:
        """XGROUP CREATE ... MKSTREAM on our stream(s), as `startup()` does; one that exists is fine.

        Our own redis-py call with the constructor's settings (the broker's public attributes), not
        taskiq-redis's private `_declare_consumer_group`."""
        async with Redis(connection_pool=self.connection_pool) as redis:
            for stream in (self.queue_name, *self.additional_streams):
                try:
                    await redis.xgroup_create(
                        stream, self.consumer_group_name, id=self.consumer_id, mkstream=self.mkstream
                    )
                except ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):  # BUSYGROUP: another worker made it first
                        log.warning("could not create consumer group on %s: %s", stream, exc)

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        delay = 0.1
        while True:
            try:
                async for message in super().listen():
                    delay = 0.1
                    yield message
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                log.warning("queue consumer group missing (Redis restarted?); creating it again")
                await self.ensure_consumer_group()
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                log.warning("queue unreachable (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                try:
                    await self.ensure_consumer_group()
                except (RedisConnectionError, RedisTimeoutError, OSError):
                    continue


def create_stream_broker(redis_url: str, queue_name: str) -> ExportStreamBroker:
    return ExportStreamBroker(
        url=redis_url,
        queue_name=queue_name,
        consumer_group_name="exporthub-workers",
        consumer_id="0",  # a group created after messages were sent still sees them
        xread_count=1,  # exports are long: never hold messages another worker could run
        maxlen=100_000,
        idle_timeout=15 * 60 * 1000,
        unacknowledged_lock_timeout=30,
        socket_timeout=30,
    )
