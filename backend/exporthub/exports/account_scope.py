"""Everything an account does with ExportHub's own rows goes through `AccountScope(conn, account_id)`.

Every statement here is bound to the account the scope was made for: no method takes an account id,
so a handler cannot ask for another account's export, secret or deliveries by mistake. Another
account's id is exactly as unknown as an id that never existed. The rows of the exported data (the
catalog's tables) are scoped by exports/query.py `tenant_scope`; the statements that act on every
account's jobs (the worker's, the sweeps') live apart, in unscoped.py. tests/unit/test_tenant_scope.py
holds the code to this.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Sequence
from typing import Any, TypeAlias

import asyncpg

from exporthub.exports.downloads import DownloadPage, DownloadRecord, DownloadSummary, Requester
from exporthub.exports.models import ExportFormat, ExportJob, ExportRequest, ExportStatus
from exporthub.exports.schedules import Schedule, ScheduleSpec
from exporthub.settings import Rate
from exporthub.webhooks.signing import generate_secret
from exporthub.webhooks.store import ensure_secret

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool


@dataclasses.dataclass(frozen=True, slots=True)
class WebhookSecret:
    secret: str
    created_at: dt.datetime
    previous_expires_at: dt.datetime | None  # None when no previous secret signs any more


@dataclasses.dataclass(frozen=True, slots=True)
class AccountJobs:
    """The account's rows of export_jobs."""

    conn: Conn
    account_id: uuid.UUID

    async def lock(self) -> Rate | None:
        """Serialise submits of this account until the transaction ends (the active-export cap).
        Returns the account's own start rate (None: the deployment's), read under the same lock."""
        row = await self.conn.fetchrow(
            "SELECT start_rate_limit, start_rate_window_seconds FROM accounts WHERE id = $1 FOR UPDATE",
            self.account_id,
        )
        if row is None or row["start_rate_limit"] is None:
            return None
        return Rate(row["start_rate_limit"], row["start_rate_window_seconds"])

    async def submit_state(self) -> tuple[Rate | None, int]:
        """The account's own start rate (None: the deployment's) and its active exports, as they are
        now (nothing locked: `insert_within_cap` checks the cap exactly). Makes the account's row of
        account_active_exports if it has none yet (a new account; the seeder's bypass triggers)."""
        row = await self.conn.fetchrow(
            "SELECT a.start_rate_limit, a.start_rate_window_seconds, c.active"
            " FROM accounts a LEFT JOIN account_active_exports c ON c.account_id = $1 WHERE a.id = $1",
            self.account_id,
        )
        if row is None:
            return None, 0
        active = row["active"]
        if active is None:
            active = await self.conn.fetchval(
                "INSERT INTO account_active_exports (account_id, active)"
                " SELECT $1, count(*) FROM export_jobs WHERE account_id = $1 AND status IN ('queued', 'processing')"
                " ON CONFLICT (account_id) DO UPDATE SET active = account_active_exports.active RETURNING active",
                self.account_id,
            )
        limit = row["start_rate_limit"]
        return (Rate(limit, row["start_rate_window_seconds"]) if limit is not None else None), active

    async def insert(self, request: ExportRequest, *, idempotency_key: str | None) -> ExportJob:
        """Record a queued export, whatever the cap (tests, the bench): submits use `insert_within_cap`."""
        row = await self.conn.fetchrow(
            """
            INSERT INTO export_jobs (id, account_id, resource, format, filters, columns, options,
                                     webhook_url, idempotency_key, request_hash, enqueued_at, time_zone)
            VALUES ($2, $1, $3, $4, $5, $6, $7, $8, $9, $10, now(),
                    coalesce($11, (SELECT time_zone FROM accounts WHERE id = $1)))
            RETURNING *
            """,
            self.account_id,
            *_inserted_values(request, idempotency_key),
        )
        return ExportJob.from_record(row)

    async def insert_within_cap(
        self, request: ExportRequest, *, idempotency_key: str | None, max_active: int
    ) -> ExportJob | None:
        """Record a queued export if the account has fewer than `max_active` active ones; else None.

        One statement: it locks the account's row of account_active_exports (migration 0014; kept by
        triggers on export_jobs), which a concurrent submit of the account waits for; PostgreSQL then
        checks `active < max_active` again on the row as that submit left it (READ COMMITTED
        re-evaluates a locked row's condition), so the cap holds exactly. The insert's trigger adds
        one to the same locked row. Other accounts' submits lock other rows.
        Raises asyncpg.UniqueViolationError if another submit took `idempotency_key` meanwhile."""
        row = await self.conn.fetchrow(
            """
            WITH slot AS (
                SELECT account_id FROM account_active_exports
                 WHERE account_id = $1 AND active < $12
                   FOR UPDATE
            )
            INSERT INTO export_jobs (id, account_id, resource, format, filters, columns, options,
                                     webhook_url, idempotency_key, request_hash, enqueued_at, time_zone)
            SELECT $2, account_id, $3, $4, $5, $6, $7, $8, $9, $10, now(),
                   coalesce($11, (SELECT time_zone FROM accounts WHERE id = $1))
              FROM slot
            RETURNING *
            """,
            self.account_id,
            *_inserted_values(request, idempotency_key),
            max_active,
        )
        return ExportJob.from_record(row) if row else None

    async def default_time_zone(self) -> str:
        """The zone of the account's exports that name none (`exporthub accounts set-timezone`)."""
        return await self.conn.fetchval("SELECT time_zone FROM accounts WHERE id = $1", self.account_id) or "UTC"

    async def get(self, job_id: uuid.UUID) -> ExportJob | None:
        row = await self.conn.fetchrow(
            "SELECT * FROM export_jobs WHERE account_id = $1 AND id = $2", self.account_id, job_id
        )
        return ExportJob.from_record(row) if row else None

    async def recent(self, *, limit: int, status: ExportStatus | None = None) -> list[ExportJob]:
        rows = await self.conn.fetch(
            "SELECT * FROM export_jobs WHERE account_id = $1 AND ($2::text IS NULL OR status = $2)"
            " ORDER BY created_at DESC, id DESC LIMIT $3",
            self.account_id,
            status.value if status else None,
            limit,
        )
        return [ExportJob.from_record(r) for r in rows]

    async def page(
        self,
        *,
        before: tuple[dt.datetime, uuid.UUID],
        limit: int,
        status: ExportStatus | None = None,
        resource: str | None = None,
        format: ExportFormat | None = None,
    ) -> list[ExportJob]:
        """Newest first, strictly older than `before` (created_at, id): one range of the account's index."""
        rows = await self.conn.fetch(
            """
            SELECT * FROM export_jobs
             WHERE account_id = $1 AND (created_at, id) < ($2, $3)
               AND ($4::text IS NULL OR status = $4)
               AND ($5::text IS NULL OR resource = $5)
               AND ($6::text IS NULL OR format = $6)
             ORDER BY created_at DESC, id DESC
             LIMIT $7
            """,
            self.account_id,
            *before,
            status.value if status else None,
            resource,
            format.value if format else None,
            limit,
        )
        return [ExportJob.from_record(r) for r in rows]

    async def by_idempotency_key(self, key: str) -> asyncpg.Record | None:
        """The export submitted with this key, with its `age`."""
        return await self.conn.fetchrow(
            "SELECT *, now() - created_at AS age FROM export_jobs WHERE account_id = $1 AND idempotency_key = $2",
            self.account_id,
            key,
        )

    async def release_idempotency_key(self, job_id: uuid.UUID) -> None:
        await self.conn.execute(
            "UPDATE export_jobs SET idempotency_key = NULL WHERE account_id = $1 AND id = $2", self.account_id, job_id
        )

    async def count_active(self) -> int:
        return await self.conn.fetchval(
            "SELECT count(*) FROM export_jobs WHERE account_id = $1 AND status IN ('queued', 'processing')",
            self.account_id,
        )

    async def cancel(self, job_id: uuid.UUID) -> ExportJob | None:
        """Cancel one export (see _CANCEL); None if the account has no such active export."""
        row = await self.conn.fetchrow(_CANCEL + " AND id = $2 RETURNING *", self.account_id, job_id)
        return ExportJob.from_record(row) if row else None

    async def cancel_all(self) -> list[ExportJob]:
        """Every queued or processing export of the account (a disabled account's), cancelled alike."""
        rows = await self.conn.fetch(_CANCEL + " RETURNING *", self.account_id)
        return [ExportJob.from_record(r) for r in rows]


