"""Plain `create_*` functions: the domain's values for tests that need no database, and export rows
for those that have one."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import uuid
from typing import Any

import asyncpg

from exporthub.accounts import Account
from exporthub.exports.account_scope import AccountScope
from exporthub.exports.models import ExportFormat, ExportJob, ExportRequest, ExportStatus, Filters

CREATED = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def create_job(status: ExportStatus = ExportStatus.QUEUED, **fields: Any) -> ExportJob:
    """An export as its row would read in `status`; `fields` override any attribute."""
    ended = status not in (ExportStatus.QUEUED, ExportStatus.PROCESSING)
    has_file = status is ExportStatus.COMPLETED
    job = ExportJob(
        id=uuid.uuid4(),
        account_id=uuid.uuid4(),
        resource="payroll",
        format=ExportFormat.CSV,
        filters=Filters(),
        columns=("grossPay", "netPay"),
        options={"csvBom": True},
        webhook_url=None,
        status=status,
        progress=100 if has_file else 0,
        processed_rows=1_000 if has_file else 0,
        total_rows=1_000 if has_file else None,
        file_key="acct/file-1.csv" if has_file else None,
        file_name="payroll-20260101-120000.csv" if has_file else None,
        file_size=2_048 if has_file else None,
        error_message="the source database refused the export's query" if status is ExportStatus.FAILED else None,
        cancel_requested=status is ExportStatus.CANCELLED,
        attempts=0 if status is ExportStatus.QUEUED else 1,
        created_at=CREATED,
        started_at=None if status is ExportStatus.QUEUED else CREATED + dt.timedelta(seconds=1),
        completed_at=CREATED + dt.timedelta(minutes=1) if ended else None,
        expires_at=CREATED + dt.timedelta(days=1) if status in (ExportStatus.COMPLETED, ExportStatus.EXPIRED) else None,
        sha256=hashlib.sha256(b"the file").hexdigest() if has_file else None,
    )
    return dataclasses.replace(job, **fields)


def create_account(*, resources: frozenset[str] | None = None, slug: str = "acme") -> Account:
    """An account as a request authenticates it; `resources` limits its key (None: every resource)."""
    account_id = uuid.uuid4()
    return Account(account_id, slug, slug.title(), str(account_id), key_id=uuid.uuid4(), resources=resources)


def create_request(**fields: Any) -> ExportRequest:
    """A valid request of the HR catalog; `fields` override any attribute."""
    return dataclasses.replace(
        ExportRequest(resource="payroll", format=ExportFormat.CSV, columns=("grossPay",)), **fields
    )


async def create_export(
    conn: asyncpg.Connection,
    account_id: uuid.UUID,
    request: ExportRequest | None = None,
    *,
    idempotency_key: str | None = None,
    **columns: Any,
) -> ExportJob:
    """An export_jobs row inserted as a submit inserts it, then given `columns` (status, attempts,
    lease_expires_at, ...: the row's own names and values) as the worker or a sweep would leave them."""
    job = await AccountScope(conn, account_id).jobs.insert(request or create_request(), idempotency_key=idempotency_key)
    if not columns:
        return job
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(columns, start=2))
    row = await conn.fetchrow(
        f"UPDATE export_jobs SET {assignments} WHERE id = $1 RETURNING *", job.id, *columns.values()
    )
    return ExportJob.from_record(row)
