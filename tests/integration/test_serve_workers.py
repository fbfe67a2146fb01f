"""`exporthub serve --workers N`: N web processes on one port, each with its own lifespan, Redis
subscription and socket counts; the active-export cap and the start rate hold across them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import connect

from exporthub.progress import channel_for
from exporthub.settings import Settings
from tests.harness import LOG_DIR, Process, web_server, with_new_port
from tests.integration.test_live import account_id, ws_url

WORKERS = 2


def web_processes(parent: int) -> list[int]:
    """The processes serving requests under uvicorn's supervisor (not multiprocessing's helpers)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]


@pytest.fixture(scope="module")
def workers_web(settings: Settings) -> Iterator[tuple[Settings, Process]]:
    # A queue of its own, which no worker reads: the submits stay queued, so the cap is reached.
    served = with_new_port(settings).replace(redis={"queue_name": f"{settings.redis.queue_name}-workers"})
    with web_server(served, LOG_DIR, "web-workers", EXPORTHUB_WEB_WORKERS=str(WORKERS)) as web:
        yield served, web


def test_the_port_is_served_by_n_processes(workers_web: tuple[Settings, Process]) -> None:
    _, web = workers_web
    assert len(web_processes(web.popen.pid)) == WORKERS


async def test_fifty_simultaneous_submits_across_processes_respect_the_cap(
    workers_web: tuple[Settings, Process], demo_keys: dict[str, str], pool: asyncpg.Pool, clean_jobs: None
) -> None:
    served, _ = workers_web
    body = {"format": "csv", "resource": "compliance", "columns": ["recordId"]}
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=0)  # a connection each: both processes
    async with httpx.AsyncClient(
        base_url=served.web.public_url, headers={"Authorization": f"Bearer {demo_keys['acme']}"}, limits=limits
    ) as client:
        responses = await asyncio.gather(*(client.post("/api/v1/exports", json=body) for _ in range(50)))
    codes = sorted(r.status_code for r in responses)
    assert codes.count(202) == 5 and codes.count(429) == 45, codes
    assert await pool.fetchval("SELECT count(*) FROM export_jobs") == 5
    assert (
        await pool.fetchval(
            "SELECT active FROM account_active_exports WHERE account_id = (SELECT id FROM accounts WHERE slug = 'acme')"
        )
        == 5
    )


async def test_every_socket_gets_the_events_whichever_process_holds_it(
    workers_web: tuple[Settings, Process], demo_keys: dict[str, str], pool: asyncpg.Pool
) -> None:
    served, _ = workers_web
    headers = {"Authorization": f"Bearer {demo_keys['initech']}"}
    sockets = []
    try:
        for _ in range(8):  # a new connection each: the kernel hands them to either process
            ws = await connect(ws_url(served.web.public_url), additional_headers=headers, open_timeout=10)
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "snapshot"
            sockets.append(ws)
        event = {"type": "export.progress", "exportId": str(uuid.uuid4()), "status": "processing", "progress": 7}
        redis = Redis.from_url(served.redis.url)
        try:
            channel = channel_for(served.redis.queue_name, await account_id(pool, "initech"))
            assert await redis.publish(channel, json.dumps(event)) >= 1  # one subscription per process
        finally:
            await redis.aclose()
        received = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for ws in sockets]
        assert received == [event] * len(sockets)
    finally:
        for ws in sockets:
            await ws.close()


def test_sigterm_stops_every_process(settings: Settings) -> None:
    served = with_new_port(settings)
    with web_server(served, LOG_DIR, "web-workers-stop", EXPORTHUB_WEB_WORKERS=str(WORKERS)) as web:
        children = web_processes(web.popen.pid)
        assert len(children) == WORKERS
        web.popen.send_signal(signal.SIGTERM)
        assert web.popen.wait(timeout=30) == 0
    for pid in children:
        assert not os.path.exists(f"/proc/{pid}") or "zombie" in Path(f"/proc/{pid}/status").read_text()
