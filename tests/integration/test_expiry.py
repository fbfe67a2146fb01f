"""The expiry sweep on local storage: expired files are deleted once, their exports marked `expired`,
their links answer 410; several sweeps at once are safe; `exporthub scheduler` drives it in a worker."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

from exporthub.exports.expiry import sweep_expired
from exporthub.storage import LocalStorage
from tests.conftest import Hub
from tests.harness import ROOT, running, settings_env, start_process
from tests.integration.helpers import export_and_download, wait_status

BODY = {"format": "csv", "resource": "compliance", "columns": ["recordId", "title"]}


async def expire_now(pool: asyncpg.Pool, export_id: str) -> Path:
    """Move the export's expiry into the past (as 24 h passing would); return its file's path."""
    key = await pool.fetchval(
        "UPDATE export_jobs SET expires_at = now() - interval '1 second' WHERE id = $1 RETURNING file_key",
        uuid.UUID(export_id),
    )
    return Path(key)


async def test_sweep_deletes_expired_files_once_and_links_answer_410(
    api: httpx.AsyncClient, pool: asyncpg.Pool, hub: Hub
) -> None:
    storage = LocalStorage(hub.settings.storage.directory)
    old, _ = await export_and_download(api, BODY)
    fresh, _ = await export_and_download(api, BODY)
    old_path = storage.root / await expire_now(pool, old["id"])
    fresh_key = await pool.fetchval("SELECT file_key FROM export_jobs WHERE id = $1", uuid.UUID(fresh["id"]))
    assert old_path.is_file()

    # three sweeps at once (as several workers would run them): the export is expired exactly once
    results = await asyncio.gather(*(sweep_expired(pool, storage) for _ in range(3)))
    assert sorted(str(j.id) for r in results for j in r.expired) == [old["id"]]
    assert sum(r.files_deleted for r in results) == 1
    assert not old_path.exists()
    assert await storage.exists(fresh_key)

    status = (await api.get(f"/api/v1/exports/{old['id']}")).json()
    assert status["status"] == "expired"
    assert status["downloadUrl"] is None
    gone = await api.get(old["downloadUrl"])  # the link handed out before, its own time not yet past
    assert gone.status_code == 410
    assert gone.json()["detail"] == "this download link has expired; run the export again to get a fresh file"
    assert (await api.get(fresh["downloadUrl"])).status_code == 200

    again = await sweep_expired(pool, storage)  # idempotent: nothing left to do
    assert again.expired == [] and again.files_deleted == 0


class UndeletableStorage(LocalStorage):
    async def delete(self, key: str) -> None:
        raise OSError("disk went read-only")


async def test_a_file_that_cannot_be_deleted_is_retried_by_the_next_sweep(
    api: httpx.AsyncClient, pool: asyncpg.Pool, hub: Hub
) -> None:
    status, _ = await export_and_download(api, BODY)
    path = hub.settings.storage.directory / await expire_now(pool, status["id"])
    first = await sweep_expired(pool, UndeletableStorage(hub.settings.storage.directory))
    assert [str(j.id) for j in first.expired] == [status["id"]] and first.files_kept == 1
    assert path.is_file()
    assert (await api.get(status["downloadUrl"])).status_code == 410  # expired all the same
    second = await sweep_expired(pool, LocalStorage(hub.settings.storage.directory))
    assert second.expired == []  # announced once, by the first sweep
    assert second.files_deleted == 1
    assert not path.exists()
    assert await pool.fetchval("SELECT file_key FROM export_jobs WHERE id = $1", uuid.UUID(status["id"])) is None


async def test_stale_temporary_files_are_removed(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    stale, live = storage.temp_dir / "a-1.csv.part", storage.temp_dir / "b-1.csv.part"
    stale.write_bytes(b"x")
    live.write_bytes(b"y")
    two_days_ago = time.time() - 2 * 86400
    os.utime(stale, (two_days_ago, two_days_ago))
    assert await storage.remove_stale_uploads(dt.timedelta(days=1)) == 1
    assert not stale.exists() and live.exists()


async def test_the_scheduler_sends_the_sweep_to_a_worker(api: httpx.AsyncClient, pool: asyncpg.Pool, hub: Hub) -> None:
    """`exporthub scheduler` + `exporthub worker` on their own queue, sweeping every second."""
    status, _ = await export_and_download(api, BODY)
    path = hub.settings.storage.directory / await expire_now(pool, status["id"])
    settings = hub.settings.replace(
        redis={"queue_name": f"{hub.settings.redis.queue_name}-scheduler"}, recovery={"expiry_sweep_seconds": 1}
    )
    env = settings_env(settings)
    log_dir = ROOT / "test-artifacts" / "logs"
    worker = start_process("expiry-worker", ["worker"], env, log_dir)
    scheduler = start_process("scheduler", ["scheduler"], env, log_dir)
    with running(scheduler, worker):
        try:
            expired = await wait_status(api, status["id"], {"expired"}, timeout=30)
        except AssertionError:
            raise AssertionError(f"scheduler:\n{scheduler.log()}\nworker:\n{worker.log()}") from None
    assert expired["downloadUrl"] is None
    assert not path.exists()
    assert (await api.get(status["downloadUrl"])).status_code == 410
