"""The export's row count runs on a second connection while the rows stream: it must count the very
snapshot the rows come from, whatever is committed meanwhile."""

from __future__ import annotations

import asyncpg
import pytest

from exporthub.exports.pipeline import PipelineConfig, _count, _Progress
from exporthub.settings import Settings
from tests.support import scratch_database

CONFIG = PipelineConfig(batch_size=1000, lease_seconds=10, link_ttl_seconds=60, max_rows_per_sheet=1000, max_attempts=1)


async def test_count_reads_the_exporting_snapshot_not_later_commits(server_settings: Settings) -> None:
    async with scratch_database(server_settings.database_url, "exporthub_count", migrated=False) as url:
        pool = await asyncpg.create_pool(url, min_size=2, max_size=3)
        try:
            await pool.execute("CREATE TABLE items (n int)")
            await pool.execute("INSERT INTO items SELECT generate_series(1, 100)")
            async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
                snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
                await pool.execute("INSERT INTO items SELECT generate_series(1, 50)")  # committed after the snapshot
                state = _Progress()
                await _count(pool, snapshot, "SELECT count(*) FROM items WHERE n > $1", (10,), CONFIG, state)
                assert state.total == 90  # the snapshot's rows only
                assert await conn.fetchval("SELECT count(*) FROM items WHERE n > 10") == 90
            assert await pool.fetchval("SELECT count(*) FROM items WHERE n > 10") == 130
        finally:
            await pool.close()


@pytest.mark.parametrize("snapshot", ["", "1'; DROP TABLE items; --", "00000003-0000001B-1 "])
async def test_count_refuses_anything_but_a_snapshot_id(snapshot: str) -> None:
    with pytest.raises(RuntimeError, match="unexpected snapshot id"):
        await _count(None, snapshot, "SELECT 1", (), CONFIG, _Progress())  # type: ignore[arg-type]
