"""The statements that act on every account's rows: the worker's on export_jobs (claim, lease,
finish), the sweeps' (recover, expire, missed webhook events, retention) and the schedule runner's
(due schedules, held and claimed one at a time). Nothing here is reached from a client's request; what
an account does with its own jobs and schedules goes through account_scope.py.

A run holds a lease (`lease_expires_at`) that it renews while working; `attempts` counts claims and
doubles as a fencing token, so a worker whose lease was taken over can no longer write.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, TypeAlias

import asyncpg

from exporthub.exports.models import ExportJob, ExportStatus

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool


async def get_job(conn: Conn, job_id: uuid.UUID) -> ExportJob | None:
    """For the worker, and for a signed download link (its signature names the job)."""
    row = await conn.fetchrow("SELECT * FROM export_jobs WHERE id = $1", job_id)
    return ExportJob.from_record(row) if row else None


async def claim_job(conn: Conn, job_id: uuid.UUID, lease_seconds: int) -> ExportJob | None:
    """Start a run: only a queued job, or a processing one whose lease ran out, can be claimed."""
    row = await conn.fetchrow(
        """
        UPDATE export_jobs
           SET status = 'processing', attempts = attempts + 1,
               lease_expires_at = now() + make_interval(secs => $2),
               started_at = coalesce(started_at, now()),
               processed_rows = 0, progress = 0
         WHERE id = $1 AND NOT cancel_requested
           AND (status = 'queued' OR (status = 'processing' AND lease_expires_at < now()))
        RETURNING *
        """,
        job_id,
        lease_seconds,
    )
    return ExportJob.from_record(row) if row else None


# Claims are serialised (one short transaction each, per export started): the per-account limit then
# holds across every worker process, and two slots freed at once go to two different accounts.
FAIR_CLAIM_LOCK = 0x6661697263  # "fairc"

# The next export to start, fairly across accounts. The accounts with exports waiting take turns
# from the moment the last of them began to wait (`since`: its oldest queued export's submit):
#   1. the account that has started the fewest exports since then goes first: one whose exports ran
#      on a slower worker catches up, rather than keeping only the one slot it got;
#   2. then the one with the fewest running;
#   3. then the one that started an export least recently (round-robin);
#   4. within an account, its oldest queued export.
# Counting from `since`, and not from further back, gives an account that arrives no credit for the
# time it had nothing queued. An account at `$1` running exports waits while another account under
# its limit has work queued.
_FAIREST = """
    WITH running AS (
        SELECT account_id, count(*)::int AS n FROM export_jobs
         WHERE status = 'processing' AND lease_expires_at > now()
         GROUP BY account_id
    ), heads AS (
        SELECT DISTINCT ON (j.account_id) j.id, j.account_id, j.created_at, coalesce(r.n, 0) AS running
          FROM export_jobs j LEFT JOIN running r USING (account_id)
         WHERE j.status = 'queued' AND NOT j.cancel_requested
         ORDER BY j.account_id, j.created_at, j.id
    ), since AS (
        SELECT max(created_at) AS t FROM heads
    )
    SELECT h.id FROM heads h
     WHERE h.running < $1 OR NOT EXISTS (SELECT 1 FROM heads o WHERE o.running < $1)
     ORDER BY (SELECT count(*) FROM export_jobs s
                WHERE s.account_id = h.account_id AND s.started_at >= (SELECT t FROM since)),
              h.running,
              (SELECT max(s.started_at) FROM export_jobs s WHERE s.account_id = h.account_id) NULLS FIRST,
              h.created_at, h.id
     LIMIT 1
