"""Accounts and their API keys: what a request authenticates as, and what an operator administers
(`exporthub accounts ...`, `exporthub apikey ...`). A key is shown once, at creation; only its
SHA-256 is stored, with its first characters (`prefix`) to recognise it by.

A key works while it is not revoked and its account is not disabled. It may be limited to some
resources of the catalog (`api_keys.resources`; NULL: all of them).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
import secrets
import uuid
from collections.abc import Iterable
from typing import TypeAlias

import asyncpg

from exporthub.catalog import Catalog
from exporthub.errors import Conflict, InvalidRequest, NotFound, Problem
from exporthub.settings import Rate, parse_rate
from exporthub.zones import zone_named

KEY_PREFIX = "ehk_"
PREFIX_LENGTH = 12  # characters of a key kept in clear: "ehk_" and 8 random ones
SLUG_RULE = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")  # the accounts table's CHECK, for a clear message

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool


@dataclasses.dataclass(frozen=True, slots=True)
class Account:
    """The account a request acts for, with the key it came with (directly, or through a console
    session made with it) and the resources that key may export (None: every resource)."""

    id: uuid.UUID
    slug: str
    name: str
    tenant_key: str  # what the catalog's tenant expressions equal for this account's rows
    key_id: uuid.UUID | None = None
    resources: frozenset[str] | None = None

    @classmethod
    def from_record(cls, row: asyncpg.Record) -> Account:
        """id, slug, name, tenant_key; and key_id, resources when the row comes from a key."""
        resources = row.get("resources")
        return cls(
            row["id"],
            row["slug"],
            row["name"],
            row["tenant_key"],
            key_id=row.get("key_id"),
            resources=frozenset(resources) if resources is not None else None,
        )

    def allows(self, resource: str) -> bool:
        return self.resources is None or resource in self.resources


@dataclasses.dataclass(frozen=True, slots=True)
class AccountDetails:
    """An account as administration shows it."""

    id: uuid.UUID
    slug: str
    name: str
    tenant_key: str
    created_at: dt.datetime
    disabled_at: dt.datetime | None
    start_rate: Rate | None = None  # None: the deployment's EXPORTHUB_START_RATE
    time_zone: str = "UTC"  # of its exports that name no `timezone`


@dataclasses.dataclass(frozen=True, slots=True)
class ApiKeyDetails:
    """A key as administration shows it (never the key itself)."""

    id: uuid.UUID
    prefix: str
    name: str
    account_id: uuid.UUID
    account_slug: str
    resources: tuple[str, ...] | None
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


@dataclasses.dataclass(frozen=True, slots=True)
class Disabled:
    account: AccountDetails
    cancelled_exports: int
    ended_sessions: int


def checked_resources(resources: Iterable[str], catalog: Catalog) -> tuple[str, ...]:
    """Resource keys, deduplicated in their order; InvalidRequest names any the catalog lacks."""
    wanted = tuple(dict.fromkeys(r.strip() for r in resources if r.strip()))
    known = catalog.resources.keys()
    unknown = [r for r in wanted if r not in known]
    if unknown:
        raise InvalidRequest(
            [Problem("resources", f"unknown resource(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")]
        )
    if not wanted:
        raise InvalidRequest([Problem("resources", "name at least one resource, or leave the option out for all")])
    return wanted


def checked_zone(text: str) -> str:
    """An account's default time zone as an operator writes it (an IANA name); InvalidRequest if unknown."""
    try:
        return zone_named(text.strip()).key
    except ValueError as exc:
        raise InvalidRequest([Problem("timezone", str(exc))]) from None


def checked_rate(text: str) -> Rate:
    """An account's own start rate as an operator writes it ("30/min"); InvalidRequest says what is wrong."""
    try:
        return parse_rate(text)
    except ValueError as exc:
        raise InvalidRequest([Problem("rate", str(exc))]) from None


# --- accounts ----------------------------------------------------------------------------------------

_COLUMNS = "id, slug, name, tenant_key, created_at, disabled_at, start_rate_limit, start_rate_window_seconds, time_zone"
_DETAILS = f"SELECT {_COLUMNS} FROM accounts"


def _details(row: asyncpg.Record) -> AccountDetails:
    rate = None
    if row["start_rate_limit"] is not None:
        rate = Rate(row["start_rate_limit"], row["start_rate_window_seconds"])
    return AccountDetails(
        row["id"],
        row["slug"],
        row["name"],
        row["tenant_key"],
        row["created_at"],
        row["disabled_at"],
        rate,
        row["time_zone"],
    )


