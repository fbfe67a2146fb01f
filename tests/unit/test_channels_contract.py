"""What progress/subscribe.py relies on in Litestar's channels, through their public API only.

`ChannelsPlugin` makes our subscribers from `subscriber_class`, feeds them with `put_nowait`, ends them
with `put(None)`, and runs our backend's `stream_events`. Should a Litestar release change any of
that (or add an abstract method to `ChannelsBackend`), these tests fail here rather than the live
sockets going quiet in production. Litestar's in-memory backend stands in for Redis.
"""

from __future__ import annotations

import asyncio
import inspect

import pytest
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.base import ChannelsBackend
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.channels.subscriber import Subscriber
from redis.asyncio import Redis

from exporthub.progress.subscribe import RESYNC, EventSubscriber, RedisPubSubBackend, budgeted_subscriber
from tests.harness import wait_for_async


def plugin(budget: int = 1000) -> ChannelsPlugin:
    return ChannelsPlugin(
        MemoryChannelsBackend(),
        arbitrary_channels_allowed=True,
        subscriber_max_backlog=None,
        subscriber_class=budgeted_subscriber(budget),
    )


async def test_the_plugin_makes_our_subscriber_and_feeds_it_through_put_nowait() -> None:
    async with plugin() as channels:
        subscriber = await channels.subscribe(["a", "b"])
        assert isinstance(subscriber, EventSubscriber)
        assert subscriber.budget_bytes == 1000
        await channels.wait_published(b"one", "a")
        await channels.wait_published(b"two", "b")
        assert await asyncio.wait_for(subscriber.get(), 5) == b"one"
        assert await asyncio.wait_for(subscriber.get(), 5) == b"two"
        assert subscriber.queued_bytes == 0
        # Unsubscribing from the last channel ends the stream with None.
        await channels.unsubscribe(subscriber, ["a", "b"])
        assert await asyncio.wait_for(subscriber.get(), 5) is None


async def test_a_cancelled_get_loses_nothing() -> None:
    async with plugin() as channels:
        subscriber = await channels.subscribe("a")
        assert isinstance(subscriber, EventSubscriber)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(subscriber.get(), 0.05)
        await channels.wait_published(b"after", "a")
        assert await asyncio.wait_for(subscriber.get(), 5) == b"after"
        await channels.unsubscribe(subscriber)


async def test_past_the_byte_budget_the_subscriber_overflows_once_and_queues_nothing_more() -> None:
    async with plugin(budget=10) as channels:
        subscriber = await channels.subscribe("a")
        assert isinstance(subscriber, EventSubscriber)
        overflows: list[int] = []
        subscriber.on_overflow = lambda: overflows.append(subscriber.queued_bytes)
        for _ in range(4):
            await channels.wait_published(b"1234", "a")
        # The plugin's listener task hands them over: the third is one too many.
        await wait_for_async(lambda: subscriber.overflowed, 5, "the subscriber to overflow")
        assert overflows == [8]
        assert subscriber.overflowed
        assert subscriber.qsize == 2
        assert not subscriber.put_nowait(b"x")
        await channels.unsubscribe(subscriber)


async def test_resync_waits_once_however_many_channels_announce_it() -> None:
    async with plugin() as channels:
        subscriber = await channels.subscribe(["a", "b"])
        assert isinstance(subscriber, EventSubscriber)
        await channels.wait_published(RESYNC, ["a", "b"])
        await channels.wait_published(b"event", "a")
        assert await asyncio.wait_for(subscriber.get(), 5) == RESYNC
        assert await asyncio.wait_for(subscriber.get(), 5) == b"event"
        assert subscriber.qsize == 0
        subscriber.put_nowait(RESYNC)  # a later reconnect: announced again
        assert await asyncio.wait_for(subscriber.get(), 5) == RESYNC
        await channels.unsubscribe(subscriber)


async def test_run_in_background_reads_our_queue() -> None:
    received: list[bytes] = []

    async def on_event(data: bytes) -> None:
        received.append(data)

    async with plugin() as channels:
        subscriber = await channels.subscribe("a")
        async with subscriber.run_in_background(on_event):
            await channels.wait_published(b"x", "a")
            await channels.wait_published(b"y", "a")
            await wait_for_async(lambda: len(received) == 2, 5, "both events to be handed to on_event")
        assert received == [b"x", b"y"]
        await channels.unsubscribe(subscriber)


def test_every_stream_method_of_subscriber_is_overridden() -> None:
    """Our items live in our own queue: a new public Subscriber method touching the stream must be
    overridden too, or it would read Litestar's (empty) queue."""
    public = {name for name, _ in inspect.getmembers(Subscriber) if not name.startswith("_")}
    assert public == {"put", "put_nowait", "qsize", "iter_events", "run_in_background", "is_running", "stop"}
    for name in ("put", "put_nowait", "qsize", "iter_events", "stop"):
        assert getattr(EventSubscriber, name) is not getattr(Subscriber, name), name
    parameters = list(inspect.signature(Subscriber.__init__).parameters)
    assert parameters == ["self", "plugin", "max_backlog", "backlog_strategy"]


async def test_our_backend_implements_every_abstract_method() -> None:
    assert set(ChannelsBackend.__abstractmethods__) == {
        "on_startup",
        "on_shutdown",
        "publish",
        "subscribe",
        "unsubscribe",
        "stream_events",
        "get_history",
    }
    backend = RedisPubSubBackend(Redis())  # TypeError here if an abstract method were missing
    await backend.on_shutdown()