"""


async def claim_fair(
    conn: asyncpg.Connection, job_id: uuid.UUID, lease_seconds: int, *, per_account: int
) -> tuple[ExportJob | None, bool]:
    """Start a run for the queue message of `job_id`. Returns (the export started, if any; whether
    `job_id` was passed over and still waits, so that the caller sends its message again).

    - `job_id` whose run was cut short (its lease ran out): that export runs again.
    - `job_id` still queued: the fairest queued export starts (_FAIREST), perhaps another account's;
      the message then stands for `job_id` no more, and the passed-over export needs a new one.
    - `job_id` running, ended or cancelled: nothing (a message sent twice, or a stale one).
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", FAIR_CLAIM_LOCK)
        named = await conn.fetchrow(
            "SELECT status, lease_expires_at < now() AS lapsed, cancel_requested FROM export_jobs WHERE id = $1",
            job_id,
        )
        if named is None or named["cancel_requested"]:
            return None, False
        if named["status"] == "processing" and named["lapsed"]:
            return await claim_job(conn, job_id, lease_seconds), False
        if named["status"] != "queued":
            return None, False
        chosen = await conn.fetchval(_FAIREST, per_account)  # never None: job_id itself is queued
        job = await claim_job(conn, chosen, lease_seconds)
        return job, chosen != job_id


async def fair_queue_position(conn: Conn, job: ExportJob) -> int:
    """1 for the export that starts next, in the order claim_fair gives free slots (no slot freeing
    meanwhile). An account that has started s exports since `since` has its k-th queued export in
    round s + k: each claim adds one to both its starts and its running count, so within a round
    claim_fair's "fewer started, then fewer running" comes down to running minus started, and its
    "served least recently" to: accounts whose turn began in a later round first (they were served
    longest ago), then by their last start before the queue, then the older export. A count across
    accounts; no other row is read out."""
    return (
        await conn.fetchval(
            """
        WITH running AS (
            SELECT account_id, count(*)::int AS n FROM export_jobs
             WHERE status = 'processing' AND lease_expires_at > now()
             GROUP BY account_id
        ), waiting AS (
            SELECT j.id, j.account_id, j.created_at,
                   row_number() OVER (PARTITION BY j.account_id ORDER BY j.created_at, j.id) AS k
              FROM export_jobs j
             WHERE j.status = 'queued' AND NOT j.cancel_requested
        ), since AS (
            SELECT max(created_at) AS t FROM waiting WHERE k = 1
        ), accounts AS (
            SELECT a.account_id, coalesce(r.n, 0) AS running,
                   (SELECT count(*) FROM export_jobs s
                     WHERE s.account_id = a.account_id AND s.started_at >= (SELECT t FROM since)) AS started,
                   (SELECT max(s.started_at) FROM export_jobs s WHERE s.account_id = a.account_id) AS last_start
              FROM (SELECT DISTINCT account_id FROM waiting) a LEFT JOIN running r USING (account_id)
        ), ranked AS (
            SELECT w.id, row_number() OVER (
                       ORDER BY a.started + w.k, a.running - a.started, a.started DESC,
                                a.last_start NULLS FIRST, w.created_at, w.id) AS position
              FROM waiting w JOIN accounts a USING (account_id)
        )
        SELECT position FROM ranked WHERE id = $1
        """,
            job.id,
        )
        or 1
    )


async def renew_lease(
    conn: Conn,
    job: ExportJob,
    *,
    processed_rows: int,
    total_rows: int | None,
    progress: int,
    lease_seconds: int,
) -> bool | None:
    """Record progress and extend the lease. Returns cancel_requested, or None if the run lost its claim."""
    return await conn.fetchval(
        """
        UPDATE export_jobs
           SET processed_rows = $3, total_rows = $4, progress = $5,
               lease_expires_at = now() + make_interval(secs => $6)
         WHERE id = $1 AND attempts = $2 AND status = 'processing'
        RETURNING cancel_requested
        """,
        job.id,
        job.attempts,
        processed_rows,
        total_rows,
        progress,
        lease_seconds,
    )


async def finish_completed(
    conn: Conn,
    job: ExportJob,
    *,
    rows: int,
    file_key: str,
    file_name: str,
    file_size: int,
    sha256: str,
    link_ttl_seconds: int,
) -> ExportJob | None:
    row = await conn.fetchrow(
        """
        UPDATE export_jobs
           SET status = 'completed', progress = 100, processed_rows = $3, total_rows = $3,
               file_key = $4, file_name = $5, file_size = $6, file_sha256 = $8, completed_at = now(),
               expires_at = now() + make_interval(secs => $7), lease_expires_at = NULL
         WHERE id = $1 AND attempts = $2 AND status = 'processing' AND NOT cancel_requested
        RETURNING *
        """,
        job.id,
        job.attempts,
        rows,
        file_key,
        file_name,
        file_size,
        link_ttl_seconds,
        sha256,
    )
    return ExportJob.from_record(row) if row else None


