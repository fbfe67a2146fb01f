"""Live sockets against hostile or careless clients: frame size, pings, sockets per account, slow readers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Iterator

import asyncpg
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from exporthub.progress import channel_for
from exporthub.web.live import CLOSE_POLICY, CLOSE_TOO_MANY_SOCKETS, CLOSE_TRY_AGAIN, PINGS_PER_SECOND
from tests.conftest import Hub
from tests.harness import extra_web, wait_for_async
from tests.integration.test_live import account_id, drain, ws_url


def headers(hub: Hub, account: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {hub.keys[account]}"}


async def closed_with(ws: ClientConnection, timeout: float = 10) -> int | None:
    """The close code the server sent, reading (and dropping) whatever comes before it."""
    with contextlib.suppress(ConnectionClosed):
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    return ws.close_code


async def test_a_frame_over_4_kib_closes_the_socket(hub: Hub) -> None:
    async with connect(ws_url(hub.base_url), additional_headers=headers(hub, "initech")) as ws:
        await asyncio.wait_for(ws.recv(), 10)  # the snapshot
        await ws.send("x" * 4096)  # at the limit: ignored, the socket stays
        await ws.send("ping")
        assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "pong"}
        await ws.send("x" * 4097)
        assert await closed_with(ws) == 1009  # message too big


async def test_text_other_than_ping_is_ignored(hub: Hub) -> None:
    async with connect(ws_url(hub.base_url), additional_headers=headers(hub, "initech")) as ws:
        await asyncio.wait_for(ws.recv(), 10)
        for text in ("hello", '{"type": "ping"}', "PONG"):
            await ws.send(text)
        await ws.send(b"ping")  # binary: ignored too
        assert await drain(ws, 0.5) == []
        await ws.send(" Ping ")
        assert await drain(ws, 0.5) == [{"type": "pong"}]


async def test_more_than_10_pings_a_second_close_the_socket_with_1008(hub: Hub) -> None:
    async with connect(ws_url(hub.base_url), additional_headers=headers(hub, "initech")) as ws:
        await asyncio.wait_for(ws.recv(), 10)
        for _ in range(PINGS_PER_SECOND):  # at the limit: all answered
            await ws.send("ping")
        assert await drain(ws, 0.5) == [{"type": "pong"}] * PINGS_PER_SECOND
        await asyncio.sleep(1)  # the scenario: the next second of the rate limit
        for _ in range(150):
            await ws.send("ping")
        pongs = 0
        with contextlib.suppress(ConnectionClosed):
            async with asyncio.timeout(10):
                while True:
                    pongs += json.loads(await ws.recv()) == {"type": "pong"}
        assert ws.close_code == CLOSE_POLICY
        assert pongs <= PINGS_PER_SECOND


async def test_sockets_per_account_are_capped(hub: Hub) -> None:
    limit = hub.settings.web.ws_max_sockets_per_account
    assert limit == 50  # the default
    async with contextlib.AsyncExitStack() as stack:
        sockets = []
        for _ in range(limit):
            ws = await stack.enter_async_context(
                connect(ws_url(hub.base_url), additional_headers=headers(hub, "globex"))
            )
            await asyncio.wait_for(ws.recv(), 10)
            sockets.append(ws)
        async with connect(ws_url(hub.base_url), additional_headers=headers(hub, "globex")) as refused:
            assert await closed_with(refused) == CLOSE_TOO_MANY_SOCKETS
            assert refused.close_reason and "too many" in refused.close_reason
        # Other accounts are not affected, and a freed place can be taken again.
        async with connect(ws_url(hub.base_url), additional_headers=headers(hub, "initech")) as other:
            assert json.loads(await asyncio.wait_for(other.recv(), 10))["type"] == "snapshot"
        await sockets.pop().close()

        async def let_in() -> bool:  # once the server has seen the close, the place is free again
            with contextlib.suppress(ConnectionClosed):
                async with connect(ws_url(hub.base_url), additional_headers=headers(hub, "globex")) as again:
                    return json.loads(await asyncio.wait_for(again.recv(), 10))["type"] == "snapshot"
            return False

        await wait_for_async(let_in, 10, "the freed place to be taken again", interval=0.1)


@pytest.fixture(scope="module")
def small_budget_web(hub: Hub) -> Iterator[str]:
    """A web process whose sockets may have at most 64 KiB of events waiting for them."""
    with extra_web(hub.settings, "web-live-budget", hub.log_dir, EXPORTHUB_WS_SEND_QUEUE_BYTES=str(64 * 1024)) as base:
        yield base


async def test_a_client_that_stops_reading_is_closed_then_resyncs(
    hub: Hub, small_budget_web: str, pool: asyncpg.Pool
) -> None:
    channel = channel_for(hub.settings.redis.queue_name, await account_id(pool, "initech"))
    padding = "p" * 8000
    redis = Redis.from_url(hub.settings.redis.url)
    server_log = hub.log_dir / "web-live-budget.log"
    logged_before = server_log.stat().st_size

    def cut_logged() -> bool:
        return "account initech closed: too far behind" in server_log.read_bytes()[logged_before:].decode(
            errors="replace"
        )

    # max_queue=1: the client library stops reading the TCP socket as soon as one frame waits.
    async with connect(ws_url(small_budget_web), additional_headers=headers(hub, "initech"), max_queue=1) as ws:
        await asyncio.wait_for(ws.recv(), 10)
        # Far more than the kernel's socket buffers, uvicorn's write buffer and the 64 KiB budget hold.
        deadline = time.monotonic() + 30
        sent = 0
        while sent < 2500 and time.monotonic() < deadline:
            event = {"type": "export.progress", "exportId": f"flood-{sent}", "status": "processing", "pad": padding}
            await redis.publish(channel, json.dumps(event))
            sent += 1
        # Not a byte read until the server has cut the socket (reading would relieve it).
        await wait_for_async(cut_logged, 60, "the server to cut the socket that stopped reading")
        code = await closed_with(ws, timeout=90)
    await redis.aclose()
    assert code in (CLOSE_TRY_AGAIN, 1006), code  # 1006: the close frame stuck behind the unread bytes

    # Reconnecting brings a snapshot: whatever was dropped, the client is up to date again. (While the
    # rest of the flood still streams in from Redis, a new socket may be cut again: retry, as clients do.)
    async def resynced() -> dict | None:
        with contextlib.suppress(ConnectionClosed):
            async with connect(ws_url(small_budget_web), additional_headers=headers(hub, "initech")) as ws:
                return json.loads(await asyncio.wait_for(ws.recv(), 10))
        return None

    snapshot = await wait_for_async(resynced, 30, "a new socket's first message", interval=0.5)
    assert snapshot["type"] == "snapshot"


async def test_a_slow_reader_does_not_hold_back_others(hub: Hub, small_budget_web: str, pool: asyncpg.Pool) -> None:
    """While one socket of the account is stuck, another of the same account receives every event."""
    channel = channel_for(hub.settings.redis.queue_name, await account_id(pool, "initech"))
    redis = Redis.from_url(hub.settings.redis.url)
    url = ws_url(small_budget_web)
    async with (
        connect(url, additional_headers=headers(hub, "initech"), max_queue=1) as stuck,
        connect(url, additional_headers=headers(hub, "initech")) as reader,
    ):
        await asyncio.wait_for(stuck.recv(), 10)
        await asyncio.wait_for(reader.recv(), 10)
        tag = uuid.uuid4().hex
        received = 0
        for i in range(300):
            # 300 small events: a burst well inside the 64 KiB budget, so only the stuck socket is cut.
            event = {"type": "export.progress", "exportId": f"{tag}-{i}", "status": "processing", "pad": "p" * 50}
            await redis.publish(channel, json.dumps(event))
        async with asyncio.timeout(20):
            while received < 300:
                message = json.loads(await reader.recv())
                received += str(message.get("exportId", "")).startswith(tag)
    await redis.aclose()
    assert received == 300
