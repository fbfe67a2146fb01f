"""Databases made for one test (or one session) on the PostgreSQL server, and dropped after it."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg


def with_database(url: str, name: str) -> str:
    """The same server, another database."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def recreate_database(admin_url: str, name: str) -> None:
    await drop_database(admin_url, name)
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def scratch_database(admin_url: str, prefix: str, *, migrated: bool = True) -> AsyncIterator[str]:
    """A new database (migrated unless told otherwise) for one test, dropped afterwards; yields its URL."""
    from exporthub.db.migrate import migrate

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    await recreate_database(admin_url, name)
    url = with_database(admin_url, name)
    try:
        if migrated:
            conn = await asyncpg.connect(url)
            try:
                await migrate(conn)
            finally:
                await conn.close()
        yield url
    finally:
        await drop_database(admin_url, name)