async def create_account(
    conn: Conn, slug: str, name: str, *, tenant_key: str | None = None, start_rate: Rate | None = None
) -> AccountDetails:
    """A new account; its tenant key defaults to its id (the demo catalog's tenant column), its start
    rate to the deployment's."""
    problems = []
    if not SLUG_RULE.match(slug):
        rule = "2-63 characters: lowercase letters, digits and '-', starting with a letter or digit"
        problems.append(Problem("slug", f"{slug!r} is not a valid slug ({rule})"))
    if not name.strip():
        problems.append(Problem("name", "must not be blank"))
    if tenant_key is not None and not tenant_key.strip():
        problems.append(Problem("tenantKey", "must not be blank (leave it out to use the account id)"))
    if problems:
        raise InvalidRequest(problems)
    try:
        row = await conn.fetchrow(
            "INSERT INTO accounts (slug, name, tenant_key, start_rate_limit, start_rate_window_seconds)"
            f" VALUES ($1, $2, $3, $4, $5) RETURNING {_COLUMNS}",
            slug,
            name.strip(),
            tenant_key.strip() if tenant_key is not None else None,
            start_rate.limit if start_rate else None,
            start_rate.window_seconds if start_rate else None,
        )
    except asyncpg.UniqueViolationError:
        raise Conflict(f"an account with slug {slug!r} already exists") from None
    return _details(row)


async def get_account(conn: Conn, slug: str) -> AccountDetails:
    row = await conn.fetchrow(f"{_DETAILS} WHERE slug = $1", slug)
    if row is None:
        raise NotFound("account", repr(slug))
    return _details(row)


async def list_accounts(conn: Conn) -> list[AccountDetails]:
    return [_details(r) for r in await conn.fetch(f"{_DETAILS} ORDER BY slug")]


async def set_start_rate(conn: Conn, slug: str, rate: Rate | None) -> AccountDetails:
    """The account's own start rate (None: back to the deployment's). The next submit uses it: starts
    already in the window count against it, so lowering it may refuse the next one for a while."""
    row = await conn.fetchrow(
        "UPDATE accounts SET start_rate_limit = $2, start_rate_window_seconds = $3"
        f" WHERE slug = $1 RETURNING {_COLUMNS}",
        slug,
        rate.limit if rate else None,
        rate.window_seconds if rate else None,
    )
    if row is None:
        raise NotFound("account", repr(slug))
    return _details(row)


async def set_time_zone(conn: Conn, slug: str, time_zone: str) -> AccountDetails:
    """The zone of the account's exports that name none (checked by the caller: `checked_zone`), from
    its next submit on; exports already made keep theirs."""
    row = await conn.fetchrow(
        f"UPDATE accounts SET time_zone = $2 WHERE slug = $1 RETURNING {_COLUMNS}", slug, time_zone
    )
    if row is None:
        raise NotFound("account", repr(slug))
    return _details(row)


async def account_by_slug(conn: Conn, slug: str) -> Account | None:
    row = await conn.fetchrow("SELECT id, slug, name, tenant_key FROM accounts WHERE slug = $1", slug)
    return Account.from_record(row) if row else None


async def disable_account(conn: asyncpg.Connection, slug: str) -> Disabled:
    """Disable at once: its keys stop working, its console sessions end. Disabling again changes
    nothing. Its exports are the domain's: `exports.service.disable_account` also cancels them, in
    the same transaction; the caller announces it (`publish_revocation`) so that open sockets close."""
    async with conn.transaction():
        row = await conn.fetchrow(
            f"UPDATE accounts SET disabled_at = coalesce(disabled_at, now()) WHERE slug = $1 RETURNING {_COLUMNS}",
            slug,
        )
        if row is None:
            raise NotFound("account", repr(slug))
        ended = await conn.fetchval(
            "WITH ended AS (UPDATE console_sessions SET ended_at = now()"
            " WHERE account_id = $1 AND ended_at IS NULL RETURNING 1) SELECT count(*) FROM ended",
            row["id"],
        )
    return Disabled(_details(row), 0, ended)


# --- keys --------------------------------------------------------------------------------------------


def generate_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


async def create_api_key(
    conn: Conn,
    account_id: uuid.UUID,
    *,
    label: str = "",
    key: str | None = None,
    resources: Iterable[str] | None = None,
) -> str:
    """Store a new key for the account and return it in clear (the only time it is known).
    `label` is the key's name; `resources` limits it (checked by the caller: `checked_resources`)."""
    key = key or generate_api_key()
    await conn.execute(
        "INSERT INTO api_keys (account_id, key_hash, prefix, label, resources) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (key_hash) DO NOTHING",
        account_id,
        hash_api_key(key),
        key[:PREFIX_LENGTH],
        label,
        list(resources) if resources is not None else None,
    )
    return key


