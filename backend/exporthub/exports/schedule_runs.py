"""The schedule runner: each due time of each schedule becomes one export, once, however many
runners look at once. The periodic task `exporthub.run_due_schedules` calls it through
`Exports.run_due_schedules`, which passes in its own submit path.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from typing import Any, Protocol

import asyncpg

from exporthub.accounts import Account
from exporthub.errors import Conflict, InvalidRequest, ResourceNotAllowed, TooManyActiveExports, TooManyExportsStarted
from exporthub.exports import unscoped
from exporthub.exports.account_scope import AccountScope
from exporthub.exports.cron import CronInvalid, next_due, parse_cron, parse_zone
from exporthub.exports.models import ExportJob
from exporthub.exports.schedules import RunOutcome, Schedule, run_key, run_request

log = logging.getLogger(__name__)


class Submitted(Protocol):
    @property
    def job(self) -> ExportJob: ...


class Submit(Protocol):
    """Exports.submit: validate, record, enqueue."""

    async def __call__(self, account: Account, body: Any, *, idempotency_key: str | None = None) -> Submitted: ...


@dataclasses.dataclass(frozen=True, slots=True)
class ScheduleRun:
    """One due time of one schedule, as the runner left it."""

    schedule_id: uuid.UUID
    due: dt.datetime
    outcome: RunOutcome
    export_id: uuid.UUID | None
    error: str | None


SCHEDULE_ERROR_RETRY_SECONDS = 60  # a submit that failed for a reason of ours (a database away) is tried again


async def run_due_schedules(
    pool: asyncpg.Pool, submit: Submit, now: dt.datetime, *, limit: int = 100
) -> list[ScheduleRun]:
    """Submit the export of each schedule whose due time has come, once per due time however many
    runners look at once: a runner holds the schedule's row (FOR UPDATE SKIP LOCKED: the others pass
    it by) while it submits, and moves the due time on before letting go. A runner that dies between
    the two leaves the due time to the next, whose submit carries the same Idempotency-Key (derived
    from the schedule and the due time) and so finds the export already made instead of a second.

    The export goes through `submit` (Exports.submit), like any other: it counts against the account's cap, shows in
    the console and calls its webhook. At the cap, the due time stays due and is tried again after
    the cap's Retry-After. Due times that passed meanwhile (a long wait, no scheduler running) are
    not run one by one: the late run stands for them, and the next is the first due time after it."""
    now = now or dt.datetime.now(dt.UTC)
    runs = []
    for schedule_id in await unscoped.due_schedules(pool, now=now, limit=limit):
        async with pool.acquire() as conn, conn.transaction():
            row = await unscoped.lock_due_schedule(conn, schedule_id, now=now)
            if row is None:  # another runner has it, or ran it
                continue
            schedule = Schedule.from_record(row)
            account = Account(schedule.account_id, row["slug"], row["account_name"], row["tenant_key"])
            run, next_run_at, retry_at = await _run_schedule(conn, submit, account, schedule, now)
            await unscoped.record_schedule_run(
                conn,
                schedule.id,
                run.due,
                now=now,
                outcome=run.outcome.value,
                export_id=run.export_id,
                error=run.error,
                next_run_at=next_run_at,
                retry_at=retry_at,
            )
        log.info("schedule %s due %s: %s %s", schedule.id, run.due.isoformat(), run.outcome, run.export_id or "")
        runs.append(run)
    return runs


async def _run_schedule(
    conn: asyncpg.Connection, submit: Submit, account: Account, schedule: Schedule, now: dt.datetime
) -> tuple[ScheduleRun, dt.datetime, dt.datetime | None]:
    """Submit one due time's export. Returns the run, the next due time and when to try again."""
    due = schedule.next_run_at
    assert due is not None
    try:
        cron, zone = parse_cron(schedule.cron), parse_zone(schedule.time_zone)
    except CronInvalid as exc:  # checked when saved; only a change of the zone database could do this
        far = now + dt.timedelta(days=1)
        return ScheduleRun(schedule.id, due, RunOutcome.FAILED, None, str(exc)), far, far
    key = run_key(schedule.id, due)
    outcome, export_id, error, retry_at = RunOutcome.SUBMITTED, None, None, None
    try:
        made = await AccountScope(conn, account.id).jobs.by_idempotency_key(key)
        if made is not None:  # a runner that died after submitting: its export is this due time's
            export_id = made["id"]
        else:
            body = run_request(schedule.export, schedule.window, due.astimezone(zone).date(), schedule.time_zone)
            export_id = (await submit(account, body, idempotency_key=key)).job.id
    except (TooManyActiveExports, TooManyExportsStarted) as exc:  # the cap or the start rate: later
        outcome, error = RunOutcome.WAITING, str(exc)
        retry_at = now + dt.timedelta(seconds=exc.retry_after)
    except (InvalidRequest, ResourceNotAllowed, Conflict) as exc:
        outcome, error = RunOutcome.FAILED, str(exc)
    except Exception:
        log.exception("schedule %s: could not submit the export due %s; trying again", schedule.id, due)
        outcome, error = RunOutcome.WAITING, "the export could not be submitted just now; trying again shortly"
        retry_at = now + dt.timedelta(seconds=SCHEDULE_ERROR_RETRY_SECONDS)
    next_run_at = due if outcome is RunOutcome.WAITING else next_due(cron, zone, max(due, now))
    return ScheduleRun(schedule.id, due, outcome, export_id, error), next_run_at, retry_at
