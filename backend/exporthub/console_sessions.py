"""Console sessions, kept in PostgreSQL (`console_sessions`) so that they can end: on sign-out, at
their absolute expiry (never extended by use), when the key they were made with is revoked, or when
their account is disabled. The browser's cookie holds only the session id (web/session.py signs it).
"""

from __future__ import annotations

import uuid

from exporthub.accounts import Account, Conn


async def start_session(conn: Conn, account: Account, *, max_age_seconds: int) -> uuid.UUID | None:
    """A new session for the account, made with `account.key_id` (None: a demo sign-in). None if the
    account is disabled."""
    return await conn.fetchval(
        "INSERT INTO console_sessions (account_id, api_key_id, expires_at)"
        " SELECT id, $2, now() + make_interval(secs => $3) FROM accounts WHERE id = $1 AND disabled_at IS NULL"
        " RETURNING id",
        account.id,
        account.key_id,
        max_age_seconds,
    )


async def session_account(conn: Conn, session_id: uuid.UUID) -> Account | None:
    """The session's account, limited like the key it was made with; None once the session has ended."""
    row = await conn.fetchrow(
        """
        SELECT a.id, a.slug, a.name, a.tenant_key, s.api_key_id AS key_id, k.resources
          FROM console_sessions s
          JOIN accounts a ON a.id = s.account_id
          LEFT JOIN api_keys k ON k.id = s.api_key_id
         WHERE s.id = $1 AND s.ended_at IS NULL AND s.expires_at > now() AND a.disabled_at IS NULL
           AND (s.api_key_id IS NULL OR k.revoked_at IS NULL)
        """,
        session_id,
    )
    return Account.from_record(row) if row else None


async def end_session(conn: Conn, session_id: uuid.UUID) -> None:
    await conn.execute("UPDATE console_sessions SET ended_at = now() WHERE id = $1 AND ended_at IS NULL", session_id)