_KEY_DETAILS = """
    SELECT k.id, k.prefix, k.label, k.account_id, a.slug, k.resources, k.created_at, k.last_used_at, k.revoked_at
      FROM api_keys k JOIN accounts a ON a.id = k.account_id
"""


def _key_details(row: asyncpg.Record) -> ApiKeyDetails:
    return ApiKeyDetails(
        id=row["id"],
        prefix=row["prefix"],
        name=row["label"],
        account_id=row["account_id"],
        account_slug=row["slug"],
        resources=tuple(row["resources"]) if row["resources"] is not None else None,
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )


async def list_api_keys(conn: Conn, *, account_slug: str | None = None) -> list[ApiKeyDetails]:
    if account_slug is not None:
        await get_account(conn, account_slug)  # NotFound rather than an empty list for a typo
    rows = await conn.fetch(
        f"{_KEY_DETAILS} WHERE $1::text IS NULL OR a.slug = $1 ORDER BY a.slug, k.created_at, k.prefix",
        account_slug,
    )
    return [_key_details(r) for r in rows]


async def revoke_api_key(conn: asyncpg.Connection, prefix: str) -> ApiKeyDetails:
    """Revoke the one unrevoked key whose prefix starts with `prefix` (a whole key works too) and end
    the console sessions made with it. The caller announces it (`publish_revocation`)."""
    prefix = prefix.strip()[:PREFIX_LENGTH]
    if not prefix:
        raise InvalidRequest([Problem("prefix", "give the key's prefix, as `exporthub apikey list` shows it")])
    async with conn.transaction():
        rows = await conn.fetch(f"{_KEY_DETAILS} WHERE starts_with(k.prefix, $1) FOR UPDATE OF k", prefix)
        if not rows:
            raise NotFound("API key starting with", repr(prefix))
        active = [r for r in rows if r["revoked_at"] is None]
        if not active:
            raise Conflict(f"the API key {rows[0]['prefix']} is already revoked")
        if len(active) > 1:
            found = ", ".join(f"{r['prefix']} ({r['slug']})" for r in active)
            raise InvalidRequest(
                [Problem("prefix", f"{prefix!r} matches {len(active)} keys: {found}; give more characters")]
            )
        key_id = active[0]["id"]
        await conn.execute("UPDATE api_keys SET revoked_at = now() WHERE id = $1", key_id)
        await conn.execute(
            "UPDATE console_sessions SET ended_at = now() WHERE api_key_id = $1 AND ended_at IS NULL", key_id
        )
        row = await conn.fetchrow(f"{_KEY_DETAILS} WHERE k.id = $1", key_id)
    return _key_details(row)


# A key that works: not revoked, of an enabled account. Its use is recorded at most once a minute,
# so that authenticating stays a read nearly always.
_WORKING_KEY = """
    WITH found AS (
        SELECT k.id AS key_id, k.resources, a.id, a.slug, a.name, a.tenant_key
          FROM api_keys k JOIN accounts a ON a.id = k.account_id
         WHERE {condition} AND k.revoked_at IS NULL AND a.disabled_at IS NULL
    ), touched AS (
        UPDATE api_keys SET last_used_at = now()
         WHERE id = (SELECT key_id FROM found)
           AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
    )
    SELECT * FROM found
"""
_BY_HASH = _WORKING_KEY.format(condition="k.key_hash = $1")
_BY_ID = _WORKING_KEY.format(condition="k.id = $1")


async def account_for_key(conn: Conn, key: str) -> Account | None:
    """The account of a working key, or None (unknown, revoked, or its account disabled)."""
    row = await conn.fetchrow(_BY_HASH, hash_api_key(key))
    return Account.from_record(row) if row else None


async def account_for_key_id(conn: Conn, key_id: uuid.UUID) -> Account | None:
    """The same, for a key already authenticated once (an open socket checking it still works)."""
    row = await conn.fetchrow(_BY_ID, key_id)
    return Account.from_record(row) if row else None


async def demo_accounts(conn: asyncpg.Connection | asyncpg.Pool) -> list[Account]:
    """The seeder's accounts (`is_demo`): the only ones the console signs in to without a key, under `exporthub dev`."""
    rows = await conn.fetch(
        "SELECT id, slug, name, tenant_key FROM accounts WHERE is_demo AND disabled_at IS NULL ORDER BY slug"
    )
    return [Account.from_record(r) for r in rows]
