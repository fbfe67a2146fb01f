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
from litestar.response import File, Redirect

from exporthub.accounts import Account
from exporthub.catalog import Catalog
from exporthub.errors import InvalidRequest, LinkExpired, NotFound, Problem, ResourceNotAllowed
from exporthub.exports import jobs, service
from exporthub.exports.models import ExportJob, ExportRequest, ExportStatus
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
    WebhookAttemptOut,
    WebhookDeliveries,
    WebhookEventOut,
    WebhookSecretOut,
)
from exporthub.webhooks import AddressPolicy, WebhookUrlRefused, record_export_event, resolve_checked
from exporthub.webhooks import store as webhook_store
from exporthub.worker.queue import ExportQueue, download_link, download_url_for

log = logging.getLogger(__name__)


async def submit_and_enqueue(
    pool: asyncpg.Pool,
    source: asyncpg.Pool,
    catalog: Catalog,
    queue: ExportQueue,
    settings: Settings,
    account: Account,
    body: Any,
    *,
    idempotency_key: str | None = None,
) -> ExportJob:
    """Validate, record (commit first), then enqueue: the one submit path of the API and the console."""
    resource = body.get("resource") if isinstance(body, dict) else None
    if isinstance(resource, str) and not account.allows(resource):
        # Before validation, whose messages would describe a resource this key may not see.
        raise ResourceNotAllowed(resource)
    request = await parse_submission(body, settings, catalog)
    job, created = await service.submit_export(
        pool,
        source,
        catalog,
        account,
        request,
        idempotency_key=idempotency_key,
        max_active=settings.max_active_exports,
        idempotency_ttl_seconds=settings.idempotency_ttl_seconds,
        pdf_max_rows=settings.pdf_max_rows,
    )
    if created:
        try:
            await queue.enqueue(job.id)
        except Exception:  # the job is saved; the recovery sweep sends it later
            log.exception("could not enqueue export %s now; it will be re-sent", job.id)
    return job


async def parse_submission(body: Any, settings: Settings, catalog: Catalog) -> ExportRequest:
    """parse_export_request, plus the check that needs DNS: a webhook must not reach internal networks."""
    problems: list[Problem] = []
    request: ExportRequest | None = None
    try:
        request = parse_export_request(body, catalog, default_csv_bom=settings.csv_bom)
    except InvalidRequest as exc:
        problems = list(exc.problems)
    url = body.get("webhookUrl") if isinstance(body, dict) else None
    if isinstance(url, str) and not any(p.field == "webhookUrl" for p in problems):
        try:
            await resolve_checked(url, AddressPolicy.from_settings(settings))
        except WebhookUrlRefused as exc:
            problems.append(Problem("webhookUrl", str(exc)))
    if problems or request is None:
        raise InvalidRequest(problems)
    return request


def export_out(settings: Settings, job: ExportJob, download_url: str | None = None) -> ExportOut:
    """`download_url`: `await download_link(settings, job, storage)` (S3: a presigned URL). Without it,
    our signed link, which serves a local file or redirects to the bucket."""
    if job.status is not ExportStatus.COMPLETED:
        download_url = None
    elif download_url is None:
        download_url = download_url_for(settings, job)
    return ExportOut.from_job(job, download_url)


