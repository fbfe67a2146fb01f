"""Live progress over WebSocket: refusals, the snapshot, events, account isolation, fan-out across
web processes, a Redis restart, and the `exporthub export` client that follows the socket."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import io
import json
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedError

from exporthub.accounts import hash_api_key
from exporthub.progress import channel_for
from exporthub.web.live import CLOSE_FORBIDDEN_ORIGIN, CLOSE_UNAUTHORIZED
from tests.conftest import Hub
from tests.harness import (
    Process,
    exporthub_command,
    extra_web,
    free_port,
    settings_env,
    start_process,
    wait_for,
    wait_http,
)
from tests.integration.helpers import new_key, submit, wait_status

WS_PATH = "/api/v1/exports/ws"
SMALL = {"format": "csv", "resource": "compliance", "columns": ["recordId"]}
RUNNING = {"format": "csv", "resource": "payroll"}  # 30,000 rows: several progress events


def ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://", 1) + WS_PATH


@contextlib.asynccontextmanager
async def live(base_url: str, key: str) -> AsyncIterator[tuple[ClientConnection, dict[str, Any]]]:
    """A socket of the key's account, and the snapshot it received first."""
    headers = {"Authorization": f"Bearer {key}"}
    async with connect(ws_url(base_url), additional_headers=headers, open_timeout=10) as ws:
        snapshot = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert snapshot["type"] == "snapshot", snapshot
        yield ws, snapshot


async def next_message(
    ws: ClientConnection, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no matching message within {timeout}s")
        message = json.loads(await asyncio.wait_for(ws.recv(), left))
        if predicate(message):
            return message


async def drain(ws: ClientConnection, seconds: float) -> list[dict[str, Any]]:
    """Whatever arrives within `seconds`."""
    out: list[dict[str, Any]] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while True:
                out.append(json.loads(await ws.recv()))
    return out


def about(export_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m.get("exportId") == export_id


async def close_code(url: str, **kwargs: Any) -> tuple[int, str]:
    async with connect(url, open_timeout=10, **kwargs) as ws:
        with pytest.raises(ConnectionClosedError) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def account_id(pool: asyncpg.Pool, slug: str) -> uuid.UUID:
    return await pool.fetchval("SELECT id FROM accounts WHERE slug = $1", slug)


# --- refusals --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "query", "origin", "code"),
    [
        ({}, "", None, CLOSE_UNAUTHORIZED),
        ({"Authorization": "Bearer ehk_not_a_key"}, "", None, CLOSE_UNAUTHORIZED),
        ({"Authorization": "Basic abc"}, "", None, CLOSE_UNAUTHORIZED),
        ({}, "?apiKey=ehk_not_a_key", None, CLOSE_UNAUTHORIZED),
        ({"Authorization": "Bearer ACME_KEY"}, "", "https://evil.example", CLOSE_FORBIDDEN_ORIGIN),
        ({"Authorization": "Bearer ACME_KEY"}, "", "null", CLOSE_FORBIDDEN_ORIGIN),
    ],
)
async def test_sockets_without_a_valid_key_or_from_other_sites_are_closed_with_4xxx(
    hub: Hub, headers: dict[str, str], query: str, origin: str | None, code: int
) -> None:
    headers = {name: value.replace("ACME_KEY", hub.keys["acme"]) for name, value in headers.items()}
    got, reason = await close_code(ws_url(hub.base_url) + query, additional_headers=headers, origin=origin)
    assert got == code, reason
    assert reason


async def test_query_key_and_same_site_origin_are_accepted(hub: Hub, clean_jobs: None) -> None:
    url = f"{ws_url(hub.base_url)}?apiKey={hub.keys['acme']}"
    async with connect(url, origin=hub.base_url) as ws:  # type: ignore[arg-type]
        assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "snapshot", "exports": []}
        await ws.send("ping")
        assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "pong"}


# --- snapshot, events, isolation -----------------------------------------------------------------


async def test_snapshot_lists_the_accounts_exports_only(hub: Hub, api: httpx.AsyncClient) -> None:
    mine = [(await submit(api, SMALL))["exportId"] for _ in range(2)]
    async with hub.client("globex") as globex:
        theirs = (await submit(globex, SMALL))["exportId"]
        await wait_status(globex, theirs)
    finals = {i: await wait_status(api, i) for i in mine}

    async with live(hub.base_url, hub.keys["acme"]) as (_, snapshot):
        exports = snapshot["exports"]
        assert [e["exportId"] for e in exports] == mine[::-1]  # newest first
        for event in exports:
            final = finals[event["exportId"]]
            assert event["type"] == "export.completed" and event["status"] == "completed"
            assert event["progress"] == 100
            assert event["processedRows"] == event["totalRows"] == final["totalRows"] > 0
            assert event["downloadUrl"] == final["downloadUrl"]
            assert event["fileSize"] == final["fileSize"] and event["expiresAt"]
            assert event["sha256"] == final["sha256"] and len(final["sha256"]) == 64
    async with live(hub.base_url, hub.keys["globex"]) as (_, snapshot):
        assert [e["exportId"] for e in snapshot["exports"]] == [theirs]


