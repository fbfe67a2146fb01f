"""The subscribe side of progress events: ONE Redis pub/sub connection per web process, fanned out.

`create_channels_plugin(settings)` builds a Litestar `ChannelsPlugin` on `RedisChannelsPubSubBackend`.
Every listener (a WebSocket, the console's page socket) subscribes through it to its account's
channel (`channel_for`); the plugin keeps one SUBSCRIBE per channel on one connection and copies each
message into the in-memory queue of each of that channel's subscribers. 5,000 sockets cost 5,000
queues, not 5,000 Redis connections.

Redis restarts. The client retries with backoff (`create_redis`), which hides short outages. When
the retries run out, the stock plugin's listener task dies with the ConnectionError and nothing
restarts it: every socket of the process stays silent until the process restarts (seen with
litestar 2.25 and redis-py 8.1: a 12 s outage did it). `SupervisedChannelsPlugin` restarts the
listener with backoff and subscribes again to every channel that has subscribers. Events published
while Redis was away are lost, so after every reconnect each subscriber receives `RESYNC` and
should send its client a fresh snapshot.

Slow readers. A subscriber's queue holds what its socket has not sent yet; nothing is ever dropped
from it silently. Once the bytes waiting pass `queue_budget_bytes`, the subscriber stops queueing
and calls its `on_overflow` callback: its socket is closed, the client reconnects and gets a
snapshot, so a lost event always ends in a resync.

A backend cannot be reused after shutdown (litestar 2.25): build one plugin per app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Iterable
from typing import Any

from litestar.channels import ChannelsPlugin
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from litestar.channels.subscriber import Subscriber
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from exporthub.redis_client import create_redis
from exporthub.settings import Settings

log = logging.getLogger(__name__)

# Put in a subscriber's stream after Redis came back; not JSON, so never mistaken for an event.
RESYNC = b"\x00resync"
DEFAULT_QUEUE_BUDGET_BYTES = 256 * 1024
RESTART_DELAY_MIN = 0.1
# The listener reads in polls this long, holding the connection's lock only while it reads, so that a
# subscribe waits at most this long for its turn.
LISTEN_POLL_SECONDS = 0.05
RESTART_DELAY_MAX = 5.0


class EventSubscriber(Subscriber):
    """A subscriber whose next item can be awaited on its own (cancelling `get()`, a timeout, loses
    nothing, whereas cancelling `iter_events()`'s generator closes it for good), and whose queue is
    bounded in bytes: see the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._budget: int = getattr(self._plugin, "queue_budget_bytes", DEFAULT_QUEUE_BUDGET_BYTES)
        self._queued_bytes = 0
        self.overflowed = False
        self.on_overflow: Callable[[], None] | None = None

    def put_nowait(self, item: bytes | None) -> bool:
        if item is not None:
            if self.overflowed:
                return False
            self._queued_bytes += len(item)
            if self._queued_bytes > self._budget:
                self.overflowed = True
                self._queued_bytes -= len(item)
                if self.on_overflow is not None:
                    self.on_overflow()
                return False
        return super().put_nowait(item)

    async def put(self, item: bytes | None) -> None:
        self.put_nowait(item)  # the queue has no count limit: the byte budget bounds it

    async def get(self) -> bytes | None:
        item = await self._queue.get()
        self._queue.task_done()
        if item is not None:
            self._queued_bytes -= len(item)
        return item

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes


class ResilientPubSubBackend(RedisChannelsPubSubBackend):
    """The stock pub/sub backend, plus: (un)subscribing while Redis is away does not fail the caller
    (the listener's supervisor subscribes again), a reconnect made inside redis-py's own retries
    is reported through `on_reconnect`, and one coroutine at a time uses the connection (`lock`).

    The lock: redis-py's SUBSCRIBE on a pub/sub connection subscribed to nothing first runs a health
    check (PING, then a read) once `health_check_interval` has passed; with the listener reading,
    or another SUBSCRIBE checking, at the same moment, asyncio raises "readuntil() called while
    another coroutine is already waiting" and the socket got 1011. So the listener reads in short
    polls under the lock, and every (un)subscribe takes it too."""

    def __init__(self, *, redis: Redis, on_reconnect: Callable[[], None]) -> None:
        super().__init__(redis=redis)
        self._on_reconnect = on_reconnect
        self._watched: Any = None  # the connection whose reconnects we hear about
        self.lock = asyncio.Lock()

    @property
    def pubsub(self) -> PubSub:
        return self._pub_sub

    async def stream_events(self) -> AsyncGenerator[tuple[str, Any], None]:
        """The stock loop, each read under the lock (see the class docstring)."""
        pubsub = self.pubsub
        while True:
            await self._has_subscribed.wait()
            async with self.lock:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=LISTEN_POLL_SECONDS)
            if message is None:
                continue
            channel = message["channel"]
            # Unsubscribing is not immediate: drop a message of a channel nobody wants any more.
            if channel in pubsub.channels and channel not in pubsub.pending_unsubscribe_channels:
                yield channel.decode(), message["data"]

    async def subscribe(self, channels: Iterable[str]) -> None:
        channels = list(channels)
        try:
            async with self.lock:
                await super().subscribe(channels)
        except (RedisError, OSError) as exc:
            # Remembered, so that any reconnect (redis-py's or the supervisor's) subscribes them.
            self.pubsub.channels.update({c.encode(): None for c in channels})
            self._has_subscribed.set()  # wake the listener so that it meets the outage and recovers
            log.warning("could not subscribe to %s now (%s); will once Redis answers", channels, exc)
        self._watch_connection()

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        channels = list(channels)
        try:
            async with self.lock:
                await super().unsubscribe(channels)
        except (RedisError, OSError) as exc:
            for c in channels:  # so that a reconnect does not subscribe them again
                self.pubsub.channels.pop(c.encode(), None)
            log.warning("could not unsubscribe from %s now (%s)", channels, exc)

    def _watch_connection(self) -> None:
        connection = self.pubsub.connection
        if connection is not None and connection is not self._watched:
            # Runs after redis-py's own resubscribe callback, which was registered first.
            connection.register_connect_callback(self._connected)
            self._watched = connection

    def _connected(self, connection: Any) -> None:
        self._on_reconnect()

    async def on_shutdown(self) -> None:
        if self._watched is not None:
            self._watched.deregister_connect_callback(self._connected)
        await super().on_shutdown()


