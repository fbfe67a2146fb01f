"""exports/unscoped.py over real PostgreSQL: the worker's claim, lease and finish, fenced by the
attempt count, and the sweeps' recovery, expiry and missed webhook events."""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg
import pytest

from exporthub.accounts import Account
from exporthub.exports import unscoped
from exporthub.exports.models import ExportJob, ExportStatus
from tests.factories import create_export

LEASE = 30  # seconds

ENDED = ["completed", "failed", "cancelled", "expired"]


async def reread(conn: asyncpg.Connection, job: ExportJob) -> ExportJob:
    found = await unscoped.get_job(conn, job.id)
    assert found is not None
    return found


async def running(conn: asyncpg.Connection, account: Account) -> ExportJob:
    """An export claimed by a worker, as claim_job leaves it."""
    claimed = await unscoped.claim_job(conn, (await create_export(conn, account.id)).id, LEASE)
    assert claimed is not None
    return claimed


async def taken_over(conn: asyncpg.Connection, job: ExportJob, now: dt.datetime) -> ExportJob:
    """The same export claimed again after `job`'s lease ran out (its worker seemed dead)."""
    await conn.execute(
        "UPDATE export_jobs SET lease_expires_at = $2 WHERE id = $1", job.id, now - dt.timedelta(seconds=1)
    )
    again = await unscoped.claim_job(conn, job.id, LEASE)
    assert again is not None and again.attempts == job.attempts + 1
    return again


async def lease_of(conn: asyncpg.Connection, job: ExportJob) -> dt.datetime | None:
    return await conn.fetchval("SELECT lease_expires_at FROM export_jobs WHERE id = $1", job.id)


# --- get_job ---------------------------------------------------------------------------------------------


async def test_get_job_finds_any_accounts_export(conn: asyncpg.Connection, acme: Account, globex: Account) -> None:
    mine, theirs = await create_export(conn, acme.id), await create_export(conn, globex.id)
    assert await unscoped.get_job(conn, mine.id) == mine
    assert await unscoped.get_job(conn, theirs.id) == theirs
    assert await unscoped.get_job(conn, uuid.uuid4()) is None


# --- claim ---------------------------------------------------------------------------------------------


async def test_claiming_a_queued_export_starts_its_first_run(
    conn: asyncpg.Connection, acme: Account, now: dt.datetime
) -> None:
    job = await create_export(conn, acme.id, processed_rows=40, progress=4)  # left by a run the sweep re-queued
    claimed = await unscoped.claim_job(conn, job.id, LEASE)
    assert claimed is not None
    assert (claimed.status, claimed.attempts) == (ExportStatus.PROCESSING, 1)
    assert (claimed.processed_rows, claimed.progress) == (0, 0)
    assert claimed.started_at == now
    assert await lease_of(conn, claimed) == now + dt.timedelta(seconds=LEASE)


async def test_a_running_export_cannot_be_claimed_while_its_lease_holds(
    conn: asyncpg.Connection, acme: Account
) -> None:
    job = await running(conn, acme)
    assert await unscoped.claim_job(conn, job.id, LEASE) is None
    assert (await reread(conn, job)).attempts == 1


async def test_a_running_export_whose_lease_ran_out_is_claimed_again_as_a_new_attempt(
    conn: asyncpg.Connection, acme: Account, now: dt.datetime
) -> None:
    first = await create_export(
        conn, acme.id, status="processing", attempts=1, started_at=now - dt.timedelta(minutes=5), processed_rows=900
    )
    second = await taken_over(conn, first, now)
    assert second.attempts == 2
    assert second.started_at == now - dt.timedelta(minutes=5)  # when the export first started
    assert second.processed_rows == 0


async def test_an_export_asked_to_cancel_is_not_claimed(
    conn: asyncpg.Connection, acme: Account, now: dt.datetime
) -> None:
    lapsed = now - dt.timedelta(seconds=1)
    job = await create_export(
        conn, acme.id, status="processing", attempts=1, cancel_requested=True, lease_expires_at=lapsed
    )
    assert await unscoped.claim_job(conn, job.id, LEASE) is None
    assert await reread(conn, job) == job


@pytest.mark.parametrize("status", ENDED)
async def test_an_ended_export_is_not_claimed(conn: asyncpg.Connection, acme: Account, status: str) -> None:
    job = await create_export(conn, acme.id, status=status)
    assert await unscoped.claim_job(conn, job.id, LEASE) is None
    assert await reread(conn, job) == job


async def test_an_unknown_export_is_not_claimed(conn: asyncpg.Connection) -> None:
    assert await unscoped.claim_job(conn, uuid.uuid4(), LEASE) is None


