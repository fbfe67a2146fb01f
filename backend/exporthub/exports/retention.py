"""The retention sweep: download records and finished webhook events are deleted once older than
their settings say (EXPORTHUB_AUDIT_RETENTION_DAYS, EXPORTHUB_WEBHOOK_RETENTION_DAYS).

Rows go in small batches, each its own short statement (its own transaction), oldest first, under
`FOR UPDATE SKIP LOCKED`: no lock is held for longer than one batch, a download being recorded or a
delivery being attempted never waits for the sweep, and two sweeps at once share the work.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from exporthub.exports import unscoped

log = logging.getLogger(__name__)

DAY_SECONDS = 86_400
BATCH_SIZE = 1000  # download rows per statement
WEBHOOK_BATCH_SIZE = 200  # events per statement; each takes up to ~30 attempt rows with it
MAX_BATCHES = 500  # per table and run: a huge backlog is worked off over several runs


@dataclasses.dataclass(frozen=True, slots=True)
class Pruned:
    downloads: int
    webhook_events: int


async def prune_old_records(
    pool: asyncpg.Pool | asyncpg.Connection,
    *,
    audit_retention_days: int,
    webhook_retention_days: int,
    webhook_retry_window_seconds: float,
    batch_size: int = BATCH_SIZE,
    webhook_batch_size: int = WEBHOOK_BATCH_SIZE,
    max_batches: int = MAX_BATCHES,
) -> Pruned:
    downloads = await _in_batches(
        lambda: unscoped.delete_old_downloads(
            pool, older_than_seconds=audit_retention_days * DAY_SECONDS, limit=batch_size
        ),
        batch_size,
        max_batches,
    )
    # Never inside the retry window: the backfill (unscoped.finished_without_event) would take an
    # export whose event was pruned for one that never had one, and send it again.
    webhook_age = max(webhook_retention_days * DAY_SECONDS, webhook_retry_window_seconds)
    events = await _in_batches(
        lambda: unscoped.delete_old_webhook_events(pool, older_than_seconds=webhook_age, limit=webhook_batch_size),
        webhook_batch_size,
        max_batches,
    )
    if downloads or events:
        log.info("retention: deleted %d download records and %d webhook events", downloads, events)
    return Pruned(downloads, events)


async def _in_batches(delete_batch: Callable[[], Awaitable[int]], batch_size: int, max_batches: int) -> int:
    total = 0
    for _ in range(max_batches):
        deleted = await delete_batch()
        total += deleted
        if deleted < batch_size:
            break
    return total
