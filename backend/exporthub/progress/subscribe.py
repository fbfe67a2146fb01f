"""The subscribe side of progress events: ONE Redis pub/sub connection per web process, fanned out.

`create_channels_plugin(settings)` builds a Litestar `ChannelsPlugin` on our own `RedisPubSubBackend`.
Every listener (a WebSocket, the console's page socket) subscribes through it to its account's
channel (`channel_for`); the plugin keeps one SUBSCRIBE per channel on one connection and copies each
message into the in-memory queue of each of that channel's subscribers. 5,000 sockets cost 5,000
queues, not 5,000 Redis connections.

Only public APIs are used: Litestar's `ChannelsBackend` (the interface custom backends implement),
`ChannelsPlugin`'s constructor and `Subscriber`'s public methods, and redis-py's asyncio `PubSub`
with a connection's connect callbacks. tests/unit/test_channels_contract.py checks the Litestar side.

Redis restarts. The client retries with backoff (`create_redis`), which hides short outages; a
reconnect made inside those retries is heard through a connect callback. When the retries run out,
Litestar's pub/sub backend would end its `stream_events` with the ConnectionError, and nothing
restarts the plugin's listener: every socket of the process would stay silent until the process
restarts (seen with litestar 2.25 and redis-py 8.1: a 12 s outage did it). `RedisPubSubBackend`'s
`stream_events` never ends: it reconnects with backoff and subscribes again to every channel that
has subscribers. Events published while Redis was away are lost, so after every reconnect each
subscriber receives `RESYNC` (once, though most are on two channels) and should send its client a
fresh snapshot.

Slow readers. A subscriber's queue holds what its socket has not sent yet; nothing is ever dropped
from it silently. Once the bytes waiting pass `queue_budget_bytes`, the subscriber stops queueing
and calls its `on_overflow` callback: its socket is closed, the client reconnects and gets a
snapshot, so a lost event always ends in a resync.

Build one plugin (and so one backend and Redis client) per app: the backend closes its client on
shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Iterable
from typing import Any

from litestar.channels import ChannelsPlugin
from litestar.channels.backends.base import ChannelsBackend
from litestar.channels.subscriber import BacklogStrategy, Subscriber
from redis.asyncio import Redis
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
    bounded in bytes (`budget_bytes`): see the module docstring.

    It keeps its items in its own queue and overrides every public method of `Subscriber` that
    touches the stream (`put`, `put_nowait`, `qsize`, `iter_events`, `stop`), which are all the
    plugin calls; `Subscriber`'s own queue stays empty. `budgeted_subscriber` sets the budget."""

    budget_bytes: int = DEFAULT_QUEUE_BUDGET_BYTES

    def __init__(
        self,
        plugin: ChannelsPlugin,
        max_backlog: int | None = None,
        backlog_strategy: BacklogStrategy = "backoff",
    ) -> None:
        super().__init__(plugin, max_backlog=None, backlog_strategy=backlog_strategy)  # bounded in bytes here
        self._items: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._queued_bytes = 0
        self._resync_waiting = False
        self.overflowed = False
        self.on_overflow: Callable[[], None] | None = None

    def put_nowait(self, item: bytes | None) -> bool:
        if item is not None:
            if self.overflowed:
                return False
            resync = item == RESYNC
            if resync and self._resync_waiting:
                return True  # one is already waiting: the snapshot it brings covers this reconnect too
            if self._queued_bytes + len(item) > self.budget_bytes:
                self.overflowed = True
                if self.on_overflow is not None:
                    self.on_overflow()
                return False
            self._queued_bytes += len(item)
            self._resync_waiting = self._resync_waiting or resync
        self._items.put_nowait(item)  # no count limit: the byte budget bounds it
        return True

    async def put(self, item: bytes | None) -> None:
        self.put_nowait(item)

    async def get(self) -> bytes | None:
        item = await self._items.get()
        self._items.task_done()
        if item is not None:
            self._queued_bytes -= len(item)
            if item == RESYNC:
                self._resync_waiting = False
        return item

    async def iter_events(self) -> AsyncGenerator[bytes, None]:
        while (item := await self.get()) is not None:
            yield item

    async def stop(self, join: bool = False) -> None:
        """As `Subscriber.stop`; `join` waits until every queued item has been taken."""
        if join and self.is_running:
            await self._items.join()
        await super().stop(join=False)

    @property
    def qsize(self) -> int:
        return self._items.qsize()

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes


def budgeted_subscriber(budget: int) -> type[EventSubscriber]:
    """`EventSubscriber` with this byte budget: the plugin makes its subscribers from a class."""

    class BudgetedEventSubscriber(EventSubscriber):
        budget_bytes = budget

    return BudgetedEventSubscriber