async def finish_unsuccessful(
    conn: Conn, job: ExportJob, status: ExportStatus, error_message: str | None = None
) -> ExportJob | None:
    row = await conn.fetchrow(
        """
        UPDATE export_jobs
           SET status = $3, error_message = $4, completed_at = now(), lease_expires_at = NULL
         WHERE id = $1 AND attempts = $2 AND status = 'processing'
        RETURNING *
        """,
        job.id,
        job.attempts,
        status.value,
        error_message,
    )
    return ExportJob.from_record(row) if row else None


async def recover_stale(
    conn: asyncpg.Connection, *, max_claims: int, requeue_after_seconds: int
) -> tuple[list[uuid.UUID], list[ExportJob]]:
    """Find work a dead worker or a lost queue message left behind.

    Returns (ids to enqueue again, jobs that ended here: failed after too many claims, or cancelled).
    """
    async with conn.transaction():
        ended = await conn.fetch(
            """
            UPDATE export_jobs
               SET status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'failed' END,
                   error_message = CASE WHEN cancel_requested THEN NULL ELSE
                       'the export stopped its worker ' || attempts || ' times; '
                       || 'try fewer rows or columns, or contact support' END,
                   completed_at = now(), lease_expires_at = NULL
             WHERE status = 'processing' AND lease_expires_at < now()
               AND (cancel_requested OR attempts >= $1)
            RETURNING *
            """,
            max_claims,
        )
        requeued = await conn.fetch(
            """
            UPDATE export_jobs
               SET status = 'queued', lease_expires_at = NULL, enqueued_at = now()
             WHERE (status = 'processing' AND lease_expires_at < now())
                OR (status = 'queued' AND NOT cancel_requested
                    AND enqueued_at < now() - make_interval(secs => $1))
            RETURNING id
            """,
            requeue_after_seconds,
        )
    return [r["id"] for r in requeued], [ExportJob.from_record(r) for r in ended]


async def claim_expired(conn: asyncpg.Connection, *, limit: int) -> list[tuple[ExportJob, bool]]:
    """Inside the caller's transaction: mark completed exports past their expiry `expired`, and pick up
    expired ones whose file is still there (a sweep that died half-way). Returns (job, newly expired).

    The rows stay locked until the transaction ends and other sweeps skip them, so the caller deletes
    the files, calls `forget_files`, then commits: a sweep that dies leaves the rows to the next one.
    """
    rows = await conn.fetch(
        """
        UPDATE export_jobs j
           SET status = 'expired'
          FROM (SELECT id, status AS old_status FROM export_jobs
                 WHERE status IN ('completed', 'expired') AND file_key IS NOT NULL AND expires_at <= now()
                 ORDER BY expires_at
                 LIMIT $1
                 FOR UPDATE SKIP LOCKED) due
         WHERE j.id = due.id
        RETURNING j.*, due.old_status
        """,
        limit,
    )
    return [(ExportJob.from_record(r), r["old_status"] == "completed") for r in rows]


async def forget_files(conn: Conn, job_ids: list[uuid.UUID]) -> None:
    """The files of these expired exports are deleted: file_key NULL means "no file any more"."""
    await conn.execute(
        "UPDATE export_jobs SET file_key = NULL WHERE id = ANY($1::uuid[]) AND status = 'expired'", job_ids
    )


async def finished_without_event(conn: Conn, *, window_seconds: float, limit: int) -> list[ExportJob]:
    """Exports that ended with a webhook but have no event: cancelled while queued, or the worker died."""
    rows = await conn.fetch(
        """
        SELECT j.* FROM export_jobs j
         WHERE j.webhook_url IS NOT NULL
           AND j.completed_at > now() - make_interval(secs => $1)
           AND j.status IN ('completed', 'failed', 'cancelled')
           AND NOT EXISTS (SELECT 1 FROM webhook_events e WHERE e.export_id = j.id)
         ORDER BY j.completed_at
         LIMIT $2
        """,
        float(window_seconds),
        limit,
    )
    return [ExportJob.from_record(r) for r in rows]