async def test_a_running_exports_events_arrive_and_only_for_its_account(hub: Hub, api: httpx.AsyncClient) -> None:
    async with live(hub.base_url, hub.keys["acme"]) as (acme, _), live(hub.base_url, hub.keys["globex"]) as (globex, _):
        export_id = (await submit(api, RUNNING))["exportId"]
        events: list[dict[str, Any]] = []
        while not events or events[-1]["type"] == "export.progress":
            events.append(await next_message(acme, about(export_id)))
        done = events[-1]
        assert done["type"] == "export.completed", done
        progress = [e["progress"] for e in events]
        assert progress == sorted(progress) and progress[-1] == 100
        assert any(0 < p < 100 for p in progress), progress  # seen while running, not just at the end
        assert done["processedRows"] == done["totalRows"] > 0

        response = await api.get(done["downloadUrl"])
        assert response.status_code == 200
        assert done["sha256"] == hashlib.sha256(response.content).hexdigest()  # the WebSocket's completion event
        rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
        assert len(rows) == done["totalRows"] + 1  # the header, then every row

        # Redis pub/sub is shared by every database on the server, so other runs may publish for
        # globex too: what matters is that nothing about acme's export reaches globex.
        leaked = [m for m in await drain(globex, 0.5) if m.get("exportId") == export_id]
        assert leaked == []


# --- access that ends ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def socket_of(base_url: str, key: str) -> AsyncIterator[ClientConnection]:
    """An open socket of `key`, past its snapshot."""
    async with connect(ws_url(base_url), additional_headers={"Authorization": f"Bearer {key}"}, open_timeout=10) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "snapshot"
        yield ws


async def closed_with(ws: ClientConnection, timeout: float) -> int:
    async def read_until_closed() -> None:
        while True:  # events of the account may still arrive before the close
            await ws.recv()

    with pytest.raises(ConnectionClosedError) as closed:
        await asyncio.wait_for(read_until_closed(), timeout)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


async def test_a_revoked_keys_socket_is_closed_at_once(hub: Hub, pool: asyncpg.Pool) -> None:
    revoked, other = await new_key(pool, "acme"), await new_key(pool, "acme")
    async with socket_of(hub.base_url, revoked) as ws, socket_of(hub.base_url, other) as kept:
        started = time.monotonic()
        result = exporthub_command(hub.settings, "apikey", "revoke", revoked[:12])
        assert result.returncode == 0, result.stderr
        # Well before the 60 s re-check: the announcement on Redis did it.
        assert await closed_with(ws, 10) == CLOSE_UNAUTHORIZED
        assert time.monotonic() - started < 10
        # The account's other key heard the same announcement, checked itself, and stays open.
        await kept.send("ping")
        assert await next_message(kept, lambda m: m["type"] == "pong", timeout=10) == {"type": "pong"}


@pytest.fixture(scope="module")
def rechecking_web(hub: Hub) -> Iterator[str]:
    """A web server whose sockets re-check their key every 0.5 s."""
    with extra_web(hub.settings, "web-live-recheck", hub.log_dir, EXPORTHUB_ACCESS_RECHECK_SECONDS="0.5") as base:
        yield base


async def test_a_lost_announcement_is_made_up_for_by_the_periodic_recheck(
    rechecking_web: str, pool: asyncpg.Pool
) -> None:
    key = await new_key(pool, "acme")
    async with socket_of(rechecking_web, key) as ws:
        await pool.execute("UPDATE api_keys SET revoked_at = now() WHERE key_hash = $1", hash_api_key(key))  # silent
        assert await closed_with(ws, 5) == CLOSE_UNAUTHORIZED


# --- fan-out across web processes ----------------------------------------------------------------


@pytest.fixture(scope="module")
def second_web(hub: Hub) -> Iterator[str]:
    """Another `exporthub serve` on the same database and Redis: the base URL it answers on."""
    with extra_web(hub.settings, "web-live-2", hub.log_dir) as base:
        yield base


