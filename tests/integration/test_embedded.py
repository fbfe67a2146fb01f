"""The embedded PostgreSQL and Redis that `make run` and `make test` use when no servers are named."""

from __future__ import annotations

import asyncpg
import redis

from exporthub import embedded
from exporthub.settings import Settings, StorageSettings


async def test_embedded_servers_start_answer_and_keep_their_data_in_the_data_dir(tmp_path) -> None:
    settings = Settings(storage=StorageSettings(data_dir=tmp_path))
    with embedded.servers(settings) as resolved:
        assert resolved.db.url and resolved.redis.url.startswith("unix://")
        conn = await asyncpg.connect(resolved.db.url)
        try:
            assert await conn.fetchval("SELECT 40 + 2") == 42
        finally:
            await conn.close()
        client = redis.Redis.from_url(resolved.redis.url)
        client.set("k", "v")
        assert client.get("k") == b"v"
        client.close()
    assert (tmp_path / "postgres" / "PG_VERSION").exists()
    assert (tmp_path / "redis" / "appendonly.aof").exists() or (tmp_path / "redis" / "appendonlydir").exists()
    # both servers stopped with the context
    assert not (tmp_path / "postgres" / "postmaster.pid").exists()
