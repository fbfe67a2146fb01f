"""REST API under /api/v1: resources, exports (submit, read, list, cancel) and signed downloads."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Annotated, Any

import asyncpg
from litestar import Controller, Response, get, post
from litestar.di import Provide
from litestar.params import Parameter
from litestar.response import File

from exporthub.accounts import Account
from exporthub.errors import LinkExpired, NotFound
from exporthub.exports import jobs, service
from exporthub.exports.catalog import RESOURCES
from exporthub.exports.models import ExportJob, ExportStatus
from exporthub.exports.validation import parse_export_request
from exporthub.settings import Settings
from exporthub.storage import Storage
from exporthub.storage.links import verify_download_link
from exporthub.web.auth import api_account
from exporthub.web.schemas import (
    ExportCreated,
    ExportList,
    ExportOut,
    ExportRequestOperation,
    ResourceList,
    ResourceOut,
)
from exporthub.worker.queue import ExportQueue, download_url_for

log = logging.getLogger(__name__)


async def submit_and_enqueue(
    pool: asyncpg.Pool,
    queue: ExportQueue,
    settings: Settings,
    account: Account,
    body: Any,
    *,
    idempotency_key: str | None = None,
) -> ExportJob:
    """Validate, record (commit first), then enqueue: the one submit path of the API and the console."""
    request = parse_export_request(body, default_csv_bom=settings.csv_bom)
    job, created = await service.submit_export(
        pool,
        account.id,
        request,
        idempotency_key=idempotency_key,
        max_active=settings.max_active_exports,
        idempotency_ttl_seconds=settings.idempotency_ttl_seconds,
    )
    if created:
        try:
            await queue.enqueue(job.id)
        except Exception:  # the job is saved; the recovery sweep sends it later
            log.exception("could not enqueue export %s now; it will be re-sent", job.id)
    return job


def export_out(settings: Settings, job: ExportJob) -> ExportOut:
    return ExportOut.from_job(
        job, download_url_for(settings, job) if job.status is ExportStatus.COMPLETED else None
    )


class ExportsController(Controller):
    path = "/api/v1"
    tags = ["exports"]
    dependencies = {"account": Provide(api_account)}
    security = [{"apiKey": []}]

    @get("/resources", summary="The exportable resources, their columns and filters")
    async def resources(self, account: Account) -> ResourceList:
        return ResourceList([ResourceOut.from_resource(r) for r in RESOURCES.values()])

    @post(
        "/exports",
        status_code=202,
        summary="Submit an export; answers at once with its id",
        operation_class=ExportRequestOperation,
    )
    async def submit(
        self,
        data: Any,
        account: Account,
        pool: asyncpg.Pool,
        queue: ExportQueue,
        settings: Settings,
        idempotency_key: Annotated[
            str | None, Parameter(header="Idempotency-Key", max_length=255, required=False)
        ] = None,
    ) -> ExportCreated:
        job = await submit_and_enqueue(pool, queue, settings, account, data, idempotency_key=idempotency_key)
        return ExportCreated(
            export_id=job.id,
            status=job.status.value,
            poll_url=f"{settings.public_url}/api/v1/exports/{job.id}",
        )

    @get("/exports", summary="The account's exports, newest first")
    async def list_exports(
        self,
        account: Account,
        pool: asyncpg.Pool,
        settings: Settings,
        limit: Annotated[int, Parameter(ge=1, le=100)] = 20,
        status: ExportStatus | None = None,
    ) -> ExportList:
        items = await service.list_exports(pool, account.id, limit=limit, status=status)
        return ExportList([export_out(settings, j) for j in items])

    @get("/exports/{export_id:uuid}", summary="One export's status, progress and download link")
    async def get_export(
        self, export_id: uuid.UUID, account: Account, pool: asyncpg.Pool, settings: Settings
    ) -> ExportOut:
        return export_out(settings, await service.get_export(pool, account.id, export_id))

    @post("/exports/{export_id:uuid}/cancel", status_code=200, summary="Cancel a queued or running export")
    async def cancel(
        self, export_id: uuid.UUID, account: Account, pool: asyncpg.Pool, settings: Settings
    ) -> ExportOut:
        return export_out(settings, await service.cancel_export(pool, account.id, export_id))


@get(
    "/api/v1/exports/{export_id:uuid}/download",
    tags=["exports"],
    summary="Download a finished export through its signed link (no API key needed)",
)
async def download(
    export_id: uuid.UUID,
    expires: str,
    signature: str,
    pool: asyncpg.Pool,
    storage: Storage,
    settings: Settings,
) -> File:
    verify_download_link(settings.secret_key, export_id, expires, signature, dt.datetime.now(dt.UTC))
    job = await jobs.get_job_by_id(pool, export_id)
    if job is None or job.file_key is None:
        raise NotFound("export", export_id)
    if job.status is ExportStatus.EXPIRED:
        raise LinkExpired()
    path = storage.local_path(job.file_key)
    if path is None or not path.is_file():
        raise NotFound("file for export", export_id)
    return File(path=path, filename=job.file_name, media_type=job.format.media_type)


@get("/healthz", tags=["operations"], summary="Whether PostgreSQL and Redis answer")
async def healthz(pool: asyncpg.Pool, redis: Any) -> Response[dict[str, str]]:
    checks: dict[str, str] = {}
    try:
        await pool.fetchval("SELECT 1", timeout=2)
        checks["postgres"] = "ok"
    except Exception as exc:
        checks["postgres"] = f"error: {type(exc).__name__}"
    try:
        await redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return Response(
        {"status": "ok" if healthy else "degraded", **checks}, status_code=200 if healthy else 503
    )
