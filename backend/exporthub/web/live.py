"""Live progress over WebSocket: `account_events` (the subscriber every socket uses) and the JSON
socket for integrations, `GET /api/v1/exports/ws`.

Protocol of `/api/v1/exports/ws` (also in the README):

- Auth: `Authorization: Bearer <api key>` (preferred), or `?apiKey=<key>` for clients that cannot
  set headers (browsers; the key then shows in logs and history). A browser `Origin` must be the
  site's own (settings.web.public_url or the request's host); non-browser clients send none.
- Refusals are made after the handshake, with a close code clients should not retry:
  4401 (missing, unknown or revoked key, or its account disabled), 4403 (cross-site Origin), 4429
  (the account already has `EXPORTHUB_WS_MAX_SOCKETS_PER_ACCOUNT` live sockets on this web process:
  close one first). An open socket is closed with 4401 as soon as its key is revoked or its account
  disabled (announced on Redis; re-checked every EXPORTHUB_ACCESS_RECHECK_SECONDS too).
- Closes clients should retry (then a snapshot brings them up to date): 1011 (our error), 1013 (the
  client read too slowly: more than `EXPORTHUB_WS_SEND_QUEUE_BYTES` of events waited for it).
  1008: more than 10 pings in a second; 1009: a frame over 4 KiB.
- Server -> client, JSON text frames: first `{"type": "snapshot", "exports": [event, ...]}` (the
  account's 20 newest exports, newest first, each shaped like an event), then every event of the
  account as the worker published it (see `exporthub.progress`). After a Redis outage the server
  sends a new snapshot, since events published meanwhile are lost.
- Client -> server: the text `ping` is answered with `{"type": "pong"}`; anything else is ignored.
  Both live sockets (this one and the console's) share these limits.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import asyncpg
from litestar import WebSocket, websocket
from litestar.channels import ChannelsPlugin
from litestar.exceptions import WebSocketDisconnect

from exporthub.accounts import Account, account_for_key, account_for_key_id
from exporthub.exports.service import Exports
from exporthub.progress import REVOKED, channel_for, revocations_channel
from exporthub.progress.subscribe import RESYNC, EventSubscriber
from exporthub.settings import Settings

log = logging.getLogger(__name__)

SNAPSHOT_SIZE = 20
PINGS_PER_SECOND = 10
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN_ORIGIN = 4403
_RECHECK = b"\x02recheck"  # time for the periodic access check
ACCESS_CHECK = "access.check"
CLOSE_TOO_MANY_SOCKETS = 4429
CLOSE_POLICY = 1008
CLOSE_TRY_AGAIN = 1013
_PING = b"\x01ping"  # a client's ping in the subscriber's stream (events are JSON, so never this)


class SocketCut(Exception):
    """Raised out of `async with account_events(...)` when the socket must be closed: the client
    reads too slowly or pings too often. Close it with `code` and `reason`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class SocketLimits:
    """Live sockets per account, counted in this web process only: with N web processes an account
    can hold up to N x `max_per_account` sockets (the count would need Redis to be global, and a
    crashed process would leave its count behind)."""

    def __init__(self, max_per_account: int) -> None:
        self.max_per_account = max_per_account
        self._open: collections.Counter[uuid.UUID] = collections.Counter()

    @contextlib.contextmanager
    def hold(self, account_id: uuid.UUID) -> Iterator[bool]:
        """True (and the socket counted while the `with` lasts) unless the account is at its cap."""
        if self._open[account_id] >= self.max_per_account:
            yield False
            return
        self._open[account_id] += 1
        try:
            yield True
        finally:
            self._open[account_id] -= 1
            if self._open[account_id] <= 0:
                del self._open[account_id]


