"""The console's socket, `/console/ws`: a snapshot of the account's cards, then every change to
them as an out-of-band swap, rendered with the same card partial as the pages (console.py)."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as dt
import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import asyncpg
from litestar import WebSocket, websocket
from litestar.channels import ChannelsPlugin
from litestar.exceptions import WebSocketDisconnect

from exporthub.accounts import Account
from exporthub.exports.models import ExportJob, ExportStatus
from exporthub.exports.service import Exports
from exporthub.settings import Settings
from exporthub.web import session
from exporthub.web.console import (
    RECENT_EXPORTS,
    announcement_for,
    card_for,
    cards_for,
    render_announcement,
    render_card,
)
from exporthub.web.console_views import card_view
from exporthub.web.live import (
    ACCESS_CHECK,
    CLOSE_TOO_MANY_SOCKETS,
    Received,
    SocketCut,
    SocketLimits,
    account_events,
    close_cut,
    origin_allowed,
)

log = logging.getLogger(__name__)

# Close codes the htmx ws extension does not retry (it retries only 1006, 1011, 1012, 1013).
WS_NOT_SIGNED_IN = 4401
WS_FORBIDDEN_ORIGIN = 4403


class SharedFragments:
    """Card fragments for progress events, rendered once per process and event rather than once per
    socket: with 5,000 consoles open, one event is one render instead of 5,000 (a card takes about
    0.1 ms to render here). Keyed by the event's text as published; holds the last `size` events."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._fragments: collections.OrderedDict[str, str] = collections.OrderedDict()

    def get_or_render(self, key: str, render: Callable[[], str]) -> str:
        fragment = self._fragments.get(key)
        if fragment is None:
            fragment = self._fragments[key] = render()
            if len(self._fragments) > self._size:
                self._fragments.popitem(last=False)
        return fragment


@websocket("/console/ws")
async def console_socket(
    socket: WebSocket[Any, Any, Any],
    pool: asyncpg.Pool,
    exports: Exports,
    settings: Settings,
    channels: ChannelsPlugin,
    fragments: SharedFragments,
    socket_limits: SocketLimits,
) -> None:
    """Session-authenticated push of card updates, with the JSON socket's limits (web/live.py).

    Refusals accept first and then close with a 44xx code: a close before accept reaches the browser
    as 1006, which the htmx ws extension retries for ever. Browsers always send Origin on a
    WebSocket handshake and the CSRF middleware does not cover sockets, so a missing or foreign
    Origin is refused.
    """
    await socket.accept()
    origin = socket.headers.get("origin")
    if origin is None or not origin_allowed(origin, socket.headers.get("host"), settings.web.public_url):
        await socket.close(code=WS_FORBIDDEN_ORIGIN, reason="cross-site connection refused")
        return
    account = await session.session_account(socket, pool, settings)
    if account is None:
        await socket.close(code=WS_NOT_SIGNED_IN, reason="sign in first")
        return
    with socket_limits.hold(account.id) as admitted:
        if not admitted:
            await socket.close(code=CLOSE_TOO_MANY_SOCKETS, reason="too many live pages open for this account")
            return
        feed = CardFeed(socket, exports, account, fragments)
        try:
            async with account_events(  # before the snapshot
                channels,
                settings.redis.queue_name,
                account.id,
                socket,
                recheck_seconds=settings.web.access_recheck_seconds,
            ) as events:
                await socket.send_text(await feed.snapshot())
                async for received in events:
                    if received.type == ACCESS_CHECK:  # signed out, expired, key revoked, account disabled
                        if await session.session_account(socket, pool, settings) is None:
                            await socket.close(code=WS_NOT_SIGNED_IN, reason="the session has ended; sign in again")
                            return
                    elif received.type == "resync":  # Redis was away: events may be lost
                        await socket.send_text(await feed.snapshot())
                    elif received.type != "client.ping":  # the console sends nothing it expects read
                        update = await feed.on_event(received)
                        if update:
                            await socket.send_text(update)
        except SocketCut as cut:  # 1013 is retried by the htmx extension, and its snapshot catches up
            await close_cut(socket, cut)
        except (WebSocketDisconnect, OSError):
            return
        except Exception:
            # 1011 is one of the codes the htmx extension retries; its snapshot then resynchronises the page.
            log.exception("console socket of account %s failed", account.slug)
            with contextlib.suppress(Exception):
                await socket.close(code=1011, reason="internal error")


