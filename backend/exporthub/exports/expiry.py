"""The expiry sweep: exports whose download links have expired lose their file and become `expired`.

Idempotent and safe to run in several workers at once: each batch of rows is claimed with
UPDATE … RETURNING over `FOR UPDATE SKIP LOCKED`, its files are deleted, and only then does the
transaction commit. A sweep that dies half-way rolls back and the next one does the batch again
(deleting a file that is already gone is a no-op). A file that cannot be deleted now keeps its
file_key, so a later sweep tries again. It also clears uploads that never finished.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

import asyncpg

from exporthub.exports import unscoped
from exporthub.exports.models import ExportJob
from exporthub.storage import Storage

log = logging.getLogger(__name__)

STALE_UPLOAD_AGE = dt.timedelta(days=1)


@dataclasses.dataclass
class SweepResult:
    expired: list[ExportJob] = dataclasses.field(default_factory=list)  # newly expired (announce these)
    files_deleted: int = 0
    files_kept: int = 0  # deletions that failed; retried next time
    stale_uploads: int = 0


async def sweep_expired(
    pool: asyncpg.Pool, storage: Storage, *, batch_size: int = 100, max_batches: int = 50
) -> SweepResult:
    result = SweepResult()
    for _ in range(max_batches):
        async with pool.acquire() as conn, conn.transaction():
            claimed = await unscoped.claim_expired(conn, limit=batch_size)
            if not claimed:
                break
            deleted = []
            for job, newly_expired in claimed:
                if newly_expired:
                    result.expired.append(job)
                assert job.file_key is not None  # claim_expired picks rows with a file
                try:
                    await storage.delete(job.file_key)
                except Exception:
                    result.files_kept += 1
                    log.warning("could not delete %s of expired export %s; next sweep retries", job.file_key, job.id)
                    continue
                deleted.append(job.id)
            await unscoped.forget_files(conn, deleted)
            result.files_deleted += len(deleted)
        if len(claimed) < batch_size or not deleted:
            break
    try:
        result.stale_uploads = await storage.remove_stale_uploads(STALE_UPLOAD_AGE)
    except Exception:
        log.warning("could not clear stale uploads; next sweep retries", exc_info=True)
    if result.expired or result.files_deleted or result.files_kept or result.stale_uploads:
        log.info(
            "expiry sweep: %d exports expired, %d files deleted, %d kept for a retry, %d stale uploads cleared",
            len(result.expired),
            result.files_deleted,
            result.files_kept,
            result.stale_uploads,
        )
    return result