def _inserted_values(request: ExportRequest, idempotency_key: str | None) -> tuple[Any, ...]:
    """$2..$11 of the inserts ($1 is the account)."""
    return (
        uuid.uuid4(),
        request.resource,
        request.format.value,
        json.dumps(request.filters.to_json()),
        list(request.columns),
        json.dumps(request.options()),
        request.webhook_url,
        idempotency_key,
        request.fingerprint(),
        request.time_zone,  # None: the account's default, as it is now
    )


# A queued job is cancelled at once; a processing one is flagged and stops at its next batch.
_CANCEL = """
    UPDATE export_jobs
       SET cancel_requested = true,
           status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END,
           completed_at = CASE WHEN status = 'queued' THEN now() ELSE completed_at END
     WHERE account_id = $1 AND status IN ('queued', 'processing')
"""


@dataclasses.dataclass(frozen=True, slots=True)
class AccountWebhooks:
    """The account's webhook signing secret, and the events and attempts of its exports."""

    conn: Conn
    account_id: uuid.UUID

    async def secret(self) -> WebhookSecret:
        """The current secret, made on first need."""
        await ensure_secret(self.conn, self.account_id)
        row = await self.conn.fetchrow(
            "SELECT *, now() AS now FROM webhook_secrets WHERE account_id = $1", self.account_id
        )
        return _secret(row)

    async def rotate_secret(self, *, grace_seconds: int) -> WebhookSecret:
        """A new secret; the one it replaces keeps signing (alongside) for `grace_seconds`."""
        row = await self.conn.fetchrow(
            """
            INSERT INTO webhook_secrets (account_id, secret) VALUES ($1, $2)
            ON CONFLICT (account_id) DO UPDATE
               SET previous_secret = webhook_secrets.secret,
                   previous_expires_at = now() + make_interval(secs => $3),
                   secret = EXCLUDED.secret, created_at = now()
            RETURNING *, now() AS now
            """,
            self.account_id,
            generate_secret(),
            grace_seconds,
        )
        return _secret(row)

    async def events(self, export_id: uuid.UUID) -> list[asyncpg.Record]:
        return await self.conn.fetch(
            "SELECT id, event, url, state, attempts, next_attempt_at, created_at, finished_at FROM webhook_events"
            " WHERE account_id = $1 AND export_id = $2 ORDER BY created_at, id",
            self.account_id,
            export_id,
        )

    async def attempts(self, export_id: uuid.UUID) -> list[asyncpg.Record]:
        return await self.conn.fetch(
            "SELECT a.*, e.event FROM webhook_attempts a JOIN webhook_events e ON e.id = a.event_id"
            " WHERE a.account_id = $1 AND a.export_id = $2 ORDER BY a.attempted_at, a.attempt",
            self.account_id,
            export_id,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class AccountSchedules:
    """The account's scheduled exports. Their runs are the worker's (unscoped.py)."""

    conn: Conn
    account_id: uuid.UUID

    async def count(self) -> int:
        return await self.conn.fetchval("SELECT count(*) FROM schedules WHERE account_id = $1", self.account_id)

    async def insert(self, spec: ScheduleSpec, *, next_run_at: dt.datetime | None) -> Schedule:
        row = await self.conn.fetchrow(
            """
            INSERT INTO schedules (account_id, id, name, export, cron, time_zone, date_window, enabled, next_run_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            RETURNING *
            """,
            self.account_id,
            uuid.uuid4(),
            *_spec_values(spec),
            next_run_at,
        )
        return Schedule.from_record(row)

    async def get(self, schedule_id: uuid.UUID) -> Schedule | None:
        row = await self.conn.fetchrow(
            "SELECT * FROM schedules WHERE account_id = $1 AND id = $2", self.account_id, schedule_id
        )
        return Schedule.from_record(row) if row else None

    async def all(self) -> list[Schedule]:
        rows = await self.conn.fetch(
            "SELECT * FROM schedules WHERE account_id = $1 ORDER BY created_at, id", self.account_id
        )
        return [Schedule.from_record(r) for r in rows]

    async def update(
        self, schedule_id: uuid.UUID, spec: ScheduleSpec, *, reschedule: bool, next_run_at: dt.datetime | None
    ) -> Schedule | None:
        """Replace the schedule's fields. Its due time changes only with `reschedule` (a new cron, zone
        or enabled): otherwise the runner's (the row as it is now, never as read before) stands."""
        row = await self.conn.fetchrow(
            """
            UPDATE schedules
               SET name = $3, export = $4, cron = $5, time_zone = $6, date_window = $7, enabled = $8,
                   next_run_at = CASE WHEN $9 THEN $10 ELSE next_run_at END,
                   retry_at = CASE WHEN $9 THEN NULL ELSE retry_at END,
                   updated_at = now()
             WHERE account_id = $1 AND id = $2
            RETURNING *
            """,
            self.account_id,
            schedule_id,
            *_spec_values(spec),
            reschedule,
            next_run_at,
        )
        return Schedule.from_record(row) if row else None

    async def delete(self, schedule_id: uuid.UUID) -> bool:
        deleted = await self.conn.fetchval(
            "DELETE FROM schedules WHERE account_id = $1 AND id = $2 RETURNING id", self.account_id, schedule_id
        )
        return deleted is not None


@dataclasses.dataclass(frozen=True, slots=True)
class AccountDownloads:
    """The download audit of the account's exports (exports/downloads.py)."""

    conn: Conn
    account_id: uuid.UUID

    async def record(
        self,
        export_id: uuid.UUID,
        requester: Requester,
        *,
        redirected: bool,
        client_ip: str | None,
        user_agent: str | None,
    ) -> None:
        await self.conn.execute(
            """
            INSERT INTO export_downloads (account_id, export_id, via, api_key_id, console_session_id,
                                          redirected, client_ip, user_agent)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            """,
            self.account_id,
            export_id,
            requester.via.value,
            requester.api_key_id,
            requester.console_session_id,
            redirected,
            client_ip,
            user_agent,
        )

    async def page(self, export_id: uuid.UUID, *, limit: int, before: int | None = None) -> DownloadPage:
        """The export's downloads, newest first, older than the record `before` (the cursor)."""
        rows = await self.conn.fetch(
            """
            SELECT d.id, d.downloaded_at, d.via, d.redirected, d.client_ip, d.user_agent,
                   k.prefix AS key_prefix, k.label AS key_name, s.created_at AS session_started_at
              FROM export_downloads d
              LEFT JOIN api_keys k ON k.account_id = d.account_id AND k.id = d.api_key_id
              LEFT JOIN console_sessions s ON s.account_id = d.account_id AND s.id = d.console_session_id
             WHERE d.account_id = $1 AND d.export_id = $2 AND ($3::bigint IS NULL OR d.id < $3)
             ORDER BY d.id DESC
             LIMIT $4
            """,
            self.account_id,
            export_id,
            before,
            limit + 1,  # one more tells whether an older page exists
        )
        items = [DownloadRecord.from_record(r) for r in rows[:limit]]
        return DownloadPage(items, items[-1].id if len(rows) > limit else None)

    async def summaries(self, export_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, DownloadSummary]:
        """How often each export's file was downloaded, and when last, in one query for a list of cards;
        exports never downloaded are left out."""
        rows = await self.conn.fetch(
            "SELECT export_id, count(*) AS n, max(downloaded_at) AS last_at FROM export_downloads"
            " WHERE account_id = $1 AND export_id = ANY($2::uuid[]) GROUP BY export_id",
            self.account_id,
            list(export_ids),
        )
        return {r["export_id"]: DownloadSummary(r["n"], r["last_at"]) for r in rows}


def _spec_values(spec: ScheduleSpec) -> tuple[Any, ...]:
    window = json.dumps(spec.window.to_json()) if spec.window is not None else None
    return (spec.name, json.dumps(spec.export), spec.cron.text, spec.time_zone, window, spec.enabled)


def _secret(row: Any) -> WebhookSecret:
    expires = row["previous_expires_at"]
    live = row["previous_secret"] is not None and expires is not None and expires > row["now"]
    return WebhookSecret(row["secret"], row["created_at"], expires if live else None)


class AccountScope:
    """One account's view of ExportHub's tables: `.jobs`, `.webhooks`, `.schedules`, `.downloads`."""

    def __init__(self, conn: Conn, account_id: uuid.UUID) -> None:
        self.account_id = account_id
        self.jobs = AccountJobs(conn, account_id)
        self.webhooks = AccountWebhooks(conn, account_id)
        self.schedules = AccountSchedules(conn, account_id)
        self.downloads = AccountDownloads(conn, account_id)
