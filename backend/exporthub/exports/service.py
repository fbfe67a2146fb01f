"""Submit, read, list and cancel exports for one account. Enqueueing is passed in by the caller."""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg

from exporthub.accounts import Account
from exporthub.catalog import Catalog, Resource
from exporthub.errors import Conflict, InvalidRequest, NotFound, Problem, TooManyActiveExports
from exporthub.exports import jobs
from exporthub.exports.models import ExportFormat, ExportJob, ExportRequest, ExportStatus
from exporthub.exports.query import build_export_query, departments_query


async def submit_export(
    pool: asyncpg.Pool,
    source: asyncpg.Pool,
    catalog: Catalog,
    account: Account,
    request: ExportRequest,
    *,
    idempotency_key: str | None,
    max_active: int,
    idempotency_ttl_seconds: int,
    pdf_max_rows: int | None = None,
) -> tuple[ExportJob, bool]:
    """Record a new export (status queued). Returns (job, created); created is False on an idempotent replay.

    The caller enqueues the job after this returns: commit first, enqueue second. `source` is the
    pool of the database the catalog reads (often `pool` itself).
    """
    account_id = account.id
    # The source is read before the account lock: no connection is held while another is awaited
    # (the source pool may be `pool` itself), and the lock serialises only the cap check and insert.
    await _check_departments(source, catalog, account, request)
    if request.format is ExportFormat.PDF and pdf_max_rows is not None:
        await _check_pdf_size(source, catalog, account, request, pdf_max_rows)
    async with pool.acquire() as conn, conn.transaction():
        # Serialises submits per account, so the active-export cap holds under concurrent requests.
        await conn.execute("SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", account_id)
        if idempotency_key is not None:
            previous = await jobs.find_by_idempotency_key(conn, account_id, idempotency_key)
            if previous is not None:
                if previous["age"] < dt.timedelta(seconds=idempotency_ttl_seconds):
                    if previous["request_hash"] != request.fingerprint():
                        raise Conflict(
                            "this Idempotency-Key was already used with a different request body; "
                            "use a new key for a new export"
                        )
                    return ExportJob.from_record(previous), False
                await jobs.release_idempotency_key(conn, previous["id"])
        active = await jobs.count_active(conn, account_id)
        if active >= max_active:
            raise TooManyActiveExports(max_active, retry_after=30)
        job = await jobs.insert_job(conn, account_id, request, idempotency_key=idempotency_key)
    return job, True


async def list_departments(source: asyncpg.Pool, catalog: Catalog, account: Account) -> list[asyncpg.Record]:
    """The account's departments (id, name as text), for the department filter; none without one."""
    if catalog.departments is None:
        return []
    sql, args = departments_query(catalog.departments, account.tenant_key)
    return await source.fetch(sql, *args)


async def _check_departments(source: asyncpg.Pool, catalog: Catalog, account: Account, request: ExportRequest) -> None:
    ids = list(request.filters.department_ids)
    if not ids or catalog.departments is None:
        return
    sql, args = departments_query(catalog.departments, account.tenant_key, ids)
    known = {r["id"] for r in await source.fetch(sql, *args)}
    problems = [
        Problem(f"filters.departmentIds[{i}]", f"no department {d} in this account")
        for i, d in enumerate(ids)
        if d not in known
    ]
    if problems:
        raise InvalidRequest(problems)


async def _check_pdf_size(
    source: asyncpg.Pool, catalog: Catalog, account: Account, request: ExportRequest, limit: int
) -> None:
    resource = catalog.resources[request.resource]
    query = build_export_query(resource, request.columns, request.filters, account.tenant_key)
    rows = await source.fetchval(query.count_sql, *query.args)
    if rows > limit:
        raise InvalidRequest(
            [
                Problem(
                    "format",
                    f"a PDF report holds at most {limit:,} rows and this export has {rows:,}; "
                    "choose csv or xlsx, or narrow the filters",
                )
            ]
        )


async def get_export(pool: asyncpg.Pool, account_id: uuid.UUID, export_id: uuid.UUID) -> ExportJob:
    job = await jobs.get_job(pool, account_id, export_id)
    if job is None:
        raise NotFound("export", export_id)
    return job


async def list_exports(
    pool: asyncpg.Pool, account_id: uuid.UUID, *, limit: int, status: ExportStatus | None
) -> list[ExportJob]:
    return await jobs.list_jobs(pool, account_id, limit=limit, status=status)


async def cancel_export(pool: asyncpg.Pool, account_id: uuid.UUID, export_id: uuid.UUID) -> ExportJob:
    job = await jobs.request_cancel(pool, account_id, export_id)
    if job is not None:
        return job
    current = await get_export(pool, account_id, export_id)  # raises NotFound for others' ids
    raise Conflict(
        f"export {export_id} is already {current.status.value}; only queued or processing exports can be cancelled"
    )


def resources_for(catalog: Catalog, account: Account) -> list[Resource]:
    """The resources this account may export, in catalog order: those its API key is limited to."""
    return [r for r in catalog.resources.values() if account.allows(r.key)]
