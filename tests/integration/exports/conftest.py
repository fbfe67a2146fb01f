"""Real PostgreSQL for exports/account_scope.py and exports/unscoped.py: each test works in one
transaction that is rolled back, so its rows are seen by no one else (not even the sweeps of a hub
started by another test of the session) and are gone afterwards.

Inside one transaction `now()` does not move: a test that needs "a lease that ran out" or "an
export made earlier" writes those times relative to `now()` rather than waiting.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import asyncpg
import pytest

from exporthub.accounts import Account, account_by_slug


@pytest.fixture
async def conn(pool: asyncpg.Pool, clean_jobs: None) -> AsyncIterator[asyncpg.Connection]:
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            yield conn
        finally:
            await transaction.rollback()


@pytest.fixture
async def now(conn: asyncpg.Connection) -> dt.datetime:
    """The transaction's `now()`: the time every statement of the test sees."""
    return await conn.fetchval("SELECT now()")


async def demo_account(pool: asyncpg.Pool, slug: str) -> Account:
    account = await account_by_slug(pool, slug)
    assert account is not None, f"the demo account {slug!r} is seeded"
    return account


@pytest.fixture
async def acme(pool: asyncpg.Pool) -> Account:
    return await demo_account(pool, "acme")


@pytest.fixture
async def globex(pool: asyncpg.Pool) -> Account:
    return await demo_account(pool, "globex")
