"""Accounts and their API keys. A key is shown once, at creation; only its SHA-256 is stored."""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import uuid

import asyncpg

KEY_PREFIX = "ehk_"


@dataclasses.dataclass(frozen=True, slots=True)
class Account:
    id: uuid.UUID
    slug: str
    name: str
    tenant_key: str  # what the catalog's tenant expressions equal for this account's rows

    @classmethod
    def from_record(cls, row: asyncpg.Record) -> Account:
        return cls(row["id"], row["slug"], row["name"], row["tenant_key"])


def generate_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


async def create_api_key(
    conn: asyncpg.Connection, account_id: uuid.UUID, *, label: str = "", key: str | None = None
) -> str:
    """Store a new key for the account and return it in clear (the only time it is known)."""
    key = key or generate_api_key()
    await conn.execute(
        "INSERT INTO api_keys (account_id, key_hash, prefix, label) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (key_hash) DO NOTHING",
        account_id,
        hash_api_key(key),
        key[:12],
        label,
    )
    return key


async def account_for_key(conn: asyncpg.Connection | asyncpg.Pool, key: str) -> Account | None:
    row = await conn.fetchrow(
        "SELECT a.id, a.slug, a.name, a.tenant_key FROM api_keys k JOIN accounts a ON a.id = k.account_id"
        " WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
        hash_api_key(key),
    )
    return Account.from_record(row) if row else None


async def account_by_slug(conn: asyncpg.Connection | asyncpg.Pool, slug: str) -> Account | None:
    row = await conn.fetchrow("SELECT id, slug, name, tenant_key FROM accounts WHERE slug = $1", slug)
    return Account.from_record(row) if row else None


async def list_accounts(conn: asyncpg.Connection | asyncpg.Pool) -> list[Account]:
    rows = await conn.fetch("SELECT id, slug, name, tenant_key FROM accounts ORDER BY slug")
    return [Account.from_record(r) for r in rows]


async def demo_accounts(conn: asyncpg.Connection | asyncpg.Pool) -> list[Account]:
    """The seeder's accounts (`is_demo`): the only ones the console signs in to without a key, under `exporthub dev`."""
    rows = await conn.fetch(
        "SELECT id, slug, name, tenant_key FROM accounts WHERE is_demo AND disabled_at IS NULL ORDER BY slug"
    )
    return [Account.from_record(r) for r in rows]
