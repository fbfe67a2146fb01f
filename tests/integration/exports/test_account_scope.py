"""exports/account_scope.py over real PostgreSQL: every statement sees only the scope's account, and
another account's id is exactly as unknown as one that never existed."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid

import asyncpg
import pytest

from exporthub.accounts import Account
from exporthub.exports.account_scope import AccountScope
from exporthub.exports.models import ExportFormat, ExportStatus, Filters
from tests.factories import create_export, create_request

# --- jobs ------------------------------------------------------------------------------------------------


async def test_insert_records_the_request_as_a_queued_export(conn: asyncpg.Connection, acme: Account) -> None:
    request = create_request(
        resource="timesheets",
        format=ExportFormat.XLSX,
        columns=("workDate", "hours"),
        filters=Filters(date_from=dt.date(2024, 1, 1), department_ids=("d1",), status="approved"),
        webhook_url="https://hooks.example.com/x",
        csv_bom=False,
    )
    job = await AccountScope(conn, acme.id).jobs.insert(request, idempotency_key="key-1")
    assert job.account_id == acme.id
    assert (job.resource, job.format, job.columns) == ("timesheets", ExportFormat.XLSX, ("workDate", "hours"))
    assert job.filters == request.filters
    assert job.options == {"csvBom": False, "csvDelimiter": ",", "csvGzip": False}
    assert job.webhook_url == "https://hooks.example.com/x"
    assert (job.status, job.attempts, job.progress, job.cancel_requested) == (ExportStatus.QUEUED, 0, 0, False)
    row = await conn.fetchrow(
        "SELECT idempotency_key, request_hash, enqueued_at FROM export_jobs WHERE id = $1", job.id
    )
    assert row["idempotency_key"] == "key-1"
    assert row["request_hash"] == request.fingerprint()
    assert row["enqueued_at"] is not None  # the recovery sweep re-sends a queued export that waits too long


async def test_get_finds_the_accounts_own_export_only(conn: asyncpg.Connection, acme: Account, globex: Account) -> None:
    job = await create_export(conn, acme.id)
    assert await AccountScope(conn, acme.id).jobs.get(job.id) == job
    assert await AccountScope(conn, globex.id).jobs.get(job.id) is None
    assert await AccountScope(conn, acme.id).jobs.get(uuid.uuid4()) is None


async def test_recent_lists_the_accounts_newest_exports_first(
    conn: asyncpg.Connection, acme: Account, globex: Account, now: dt.datetime
) -> None:
    oldest = await create_export(conn, acme.id, created_at=now - dt.timedelta(minutes=3))
    failed = await create_export(conn, acme.id, created_at=now - dt.timedelta(minutes=2), status="failed")
    newest = await create_export(conn, acme.id, created_at=now - dt.timedelta(minutes=1))
    theirs = await create_export(conn, globex.id, created_at=now)
    jobs = AccountScope(conn, acme.id).jobs
    assert [j.id for j in await jobs.recent(limit=10)] == [newest.id, failed.id, oldest.id]
    assert [j.id for j in await jobs.recent(limit=2)] == [newest.id, failed.id]
    assert [j.id for j in await jobs.recent(limit=10, status=ExportStatus.FAILED)] == [failed.id]
    assert [j.id for j in await jobs.recent(limit=10, status=ExportStatus.EXPIRED)] == []
    assert [j.id for j in await AccountScope(conn, globex.id).jobs.recent(limit=10)] == [theirs.id]


async def test_page_goes_back_from_a_position_by_time_then_id(
    conn: asyncpg.Connection, acme: Account, globex: Account, now: dt.datetime
) -> None:
    # Three exports share one created_at: the id orders them, so a page boundary between them loses none.
    same = now - dt.timedelta(minutes=5)
    tied = [await create_export(conn, acme.id, created_at=same) for _ in range(3)]
    older = await create_export(conn, acme.id, created_at=now - dt.timedelta(hours=1), status="failed")
    newest = await create_export(conn, acme.id, created_at=now)
    await create_export(conn, globex.id, created_at=now - dt.timedelta(minutes=1))
    jobs = AccountScope(conn, acme.id).jobs
    top = (dt.datetime(9999, 12, 31, tzinfo=dt.UTC), uuid.UUID(int=(1 << 128) - 1))
    expected = [newest.id, *sorted((j.id for j in tied), reverse=True), older.id]
    assert [j.id for j in await jobs.page(before=top, limit=10)] == expected
    seen: list[uuid.UUID] = []
    bound = top
    while page := await jobs.page(before=bound, limit=2):
        seen += [j.id for j in page]
        bound = (page[-1].created_at, page[-1].id)
    assert seen == expected  # two at a time, through the tie: each once, in order


async def test_page_filters_by_status_resource_and_format(
    conn: asyncpg.Connection, acme: Account, globex: Account, now: dt.datetime
) -> None:
    top = (dt.datetime(9999, 12, 31, tzinfo=dt.UTC), uuid.UUID(int=(1 << 128) - 1))
    xlsx = await create_export(conn, acme.id, create_request(format=ExportFormat.XLSX), created_at=now)
    employees = await create_export(
        conn, acme.id, create_request(resource="employees", columns=("employeeNumber",)), status="failed"
    )
    await create_export(conn, globex.id, create_request(format=ExportFormat.XLSX), status="failed")
    jobs = AccountScope(conn, acme.id).jobs
    assert [j.id for j in await jobs.page(before=top, limit=10, format=ExportFormat.XLSX)] == [xlsx.id]
    assert [j.id for j in await jobs.page(before=top, limit=10, resource="employees")] == [employees.id]
    assert [j.id for j in await jobs.page(before=top, limit=10, status=ExportStatus.FAILED)] == [employees.id]
    assert await jobs.page(before=top, limit=10, status=ExportStatus.FAILED, resource="payroll") == []
    assert await jobs.page(before=(xlsx.created_at, xlsx.id), limit=10, format=ExportFormat.XLSX) == []


async def test_an_idempotency_key_is_the_accounts_own(conn: asyncpg.Connection, acme: Account, globex: Account) -> None:
    mine = await create_export(conn, acme.id, idempotency_key="same-key")
    found = await AccountScope(conn, acme.id).jobs.by_idempotency_key("same-key")
    assert found is not None and found["id"] == mine.id
    assert isinstance(found["age"], dt.timedelta) and found["age"] >= dt.timedelta(0)
    assert await AccountScope(conn, globex.id).jobs.by_idempotency_key("same-key") is None
    # Another account may use the same key for its own export.
    theirs = await create_export(conn, globex.id, idempotency_key="same-key")
    found = await AccountScope(conn, globex.id).jobs.by_idempotency_key("same-key")
    assert found is not None and found["id"] == theirs.id


async def test_releasing_an_idempotency_key_frees_it_for_the_account_only(
    conn: asyncpg.Connection, acme: Account, globex: Account
) -> None:
    mine = await create_export(conn, acme.id, idempotency_key="reused")
    await AccountScope(conn, globex.id).jobs.release_idempotency_key(mine.id)  # not globex's to release
    assert await AccountScope(conn, acme.id).jobs.by_idempotency_key("reused") is not None
    await AccountScope(conn, acme.id).jobs.release_idempotency_key(mine.id)
    assert await AccountScope(conn, acme.id).jobs.by_idempotency_key("reused") is None
    assert await AccountScope(conn, acme.id).jobs.get(mine.id) is not None  # the export itself stays
    again = await create_export(conn, acme.id, idempotency_key="reused")  # the unique index lets it be used again
    assert again.id != mine.id


async def test_count_active_counts_the_accounts_queued_and_processing_exports(
    conn: asyncpg.Connection, acme: Account, globex: Account
) -> None:
    for status in ("queued", "processing", "processing", "completed", "failed", "cancelled", "expired"):
        await create_export(conn, acme.id, status=status)
    await create_export(conn, globex.id)
    assert await AccountScope(conn, acme.id).jobs.count_active() == 3
    assert await AccountScope(conn, globex.id).jobs.count_active() == 1


async def test_cancelling_a_queued_export_ends_it_at_once(conn: asyncpg.Connection, acme: Account) -> None:
    job = await create_export(conn, acme.id)
    cancelled = await AccountScope(conn, acme.id).jobs.cancel(job.id)
    assert cancelled is not None and cancelled.id == job.id
    assert cancelled.status is ExportStatus.CANCELLED and cancelled.cancel_requested
    assert cancelled.completed_at is not None
    assert await AccountScope(conn, acme.id).jobs.get(job.id) == cancelled


async def test_cancelling_a_running_export_flags_it_for_its_worker(conn: asyncpg.Connection, acme: Account) -> None:
    job = await create_export(conn, acme.id, status="processing", attempts=1)
    flagged = await AccountScope(conn, acme.id).jobs.cancel(job.id)
    assert flagged is not None
    assert flagged.status is ExportStatus.PROCESSING and flagged.cancel_requested
    assert flagged.completed_at is None  # its worker ends it, at its next batch


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled", "expired"])
async def test_an_ended_export_cannot_be_cancelled(conn: asyncpg.Connection, acme: Account, status: str) -> None:
    job = await create_export(conn, acme.id, status=status)
    assert await AccountScope(conn, acme.id).jobs.cancel(job.id) is None
    assert await AccountScope(conn, acme.id).jobs.get(job.id) == job


@pytest.mark.parametrize("status", ["queued", "processing"])
async def test_another_accounts_export_cannot_be_cancelled(
    conn: asyncpg.Connection, acme: Account, globex: Account, status: str
) -> None:
    job = await create_export(conn, acme.id, status=status)
    assert await AccountScope(conn, globex.id).jobs.cancel(job.id) is None
    assert await AccountScope(conn, globex.id).jobs.cancel(uuid.uuid4()) is None
    assert await AccountScope(conn, acme.id).jobs.get(job.id) == job  # untouched


async def test_cancel_all_cancels_every_active_export_of_the_account_and_nothing_else(
    conn: asyncpg.Connection, acme: Account, globex: Account
) -> None:
    queued = await create_export(conn, acme.id)
    running = await create_export(conn, acme.id, status="processing", attempts=1)
    done = await create_export(conn, acme.id, status="completed")
    theirs = await create_export(conn, globex.id)
    cancelled = {j.id: j for j in await AccountScope(conn, acme.id).jobs.cancel_all()}
    assert set(cancelled) == {queued.id, running.id}
    assert cancelled[queued.id].status is ExportStatus.CANCELLED
    assert cancelled[running.id].status is ExportStatus.PROCESSING and cancelled[running.id].cancel_requested
    assert await AccountScope(conn, acme.id).jobs.get(done.id) == done
    assert await AccountScope(conn, globex.id).jobs.get(theirs.id) == theirs
    assert await AccountScope(conn, acme.id).jobs.cancel_all() == [
        cancelled[running.id]
    ]  # still flagged, still running


async def _waits_for_a_lock(pool: asyncpg.Pool, pid: int, task: asyncio.Task[None]) -> bool:
    """Whether the backend `pid` comes to wait for a lock while `task` runs (looked at for 10 s at most)."""
    deadline = time.monotonic() + 10
    while not task.done() and time.monotonic() < deadline:
        if await pool.fetchval("SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", pid) == "Lock":
            return True
        await asyncio.sleep(0.01)
    return False


async def test_the_submit_lock_serialises_one_account_and_leaves_others_alone(
    pool: asyncpg.Pool, acme: Account, globex: Account
) -> None:
    async with pool.acquire() as first, pool.acquire() as second, second.transaction():
        async with first.transaction():
            await AccountScope(first, acme.id).jobs.lock()
            await AccountScope(second, globex.id).jobs.lock()  # another account's submit is not held up
            waiting = asyncio.create_task(AccountScope(second, acme.id).jobs.lock())
            blocked = await _waits_for_a_lock(pool, second.get_server_pid(), waiting)
            still_waiting = not waiting.done()
        await asyncio.wait_for(waiting, timeout=10)  # the first submit's transaction ended: the second goes on
    assert blocked and still_waiting, "a second submit for the same account did not wait for the first"


# --- webhooks --------------------------------------------------------------------------------------------


async def test_the_signing_secret_is_made_on_first_need_and_kept(conn: asyncpg.Connection, acme: Account) -> None:
    await conn.execute("DELETE FROM webhook_secrets WHERE account_id = $1", acme.id)
    webhooks = AccountScope(conn, acme.id).webhooks
    made = await webhooks.secret()
    assert made.secret.startswith("whsec_") and made.previous_expires_at is None
    assert await webhooks.secret() == made


async def test_each_account_has_its_own_secret_and_rotates_only_its_own(
    conn: asyncpg.Connection, acme: Account, globex: Account, now: dt.datetime
) -> None:
    mine, theirs = AccountScope(conn, acme.id).webhooks, AccountScope(conn, globex.id).webhooks
    before, theirs_before = await mine.secret(), await theirs.secret()
    assert before.secret != theirs_before.secret
    rotated = await mine.rotate_secret(grace_seconds=3600)
    assert rotated.secret != before.secret
    assert rotated.previous_expires_at == now + dt.timedelta(hours=1)  # the old one still signs for an hour
    assert await mine.secret() == rotated
    assert await theirs.secret() == theirs_before
    previous = await conn.fetchval("SELECT previous_secret FROM webhook_secrets WHERE account_id = $1", acme.id)
    assert previous == before.secret


async def test_a_rotation_without_grace_retires_the_old_secret_at_once(conn: asyncpg.Connection, acme: Account) -> None:
    await AccountScope(conn, acme.id).webhooks.secret()
    rotated = await AccountScope(conn, acme.id).webhooks.rotate_secret(grace_seconds=0)
    assert rotated.previous_expires_at is None


async def _record_delivery(conn: asyncpg.Connection, account: Account, export_id: uuid.UUID) -> uuid.UUID:
    event_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO webhook_events (id, account_id, export_id, event, url, body, give_up_at)"
        " VALUES ($1, $2, $3, 'export.completed', 'https://hooks.example.com/x', $4, now() + interval '1 day')",
        event_id,
        account.id,
        export_id,
        json.dumps({"eventId": str(event_id)}),
    )
    await conn.execute(
        "INSERT INTO webhook_attempts (event_id, account_id, export_id, attempt, url, status_code, duration_ms)"
        " VALUES ($1, $2, $3, 1, 'https://hooks.example.com/x', 500, 12)",
        event_id,
        account.id,
        export_id,
    )
    return event_id


async def test_an_exports_deliveries_are_seen_by_its_account_only(
    conn: asyncpg.Connection, acme: Account, globex: Account
) -> None:
    job = await create_export(conn, acme.id, status="completed", webhook_url="https://hooks.example.com/x")
    event_id = await _record_delivery(conn, acme, job.id)
    mine = AccountScope(conn, acme.id).webhooks
    [event] = await mine.events(job.id)
    assert (event["id"], event["event"], event["state"]) == (event_id, "export.completed", "pending")
    [attempt] = await mine.attempts(job.id)
    assert (attempt["event_id"], attempt["event"], attempt["status_code"]) == (event_id, "export.completed", 500)
    theirs = AccountScope(conn, globex.id).webhooks
    assert await theirs.events(job.id) == []
    assert await theirs.attempts(job.id) == []
    assert await mine.events(uuid.uuid4()) == [] and await mine.attempts(uuid.uuid4()) == []
