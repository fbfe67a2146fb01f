"""Cancel, a worker killed mid-export, transient and permanent failures: nothing lost, nothing doubled."""

from __future__ import annotations

import time
from pathlib import Path

import asyncpg
import httpx
from pypdf import PdfReader

from exporthub.accounts import account_by_slug
from exporthub.catalog import load_catalog
from exporthub.exports import service
from exporthub.exports.models import ExportJob, ExportStatus
from exporthub.exports.pipeline import PipelineConfig, run_export
from exporthub.exports.validation import parse_export_request
from exporthub.queue import create_queue
from exporthub.storage import LocalStorage
from tests.harness import LOG_DIR, Pauses, start_scheduler, start_worker, wait_for_async
from tests.integration.helpers import submit, wait_status

HR = load_catalog()  # the HR catalog shipped in the package

# 3,000 rows as a PDF report, in batches of 200. A worker with a pause dir (the paused hub's, or the
# ones started here) holds it after its first batch: a running export at a known point, however fast
# the machine, for a cancel or a kill.
HELD = {"format": "pdf", "resource": "employees"}


def files_for(storage_root: Path, export_id: str) -> list[Path]:
    return [p for p in storage_root.rglob(f"*{export_id}*") if ".tmp" not in p.parts]


def temp_files_for(storage_root: Path, export_id: str) -> list[Path]:
    return list((storage_root / ".tmp").glob(f"{export_id}*"))