async def test_events_reach_sockets_of_every_web_process(hub: Hub, second_web: str, api: httpx.AsyncClient) -> None:
    async with live(hub.base_url, hub.keys["acme"]) as (first, _), live(second_web, hub.keys["acme"]) as (second, _):
        export_id = (await submit(api, SMALL))["exportId"]
        done = await asyncio.gather(
            next_message(first, lambda m: about(export_id)(m) and m["type"] == "export.completed"),
            next_message(second, lambda m: about(export_id)(m) and m["type"] == "export.completed"),
        )
        assert done[0]["downloadUrl"] == done[1]["downloadUrl"]


# --- a Redis restart -----------------------------------------------------------------------------


@contextlib.contextmanager
def redis_server(port: int) -> Iterator[tuple[Callable[[], None], Callable[[], None]]]:
    """A throwaway redis-server: yields functions that start and stop it."""
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        procs.append(
            subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdout=subprocess.DEVNULL,
            )
        )
        wait_for(lambda: _answers(port), 10, f"redis-server on port {port}")

    def stop() -> None:
        procs[-1].terminate()
        procs[-1].wait(10)

    try:
        yield start, stop
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
        s.sendall(b"PING\r\n")
        return s.recv(7) == b"+PONG\r\n"
    return False


async def test_sockets_keep_receiving_after_redis_restarts(hub: Hub, pool: asyncpg.Pool, clean_jobs: None) -> None:
    """Down longer than the client's own retries last (~9 s): the stock listener would be dead."""
    redis_port, web_port = free_port(), free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    channel = channel_for(hub.settings.redis.queue_name, await account_id(pool, "acme"))
    with redis_server(redis_port) as (start_redis, stop_redis):
        start_redis()
        env = settings_env(hub.settings, REDIS_URL=redis_url, EXPORTHUB_PORT=str(web_port))
        web: Process = start_process("web-live-redis", ["serve"], env, hub.log_dir)
        try:
            base = f"http://127.0.0.1:{web_port}"
            wait_http(f"{base}/healthz", 30, web)
            async with live(base, hub.keys["acme"]) as (ws, _):
                await _publish_until_received(redis_url, channel, ws, "before", timeout=5)
                stop_redis()
                await asyncio.sleep(11)  # the scenario: down longer than the client's own retries last
                start_redis()
                # Events published during the outage are lost: the server sends a new snapshot.
                await next_message(ws, lambda m: m["type"] == "snapshot", timeout=20)
                await _publish_until_received(redis_url, channel, ws, "after", timeout=10)
        finally:
            web.stop()
        assert "Redis pub/sub listener back" in web.log()


async def _publish_until_received(redis_url: str, channel: str, ws: ClientConnection, tag: str, timeout: float) -> None:
    export_id = f"probe-{tag}-{uuid.uuid4()}"
    event = {"type": "export.progress", "exportId": export_id, "status": "processing", "progress": 1}
    redis = Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + timeout
        while True:
            await redis.publish(channel, json.dumps(event))
            with contextlib.suppress(TimeoutError, AssertionError):
                await next_message(ws, about(export_id), timeout=0.5)
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"no event through the socket {timeout}s after Redis came back ({tag})")
    finally:
        await redis.aclose()


# --- the `exporthub export` client -----------------------------------------------------------------


def run_cli(hub: Hub, out_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "exporthub",
            "export",
            "--resource",
            "compliance",
            "--format",
            "csv",
            "--api-url",
            hub.base_url,
            "--api-key",
            hub.keys["acme"],
            "-o",
            str(out_dir),
            *extra,
        ],
        env=settings_env(hub.settings),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


async def check_cli_download(api: httpx.AsyncClient, result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr
    match = re.search(r"export ([0-9a-f-]{36}) queued", result.stderr)
    assert match, result.stderr
    status = (await api.get(f"/api/v1/exports/{match.group(1)}")).json()
    path = Path(result.stdout.strip())
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    assert len(rows) - 1 == status["totalRows"] > 0
    assert "exporting: 100%" in result.stderr


async def test_cli_follows_the_socket_and_downloads(hub: Hub, api: httpx.AsyncClient, tmp_path: Path) -> None:
    result = await asyncio.to_thread(run_cli, hub, tmp_path)
    await check_cli_download(api, result)
    assert "polling" not in result.stderr


async def test_cli_falls_back_to_polling_when_the_socket_is_unreachable(
    hub: Hub, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    nowhere = f"ws://127.0.0.1:{free_port()}{WS_PATH}"
    result = await asyncio.to_thread(run_cli, hub, tmp_path, "--ws-url", nowhere)
    await check_cli_download(api, result)
    assert "live progress unavailable" in result.stderr
