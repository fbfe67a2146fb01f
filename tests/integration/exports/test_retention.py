"""exports/retention.py over real PostgreSQL: download records and finished webhook events older than
their retention go, in batches; everything younger, and every pending webhook event, stays."""

from __future__ import annotations

import uuid

import asyncpg

from exporthub.accounts import Account
from exporthub.exports.retention import prune_old_records
from exporthub.settings import Settings
from exporthub.worker.tasks import PRUNE_EVERY_SECONDS, periodic_work
from tests.factories import create_export

DAY = 86_400


async def downloaded(conn: asyncpg.Connection, account: Account, export_id: uuid.UUID, days_ago: float) -> int:
    return await conn.fetchval(
        "INSERT INTO export_downloads (account_id, export_id, via, redirected, downloaded_at)"
        " VALUES ($1, $2, 'signed_link', false, now() - make_interval(secs => $3)) RETURNING id",
        account.id,
        export_id,
        days_ago * DAY,
    )


async def webhook_event(
    conn: asyncpg.Connection, account: Account, export_id: uuid.UUID, state: str, days_ago: float, attempts: int = 0
) -> uuid.UUID:
    event_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO webhook_events (id, account_id, export_id, event, url, body, state, give_up_at, created_at)"
        " VALUES ($1, $2, $3, $4, 'https://hooks.example/', '{}', $5, now(), now() - make_interval(secs => $6))",
        event_id,
        account.id,
        export_id,
        f"export.{uuid.uuid4().hex[:6]}",  # (export_id, event) is unique
        state,
        days_ago * DAY,
    )
    for n in range(1, attempts + 1):
        await conn.execute(
            "INSERT INTO webhook_attempts (event_id, account_id, export_id, attempt, url, status_code, duration_ms)"
            " VALUES ($1, $2, $3, $4, 'https://hooks.example/', 500, 12)",
            event_id,
            account.id,
            export_id,
            n,
        )
    return event_id


async def remaining_downloads(conn: asyncpg.Connection) -> set[int]:
    return {r["id"] for r in await conn.fetch("SELECT id FROM export_downloads")}


async def test_only_download_records_past_the_retention_go(
    conn: asyncpg.Connection, acme: Account, globex: Account
) -> None:
    ours, theirs = (await create_export(conn, acme.id)).id, (await create_export(conn, globex.id)).id
    old = [await downloaded(conn, acme, ours, 400.01) for _ in range(5)] + [await downloaded(conn, globex, theirs, 800)]
    kept = [await downloaded(conn, acme, ours, 399.9), await downloaded(conn, acme, ours, 0)]
    assert await remaining_downloads(conn) >= set(old) | set(kept)
    pruned = await prune_old_records(
        conn, audit_retention_days=400, webhook_retention_days=30, webhook_retry_window_seconds=DAY, batch_size=2
    )
    assert pruned.downloads == 6  # three full batches of 2, then an empty one
    assert await remaining_downloads(conn) == set(kept)
    again = await prune_old_records(
        conn, audit_retention_days=400, webhook_retention_days=30, webhook_retry_window_seconds=DAY
    )
    assert again.downloads == 0 and await remaining_downloads(conn) == set(kept)


async def test_a_run_stops_after_its_batches_and_the_next_goes_on(conn: asyncpg.Connection, acme: Account) -> None:
    """A large backlog is worked off over several runs, a batch per statement (no long-held locks)."""
    export_id = (await create_export(conn, acme.id)).id
    for _ in range(5):
        await downloaded(conn, acme, export_id, 500)
    runs = []
    for _ in range(3):
        pruned = await prune_old_records(
            conn,
            audit_retention_days=400,
            webhook_retention_days=30,
            webhook_retry_window_seconds=DAY,
            batch_size=2,
            max_batches=1,
        )
        runs.append(pruned.downloads)
    assert runs == [2, 2, 1]
    assert await remaining_downloads(conn) == set()


async def test_finished_webhook_events_past_their_retention_go_with_their_attempts(
    conn: asyncpg.Connection, acme: Account
) -> None:
    export_id = (await create_export(conn, acme.id)).id
    delivered_old = await webhook_event(conn, acme, export_id, "delivered", 31, attempts=1)
    failed_old = await webhook_event(conn, acme, export_id, "failed", 45, attempts=29)
    pending_old = await webhook_event(conn, acme, export_id, "pending", 60, attempts=3)  # still being tried
    delivered_recent = await webhook_event(conn, acme, export_id, "delivered", 29, attempts=2)
    pruned = await prune_old_records(
        conn,
        audit_retention_days=400,
        webhook_retention_days=30,
        webhook_retry_window_seconds=DAY,
        webhook_batch_size=1,
    )
    assert pruned.webhook_events == 2
    events = {r["id"] for r in await conn.fetch("SELECT id FROM webhook_events WHERE export_id = $1", export_id)}
    assert events == {pending_old, delivered_recent}
    attempts = await conn.fetch(
        "SELECT event_id, count(*) AS n FROM webhook_attempts WHERE export_id = $1 GROUP BY event_id", export_id
    )
    assert {r["event_id"]: r["n"] for r in attempts} == {pending_old: 3, delivered_recent: 2}
    assert delivered_old not in events and failed_old not in events


async def test_no_webhook_event_goes_inside_the_retry_window(conn: asyncpg.Connection, acme: Account) -> None:
    """Else the backfill would find an export whose event is gone and send its webhook again."""
    export_id = (await create_export(conn, acme.id)).id
    inside = await webhook_event(conn, acme, export_id, "delivered", 2)
    await webhook_event(conn, acme, export_id, "delivered", 4)
    pruned = await prune_old_records(
        conn, audit_retention_days=400, webhook_retention_days=1, webhook_retry_window_seconds=3 * DAY
    )
    assert pruned.webhook_events == 1
    assert {r["id"] for r in await conn.fetch("SELECT id FROM webhook_events WHERE export_id = $1", export_id)} == {
        inside
    }


def test_the_scheduler_sends_the_retention_sweep_hourly(settings: Settings) -> None:
    [work] = [w for w in periodic_work(settings) if w.name == "exporthub.prune_old_records"]
    assert work.every_seconds == PRUNE_EVERY_SECONDS == 3600