# --- lease ---------------------------------------------------------------------------------------------


async def test_renewing_the_lease_records_progress_and_extends_it(
    conn: asyncpg.Connection, acme: Account, now: dt.datetime
) -> None:
    job = await running(conn, acme)
    cancel = await unscoped.renew_lease(
        conn, job, processed_rows=500, total_rows=2_000, progress=25, lease_seconds=LEASE * 2
    )
    assert cancel is False
    row = await reread(conn, job)
    assert (row.processed_rows, row.total_rows, row.progress) == (500, 2_000, 25)
    assert await lease_of(conn, job) == now + dt.timedelta(seconds=LEASE * 2)


async def test_renewing_the_lease_tells_the_run_it_was_asked_to_cancel(conn: asyncpg.Connection, acme: Account) -> None:
    job = await running(conn, acme)
    await conn.execute("UPDATE export_jobs SET cancel_requested = true WHERE id = $1", job.id)
    assert await unscoped.renew_lease(conn, job, processed_rows=1, total_rows=10, progress=10, lease_seconds=LEASE)


async def test_a_run_whose_export_was_claimed_again_can_no_longer_renew(
    conn: asyncpg.Connection, acme: Account, now: dt.datetime
) -> None:
    first = await running(conn, acme)
    second = await taken_over(conn, first, now)
    stale = await unscoped.renew_lease(
        conn, first, processed_rows=999, total_rows=1_000, progress=99, lease_seconds=LEASE
    )
    assert stale is None
    assert (await reread(conn, second)).processed_rows == 0  # the stale run's progress was not written
    assert (
        await unscoped.renew_lease(conn, second, processed_rows=1, total_rows=1_000, progress=0, lease_seconds=LEASE)
        is False
    )


async def test_an_ended_export_has_no_lease_to_renew(conn: asyncpg.Connection, acme: Account) -> None:
    job = await running(conn, acme)
    await unscoped.finish_unsuccessful(conn, job, ExportStatus.FAILED, "it broke")
    assert (
        await unscoped.renew_lease(conn, job, processed_rows=1, total_rows=1, progress=0, lease_seconds=LEASE) is None
    )


# --- finish --------------------------------------------------------------------------------------------


async def test_finishing_completed_records_the_file_and_when_its_link_expires(
    conn: asyncpg.Connection, acme: Account, now: dt.datetime
) -> None:
    job = await running(conn, acme)
    done = await unscoped.finish_completed(
        conn,
        job,
        rows=1_234,
        file_key="k/1.csv",
        file_name="payroll.csv",
        file_size=4_096,
        link_ttl_seconds=3_600,
        sha256="abababababababababababababababababababababababababababababababab",
    )
    assert done is not None
    assert (done.status, done.progress, done.processed_rows, done.total_rows) == (
        ExportStatus.COMPLETED,
        100,
        1_234,
        1_234,
    )
    assert (done.file_key, done.file_name, done.file_size, done.sha256) == (
        "k/1.csv",
        "payroll.csv",
        4_096,
        "abababababababababababababababababababababababababababababababab",
    )
    assert (done.completed_at, done.expires_at) == (now, now + dt.timedelta(hours=1))
    assert await lease_of(conn, done) is None


# What a run that finished reports of its file.
FINISHED_FILE = {
    "rows": 1,
    "file_key": "k",
    "file_name": "f.csv",
    "file_size": 1,
    "link_ttl_seconds": 60,
    "sha256": "ab" * 32,
}


async def test_only_the_current_run_can_finish_completed(
    conn: asyncpg.Connection, acme: Account, now: dt.datetime
) -> None:
    first = await running(conn, acme)
    second = await taken_over(conn, first, now)
    assert await unscoped.finish_completed(conn, first, **FINISHED_FILE) is None
    assert (await reread(conn, second)).status is ExportStatus.PROCESSING
    done = await unscoped.finish_completed(conn, second, **FINISHED_FILE)
    assert done is not None and done.status is ExportStatus.COMPLETED


async def test_a_run_asked_to_cancel_cannot_finish_completed(conn: asyncpg.Connection, acme: Account) -> None:
    job = await running(conn, acme)
    await conn.execute("UPDATE export_jobs SET cancel_requested = true WHERE id = $1", job.id)
    assert await unscoped.finish_completed(conn, job, **FINISHED_FILE) is None
    ended = await unscoped.finish_unsuccessful(conn, job, ExportStatus.CANCELLED)  # the run ends it so instead
    assert ended is not None and ended.status is ExportStatus.CANCELLED and ended.file_key is None


