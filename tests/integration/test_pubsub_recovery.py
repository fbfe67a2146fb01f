"""The web process's pub/sub connection across Redis restarts, short (inside the client's own retries)
and long (past them), with the channels plugin the app uses."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest
from litestar.channels import ChannelsPlugin
from redis.asyncio import Redis

from exporthub.progress.subscribe import RESYNC, EventSubscriber, create_channels_plugin
from exporthub.settings import Settings
from tests.integration.test_redis_restart import RedisServer, own_redis  # noqa: F401 (a fixture)


@pytest.fixture
async def plugin(settings: Settings, own_redis: RedisServer) -> AsyncIterator[ChannelsPlugin]:  # noqa: F811
    url = f"redis://127.0.0.1:{own_redis.port}/0"
    async with create_channels_plugin(settings.replace(redis={"url": url})) as channels:
        yield channels


async def subscribe(plugin: ChannelsPlugin, channels: list[str]) -> EventSubscriber:
    subscriber = await plugin.subscribe(channels)
    assert isinstance(subscriber, EventSubscriber)
    return subscriber


async def publish_until_received(port: int, channel: str, subscriber: EventSubscriber, timeout: float) -> list[bytes]:
    """Publish a probe until it arrives; returns what the subscriber got before it."""
    probe = f"probe-{time.monotonic()}".encode()
    before: list[bytes] = []
    redis = Redis(port=port)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await redis.publish(channel, probe)
            try:
                while (item := await asyncio.wait_for(subscriber.get(), 0.5)) != probe:
                    assert item is not None
                    if item not in before:
                        before.append(item)
                return before
            except TimeoutError:
                continue
        raise AssertionError(f"{channel}: nothing arrived within {timeout}s")
    finally:
        await redis.aclose()


async def test_a_short_restart_brings_one_resync_and_events_again(
    plugin: ChannelsPlugin,
    own_redis: RedisServer,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    subscriber = await subscribe(plugin, ["account", "revocations"])
    assert await publish_until_received(own_redis.port, "account", subscriber, 5) == []
    caplog.set_level(logging.INFO, logger="exporthub.progress.subscribe")
    own_redis.stop()
    await asyncio.sleep(1)  # the scenario: a short outage
    own_redis.start()
    # Once, though the subscriber is on two channels; then events flow on both.
    assert await publish_until_received(own_redis.port, "account", subscriber, 20) == [RESYNC]
    assert await publish_until_received(own_redis.port, "revocations", subscriber, 5) == []
    await plugin.wait_published(b"through the plugin", "revocations")  # the backend's own PUBLISH
    assert await asyncio.wait_for(subscriber.get(), 5) == b"through the plugin"
    assert "Redis pub/sub listener back, 2 channel(s) subscribed" in caplog.text, caplog.text
    assert "listener stopped" not in caplog.text, caplog.text  # redis-py reconnected by itself
    await plugin.unsubscribe(subscriber)


async def test_a_long_outage_with_subscribes_during_it(
    plugin: ChannelsPlugin,
    own_redis: RedisServer,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Down longer than the client's own retries last (~9 s): the listener reconnects itself, and a
    channel first subscribed while Redis was away is subscribed then."""
    first = await subscribe(plugin, ["first"])
    assert await publish_until_received(own_redis.port, "first", first, 5) == []
    own_redis.stop()
    await asyncio.sleep(1)  # the scenario: Redis already away when the second channel is asked for
    second = await subscribe(plugin, ["second"])  # waits out the client's retries, then gives up
    await asyncio.sleep(1)  # the scenario: and a while longer
    own_redis.start()
    assert await publish_until_received(own_redis.port, "first", first, 20) == [RESYNC]
    assert await publish_until_received(own_redis.port, "second", second, 10) == [RESYNC]
    assert "Redis pub/sub listener stopped" in caplog.text
    assert "could not subscribe to ['second'] now" in caplog.text
    await plugin.unsubscribe(first)
    await plugin.unsubscribe(second)