def _progressed(job: ExportJob, event: Mapping[str, Any]) -> ExportJob:
    """`job` with the progress a progress event reports."""
    return dataclasses.replace(
        job,
        processed_rows=int(event.get("processedRows") or 0),
        total_rows=event.get("totalRows"),
        progress=int(event.get("progress") or 0),
    )


@dataclasses.dataclass
class CardFeed:
    """Turns one account's events into card fragments for one connection.

    `shown` is what this connection has sent (the snapshot, then every card since), so a known card
    is replaced by id and an unknown one goes to the list, where console.js replaces the card of that
    id (one the page loaded with an older page) or places it by its time, if the list's filters take it
    (a known card the page lacks, as filtered out, is placed the same way). Progress
    events are rendered from the event over the last job read (no query per event); any change of
    status re-reads the job, scoped to the account. The card of a running export's progress event
    is the same on every page that shows it, so it comes from `fragments`.
    """

    socket: WebSocket[Any, Any, Any]
    exports: Exports
    account: Account
    fragments: SharedFragments
    shown: dict[uuid.UUID, ExportJob] = dataclasses.field(default_factory=dict)

    async def snapshot(self) -> str:
        """The newest cards, each to replace its card on the page or to take its place in the list: the
        page may hold older pages and filters this socket does not know of, so nothing is cleared."""
        recent = await self.exports.recent(self.account, limit=RECENT_EXPORTS)
        now = dt.datetime.now(dt.UTC)
        self.shown = {j.id: j for j in recent}
        return "".join(
            render_card(self.socket, card, oob="prepend") for card in await cards_for(self.exports, recent, now)
        )

    async def on_event(self, received: Received) -> str:
        event = received.event
        try:
            export_id = uuid.UUID(str(event["exportId"]))
            status = ExportStatus(event["status"])
        except (KeyError, ValueError):
            log.warning("ignoring a malformed progress event: %r", event)
            return ""
        before = self.shown.get(export_id)
        if before is not None and before.status is status and received.type == "export.progress":
            if status is ExportStatus.PROCESSING:
                # No query behind this card and the same card on every page: rendered once for all.
                # `shown` keeps `before`, whose status and fixed fields are all that is read later.
                return self.fragments.get_or_render(
                    received.text,
                    lambda: render_card(
                        self.socket,
                        card_view(
                            _progressed(before, event),
                            self.exports.catalog.resource(before.resource),
                            now=dt.datetime.now(dt.UTC),
                        ),
                        oob="replace",
                    ),
                )
            job = _progressed(before, event)
        else:
            fresh = await self.exports.find(self.account, export_id)
            if fresh is None:  # not this account's, or gone
                return ""
            job = fresh
        out = [await self._card(job)]
        if before is None or before.status is not job.status:
            out.append(render_announcement(self.socket, announcement_for(job, self.exports.catalog)))
            out.extend(await self._queued_cards(except_id=job.id))  # places in the queue moved
        return "".join(out)

    async def _card(self, job: ExportJob) -> str:
        known = job.id in self.shown
        self.shown[job.id] = job
        card = await card_for(self.exports, job)
        return render_card(self.socket, card, oob="replace" if known else "prepend")

    async def _queued_cards(self, except_id: uuid.UUID) -> list[str]:
        queued = [j for j in self.shown.values() if j.status is ExportStatus.QUEUED and j.id != except_id]
        out = []
        for old in queued:
            job = await self.exports.find(self.account, old.id)
            if job is not None:
                out.append(await self._card(job))
        return out
