"""Run one export: snapshot rows -> writer (in a thread) -> storage, with a lease, progress and cancel.

Memory stays flat: one batch of rows is in flight while the previous one is being written.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import functools
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
from redis.exceptions import ConnectionError as RedisConnectionError

from exporthub.catalog import Catalog, Resource
from exporthub.errors import ExportFailed
from exporthub.exports import unscoped
from exporthub.exports.copy_csv import ZONE_SQL, copy_csv
from exporthub.exports.models import ExportFormat, ExportJob, ExportStatus
from exporthub.exports.pause_hook import hold_if_paused
from exporthub.exports.query import build_export_query, departments_query
from exporthub.formats import ReportInfo, open_writer
from exporthub.settings import Settings
from exporthub.storage import Storage

log = logging.getLogger(__name__)

# Failures worth another try: the database or the network went away for a moment.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,  # "connection is closed" when the server dropped us mid-cursor
    asyncpg.SerializationError,
    asyncpg.TooManyConnectionsError,
    asyncpg.CannotConnectNowError,
    RedisConnectionError,
)


class Cancelled(Exception):
    pass


class LeaseLost(Exception):
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class PipelineConfig:
    batch_size: int
    lease_seconds: int
    link_ttl_seconds: int
    max_rows_per_sheet: int
    max_attempts: int
    statement_timeout_ms: int = 10 * 60 * 1000  # the source snapshot's statement_timeout
    heartbeat_seconds: float = 1.0
    retry_backoff_seconds: tuple[float, ...] = (1.0, 4.0)
    account_concurrency: int = 2  # one account's exports running at once while others wait (claim_fair)
    test_pause_dir: Path | None = None  # tests only: exports/pause_hook.py

    @classmethod
    def from_settings(cls, settings: Settings) -> PipelineConfig:
        return cls(
            batch_size=settings.exports.batch_size,
            lease_seconds=settings.recovery.lease_seconds,
            link_ttl_seconds=settings.exports.link_ttl_seconds,
            max_rows_per_sheet=settings.exports.max_rows_per_sheet,
            max_attempts=settings.recovery.max_attempts,
            statement_timeout_ms=int(settings.db.source_statement_timeout_seconds * 1000),
            account_concurrency=settings.exports.account_concurrency,
            test_pause_dir=settings.exports.test_pause_dir,
        )


Publish = Callable[[ExportJob], Awaitable[None]]


@dataclasses.dataclass
class _Progress:
    processed: int = 0
    total: int | None = None
    cancel_requested: bool = False
    lease_lost: bool = False
    published_percent: int = -1
    published_at: float = 0.0
    pause_dir: Path | None = None
    sending: asyncio.Task[None] | None = None  # publishes the progress events in `unsent` (_send_behind)
    unsent: collections.deque[ExportJob] = dataclasses.field(default_factory=collections.deque)

    @property
    def percent(self) -> int:
        if not self.total:
            return 0
        return min(99, math.floor(100 * self.processed / self.total))


async def run_export(
    job_id: uuid.UUID,
    *,
    pool: asyncpg.Pool,
    source: asyncpg.Pool,
    catalog: Catalog,
    storage: Storage,
    publish: Publish,
    config: PipelineConfig,
    enqueue: Callable[[uuid.UUID], Awaitable[None]] | None = None,
) -> ExportStatus | None:
    """Claim and run one export to its end. Returns the final status, or None if there was nothing to do.

    The message names `job_id`, but the export started is the fairest one queued (unscoped.claim_fair);
    a passed-over `job_id` is sent to the queue again with `enqueue`.

    `pool` holds the jobs; `source` is the database the catalog reads, in a read-only snapshot.
    """
    async with pool.acquire() as conn:
        job, passed_over = await unscoped.claim_fair(
            conn, job_id, config.lease_seconds, per_account=config.account_concurrency
        )
    if passed_over and enqueue is not None:
        await enqueue(job_id)  # its message started a fairer export: it waits with a message of its own
    if job is None:
        log.info("export %s is not claimable (done, running elsewhere or cancelled)", job_id)
        return None
    _remove_leftovers(storage, job.id)
    await publish(job)
    for attempt in range(1, config.max_attempts + 1):
        try:
            done = await _produce(
                job, pool=pool, source=source, catalog=catalog, storage=storage, publish=publish, config=config
            )
        except Cancelled:
            return await _end(pool, publish, job, ExportStatus.CANCELLED)
        except LeaseLost:
            log.warning("export %s: lease taken over by another run; stopping", job.id)
            return None
        except ExportFailed as exc:
            if exc.transient and attempt < config.max_attempts:
                await _backoff(config, attempt, job, exc)
                continue
            return await _end(pool, publish, job, ExportStatus.FAILED, exc.message)
        except TRANSIENT_ERRORS as exc:
            if attempt < config.max_attempts:
                await _backoff(config, attempt, job, exc)
                continue
            message = (
                f"the export failed {attempt} times because a service was unreachable "
                f"({type(exc).__name__}); it is safe to submit it again"
            )
            return await _end(pool, publish, job, ExportStatus.FAILED, message)
        except asyncpg.QueryCanceledError:
            seconds = config.statement_timeout_ms // 1000
            message = (
                f"the source database did not answer within {seconds:,} s (EXPORTHUB_SOURCE_STATEMENT_TIMEOUT); "
                "narrow the filters or ask the operator to raise it"
            )
            return await _end(pool, publish, job, ExportStatus.FAILED, message)
        except asyncpg.PostgresError as exc:  # the catalog's SQL, refused by the source database
            log.warning("export %s: the source database refused the query: %s", job.id, exc)
            message = f"the source database refused the export's query: {str(exc).splitlines()[0]}"
            return await _end(pool, publish, job, ExportStatus.FAILED, message)
        except Exception as exc:
            log.exception("export %s failed", job.id)
            message = f"the export failed unexpectedly ({type(exc).__name__}); please contact support"
            return await _end(pool, publish, job, ExportStatus.FAILED, message)
        if done is None:
            return None
        await publish(done)
        return done.status
    return None


async def _backoff(config: PipelineConfig, attempt: int, job: ExportJob, exc: BaseException) -> None:
    delay = config.retry_backoff_seconds[min(attempt, len(config.retry_backoff_seconds)) - 1]
    log.warning("export %s: attempt %d failed (%r); retrying in %.1fs", job.id, attempt, exc, delay)
    await asyncio.sleep(delay)


async def _end(
    pool: asyncpg.Pool, publish: Publish, job: ExportJob, status: ExportStatus, message: str | None = None
) -> ExportStatus | None:
    ended = await unscoped.finish_unsuccessful(pool, job, status, message)
    if ended is None:
        return None
    await publish(ended)
    return ended.status


def _remove_leftovers(storage: Storage, job_id: uuid.UUID) -> None:
    """Partial files of earlier runs of this job (a killed worker's) are never published: delete them."""
    for path in storage.temp_dir.glob(f"{job_id}-*"):
        path.unlink(missing_ok=True)


def file_name_for(job: ExportJob) -> str:
    return f"{job.resource}-{job.created_at:%Y%m%d-%H%M%S}.{job.extension}"


async def _produce(
    job: ExportJob,
    *,
    pool: asyncpg.Pool,
    source: asyncpg.Pool,
    catalog: Catalog,
    storage: Storage,
    publish: Publish,
    config: PipelineConfig,
) -> ExportJob | None:
    resource = catalog.resource(job.resource)
    if resource is None:
        raise ExportFailed(f"the catalog no longer has a resource {job.resource!r}; submit a new export")
    account = await pool.fetchrow("SELECT name, tenant_key FROM accounts WHERE id = $1", job.account_id)
    if account is None:
        raise ExportFailed("the account of this export no longer exists")
    as_csv = job.format is ExportFormat.CSV  # CSV cells are formatted by PostgreSQL and streamed by COPY
    prepared = job.format is ExportFormat.XLSX  # cells the XLSX writer takes prepared: query.xlsx_cell_sql
    query = build_export_query(
        resource,
        job.columns,
        job.filters,
        account["tenant_key"],
        csv_text=as_csv,
        xlsx_cells=prepared,
        time_zone=job.time_zone,
    )
    temp_path = storage.temp_dir / f"{job.id}-{job.attempts}.{job.extension}.part"
    state = _Progress(pause_dir=config.test_pause_dir)
    keeper = asyncio.create_task(_keep_lease(pool, job, state, config))
    writer = None
    sha256 = ""  # of the file, hashed as it is written (formats/output.py)
    # The writer works in one thread of its own: the default pool would spread its calls over
    # several threads, and glibc gives each a malloc arena, so RSS would grow with the batch count.
    writer_thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-writer")

    async def in_writer_thread(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(
            writer_thread, functools.partial(function, *args, **kwargs)
        )

    try:
        async with source.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            await conn.execute(f"SET LOCAL statement_timeout = {int(config.statement_timeout_ms)}")
            await conn.execute(ZONE_SQL, job.time_zone)  # where the date filter's days start
            state.total = await conn.fetchval(query.count_sql, *query.args)
            if as_csv:
                copied = await copy_csv(
                    conn,
                    query.select_sql,
                    query.args,
                    temp_path,
                    query.columns,
                    bom=bool(job.options.get("csvBom", True)),
                    # Else the pool's command_timeout bounds it. Later than the server's statement_timeout,
                    # so that a slow source ends with PostgreSQL's clear cancel, not a client-side timeout.
                    copy_timeout=config.statement_timeout_ms / 1000 + 10,
                    time_zone=job.time_zone,
                    on_records=lambda rows: _advance(job, state, publish, rows),
                    expected_rows=state.total,
                    delimiter=job.options.get("csvDelimiter") or ",",
                    gzip=job.csv_gzip,
                )
                sha256 = copied.sha256
            else:
                writer = await in_writer_thread(
                    open_writer,
                    job.format.value,
                    temp_path,
                    query.columns,
                    title=resource.label,
                    max_rows_per_sheet=config.max_rows_per_sheet,
                    time_zone=job.time_zone,  # the query gives its wall times; the writers name it
                    prepared=prepared,
                    report=(
                        await _report_info(conn, catalog, resource, job, account["name"], account["tenant_key"])
                        if job.format is ExportFormat.PDF
                        else None
                    ),
                )
                # Batches of about 1 % of the rows keep progress events fine-grained; at most
                # batch_size rows, which bounds the memory.
                fetch_size = max(200, min(config.batch_size, math.ceil((state.total or 1) / 100)))
                cursor = await conn.cursor(query.select_sql, *query.args)
                await _stream(cursor, writer, in_writer_thread, fetch_size, job, state, publish)
        if writer is not None:
            await in_writer_thread(writer.close)
            sha256 = writer.sha256()
            writer = None
        await _progress_sent(state)
        _raise_if_stopped(state)
        key = f"{job.account_id}/{job.id}-{job.attempts}.{job.extension}"
        size = await storage.put(key, temp_path, sha256=sha256)
        done = await unscoped.finish_completed(
            pool,
            job,
            rows=state.processed,
            file_key=key,
            file_name=file_name_for(job),
            file_size=size,
            sha256=sha256,
            link_ttl_seconds=config.link_ttl_seconds,
        )
        if done is None:  # cancelled or taken over at the last moment: the file must not stay
            await storage.delete(key)
            current = await unscoped.get_job(pool, job.id)
            if current is not None and current.cancel_requested:
                raise Cancelled()
            raise LeaseLost()
        return done
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        if state.sending is not None:  # stopped early, its events still go before the final one
            with contextlib.suppress(Exception):  # a failed publish was raised already, or is moot now
                await state.sending
        try:
            if writer is not None:
                await in_writer_thread(writer.abort)
        finally:
            writer_thread.shutdown(wait=False)
            temp_path.unlink(missing_ok=True)


async def _report_info(
    conn: asyncpg.Connection, catalog: Catalog, resource: Resource, job: ExportJob, account_name: str, tenant_key: str
) -> ReportInfo:
    """The PDF title block: whose data, and the filters in words."""
    f = job.filters
    lines = []
    if f.date_from or f.date_to:
        lines.append(f"{resource.date_label}: {f.date_from or 'any'} to {f.date_to or 'any'}")
    if f.status:
        lines.append(f"Status: {f.status}")
    if f.department_ids and catalog.departments is not None:
        sql, args = departments_query(catalog.departments, tenant_key, list(f.department_ids))
        names = sorted(r["name"] for r in await conn.fetch(sql, *args))
        lines.append("Departments: " + ", ".join(names))
    return ReportInfo(
        account_name=account_name or "", filters=tuple(lines) or ("All rows",), generated_at=job.created_at
    )


async def _stream(
    cursor: Any,
    writer: Any,
    in_writer_thread: Callable[..., Awaitable[Any]],
    fetch_size: int,
    job: ExportJob,
    state: _Progress,
    publish: Publish,
) -> None:
    pending = asyncio.ensure_future(cursor.fetch(fetch_size))
    try:
        while True:
            rows = await pending
            if not rows:
                break
            pending = asyncio.ensure_future(cursor.fetch(fetch_size))  # read ahead while writing
            await in_writer_thread(writer.write_rows, rows)
            await _advance(job, state, publish, len(rows))
    finally:
        if not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pending


async def _advance(job: ExportJob, state: _Progress, publish: Publish, rows: int) -> None:
    """Count `rows` more as written; stop if asked to; publish at each 1 % step, or after 0.5 s."""
    state.processed += rows
    _raise_if_stopped(state)
    now = time.monotonic()
    if state.percent > state.published_percent or now - state.published_at >= 0.5:
        state.published_percent, state.published_at = state.percent, now
        _send_behind(
            state,
            publish,
            dataclasses.replace(job, processed_rows=state.processed, total_rows=state.total, progress=state.percent),
        )
    if rows and state.processed == rows and state.pause_dir is not None:
        # After the first batch a test may hold the export (pause_hook.py), its first event sent.
        await _progress_sent(state)
        await hold_if_paused(state.pause_dir, job.id, lambda: state.cancel_requested or state.lease_lost)
        _raise_if_stopped(state)


def _send_behind(state: _Progress, publish: Publish, event: ExportJob) -> None:
    """Publish a progress event while the rows go on (awaiting a round trip to Redis per event held
    up the COPY): one at a time, in order, every one. A publish that failed raises here, at the next
    event, as it did when awaited."""
    state.unsent.append(event)
    if state.sending is not None and not state.sending.done():
        return  # it takes this one too
    if state.sending is not None:
        state.sending.result()
    state.sending = asyncio.create_task(_send_all(state, publish))


async def _send_all(state: _Progress, publish: Publish) -> None:
    while state.unsent:
        await publish(state.unsent[0])
        state.unsent.popleft()


async def _progress_sent(state: _Progress) -> None:
    """Wait for the progress events under way: the export's last event must come after them."""
    if state.sending is not None:
        await state.sending


def _raise_if_stopped(state: _Progress) -> None:
    if state.cancel_requested:
        raise Cancelled()
    if state.lease_lost:
        raise LeaseLost()


async def _keep_lease(pool: asyncpg.Pool, job: ExportJob, state: _Progress, config: PipelineConfig) -> None:
    """Once a second: record progress, renew the lease, and notice a cancel request."""
    while True:
        await asyncio.sleep(config.heartbeat_seconds)
        try:
            cancel = await unscoped.renew_lease(
                pool,
                job,
                processed_rows=state.processed,
                total_rows=state.total,
                progress=state.percent,
                lease_seconds=config.lease_seconds,
            )
        except TRANSIENT_ERRORS as exc:
            log.warning("export %s: could not renew lease: %r", job.id, exc)
            continue
        if cancel is None:
            state.lease_lost = True
            return
        state.cancel_requested = cancel
