"""unscoped.claim_fair and fair_queue_position over real PostgreSQL: which export a free worker slot
starts, and where a queued export stands in that order."""

from __future__ import annotations

import datetime as dt
import random
import uuid

import asyncpg

from exporthub.accounts import Account, account_by_slug
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


async def test_the_queue_position_counts_the_turns_each_account_has_had(
    conn: asyncpg.Connection, acme: Account, globex: Account, now: dt.datetime
) -> None:
    """acme has had a turn since both began waiting, globex none: globex's first export goes first,
    then acme's (served longer ago), then globex's second."""
    await running(conn, acme, now, started=5)
    waiting = [
        await queued(conn, acme, now, made=10),
        await queued(conn, globex, now, made=9),
        await queued(conn, globex, now, made=8),
    ]
    positions = [await unscoped.fair_queue_position(conn, j) for j in waiting]
    assert positions == [2, 1, 3]
    assert await claim_all(conn, free_slots=False) == [waiting[1].id, waiting[0].id, waiting[2].id]


async def claim_all(conn: asyncpg.Connection, *, free_slots: bool, per_account: int = PER_ACCOUNT) -> list[uuid.UUID]:
    """Claims one after another, each dated a second after the one before (now() stands still in the
    test's transaction); with `free_slots` each run ends at once, as if its slot freed."""
    order = []
    for turn in range(1, 1000):
        named = await conn.fetchval(
            "SELECT id FROM export_jobs WHERE status = 'queued' AND NOT cancel_requested ORDER BY created_at LIMIT 1"
        )
        if named is None:
            return order
        job, _ = await unscoped.claim_fair(conn, named, LEASE, per_account=per_account)
        assert job is not None
        order.append(job.id)
        status = "completed" if free_slots else "processing"
        await conn.execute(
            "UPDATE export_jobs SET status = $3, started_at = now() + make_interval(secs => $2) WHERE id = $1",
            job.id,
            turn,
            status,
        )
    raise AssertionError("the queue never emptied")


async def test_an_account_whose_exports_ran_slower_catches_up(
    conn: asyncpg.Connection, acme: Account, globex: Account, now: dt.datetime
) -> None:
    """Both waited from the same moment and run one export each now; acme has started two since,
    globex one (its export runs on a slower worker). The slot acme's first run freed goes to globex,
    although acme has as few running and started longer ago."""
    await create_export(conn, acme.id, status="completed", started_at=ago(now, 8), completed_at=ago(now, 7))
    await running(conn, acme, now, started=7)
    await running(conn, globex, now, started=1)
    acme_next = await queued(conn, acme, now, made=10)
    globex_next = await queued(conn, globex, now, made=9)
    assert (await claim(conn)).id == globex_next.id  # type: ignore[union-attr]
    assert (await claim(conn)).id == acme_next.id  # type: ignore[union-attr]


async def test_an_account_that_arrives_gets_turns_not_credit_for_the_time_it_had_nothing_queued(
    conn: asyncpg.Connection, acme: Account, globex: Account, now: dt.datetime
) -> None:
    """acme has started five exports while its oldest waited; globex arrives afterwards. From then
    on they alternate: globex does not take five in a row to make up for acme's earlier starts."""
    for minutes in (30, 29, 28, 27, 26):
        await create_export(conn, acme.id, status="completed", started_at=ago(now, minutes), completed_at=ago(now, 25))
    acme_jobs = [await queued(conn, acme, now, made=m) for m in (40, 39, 38)]
    globex_jobs = [await queued(conn, globex, now, made=m) for m in (2, 1.5, 1)]
    order = await claim_all(conn, free_slots=True)
    assert order == [j.id for pair in zip(globex_jobs, acme_jobs, strict=True) for j in pair]


async def test_the_export_shown_first_in_the_queue_is_the_one_that_starts_next(
    conn: asyncpg.Connection, acme: Account, globex: Account, now: dt.datetime, pool: asyncpg.Pool
) -> None:
    """Random queues of three accounts, some running and with earlier starts. At every step, as the
    queue drains, the positions are 1..n, keep each account's exports in submit order, and position 1
    is the export the next claim starts. (Further down the order is a forecast: it assumes no slot
    frees, and the turn-taking window moves when an account's queue runs empty.)"""
    initech = await account_by_slug(pool, "initech")
    assert initech is not None
    rng = random.Random(12)
    for scenario in range(8):
        savepoint = conn.transaction()
        await savepoint.start()
        try:
            for account in (acme, globex, initech):
                for _ in range(rng.randint(0, 2)):
                    await running(conn, account, now, started=rng.uniform(1, 60))
                for _ in range(rng.randint(0, 2)):
                    began = rng.uniform(1, 60)
                    await create_export(
                        conn, account.id, status="completed", started_at=ago(now, began), completed_at=ago(now, 0.5)
                    )
                for _ in range(rng.randint(0, 4)):
                    await queued(conn, account, now, made=rng.uniform(1, 60))
            for turn in range(1, 100):
                rows = await conn.fetch("SELECT * FROM export_jobs WHERE status = 'queued' ORDER BY created_at, id")
                if not rows:
                    break
                jobs = [ExportJob.from_record(row) for row in rows]
                positions = {j.id: await unscoped.fair_queue_position(conn, j) for j in jobs}
                assert sorted(positions.values()) == list(range(1, len(jobs) + 1)), scenario
                for account in {j.account_id for j in jobs}:
                    own = [positions[j.id] for j in jobs if j.account_id == account]
                    assert own == sorted(own), scenario
                started, _ = await unscoped.claim_fair(conn, jobs[0].id, LEASE, per_account=100)
                assert started is not None and positions[started.id] == 1, (scenario, turn)
                await conn.execute(
                    "UPDATE export_jobs SET started_at = now() + make_interval(secs => $2) WHERE id = $1",
                    started.id,
                    turn,
                )
        finally:
            await savepoint.rollback()