class ExportsController(Controller):
    path = "/api/v1"
    tags = ["exports"]
    dependencies = {"account": Provide(api_account)}
    security = [{"apiKey": []}]

    @get("/resources", summary="The resources this API key may export, their columns and filters")
    async def resources(self, account: Account, catalog: Catalog) -> ResourceList:
        return ResourceList([ResourceOut.from_resource(r) for r in service.resources_for(catalog, account)])

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
        source: asyncpg.Pool,
        catalog: Catalog,
        queue: ExportQueue,
        settings: Settings,
        idempotency_key: Annotated[
            str | None, Parameter(header="Idempotency-Key", max_length=255, required=False)
        ] = None,
    ) -> ExportCreated:
        job = await submit_and_enqueue(
            pool, source, catalog, queue, settings, account, data, idempotency_key=idempotency_key
        )
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
        storage: Storage,
        limit: Annotated[int, Parameter(ge=1, le=100)] = 20,
        status: ExportStatus | None = None,
    ) -> ExportList:
        items = await service.list_exports(pool, account.id, limit=limit, status=status)
        return ExportList([export_out(settings, j, await download_link(settings, j, storage)) for j in items])

    @get("/exports/{export_id:uuid}", summary="One export's status, progress and download link")
    async def get_export(
        self, export_id: uuid.UUID, account: Account, pool: asyncpg.Pool, settings: Settings, storage: Storage
    ) -> ExportOut:
        job = await service.get_export(pool, account.id, export_id)
        return export_out(settings, job, await download_link(settings, job, storage))

    @post("/exports/{export_id:uuid}/cancel", status_code=200, summary="Cancel a queued or running export")
    async def cancel(self, export_id: uuid.UUID, account: Account, pool: asyncpg.Pool, settings: Settings) -> ExportOut:
        job = await service.cancel_export(pool, account.id, export_id)
        try:  # cancelled while queued: no worker ends it, so record its webhook event here
            await record_export_event(pool, job, None, window_seconds=settings.webhook_retry_window_seconds)
        except Exception:  # the workers' sweep records it later
            log.warning("could not record the webhook event of export %s now", job.id, exc_info=True)
        return export_out(settings, job)

    @get(
        "/webhook-secret",
        tags=["webhooks"],
        summary="The account's webhook signing secret (made on first use)",
    )
    async def webhook_secret(self, account: Account, pool: asyncpg.Pool) -> WebhookSecretOut:
        return _secret_out(await webhook_store.get_secret(pool, account.id))

    @post(
        "/webhook-secret/rotate",
        status_code=200,
        tags=["webhooks"],
        summary="Replace the webhook signing secret; the old one keeps signing for a grace period",
    )
    async def rotate_webhook_secret(self, account: Account, pool: asyncpg.Pool, settings: Settings) -> WebhookSecretOut:
        secret = await webhook_store.rotate_secret(
            pool, account.id, grace_seconds=settings.webhook_secret_grace_seconds
        )
        return _secret_out(secret)

    @get(
        "/exports/{export_id:uuid}/webhooks",
        tags=["webhooks"],
        summary="The export's webhook events and every delivery attempt",
    )
    async def webhook_deliveries(self, export_id: uuid.UUID, account: Account, pool: asyncpg.Pool) -> WebhookDeliveries:
        # 404 for another account's export, exactly as for an unknown id
        await service.get_export(pool, account.id, export_id)
        events = await webhook_store.list_events(pool, account.id, export_id)
        attempts = await webhook_store.list_attempts(pool, account.id, export_id)
        return WebhookDeliveries(
            events=[
                WebhookEventOut(
                    event_id=e["id"],
                    event=e["event"],
                    url=e["url"],
                    state=e["state"],
                    attempts=e["attempts"],
                    next_attempt_at=e["next_attempt_at"] if e["state"] == "pending" else None,
                    created_at=e["created_at"],
                    finished_at=e["finished_at"],
                )
                for e in events
            ],
            items=[
                WebhookAttemptOut(
                    event_id=a["event_id"],
                    event=a["event"],
                    attempt=a["attempt"],
                    url=a["url"],
                    status_code=a["status_code"],
                    error=a["error"],
                    duration_ms=a["duration_ms"],
                    attempted_at=a["attempted_at"],
                    next_retry_at=a["next_retry_at"],
                )
                for a in attempts
            ],
        )


def _secret_out(secret: webhook_store.WebhookSecret) -> WebhookSecretOut:
    return WebhookSecretOut(
        secret=secret.secret,
        created_at=secret.created_at,
        previous_secret_expires_at=secret.previous_expires_at,
    )


@get(
    "/api/v1/exports/{export_id:uuid}/download",
    tags=["exports"],
    summary="Download a finished export through its signed link (no API key needed)",
    description="Serves a file on local disk; a file in S3 answers 307 to a fresh presigned URL.",
)
async def download(
    export_id: uuid.UUID,
    expires: str,
    signature: str,
    pool: asyncpg.Pool,
    storage: Storage,
    settings: Settings,
) -> File | Redirect:
    now = dt.datetime.now(dt.UTC)
    verify_download_link(settings.secret_keys, export_id, expires, signature, now)
    job = await jobs.get_job_by_id(pool, export_id)
    if job is None:
        raise NotFound("export", export_id)
    if job.status is ExportStatus.EXPIRED or (job.expires_at is not None and job.expires_at <= now):
        raise LinkExpired()
    if job.status is not ExportStatus.COMPLETED or job.file_key is None:
        raise NotFound("file for export", export_id)
    path = storage.local_path(job.file_key)
    if path is None:  # S3: the bucket serves it (with Range), not us
        url = await storage.download_url(
            job.file_key,
            filename=job.file_name or job.file_key.rsplit("/", 1)[-1],
            media_type=job.format.media_type,
            expires_at=job.expires_at or now,
        )
        if url is None:
            raise LinkExpired()
        return Redirect(url, status_code=307)
    if not path.is_file():
        raise NotFound("file for export", export_id)
    # Litestar adds "; charset=utf-8" to text/ types itself: give it the bare type, or CSV gets two.
    # no-store: the file is an account's HR data, and the link works for anyone who has it.
    return File(
        path=path,
        filename=job.file_name,
        media_type=job.format.media_type.split(";")[0],
        headers={"Cache-Control": "no-store"},
    )


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
    return Response({"status": "ok" if healthy else "degraded", **checks}, status_code=200 if healthy else 503)
