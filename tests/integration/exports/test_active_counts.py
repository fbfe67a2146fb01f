"""account_active_exports (migration 0014): the count the submit's cap check reads stays equal to the
account's queued + processing exports through every way a job changes, and the cap holds exactly
however many submits race for the last places."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import asyncpg
import pytest

from exporthub.accounts import Account, account_by_slug, create_account
from exporthub.errors import TooManyActiveExports
from exporthub.exports import unscoped
from exporthub.exports.account_scope import AccountScope
from exporthub.exports.models import ExportStatus
from exporthub.settings import Rate, Settings
from tests.factories import create_export, create_request
from tests.integration.domain import exports_domain

BODY = {"format": "csv", "resource": "payroll", "columns": ["payrollId"]}


async def new_account(pool: asyncpg.Pool) -> Account:
    slug = f"cap-{uuid.uuid4().hex[:8]}"
    await create_account(pool, slug, "Cap test")
    account = await account_by_slug(pool, slug)
    assert account is not None
    return account


async def counted(conn: asyncpg.Connection | asyncpg.Pool, account_id: uuid.UUID) -> int | None:
    return await conn.fetchval("SELECT active FROM account_active_exports WHERE account_id = $1", account_id)


async def actual(conn: asyncpg.Connection | asyncpg.Pool, account_id: uuid.UUID) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM export_jobs WHERE account_id = $1 AND status IN ('queued', 'processing')", account_id
    )


async def test_the_count_follows_every_change_of_status(conn: asyncpg.Connection, acme: Account) -> None:
    async def check() -> None:
        assert await counted(conn, acme.id) == await actual(conn, acme.id)

    queued = await create_export(conn, acme.id)
    claimed = await create_export(conn, acme.id)
    await check()
    assert await counted(conn, acme.id) == 2
    running = await unscoped.claim_job(conn, claimed.id, lease_seconds=30)  # queued -> processing: no change
    assert running is not None
    await conn.execute("UPDATE export_jobs SET processed_rows = 10, progress = 5 WHERE id = $1", running.id)
    await check()
    finished = await unscoped.finish_completed(
        conn, running, rows=1, file_key="k", file_name="f.csv", file_size=1, sha256="0" * 64, link_ttl_seconds=60
    )
    assert finished is not None and finished.status is ExportStatus.COMPLETED
    await check()
    assert await counted(conn, acme.id) == 1
    failing = await unscoped.claim_job(conn, (await create_export(conn, acme.id)).id, lease_seconds=30)
    assert failing is not None
    await unscoped.finish_unsuccessful(conn, failing, ExportStatus.FAILED, "broken")
    await check()
    assert await AccountScope(conn, acme.id).jobs.cancel(queued.id) is not None  # queued: cancelled at once
    await check()
    assert await counted(conn, acme.id) == 0
    # A dead worker's job is taken back by the recovery sweep: failed after too many claims.
    stale = await create_export(
        conn,
        acme.id,
        status="processing",
        attempts=9,
        lease_expires_at=await conn.fetchval("SELECT now()") - dt.timedelta(minutes=1),
    )
    await check()
    _, ended = await unscoped.recover_stale(conn, max_claims=5, requeue_after_seconds=60)
    assert stale.id in {j.id for j in ended}
    await check()
    for _ in range(3):
        await create_export(conn, acme.id)
    await AccountScope(conn, acme.id).jobs.cancel_all()  # a disabled account's exports
    await check()
    await create_export(conn, acme.id)
    await conn.execute("DELETE FROM export_jobs WHERE account_id = $1", acme.id)
    await check()
    assert await counted(conn, acme.id) == 0


async def test_truncating_the_jobs_zeroes_every_count(pool: asyncpg.Pool, clean_jobs: None) -> None:
    account = await new_account(pool)
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            await create_export(conn, account.id)
            assert await counted(conn, account.id) == 1
            await conn.execute("TRUNCATE export_jobs CASCADE")
            assert await counted(conn, account.id) == 0
        finally:
            await transaction.rollback()  # the other tables TRUNCATE ... CASCADE emptied come back


async def test_an_account_without_a_count_row_gets_one_counting_its_active_exports(
    pool: asyncpg.Pool, clean_jobs: None
) -> None:
    account = await new_account(pool)
    await create_export(pool, account.id)
    await create_export(pool, account.id, status="completed")
    await pool.execute("DELETE FROM account_active_exports WHERE account_id = $1", account.id)
    assert await AccountScope(pool, account.id).jobs.submit_state() == (None, 1)
    assert await counted(pool, account.id) == 1


async def test_fifty_racing_inserts_take_exactly_the_free_places(pool: asyncpg.Pool, clean_jobs: None) -> None:
    account = await new_account(pool)
    await create_export(pool, account.id)  # one place of five already taken
    await AccountScope(pool, account.id).jobs.submit_state()

    async def one() -> bool:
        async with pool.acquire() as conn:
            job = await AccountScope(conn, account.id).jobs.insert_within_cap(
                create_request(), idempotency_key=None, max_active=5
            )
            return job is not None

    results = await asyncio.gather(*(one() for _ in range(50)))
    assert results.count(True) == 4
    assert await actual(pool, account.id) == 5 == await counted(pool, account.id)


async def test_the_cap_holds_while_exports_end_and_submits_race(
    settings: Settings, pool: asyncpg.Pool, clean_jobs: None
) -> None:
    """Submits through the domain (the start rate in Redis too) while a stand-in worker ends exports:
    at no moment are more than 2 active, and every start counted in Redis made an export."""
    capped = settings.replace(
        redis={"queue_name": f"{settings.redis.queue_name}-cap-{uuid.uuid4().hex[:6]}"},
        exports={"max_active_exports": 2, "start_rate": Rate(1000, 60)},
    )
    account = await new_account(pool)
    most = 0
    stop = asyncio.Event()

    async def worker() -> None:
        nonlocal most
        while not stop.is_set():
            most = max(most, await actual(pool, account.id))
            await pool.execute(
                "UPDATE export_jobs SET status = 'completed', completed_at = now()"
                " WHERE id = (SELECT id FROM export_jobs WHERE account_id = $1 AND status = 'queued'"
                " ORDER BY created_at LIMIT 1)",
                account.id,
            )
            await asyncio.sleep(0.005)

    async with exports_domain(capped) as exports:

        async def submit() -> bool:
            try:
                await exports.submit(account, BODY)
            except TooManyActiveExports:
                return False
            return True

        ending = asyncio.create_task(worker())
        outcomes = []
        for _ in range(5):
            outcomes += await asyncio.gather(*(submit() for _ in range(20)))
        stop.set()
        await ending
        standing = await exports.start_limiter.peek(account.id, None) if exports.start_limiter else None
    made = await pool.fetchval("SELECT count(*) FROM export_jobs WHERE account_id = $1", account.id)
    assert most <= 2
    assert outcomes.count(True) == made >= 2
    assert await counted(pool, account.id) == await actual(pool, account.id) <= 2
    assert standing is not None and standing.remaining == 1000 - made  # refused submits gave their start back


@pytest.mark.parametrize("status", ["queued", "processing"])
async def test_a_replayed_idempotency_key_answers_even_at_the_cap(
    settings: Settings, pool: asyncpg.Pool, clean_jobs: None, status: str
) -> None:
    capped = settings.replace(exports={"max_active_exports": 1})
    account = await new_account(pool)
    async with exports_domain(capped) as exports:
        first = await exports.submit(account, BODY, idempotency_key="k1")
        await pool.execute("UPDATE export_jobs SET status = $2 WHERE id = $1", first.job.id, status)
        again = await exports.submit(account, BODY, idempotency_key="k1")
        assert not again.created and again.job.id == first.job.id
        with pytest.raises(TooManyActiveExports):
            await exports.submit(account, BODY, idempotency_key="k2")


async def test_racing_submits_with_one_idempotency_key_make_one_export(
    settings: Settings, pool: asyncpg.Pool, clean_jobs: None
) -> None:
    account = await new_account(pool)
    async with exports_domain(settings) as exports:
        results = await asyncio.gather(*(exports.submit(account, BODY, idempotency_key="same") for _ in range(10)))
    assert len({r.job.id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert await counted(pool, account.id) == 1 == await actual(pool, account.id)
