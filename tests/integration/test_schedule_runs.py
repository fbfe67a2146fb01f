"""Exports.run_due_schedules against real PostgreSQL: one export per due time even with two runners at
once or a runner that died after submitting; a run at the account's cap waits and runs later; the
window's dates come from the due day in the schedule's zone; a request that went bad is recorded.

The schedules here are due on 1 January (or in months), and each test passes its own `now` at or after
their due time, so the hub's own scheduler (when another test of the session started it) never runs
them first: for it, they are months away.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from exporthub.accounts import Account, account_by_slug, create_account, disable_account
from exporthub.exports.schedules import RunOutcome, run_key
from exporthub.exports.service import Exports
from exporthub.settings import Settings
from tests.conftest import Hub
from tests.harness import LOG_DIR, running, start_scheduler, start_worker, wait_for_async
from tests.integration.domain import exports_domain
from tests.integration.helpers import wait_status

YEARLY = {"resource": "payroll", "format": "csv", "cron": "0 6 1 1 *", "timeZone": "Europe/Berlin"}


class Recorded:
    """An Enqueue that keeps the ids it was given (no worker runs them: they stay queued)."""

    def __init__(self) -> None:
        self.sent: list[uuid.UUID] = []

    async def __call__(self, export_id: uuid.UUID) -> None:
        self.sent.append(export_id)


@pytest.fixture
async def clean(pool: asyncpg.Pool, clean_jobs: None) -> None:
    await pool.execute("DELETE FROM schedules")


@pytest.fixture
async def acme(pool: asyncpg.Pool) -> Account:
    account = await account_by_slug(pool, "acme")
    assert account is not None
    return account


@contextlib.asynccontextmanager
async def domain(settings: Settings, max_active: int = 1000) -> AsyncIterator[Exports]:
    async with exports_domain(settings.replace(exports={"max_active_exports": max_active}), enqueue=Recorded()) as ex:
        yield ex


async def exports_of(pool: asyncpg.Pool, schedule_id: uuid.UUID) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT id, idempotency_key, filters, status FROM export_jobs WHERE idempotency_key LIKE $1"
        " ORDER BY idempotency_key",
        f"schedule:{schedule_id}:%",
    )


async def test_two_runners_at_once_make_one_export_per_due_time(
    settings: Settings, pool: asyncpg.Pool, clean: None, acme: Account
) -> None:
    async with domain(settings) as one, domain(settings) as two:
        schedules = [await one.create_schedule(acme, YEARLY) for _ in range(8)]
        due = schedules[0].next_run_at
        assert due is not None and all(s.next_run_at == due for s in schedules)
        dues = []
        for _ in range(3):  # three due times, each looked at by both runners at the same moment
            dues.append(due)
            runs = await asyncio.gather(one.run_due_schedules(due), two.run_due_schedules(due))
            made = [r for batch in runs for r in batch]
            assert sorted(r.schedule_id for r in made) == sorted(s.id for s in schedules)
            assert {r.outcome for r in made} == {RunOutcome.SUBMITTED} and {r.due for r in made} == {due}
            assert await one.run_due_schedules(due) == [] == await two.run_due_schedules(due)  # nothing left
            after = await one.schedule(acme, schedules[0].id)
            assert after.next_run_at is not None and after.next_run_at > due
            due = after.next_run_at
        for schedule in schedules:
            rows = await exports_of(pool, schedule.id)
            assert [r["idempotency_key"] for r in rows] == sorted(run_key(schedule.id, d) for d in dues)
            current = await one.schedule(acme, schedule.id)
            assert current.last_outcome is RunOutcome.SUBMITTED and current.last_due_at == dues[-1]
            assert current.last_export_id == next(
                r["id"] for r in rows if r["idempotency_key"].endswith(dues[-1].isoformat())
            )


async def test_a_runner_that_died_after_submitting_leaves_no_second_export(
    settings: Settings, pool: asyncpg.Pool, clean: None, acme: Account
) -> None:
    async with domain(settings) as exports:
        schedule = await exports.create_schedule(acme, YEARLY)
        due = schedule.next_run_at
        assert due is not None
        # What a runner that died between its submit and its claim left behind: the export, and the due time.
        made = await exports.submit(
            acme, {"resource": "payroll", "format": "csv"}, idempotency_key=run_key(schedule.id, due)
        )
        [run] = await exports.run_due_schedules(due + dt.timedelta(seconds=5))
        assert (run.outcome, run.export_id) == (RunOutcome.SUBMITTED, made.job.id)
        assert [r["id"] for r in await exports_of(pool, schedule.id)] == [made.job.id]
        assert (await exports.schedule(acme, schedule.id)).next_run_at == due.replace(year=due.year + 1)


async def test_at_the_cap_a_due_time_waits_and_runs_once_a_place_is_free(
    settings: Settings, pool: asyncpg.Pool, clean: None, acme: Account
) -> None:
    async with domain(settings, max_active=1) as exports:
        schedule = await exports.create_schedule(acme, YEARLY)
        due = schedule.next_run_at
        assert due is not None
        busy = (await exports.submit(acme, {"resource": "payroll", "format": "csv"})).job

        [run] = await exports.run_due_schedules(due)
        assert run.outcome is RunOutcome.WAITING and run.export_id is None
        assert "already has 1 exports queued or running" in (run.error or "")
        waiting = await exports.schedule(acme, schedule.id)
        assert waiting.next_run_at == due  # still due: not dropped
        assert waiting.retry_at == due + dt.timedelta(seconds=30)
        assert waiting.last_outcome is RunOutcome.WAITING
        assert await exports.run_due_schedules(due + dt.timedelta(seconds=10)) == []  # backing off

        await exports.cancel(acme, busy.id)
        [run] = await exports.run_due_schedules(due + dt.timedelta(seconds=31))
        assert run.outcome is RunOutcome.SUBMITTED and run.due == due
        assert [r["id"] for r in await exports_of(pool, schedule.id)] == [run.export_id]
        ran = await exports.schedule(acme, schedule.id)
        assert (ran.retry_at, ran.last_error, ran.last_export_id) == (None, None, run.export_id)
        assert ran.next_run_at == due.replace(year=due.year + 1)


async def test_a_late_run_stands_for_the_due_times_it_missed(
    settings: Settings, pool: asyncpg.Pool, clean: None, acme: Account
) -> None:
    async with domain(settings) as exports:
        schedule = await exports.create_schedule(acme, {**YEARLY, "cron": "0 6 1 * *"})  # monthly
        due = schedule.next_run_at
        assert due is not None
        late = due + dt.timedelta(days=70)  # two more due times have passed meanwhile
        [run] = await exports.run_due_schedules(late)
        assert run.due == due
        assert await exports.run_due_schedules(late) == []
        after = await exports.schedule(acme, schedule.id)
        assert after.next_run_at is not None and late < after.next_run_at < late + dt.timedelta(days=32)


async def test_the_window_is_the_due_day_in_the_schedules_zone(
    settings: Settings, pool: asyncpg.Pool, clean: None, acme: Account
) -> None:
    body = {**YEARLY, "cron": "0 0 1 1 *", "window": {"kind": "previous_month"}, "filters": {"status": "paid"}}
    async with domain(settings) as exports:
        schedule = await exports.create_schedule(acme, body)
        due = schedule.next_run_at
        assert due is not None and (due.month, due.day, due.hour) == (12, 31, 23)  # midnight in Berlin, in UTC
        [run] = await exports.run_due_schedules(due)
        job = await exports.get(acme, run.export_id)  # type: ignore[arg-type]
        december = dt.date(due.year, 12, 1), dt.date(due.year, 12, 31)  # not November, as the UTC day would say
        assert (job.filters.date_from, job.filters.date_to) == december
        assert job.filters.status == "paid"


async def test_a_request_gone_bad_is_recorded_and_the_schedule_moves_on(
    settings: Settings, pool: asyncpg.Pool, clean: None, acme: Account
) -> None:
    async with domain(settings) as exports:
        schedule = await exports.create_schedule(acme, YEARLY)
        due = schedule.next_run_at
        assert due is not None
        # As if the catalog had dropped a column since the schedule was saved.
        await pool.execute(
            """UPDATE schedules SET export = export || '{"columns": ["gone"]}' WHERE id = $1""", schedule.id
        )
        [run] = await exports.run_due_schedules(due)
        assert run.outcome is RunOutcome.FAILED and run.export_id is None
        assert "unknown column(s) gone" in (run.error or "")
        after = await exports.schedule(acme, schedule.id)
        assert after.last_outcome is RunOutcome.FAILED and after.last_error == run.error
        assert after.next_run_at == due.replace(year=due.year + 1)
        assert await exports_of(pool, schedule.id) == []


async def test_paused_schedules_do_not_run(settings: Settings, pool: asyncpg.Pool, clean: None, acme: Account) -> None:
    async with domain(settings) as exports:
        schedule = await exports.create_schedule(acme, YEARLY)
        due = schedule.next_run_at
        assert due is not None
        await exports.update_schedule(acme, schedule.id, {"enabled": False})
        assert await exports.run_due_schedules(due + dt.timedelta(days=400)) == []


async def test_the_hubs_schedulers_run_a_due_schedule_once_as_a_normal_export(
    hub: Hub, pool: asyncpg.Pool, clean: None
) -> None:
    """End to end: `exporthub scheduler` sends the runner (worker/tasks.py periodic_work) to the workers;
    with a second scheduler and a second worker on the same queue, the due time still makes one export,
    which runs like any other and is the schedule's last run."""
    second = start_scheduler(hub.settings, LOG_DIR, "scheduler-2")
    worker = start_worker(hub.settings, LOG_DIR, "worker-2")
    with running(second, worker):
        async with hub.client("acme") as api:
            created = await api.post("/api/v1/schedules", json={**YEARLY, "window": {"kind": "previous_month"}})
            assert created.status_code == 201, created.text
            schedule_id = created.json()["id"]
            # Due now, rather than on 1 January: what the runners see when that day comes.
            await pool.execute("UPDATE schedules SET next_run_at = now() WHERE id = $1", uuid.UUID(schedule_id))

            async def last_run() -> dict[str, Any] | None:
                body = (await api.get(f"/api/v1/schedules/{schedule_id}")).json()
                return body["lastRun"] if body["lastRun"] and body["lastRun"]["exportId"] else None

            run = await wait_for_async(last_run, 30, "the schedule's first run")
            assert run["outcome"] == "submitted" and run["error"] is None
            export = await wait_status(api, run["exportId"])
            assert export["status"] == "completed", export
            assert export["filters"]["dateFrom"].endswith("-01")
            await asyncio.sleep(3 * hub.settings.recovery.sweep_interval_seconds)  # a quiet window: no second run
            assert len(await exports_of(pool, uuid.UUID(schedule_id))) == 1
            listed = (await api.get("/api/v1/exports")).json()["items"]
            assert run["exportId"] in [e["id"] for e in listed]  # a normal export of the account


async def test_a_disabled_accounts_schedules_do_not_run(settings: Settings, pool: asyncpg.Pool, clean: None) -> None:
    slug = f"sched-{uuid.uuid4().hex[:8]}"
    details = await create_account(pool, slug, "Scheduled Ltd")
    account = await account_by_slug(pool, slug)
    assert account is not None and account.id == details.id
    try:
        async with domain(settings) as exports:
            schedule = await exports.create_schedule(account, YEARLY)
            async with pool.acquire() as conn:
                await disable_account(conn, slug)
            assert schedule.next_run_at is not None
            assert await exports.run_due_schedules(schedule.next_run_at) == []
    finally:
        await pool.execute("DELETE FROM accounts WHERE id = $1", account.id)  # its schedule goes with it