# --- retention (exports/retention.py): one short statement per batch, so no lock is held for long -----


async def delete_old_downloads(conn: Conn, *, older_than_seconds: float, limit: int) -> int:
    """Delete at most `limit` download records older than this, oldest first; returns how many."""
    status = await conn.execute(
        """
        DELETE FROM export_downloads d
         USING (SELECT id FROM export_downloads
                 WHERE downloaded_at < now() - make_interval(secs => $1)
                 ORDER BY downloaded_at
                 LIMIT $2
                 FOR UPDATE SKIP LOCKED) old
         WHERE d.id = old.id
        """,
        float(older_than_seconds),
        limit,
    )
    return _deleted(status)


async def delete_old_webhook_events(conn: Conn, *, older_than_seconds: float, limit: int) -> int:
    """Delete at most `limit` finished webhook events (delivered or failed) recorded longer ago than
    this, with their attempts (ON DELETE CASCADE); pending ones are never touched. Returns how many."""
    status = await conn.execute(
        """
        DELETE FROM webhook_events e
         USING (SELECT id FROM webhook_events
                 WHERE state <> 'pending' AND created_at < now() - make_interval(secs => $1)
                 ORDER BY created_at
                 LIMIT $2
                 FOR UPDATE SKIP LOCKED) old
         WHERE e.id = old.id
        """,
        float(older_than_seconds),
        limit,
    )
    return _deleted(status)


def _deleted(status: str) -> int:
    """The row count of asyncpg's command tag, "DELETE 42"."""
    return int(status.rsplit(" ", 1)[-1])


# --- scheduled exports: the runner's statements (Exports.run_due_schedules) ----------------------------

_DUE = """
    s.enabled AND s.next_run_at <= $1 AND (s.retry_at IS NULL OR s.retry_at <= $1) AND a.disabled_at IS NULL
"""


async def due_schedules(conn: Conn, *, now: dt.datetime, limit: int) -> list[uuid.UUID]:
    """Schedules whose due time has come (and whose wait, if any, is over), earliest first."""
    rows = await conn.fetch(
        f"SELECT s.id FROM schedules s JOIN accounts a ON a.id = s.account_id WHERE {_DUE}"
        " ORDER BY s.next_run_at LIMIT $2",
        now,
        limit,
    )
    return [r["id"] for r in rows]


async def lock_due_schedule(conn: asyncpg.Connection, schedule_id: uuid.UUID, *, now: dt.datetime) -> Any:
    """Inside the caller's transaction: the schedule with its account (slug, account_name, tenant_key),
    held until the transaction ends, if it is still due; None if another runner holds it or has moved
    its due time on meanwhile (PostgreSQL re-reads a row updated since the statement began)."""
    return await conn.fetchrow(
        "SELECT s.*, a.slug, a.name AS account_name, a.tenant_key FROM schedules s JOIN accounts a"
        f" ON a.id = s.account_id WHERE {_DUE} AND s.id = $2 FOR UPDATE OF s SKIP LOCKED",
        now,
        schedule_id,
    )


async def record_schedule_run(
    conn: Conn,
    schedule_id: uuid.UUID,
    due: dt.datetime,
    *,
    now: dt.datetime,
    outcome: str,
    export_id: uuid.UUID | None,
    error: str | None,
    next_run_at: dt.datetime,
    retry_at: dt.datetime | None,
) -> bool:
    """Claim the due time: move next_run_at on (or keep it, with retry_at, for a run that waits) and
    record the run. Only the holder of `due` can: False if the schedule moved on meanwhile."""
    updated = await conn.fetchval(
        """
        UPDATE schedules
           SET next_run_at = $4, retry_at = $5, last_due_at = $2, last_run_at = $3, last_outcome = $6,
               last_error = $7, last_export_id = coalesce($8, last_export_id)
         WHERE id = $1 AND next_run_at = $2
        RETURNING id
        """,
        schedule_id,
        due,
        now,
        next_run_at,
        retry_at,
        outcome,
        error,
        export_id,
    )
    return updated is not None