class RedisPubSubBackend(ChannelsBackend):
    """Litestar channels over one redis-py pub/sub connection, outliving Redis outages of any length.

    (Un)subscribing while Redis is away does not fail the caller: the channels wanted are ours to
    remember (`_wanted`), and every reconnect subscribes them all again. `stream_events` never
    ends: when the client's own retries run out, it reconnects with backoff. After any reconnect it
    yields `RESYNC` on every wanted channel before anything else.

    One coroutine at a time uses the connection (`_lock`): redis-py's SUBSCRIBE on a pub/sub
    connection subscribed to nothing first runs a health check (PING, then a read) once
    `health_check_interval` has passed; with the listener reading, or another SUBSCRIBE checking,
    at the same moment, asyncio raises "readuntil() called while another coroutine is already
    waiting" and the socket got 1011. So the listener reads in short polls under the lock, and every
    (un)subscribe takes it too."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._pubsub = redis.pubsub()
        self._lock = asyncio.Lock()
        self._wanted: set[str] = set()  # channels with subscribers
        self._stale: set[str] = set()  # channels whose UNSUBSCRIBE failed: dropped after a reconnect
        self._has_channels = asyncio.Event()
        self._reconnected = False
        self._watched: Any = None  # the connection whose reconnects we hear about

    async def on_startup(self) -> None:
        pass  # the connection is opened by the first SUBSCRIBE

    async def on_shutdown(self) -> None:
        if self._watched is not None:
            self._watched.deregister_connect_callback(self._connected)
            self._watched = None
        with contextlib.suppress(RedisError, OSError):
            await self._pubsub.aclose()
        with contextlib.suppress(RedisError, OSError):
            await self._redis.aclose()

    async def publish(self, data: bytes, channels: Iterable[str]) -> None:
        """PUBLISH `data` on every channel, in one transaction (the workers publish with redis-py)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            for channel in set(channels):
                pipe.publish(channel, data)
            await pipe.execute()

    async def get_history(self, channel: str, limit: int | None = None) -> list[bytes]:
        raise NotImplementedError("Redis pub/sub keeps no history")

    async def subscribe(self, channels: Iterable[str]) -> None:
        channels = list(channels)
        self._wanted.update(channels)
        self._stale.difference_update(channels)
        self._has_channels.set()  # wakes the listener; should Redis be away, it meets the outage and recovers
        try:
            async with self._lock:
                await self._pubsub.subscribe(*channels)
        except (RedisError, OSError) as exc:
            log.warning("could not subscribe to %s now (%s); will once Redis answers", channels, exc)
        self._watch_connection()

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        channels = list(channels)
        self._wanted.difference_update(channels)
        if not self._wanted:
            self._has_channels.clear()
        try:
            async with self._lock:
                await self._pubsub.unsubscribe(*channels)
        except (RedisError, OSError) as exc:
            self._stale.update(channels)  # redis-py subscribes them again on reconnect: undone then
            log.warning("could not unsubscribe from %s now (%s)", channels, exc)

    async def stream_events(self) -> AsyncGenerator[tuple[str, Any], None]:
        delay = RESTART_DELAY_MIN
        while True:
            try:
                async for event in self._listen():
                    delay = RESTART_DELAY_MIN
                    yield event
            except Exception as exc:  # CancelledError is not an Exception: shutdown still stops us
                log.warning("Redis pub/sub listener stopped (%s: %s); restarting it", type(exc).__name__, exc)
            while True:
                await asyncio.sleep(delay)
                delay = min(delay * 2, RESTART_DELAY_MAX)
                try:
                    await self._reconnect()
                    break
                except Exception as exc:
                    log.warning("Redis still unreachable for pub/sub (%s); retrying in %.1fs", exc, delay)

    async def _listen(self) -> AsyncGenerator[tuple[str, Any], None]:
        pubsub = self._pubsub
        while True:
            for event in await self._resubscribe_if_reconnected():
                yield event
            await self._has_channels.wait()
            async with self._lock:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=LISTEN_POLL_SECONDS)
            if message is None:
                continue
            for event in await self._resubscribe_if_reconnected():  # RESYNC before what the new connection read
                yield event
            channel = message["channel"].decode()
            # Unsubscribing is not immediate: drop a message of a channel nobody wants any more.
            if channel in self._wanted:
                yield channel, message["data"]

    async def _reconnect(self) -> None:
        async with self._lock:
            await self._pubsub.connect()  # raises while Redis is away (after the client's own retries)
        self._watch_connection()
        self._reconnected = True  # even if the connection had stayed up: subscribe again, resync

    async def _resubscribe_if_reconnected(self) -> list[tuple[str, bytes]]:
        """After a reconnect: SUBSCRIBE every wanted channel (redis-py's own resubscribe misses those
        whose SUBSCRIBE failed), UNSUBSCRIBE the stale ones; then a RESYNC per wanted channel."""
        if not self._reconnected:
            return []
        self._reconnected = False
        async with self._lock:
            wanted = sorted(self._wanted)
            stale = sorted(self._stale - self._wanted)
            if wanted:
                await self._pubsub.subscribe(*wanted)
            if stale:
                await self._pubsub.unsubscribe(*stale)
            self._stale.clear()
        self._watch_connection()
        log.info("Redis pub/sub listener back, %d channel(s) subscribed", len(wanted))
        return [(channel, RESYNC) for channel in wanted]

    def _watch_connection(self) -> None:
        connection = self._pubsub.connection
        if connection is not None and connection is not self._watched:
            # Runs after redis-py's own resubscribe callback, which was registered first.
            connection.register_connect_callback(self._connected)
            self._watched = connection

    def _connected(self, connection: Any) -> None:
        self._reconnected = True


def create_channels_plugin(settings: Settings) -> ChannelsPlugin:
    """A new plugin (and backend, and Redis client) per app: the backend closes its client on shutdown."""
    return ChannelsPlugin(
        RedisPubSubBackend(create_redis(settings.redis.url)),
        arbitrary_channels_allowed=True,
        subscriber_max_backlog=None,  # no count limit, and so nothing dropped: bounded in bytes
        subscriber_class=budgeted_subscriber(settings.web.ws_send_queue_bytes),
    )