async def test_finishing_unsuccessful_records_the_message_and_ends_the_lease(
    conn: asyncpg.Connection, acme: Account, now: dt.datetime
) -> None:
    job = await running(conn, acme)
    failed = await unscoped.finish_unsuccessful(conn, job, ExportStatus.FAILED, "narrow the filters")
    assert failed is not None
    assert (failed.status, failed.error_message, failed.completed_at) == (
        ExportStatus.FAILED,
        "narrow the filters",
        now,
    )
    assert await lease_of(conn, failed) is None
    assert await unscoped.finish_unsuccessful(conn, job, ExportStatus.CANCELLED) is None  # ended once only


async def test_only_the_current_run_can_finish_unsuccessful(
    conn: asyncpg.Connection, acme: Account, now: dt.datetime
) -> None:
    first = await running(conn, acme)
    second = await taken_over(conn, first, now)
    assert await unscoped.finish_unsuccessful(conn, first, ExportStatus.FAILED, "stale") is None
    current = await reread(conn, second)
    assert (current.status, current.error_message) == (ExportStatus.PROCESSING, None)


async def test_an_export_that_was_never_claimed_cannot_be_finished(conn: asyncpg.Connection, acme: Account) -> None:
    job = await create_export(conn, acme.id)
    assert await unscoped.finish_unsuccessful(conn, job, ExportStatus.FAILED, "no") is None
    assert await unscoped.finish_completed(conn, job, **FINISHED_FILE) is None
    assert await reread(conn, job) == job


# --- recovery --------------------------------------------------------------------------------------------


async def test_recovery_requeues_lapsed_runs_and_ends_those_that_cannot_run_again(
    conn: asyncpg.Connection, acme: Account, globex: Account, now: dt.datetime
) -> None:
    lapsed, live = now - dt.timedelta(seconds=1), now + dt.timedelta(seconds=LEASE)
    long_ago, just_now = now - dt.timedelta(minutes=5), now - dt.timedelta(seconds=5)
    retry = await create_export(conn, acme.id, status="processing", attempts=2, lease_expires_at=lapsed)
    other_account = await create_export(conn, globex.id, status="processing", attempts=1, lease_expires_at=lapsed)
    too_many = await create_export(conn, acme.id, status="processing", attempts=3, lease_expires_at=lapsed)
    cancelling = await create_export(
        conn, acme.id, status="processing", attempts=1, lease_expires_at=lapsed, cancel_requested=True
    )
    healthy = await create_export(conn, acme.id, status="processing", attempts=1, lease_expires_at=live)
    message_lost = await create_export(conn, acme.id, enqueued_at=long_ago)
    waiting = await create_export(conn, acme.id, enqueued_at=just_now)
    finished = await create_export(conn, acme.id, status="completed", lease_expires_at=lapsed)

    requeue, ended = await unscoped.recover_stale(conn, max_claims=3, requeue_after_seconds=60)

    assert set(requeue) == {retry.id, other_account.id, message_lost.id}
    for job in (retry, other_account, message_lost):
        row = await conn.fetchrow("SELECT status, lease_expires_at, enqueued_at FROM export_jobs WHERE id = $1", job.id)
        assert (row["status"], row["lease_expires_at"], row["enqueued_at"]) == ("queued", None, now)
    assert (await reread(conn, retry)).attempts == 2  # counted again at its next claim

    by_id = {j.id: j for j in ended}
    assert set(by_id) == {too_many.id, cancelling.id}
    assert by_id[too_many.id].status is ExportStatus.FAILED
    assert by_id[too_many.id].error_message is not None
    assert "stopped its worker 3 times" in by_id[too_many.id].error_message
    assert (by_id[cancelling.id].status, by_id[cancelling.id].error_message) == (ExportStatus.CANCELLED, None)
    assert all(j.completed_at == now for j in ended)
    assert [await lease_of(conn, j) for j in ended] == [None, None]

    for untouched in (healthy, waiting, finished):
        assert await reread(conn, untouched) == untouched


async def test_a_second_recovery_finds_nothing_more_to_do(
    conn: asyncpg.Connection, acme: Account, now: dt.datetime
) -> None:
    await create_export(conn, acme.id, status="processing", attempts=5, lease_expires_at=now - dt.timedelta(seconds=1))
    await create_export(conn, acme.id, status="processing", attempts=1, lease_expires_at=now - dt.timedelta(seconds=1))
    requeue, ended = await unscoped.recover_stale(conn, max_claims=5, requeue_after_seconds=60)
    assert (len(requeue), len(ended)) == (1, 1)
    assert await unscoped.recover_stale(conn, max_claims=5, requeue_after_seconds=60) == ([], [])