class SupervisedChannelsPlugin(ChannelsPlugin):
    """`ChannelsPlugin` whose Redis listener outlives Redis outages of any length."""

    def __init__(self, redis: Redis, *, queue_budget_bytes: int = DEFAULT_QUEUE_BUDGET_BYTES) -> None:
        self._redis = redis
        self._recovering = False
        self.queue_budget_bytes = queue_budget_bytes  # per subscriber, read by EventSubscriber
        super().__init__(
            ResilientPubSubBackend(redis=redis, on_reconnect=self._reconnected),
            arbitrary_channels_allowed=True,
            subscriber_max_backlog=None,  # no count limit, and so nothing dropped: bounded in bytes
            subscriber_class=EventSubscriber,
        )

    def broadcast_resync(self) -> None:
        """Tell every subscriber that events may have been lost: once, though most are on two channels."""
        for subscriber in {s for subscribers in self._channels.values() for s in subscribers}:
            subscriber.put_nowait(RESYNC)

    def _reconnected(self) -> None:
        if not self._recovering:  # the supervisor broadcasts itself once it has resubscribed
            log.info("Redis pub/sub reconnected; asking subscribers to resync")
            self.broadcast_resync()

    async def _sub_worker(self) -> None:
        delay = RESTART_DELAY_MIN
        while True:
            try:
                async for channel, payload in self._backend.stream_events():
                    delay = RESTART_DELAY_MIN
                    for subscriber in self._channels.get(channel, ()):
                        subscriber.put_nowait(payload)
            except Exception as exc:  # CancelledError is not an Exception: shutdown still stops us
                log.warning("Redis pub/sub listener stopped (%s: %s); restarting it", type(exc).__name__, exc)
            while True:
                await asyncio.sleep(delay)
                delay = min(delay * 2, RESTART_DELAY_MAX)
                try:
                    await self._resubscribe()
                    break
                except Exception as exc:
                    log.warning("Redis still unreachable for pub/sub (%s); retrying in %.1fs", exc, delay)

    async def _resubscribe(self) -> None:
        backend: ResilientPubSubBackend = self._backend  # type: ignore[assignment]
        self._recovering = True
        try:
            async with backend.lock:
                await backend.pubsub.connect()  # raises while Redis is away (after the client's own retries)
                wanted = [channel for channel, subscribers in self._channels.items() if subscribers]
                if wanted:
                    await backend.pubsub.subscribe(*wanted)
            backend._watch_connection()
        finally:
            self._recovering = False
        log.info("Redis pub/sub listener back, %d channel(s) subscribed", len(wanted))
        self.broadcast_resync()

    async def _on_shutdown(self) -> None:
        try:
            await super()._on_shutdown()
        finally:
            with contextlib.suppress(RedisError, OSError):
                await self._redis.aclose()


def create_channels_plugin(settings: Settings) -> ChannelsPlugin:
    """A new plugin (and Redis client) per app: a backend cannot be started twice."""
    return SupervisedChannelsPlugin(create_redis(settings.redis_url), queue_budget_bytes=settings.ws_send_queue_bytes)
