"""The webhook tables (migration 0003) as delivery uses them: the outbox of events, attempts, and the
secrets to sign with. Worker only; what an account reads of them (its secret, its deliveries) goes
through exports/account_scope.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import TypeAlias

import asyncpg

from exporthub.webhooks.signing import generate_secret

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool


@dataclasses.dataclass(frozen=True, slots=True)
class ClaimedEvent:
    id: uuid.UUID
    account_id: uuid.UUID
    export_id: uuid.UUID
    event: str
    url: str
    body: str
    attempt: int  # this attempt's number (1 for the first)


async def ensure_secret(conn: Conn, account_id: uuid.UUID) -> None:
    """Make the account's signing secret on first need."""
    await conn.execute(
        "INSERT INTO webhook_secrets (account_id, secret) VALUES ($1, $2) ON CONFLICT (account_id) DO NOTHING",
        account_id,
        generate_secret(),
    )


async def signing_secrets(conn: Conn, account_id: uuid.UUID) -> list[str]:
    """The secrets to sign the account's event with now: the current one first, then one still in its
    grace period after a rotation."""
    await ensure_secret(conn, account_id)
    row = await conn.fetchrow(
        "SELECT secret, previous_secret, previous_expires_at > now() AS in_grace FROM webhook_secrets"
        " WHERE account_id = $1",
        account_id,
    )
    return [row["secret"], *([row["previous_secret"]] if row["in_grace"] and row["previous_secret"] else [])]


async def insert_event(
    conn: Conn,
    *,
    account_id: uuid.UUID,
    export_id: uuid.UUID,
    url: str,
    event_id: uuid.UUID,
    event: str,
    body: str,
    window_seconds: float,
) -> uuid.UUID | None:
    """Record an event to deliver now; None if the export's event was already recorded."""
    return await conn.fetchval(
        """
        INSERT INTO webhook_events (id, account_id, export_id, event, url, body, give_up_at)
        VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7))
        ON CONFLICT (export_id, event) DO NOTHING
        RETURNING id
        """,
        event_id,
        account_id,
        export_id,
        event,
        url,
        body,
        float(window_seconds),
    )


async def claim_due(conn: Conn, *, limit: int, lock_seconds: float) -> list[ClaimedEvent]:
    """Claim up to `limit` due events; other workers skip them. A claim not finished lapses."""
    rows = await conn.fetch(
        """
        UPDATE webhook_events
           SET attempts = attempts + 1, locked_until = now() + make_interval(secs => $2)
         WHERE id IN (
               SELECT id FROM webhook_events
                WHERE state = 'pending' AND next_attempt_at <= now()
                  AND (locked_until IS NULL OR locked_until < now())
                ORDER BY next_attempt_at
                LIMIT $1
                  FOR UPDATE SKIP LOCKED)
        RETURNING id, account_id, export_id, event, url, body, attempts
        """,
        limit,
        float(lock_seconds),
    )
    return [
        ClaimedEvent(r["id"], r["account_id"], r["export_id"], r["event"], r["url"], r["body"], r["attempts"])
        for r in rows
    ]


async def record_attempt(
    conn: asyncpg.Connection,
    event: ClaimedEvent,
    *,
    delivered: bool,
    retry_in_seconds: float | None,
    status_code: int | None,
    error: str | None,
    duration_ms: int,
    attempted_at: dt.datetime,
) -> str | None:
    """Save an attempt and what follows: delivered, a retry (unless past give_up_at), or failed for good.

    Returns the event's new state, or None if the claim was lost (lapsed, or the export was deleted).
    """
    async with conn.transaction():
        row = await conn.fetchrow(
            """
            WITH decision AS (
                SELECT CASE WHEN $3 THEN 'delivered'
                            WHEN $4::float8 IS NOT NULL
                                 AND now() + make_interval(secs => $4::float8) <= give_up_at THEN 'pending'
                            ELSE 'failed' END AS state
                  FROM webhook_events WHERE id = $1
            )
            UPDATE webhook_events e
               SET state = d.state,
                   next_attempt_at = CASE WHEN d.state = 'pending'
                                          THEN now() + make_interval(secs => $4::float8)
                                          ELSE e.next_attempt_at END,
                   locked_until = NULL,
                   finished_at = CASE WHEN d.state = 'pending' THEN NULL ELSE now() END
              FROM decision d
             WHERE e.id = $1 AND e.attempts = $2 AND e.state = 'pending'
            RETURNING e.state, CASE WHEN e.state = 'pending' THEN e.next_attempt_at END AS next_retry_at
            """,
            event.id,
            event.attempt,
            delivered,
            retry_in_seconds,
        )
        if row is None:
            return None
        await conn.execute(
            """
            INSERT INTO webhook_attempts (event_id, account_id, export_id, attempt, url, status_code, error,
                                          duration_ms, attempted_at, next_retry_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            """,
            event.id,
            event.account_id,
            event.export_id,
            event.attempt,
            event.url,
            status_code,
            error,
            duration_ms,
            attempted_at,
            row["next_retry_at"],
        )
    return row["state"]
