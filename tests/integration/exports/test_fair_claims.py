"""unscoped.claim_fair and fair_queue_position over real PostgreSQL: which export a free worker slot
starts, and where a queued export stands in that order."""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg

from exporthub.accounts import Account
from exporthub.exports import unscoped
from exporthub.exports.models import ExportJob
from tests.factories import create_export

LEASE = 30
PER_ACCOUNT = 2


def ago(now: dt.datetime, minutes: float) -> dt.datetime:
    return now - dt.timedelta(minutes=minutes)


async def running(conn: asyncpg.Connection, account: Account, now: dt.datetime, started: float = 5) -> ExportJob:
    return await create_export(
        conn,
        account.id,
        status="processing",
        started_at=ago(now, started),
        created_at=ago(now, started + 1),
        lease_expires_at=now + dt.timedelta(seconds=LEASE),
        attempts=1,
    )


async def queued(conn: asyncpg.Connection, account: Account, now: dt.datetime, made: float) -> ExportJob:
    return await create_export(conn, account.id, created_at=ago(now, made))


async def claim(conn: asyncpg.Connection, named: uuid.UUID | None = None) -> ExportJob | None:
    """What a message naming `named` (default: the oldest queued export) starts."""
    if named is None:
        named = await conn.fetchval(
            "SELECT id FROM export_jobs WHERE status = 'queued' AND NOT cancel_requested ORDER BY created_at LIMIT 1"
        )
        if named is None:
            return None
    job, _ = await unscoped.claim_fair(conn, named, LEASE, per_account=PER_ACCOUNT)
    return job


async def test_a_free_slot_goes_to_the_account_with_fewer_exports_running(
    conn: asyncpg.Connection, acme: Account, globex: Account, now: dt.datetime
) -> None:
    await running(conn, acme, now)
    acme_waiting = await queued(conn, acme, now, made=30)  # older than globex's
    globex_waiting = await queued(conn, globex, now, made=1)
    first, passed_over = await unscoped.claim_fair(conn, acme_waiting.id, LEASE, per_account=PER_ACCOUNT)
    assert first is not None and first.id == globex_waiting.id  # the message named acme's: the fairest starts
    assert passed_over  # acme's export still waits and needs a message of its own
    second = await claim(conn)
    assert second is not None and second.id == acme_waiting.id
    assert await claim(conn) is None


async def test_an_account_at_its_limit_waits_while_another_has_work_but_not_alone(
    conn: asyncpg.Connection, acme: Account, globex: Account, now: dt.datetime
) -> None:
    for _ in range(PER_ACCOUNT + 1):
        await running(conn, globex, now)  # over the limit, say after the setting was lowered
    await running(conn, acme, now)
    await running(conn, acme, now)  # at the limit
    acme_third = await queued(conn, acme, now, made=10)
    globex_next = await queued(conn, globex, now, made=20)
    # Both are at or over the limit: nobody under it waits, so the one with fewer running goes on.
    started = await claim(conn)
    assert started is not None and started.id == acme_third.id
    assert (await claim(conn)).id == globex_next.id  # type: ignore[union-attr]


async def test_equal_accounts_take_turns_least_recently_served_first(
    conn: asyncpg.Connection, acme: Account, globex: Account, now: dt.datetime
) -> None:
    await create_export(conn, acme.id, status="completed", started_at=ago(now, 1), completed_at=now)
    await create_export(conn, globex.id, status="completed", started_at=ago(now, 60), completed_at=ago(now, 59))
    acme_jobs = [await queued(conn, acme, now, made=m) for m in (40, 39, 38)]
    globex_jobs = [await queued(conn, globex, now, made=m) for m in (5, 4, 3)]
    order = []
    for turn in range(6):
        job = await claim(conn)
        assert job is not None
        order.append(job.id)
        # The slot frees at once. now() stands still in the test's transaction: each start is dated a
        # second after the one before, as separate claims would be.
        await conn.execute(
            "UPDATE export_jobs SET status = 'completed', completed_at = now(),"
            " started_at = now() + make_interval(secs => $2) WHERE id = $1",
            job.id,
            turn + 1,
        )
    assert order == [j.id for pair in zip(globex_jobs, acme_jobs, strict=True) for j in pair]


async def test_a_message_whose_run_was_cut_short_restarts_that_export_first(
    conn: asyncpg.Connection, acme: Account, globex: Account, now: dt.datetime
) -> None:
    cut_short = await create_export(
        conn, acme.id, status="processing", attempts=1, started_at=ago(now, 2), lease_expires_at=ago(now, 1)
    )
    await queued(conn, globex, now, made=30)
    again = await claim(conn, named=cut_short.id)
    assert again is not None and again.id == cut_short.id and again.attempts == 2


async def test_a_stale_message_starts_nothing_even_when_other_exports_wait(
    conn: asyncpg.Connection, acme: Account, globex: Account, now: dt.datetime
) -> None:
    """A message for an export that is running, ended or cancelled is not a token for another one."""
    waiting = await queued(conn, globex, now, made=1)
    for stale in (
        await running(conn, acme, now),
        await create_export(conn, acme.id, status="completed", created_at=ago(now, 8)),
        await create_export(conn, acme.id, cancel_requested=True, status="cancelled", created_at=ago(now, 9)),
    ):
        assert await unscoped.claim_fair(conn, stale.id, LEASE, per_account=PER_ACCOUNT) == (None, False)
    assert (await unscoped.get_job(conn, waiting.id)).status.value == "queued"  # type: ignore[union-attr]


async def test_the_queue_position_is_the_order_the_slots_are_given_in(
    conn: asyncpg.Connection, acme: Account, globex: Account, now: dt.datetime
) -> None:
    await running(conn, acme, now)
    waiting = [
        await queued(conn, acme, now, made=50),
        await queued(conn, acme, now, made=49),
        await queued(conn, globex, now, made=2),
        await queued(conn, globex, now, made=1),
    ]
    positions = {j.id: await unscoped.fair_queue_position(conn, j) for j in waiting}
    assert sorted(positions.values()) == [1, 2, 3, 4]
    claimed = []
    for _ in waiting:
        job = await claim(conn)
        assert job is not None
        claimed.append(job.id)
    assert claimed == sorted(positions, key=positions.__getitem__)
    # globex (none running) first, then acme (one running) and globex in turns
    assert claimed == [waiting[2].id, waiting[0].id, waiting[3].id, waiting[1].id]
