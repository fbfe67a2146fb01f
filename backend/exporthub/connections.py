"""Open the PostgreSQL pool, the Redis client and the storage once, for the web app and the worker alike."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator

import asyncpg
from redis.asyncio import Redis

from exporthub.redis_client import create_redis
from exporthub.settings import Settings
from exporthub.storage import Storage, create_storage


@dataclasses.dataclass(frozen=True, slots=True)
class Connections:
    pool: asyncpg.Pool  # ExportHub's own tables
    source: asyncpg.Pool  # the data the catalog reads: `pool` itself unless SOURCE_DATABASE_URL is set
    redis: Redis
    storage: Storage


async def _init_connection(conn: asyncpg.Connection) -> None:
    # Exported datetimes are rendered in UTC whatever the server's default.
    await conn.execute("SET TIME ZONE 'UTC'")


async def create_pool(
    settings: Settings, *, min_size: int = 1, max_size: int = 10, url: str | None = None
) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        url or settings.db.url,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        command_timeout=60,
    )


@contextlib.asynccontextmanager
async def open_storage(settings: Settings) -> AsyncIterator[Storage]:
    """Local disk, or S3 with its clients opened here and closed on exit: one for the endpoint our
    processes reach, one that presigns with the endpoint clients reach (the URL's host is its own)."""
    if not settings.storage.url.startswith("s3://"):
        yield create_storage(settings.storage.url, settings.storage.directory)
        return
    from aiobotocore.session import get_session

    from exporthub.storage.s3 import S3Location, S3Storage, client_config

    location = S3Location.parse(settings.storage.url)
    public_endpoint = settings.storage.s3_public_endpoint_url or settings.storage.s3_endpoint_url
    options = {
        "region_name": settings.storage.s3_region,
        "config": client_config(path_style=bool(settings.storage.s3_endpoint_url or public_endpoint)),
        # None lets botocore find credentials itself (environment, profile, instance role).
        "aws_access_key_id": settings.storage.s3_access_key_id or None,
        "aws_secret_access_key": settings.storage.s3_secret_access_key or None,
    }
    session = get_session()
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            session.create_client("s3", endpoint_url=settings.storage.s3_endpoint_url or None, **options)
        )
        presigner = client
        if public_endpoint != settings.storage.s3_endpoint_url:
            presigner = await stack.enter_async_context(
                session.create_client("s3", endpoint_url=public_endpoint or None, **options)
            )
        yield S3Storage(
            client,
            presigner=presigner,
            bucket=location.bucket,
            prefix=location.prefix,
            temp_dir=settings.storage.data_dir / "uploads",
            part_size=settings.storage.s3_part_size,
        )


@contextlib.asynccontextmanager
async def open_connections(settings: Settings, *, pool_size: int = 10) -> AsyncIterator[Connections]:
    pool = await create_pool(settings, max_size=pool_size)
    source = pool
    redis = create_redis(settings.redis.url)
    try:
        if settings.db.source_url != settings.db.url:
            source = await create_pool(settings, max_size=pool_size, url=settings.db.source_url)
        async with open_storage(settings) as storage:
            yield Connections(pool=pool, source=source, redis=redis, storage=storage)
    finally:
        await redis.aclose()
        if source is not pool:
            await source.close()
        await pool.close()
