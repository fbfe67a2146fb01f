"""The web process's one pub/sub connection, used by many subscribes while its listener reads it."""

from __future__ import annotations

import asyncio
import uuid

from redis.asyncio import Redis

from exporthub.progress.subscribe import EventSubscriber, create_channels_plugin
from exporthub.settings import Settings

ACCOUNTS = 60
IDLE_SECONDS = 20  # past the connection's 15 s health_check_interval: the next command runs a PING first


async def test_many_accounts_subscribing_at_once_after_an_idle_spell(settings: Settings) -> None:
    prefix = f"pubsub-test:{uuid.uuid4().hex[:8]}"
    async with create_channels_plugin(settings) as plugin:
        # A socket came and went: the connection is open, and subscribed to nothing (redis-py then
        # runs its health check, a PING and a read, inside the next SUBSCRIBE).
        await plugin.unsubscribe(await plugin.subscribe(f"{prefix}:first"))
        await asyncio.sleep(IDLE_SECONDS)  # the scenario: the idle spell itself
        channels = [f"{prefix}:{i}" for i in range(ACCOUNTS)]
        subscribers = await asyncio.gather(*(plugin.subscribe(c) for c in channels))
        # The listener survived too: every channel's event arrives.
        redis = Redis.from_url(settings.redis.url)
        try:
            for channel in channels:
                await redis.publish(channel, channel.encode())
        finally:
            await redis.aclose()
        for channel, subscriber in zip(channels, subscribers, strict=True):
            assert isinstance(subscriber, EventSubscriber)
            assert await asyncio.wait_for(subscriber.get(), 10) == channel.encode()
        await asyncio.gather(*(plugin.unsubscribe(s) for s in subscribers))