async def test_a_queued_export_cancelled_never_starts(paused_api: httpx.AsyncClient, paused_hub) -> None:
    running = [(await submit(paused_api, HELD))["exportId"] for _ in range(3)]  # the worker runs 3 at a time
    for export_id in running:
        await paused_hub.pauses.wait_paused(export_id)  # every slot of the worker is taken
    queued = (await submit(paused_api, {"format": "csv", "resource": "employees"}))["exportId"]
    response = await paused_api.post(f"/api/v1/exports/{queued}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    for export_id in running:  # free the worker's slots: a stray message for the cancelled one would now run
        await paused_api.post(f"/api/v1/exports/{export_id}/cancel")
    for export_id in running:
        assert (await wait_status(paused_api, export_id, timeout=15))["status"] == "cancelled"
    # The worker takes the cancelled export's message, and declines it.
    await wait_for_async(
        lambda: f"export {queued} is not claimable" in paused_hub.worker.log(tail=None),
        15,
        "the worker to decline the cancelled export's message",
    )
    final = (await paused_api.get(f"/api/v1/exports/{queued}")).json()
    assert final["status"] == "cancelled"
    assert final["startedAt"] is None and final["downloadUrl"] is None
    assert files_for(paused_hub.settings.storage.directory, queued) == []
    again = await paused_api.post(f"/api/v1/exports/{queued}/cancel")
    assert again.status_code == 409
    assert "already cancelled" in again.json()["detail"]


async def test_a_running_export_cancelled_stops_and_leaves_no_file(paused_api: httpx.AsyncClient, paused_hub) -> None:
    export_id = (await submit(paused_api, HELD))["exportId"]
    await paused_hub.pauses.wait_paused(export_id)  # running: claimed, first rows written, lease kept
    asked = time.monotonic()
    response = await paused_api.post(f"/api/v1/exports/{export_id}/cancel")
    assert response.status_code == 200
    # Never released: the cancel alone ends it, noticed by the lease keeper while the export is held.
    final = await wait_status(paused_api, export_id, timeout=10)
    assert final["status"] == "cancelled", final
    assert time.monotonic() - asked < 5
    assert final["processedRows"] < final["totalRows"]
    assert final["downloadUrl"] is None
    assert files_for(paused_hub.settings.storage.directory, export_id) == []
    assert temp_files_for(paused_hub.settings.storage.directory, export_id) == []


async def test_a_worker_killed_mid_export_is_replaced_with_exactly_one_file(
    settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    pauses = Pauses(tmp_path / "pauses")
    # A queue of its own, so that only the workers started here take the job; they hold it after its first batch.
    isolated = settings.replace(
        redis={"queue_name": f"{settings.redis.queue_name}-kill"},
        exports={"batch_size": 200, "test_pause_dir": pauses.path},
    )
    one_at_a_time = {"EXPORTHUB_WORKER_CONCURRENCY": "1"}
    acme = await account_by_slug(pool, "acme")
    submitted = await service.submit_export(
        pool,
        pool,
        HR,
        acme,
        parse_export_request(HELD, HR),
        idempotency_key=None,
        max_active=100,
        idempotency_ttl_seconds=60,
    )
    job = submitted.job
    first = start_worker(isolated, LOG_DIR, "worker-killed", **one_at_a_time)
    scheduler = start_scheduler(isolated, LOG_DIR, "scheduler-kill")  # sends the recovery sweep
    second = None
    queue = create_queue(isolated)
    await queue.broker.startup()
    try:
        await queue.enqueue(job.id)

        async def progressed() -> asyncpg.Record:
            return await pool.fetchrow("SELECT status, processed_rows, attempts FROM export_jobs WHERE id = $1", job.id)

        await wait_for_async(lambda: pauses.paused(job.id), 30, lambda: f"the export to start:\n{first.log()}")
        first.kill()  # SIGKILL mid-export: no cleanup, lease left behind, message unacknowledged
        row = await progressed()
        assert (row["status"], row["attempts"]) == ("processing", 1), row
        pauses.release(job.id)  # the next run goes through
        second = start_worker(isolated, LOG_DIR, "worker-replacement", **one_at_a_time)

        async def completed() -> bool:
            row = await progressed()
            assert row["status"] in ("queued", "processing", "completed"), f"{row}\n{second.log()}"
            return row["status"] == "completed"

        await wait_for_async(completed, 60, lambda: f"the export to be run again:\n{second.log()}", interval=0.2)
    finally:
        first.kill() if first.popen.poll() is None else None
        if second is not None:
            second.stop()
        scheduler.stop()
        await queue.broker.shutdown()
    done = await pool.fetchrow("SELECT * FROM export_jobs WHERE id = $1", job.id)
    assert done["attempts"] == 2
    files = files_for(settings.storage.directory, str(job.id))
    assert len(files) == 1, files
    assert temp_files_for(settings.storage.directory, str(job.id)) == []
    text = " ".join(PdfReader(files[0]).pages[0].extract_text().split())
    assert f"Rows {done['total_rows']:,}" in text


async def _pipeline_job(pool: asyncpg.Pool, body: dict) -> ExportJob:
    acme = await account_by_slug(pool, "acme")
    submitted = await service.submit_export(
        pool,
        pool,
        HR,
        acme,
        parse_export_request(body, HR),
        idempotency_key=None,
        max_active=100,
        idempotency_ttl_seconds=60,
    )
    return submitted.job


CONFIG = PipelineConfig(
    batch_size=500,
    lease_seconds=10,
    link_ttl_seconds=3600,
    max_rows_per_sheet=1_048_575,
    max_attempts=3,
    retry_backoff_seconds=(0.2, 0.4),
)


async def test_a_dropped_database_connection_is_retried(settings, clean_jobs, tmp_path: Path) -> None:
    victim = await asyncpg.create_pool(
        settings.db.url, min_size=1, max_size=4, server_settings={"application_name": "victim"}
    )
    job = await _pipeline_job(victim, {"format": "csv", "resource": "payroll"})
    events: list[ExportJob] = []
    killed = False

    async def publish(event: ExportJob) -> None:
        nonlocal killed
        events.append(event)
        if not killed and event.processed_rows > 0:
            killed = True
            async with victim.acquire() as conn:  # drop the connection streaming the rows
                await conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'victim' AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
                )

    try:
        status = await run_export(
            job.id,
            pool=victim,
            source=victim,
            catalog=HR,
            storage=LocalStorage(tmp_path),
            publish=publish,
            config=CONFIG,
        )
        row = await victim.fetchrow("SELECT * FROM export_jobs WHERE id = $1", job.id)
    finally:
        await victim.close()
    assert killed
    assert status is ExportStatus.COMPLETED, row["error_message"]
    files = [p for p in tmp_path.rglob("*.csv")]
    assert len(files) == 1
    lines = files[0].read_text(encoding="utf-8-sig").splitlines()
    assert len(lines) == row["total_rows"] + 1
    assert events[-1].status is ExportStatus.COMPLETED


async def test_a_permanent_failure_ends_failed_with_an_actionable_message(pool, clean_jobs, tmp_path: Path) -> None:
    job = await _pipeline_job(pool, {"format": "csv", "resource": "payroll"})
    await pool.execute("UPDATE export_jobs SET columns = ARRAY['grossPay', 'bonus'] WHERE id = $1", job.id)
    published: list[ExportJob] = []

    async def publish(event: ExportJob) -> None:
        published.append(event)

    status = await run_export(
        job.id, pool=pool, source=pool, catalog=HR, storage=LocalStorage(tmp_path), publish=publish, config=CONFIG
    )
    assert status is ExportStatus.FAILED
    row = await pool.fetchrow("SELECT status, error_message, attempts FROM export_jobs WHERE id = $1", job.id)
    assert row["status"] == "failed" and row["attempts"] == 1
    assert "bonus" in row["error_message"] and "submit the export again" in row["error_message"]
    assert published[-1].status is ExportStatus.FAILED
    assert list(tmp_path.rglob("*.csv")) == [] and list(tmp_path.rglob("*.part")) == []
    # a second delivery of the same message does nothing
    assert (
        await run_export(
            job.id, pool=pool, source=pool, catalog=HR, storage=LocalStorage(tmp_path), publish=publish, config=CONFIG
        )
        is None
    )


async def test_a_job_that_keeps_killing_workers_is_failed_not_retried_forever(pool, clean_jobs, settings) -> None:
    from exporthub.exports import unscoped

    job = await _pipeline_job(pool, {"format": "csv", "resource": "employees"})
    await pool.execute(
        "UPDATE export_jobs SET status = 'processing', attempts = $2, lease_expires_at = now() - interval '1 s'"
        " WHERE id = $1",
        job.id,
        settings.recovery.max_claims,
    )
    async with pool.acquire() as conn:
        requeue, ended = await unscoped.recover_stale(
            conn, max_claims=settings.recovery.max_claims, requeue_after_seconds=60
        )
    assert job.id not in requeue
    # The hub's worker runs the same sweep every second and may have ended it first.
    assert [j.id for j in ended] in ([job.id], [])
    row = await pool.fetchrow("SELECT status, error_message FROM export_jobs WHERE id = $1", job.id)
    assert row["status"] == "failed" and "stopped its worker" in row["error_message"]