# --- expiry --------------------------------------------------------------------------------------------


async def test_claiming_expired_marks_due_exports_and_picks_up_undeleted_files(
    conn: asyncpg.Connection, acme: Account, globex: Account, now: dt.datetime
) -> None:
    past = now - dt.timedelta(minutes=1)
    due = await create_export(conn, acme.id, status="completed", file_key="a/1.csv", expires_at=past)
    theirs = await create_export(
        conn, globex.id, status="completed", file_key="g/1.csv", expires_at=past - dt.timedelta(minutes=1)
    )
    left_behind = await create_export(conn, acme.id, status="expired", file_key="a/2.csv", expires_at=past)
    at_its_time = await create_export(conn, acme.id, status="completed", file_key="a/3.csv", expires_at=now)
    not_yet = await create_export(
        conn, acme.id, status="completed", file_key="a/4.csv", expires_at=now + dt.timedelta(seconds=1)
    )
    already_deleted = await create_export(conn, acme.id, status="expired", file_key=None, expires_at=past)

    claimed = await unscoped.claim_expired(conn, limit=10)

    assert {j.id: newly for j, newly in claimed} == {
        theirs.id: True,
        due.id: True,
        left_behind.id: False,
        at_its_time.id: True,
    }
    assert claimed[0][0].id == theirs.id  # the longest expired first
    assert all(j.status is ExportStatus.EXPIRED and j.file_key is not None for j, _ in claimed)
    assert await reread(conn, not_yet) == not_yet
    assert await reread(conn, already_deleted) == already_deleted


async def test_claiming_expired_takes_at_most_the_limit_oldest_first(
    conn: asyncpg.Connection, acme: Account, now: dt.datetime
) -> None:
    jobs = [
        await create_export(
            conn, acme.id, status="completed", file_key=f"a/{i}.csv", expires_at=now - dt.timedelta(minutes=i)
        )
        for i in range(1, 5)
    ]
    claimed = await unscoped.claim_expired(conn, limit=2)
    assert [j.id for j, _ in claimed] == [jobs[3].id, jobs[2].id]
    assert (await reread(conn, jobs[0])).status is ExportStatus.COMPLETED


async def test_forgetting_files_clears_only_expired_exports(
    conn: asyncpg.Connection, acme: Account, now: dt.datetime
) -> None:
    expired = await create_export(conn, acme.id, status="expired", file_key="a/1.csv", expires_at=now)
    completed = await create_export(conn, acme.id, status="completed", file_key="a/2.csv", expires_at=now)
    await unscoped.forget_files(conn, [expired.id, completed.id])
    assert (await reread(conn, expired)).file_key is None
    assert (await reread(conn, completed)).file_key == "a/2.csv"  # still downloadable: its file must stay known


# --- missed webhook events -------------------------------------------------------------------------------


async def test_ended_exports_with_a_webhook_and_no_event_are_found_oldest_first(
    conn: asyncpg.Connection, acme: Account, globex: Account, now: dt.datetime
) -> None:
    hook = "https://hooks.example.com/x"

    def ago(minutes: int) -> dt.datetime:
        return now - dt.timedelta(minutes=minutes)

    cancelled = await create_export(conn, acme.id, status="cancelled", webhook_url=hook, completed_at=ago(3))
    failed = await create_export(conn, globex.id, status="failed", webhook_url=hook, completed_at=ago(2))
    completed = await create_export(conn, acme.id, status="completed", webhook_url=hook, completed_at=ago(1))
    await create_export(conn, acme.id, status="completed", webhook_url=None, completed_at=ago(1))  # no webhook
    await create_export(conn, acme.id, status="expired", webhook_url=hook, completed_at=ago(1))  # fires none
    await create_export(conn, acme.id, status="processing", webhook_url=hook)  # not ended
    await create_export(conn, acme.id, status="failed", webhook_url=hook, completed_at=ago(120))  # past the window
    recorded = await create_export(conn, acme.id, status="completed", webhook_url=hook, completed_at=ago(1))
    await conn.execute(
        "INSERT INTO webhook_events (id, account_id, export_id, event, url, body, give_up_at)"
        " VALUES ($1, $2, $3, 'export.completed', $4, '{}', now() + interval '1 day')",
        uuid.uuid4(),
        acme.id,
        recorded.id,
        hook,
    )

    missed = await unscoped.finished_without_event(conn, window_seconds=3_600, limit=10)
    assert [j.id for j in missed] == [cancelled.id, failed.id, completed.id]
    limited = await unscoped.finished_without_event(conn, window_seconds=3_600, limit=2)
    assert [j.id for j in limited] == [cancelled.id, failed.id]