async def close_cut(socket: WebSocket[Any, Any, Any], cut: SocketCut) -> None:
    """Close with the cut's code; a client that reads nothing may never take the close frame."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(2):
            await socket.close(cut.code, cut.reason)


@contextlib.asynccontextmanager
async def account_events(
    channels: ChannelsPlugin,
    namespace: str,
    account_id: uuid.UUID,
    socket: WebSocket[Any, Any, Any] | None = None,
    *,
    recheck_seconds: float | None = None,
) -> AsyncIterator[AsyncIterator[Received]]:
    """Subscribe to one account's progress events for as long as the `async with` lasts.

        async with account_events(channels, settings.redis.queue_name, account.id, socket,
                                  recheck_seconds=settings.web.access_recheck_seconds) as events:
            await send_snapshot()            # read AFTER subscribing: nothing falls in between
            async for received in events:
                ...

    `namespace` is settings.redis.queue_name (see channel_for). `channels` is the app's ChannelsPlugin
    (inject it as `channels: ChannelsPlugin`); `socket` is an
    accepted WebSocket, or None when the caller watches for disconnects itself. Subscribing is done
    when the `async with` is entered. The iterator yields `Received` items, by `type`:

    - "export.progress" | "export.completed" | "export.failed" | "export.cancelled" | "export.expired":
      `event` is the event as published, with "exportId", "status", "progress", ... (see
      exporthub.progress), `text` its JSON text; both are decoded once per process, not per socket;
    - "resync": Redis came back after an outage and events may have been lost: send a new snapshot;
    - "client.ping": the client sent the text `ping`. It comes through here, in order with the
      events, so that one task does all the sending on the socket. Any other client frame is
      ignored; more than PINGS_PER_SECOND pings in a second cut the socket (1008).
    - "access.check": a key or the whole account was revoked (announced on the revocations
      channel; `event` is the announcement), or `recheck_seconds` have passed since the last
      periodic check (`event` is {}): check that the socket's key or session still works, and close
      with 4401 if not. The periodic check covers an announcement lost to a Redis outage.

    The iteration ends when the client disconnects (the socket is read in a background task that
    notices it) and the subscription is dropped on exit. Waiting for the next event may be cancelled
    safely (`asyncio.wait_for(anext(events), 30)` for a heartbeat): the stream stays usable.
    When the client reads too slowly (more than the plugin's byte budget of events wait for it) or
    pings too often, the body of the `async with` is interrupted wherever it waits, even in a send,
    and `SocketCut` is raised out of it: close the socket with `close_cut`.
    Only this account's channel is read; the caller must have authenticated the account.
    """
    subscribed = [channel_for(namespace, account_id), revocations_channel(namespace)]
    subscriber = await channels.subscribe(subscribed)
    helpers: list[asyncio.Task[None]] = []
    task = asyncio.current_task()
    cuts: list[SocketCut] = []
    active = True

    def cut(code: int, reason: str) -> None:
        # A slow reader's task waits in a send that may never return: cancel it, as asyncio.timeout does.
        if active and not cuts and task is not None:
            cuts.append(SocketCut(code, reason))
            task.cancel()

    try:
        if not isinstance(subscriber, EventSubscriber):
            raise TypeError("account_events needs the plugin made by create_channels_plugin()")
        subscriber.on_overflow = functools.partial(cut, CLOSE_TRY_AGAIN, "too far behind; reconnect for a snapshot")
        if socket is not None:
            helpers.append(asyncio.create_task(_read_client(socket, subscriber, cut)))
        if recheck_seconds is not None:
            helpers.append(asyncio.create_task(_tick(subscriber, recheck_seconds)))
        try:
            yield AccountEvents(subscriber, account_id)
        except asyncio.CancelledError:
            if cuts and task is not None and task.uncancel() == 0:
                raise cuts[0] from None
            raise
    finally:
        active = False
        if isinstance(subscriber, EventSubscriber):
            subscriber.on_overflow = None
        for helper in helpers:
            helper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await helper
        await channels.unsubscribe(subscriber, subscribed)


async def _read_client(
    socket: WebSocket[Any, Any, Any], subscriber: EventSubscriber, cut: Callable[[int, str], None]
) -> None:
    loop = asyncio.get_running_loop()
    window_started, pings = loop.time(), 0
    try:
        while True:
            message = await socket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text") if message["type"] == "websocket.receive" else None
            if text is None or text.strip().lower() != "ping":
                continue  # nothing else is read; queueing it would let a client fill our memory
            now = loop.time()
            if now - window_started >= 1:
                window_started, pings = now, 0
            pings += 1
            if pings > PINGS_PER_SECOND:
                cut(CLOSE_POLICY, f"more than {PINGS_PER_SECOND} pings a second")
                return
            subscriber.put_nowait(_PING)
    except (WebSocketDisconnect, OSError):
        pass
    finally:
        subscriber.put_nowait(None)  # ends the iteration


async def _tick(subscriber: EventSubscriber, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        subscriber.put_nowait(_RECHECK)


class Received(NamedTuple):
    """One item of an account's stream: `type` is the event's ("export.progress", ...), "resync" or
    "client.ping"; `event` the event as published (one dict shared by every socket of the process:
    read only), else {}; `text` the event's JSON text as published, else ""."""

    type: str
    event: Mapping[str, Any]
    text: str


_RESYNC = Received("resync", {}, "")
_CHECK = Received(ACCESS_CHECK, {}, "")
_CLIENT_PING = Received("client.ping", {}, "")


@functools.lru_cache(maxsize=64)
def _decode(raw: bytes) -> Received | None:
    """An event's bytes -> Received, once per process however many sockets receive it (the
    subscriber hands every socket the same bytes object, and equal bytes hit the cache anyway)."""
    try:
        text = raw.decode()
        event = json.loads(text)
    except ValueError:
        log.warning("dropped a malformed progress event: %r", raw[:200])
        return None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        log.warning("dropped a progress event without a type: %r", raw[:200])
        return None
    return Received(event["type"], event, text)


class AccountEvents:
    """The iterator `account_events` yields (see there)."""

    def __init__(self, subscriber: EventSubscriber, account_id: uuid.UUID) -> None:
        self._subscriber = subscriber
        self._account_id = str(account_id)
        self._ended = False

    def __aiter__(self) -> AccountEvents:
        return self

    async def __anext__(self) -> Received:
        while not self._ended:
            raw = await self._subscriber.get()
            if raw is None:
                self._ended = True
            elif raw == RESYNC:
                return _RESYNC
            elif raw == _RECHECK:
                return _CHECK
            elif raw == _PING:
                return _CLIENT_PING
            elif (received := _decode(raw)) is not None:
                if received.type != REVOKED:
                    return received
                if received.event.get("accountId") == self._account_id:  # other accounts' are not ours
                    return Received(ACCESS_CHECK, received.event, received.text)
        raise StopAsyncIteration


async def snapshot(exports: Exports, account: Account) -> dict[str, Any]:
    """The account's newest exports, each shaped like the event its current state would publish."""
    return {"type": "snapshot", "exports": await exports.events_of_recent(account, limit=SNAPSHOT_SIZE)}


def origin_allowed(origin: str | None, host: str | None, public_url: str) -> bool:
    """No Origin (not a browser), or the site's own: public_url's origin or the request's host."""
    if origin is None:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False  # "null", file:// pages and the like
    public = urlsplit(public_url)
    if (parts.scheme, parts.netloc.lower()) == (public.scheme, public.netloc.lower()):
        return True
    return host is not None and parts.netloc.lower() == host.lower()


async def _authenticate(socket: WebSocket[Any, Any, Any], pool: asyncpg.Pool) -> Account | str:
    """The account, or the reason for refusing."""
    scheme, _, token = socket.headers.get("authorization", "").partition(" ")
    key = token.strip() if scheme.lower() == "bearer" else ""
    key = key or (socket.query_params.get("apiKey") or "").strip()
    if not key:
        return "send your API key as 'Authorization: Bearer <key>' (or ?apiKey=<key>)"
    account = await account_for_key(pool, key)
    return account if account is not None else "unknown or revoked API key"


@websocket("/api/v1/exports/ws", name="exports_socket")
async def exports_socket(
    socket: WebSocket[Any, Any, Any],
    pool: asyncpg.Pool,
    exports: Exports,
    settings: Settings,
    channels: ChannelsPlugin,
    socket_limits: SocketLimits,
) -> None:
    # Accept first, then refuse with a 44xx code: a refusal before accept reaches clients as 1006,
    # which they take for a network failure and retry forever.
    await socket.accept()
    if not origin_allowed(socket.headers.get("origin"), socket.headers.get("host"), settings.web.public_url):
        await socket.close(CLOSE_FORBIDDEN_ORIGIN, "cross-site WebSocket refused")
        return
    account = await _authenticate(socket, pool)
    if not isinstance(account, Account):
        await socket.close(CLOSE_UNAUTHORIZED, account)
        return
    assert account.key_id is not None, "a key authenticated it"
    with socket_limits.hold(account.id) as admitted:
        if not admitted:
            await socket.close(CLOSE_TOO_MANY_SOCKETS, "too many live sockets for this account")
            return
        try:
            async with account_events(
                channels,
                settings.redis.queue_name,
                account.id,
                socket,
                recheck_seconds=settings.web.access_recheck_seconds,
            ) as events:
                await socket.send_json(await snapshot(exports, account))
                async for received in events:
                    if received.type == ACCESS_CHECK:
                        if await account_for_key_id(pool, account.key_id) is None:
                            await socket.close(CLOSE_UNAUTHORIZED, "API key revoked or account disabled")
                            return
                    elif received.type == "resync":
                        await socket.send_json(await snapshot(exports, account))
                    elif received.type == "client.ping":
                        await socket.send_json({"type": "pong"})
                    else:
                        await socket.send_text(received.text)  # as published: no JSON work per socket
        except SocketCut as cut:
            log.info("live socket of account %s closed: %s", account.slug, cut.reason)
            await close_cut(socket, cut)
        except (WebSocketDisconnect, OSError):
            return  # the client left while we were sending
        except Exception:
            log.exception("live socket of account %s failed", account.slug)
            with contextlib.suppress(Exception):
                await socket.close(1011, "server error; reconnect later")
