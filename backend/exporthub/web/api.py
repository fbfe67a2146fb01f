"""REST API under /api/v1: resources, exports (submit, read, list, cancel) and signed downloads."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any

import asyncpg
from litestar import Controller, Response, get, post
from litestar.di import Provide
from litestar.openapi.spec import Example
from litestar.params import Body, Parameter
from litestar.response import File, Redirect

from exporthub.accounts import Account
from exporthub.exports.account_scope import WebhookSecret
from exporthub.exports.links import DOWNLOAD_PATH
from exporthub.exports.models import ExportJob, ExportStatus
from exporthub.exports.service import Exports
from exporthub.exports.validation import ExportRequestIn
from exporthub.settings import Settings
from exporthub.web.auth import api_account
from exporthub.web.schemas import (
    ExportCreated,
    ExportList,
    ExportOut,
    ResourceList,
    ResourceOut,
    WebhookAttemptOut,
    WebhookDeliveries,
    WebhookEventOut,
    WebhookSecretOut,
)

log = logging.getLogger(__name__)


async def export_out(exports: Exports, job: ExportJob) -> ExportOut:
    """The export as the API shows it: its link (the domain's one decision), or its place in the queue."""
    return ExportOut.from_job(job, await exports.link(job), await exports.queue_position(job))


class ExportsController(Controller):
    path = "/api/v1"
    tags = ["exports"]
    dependencies = {"account": Provide(api_account)}
    security = [{"apiKey": []}]

    @get("/resources", summary="The resources this API key may export, their columns and filters")
    async def resources(self, account: Account, exports: Exports) -> ResourceList:
        return ResourceList([ResourceOut.from_resource(r) for r in exports.resources(account)])

    @post("/exports", status_code=202, summary="Submit an export; answers at once with its id")
    async def submit(
        self,
        data: Annotated[
            ExportRequestIn,
            Body(
                description="A field left out or null takes its default; a field not listed here is refused.",
                examples=[
                    Example(value={"format": "xlsx", "resource": "payroll", "filters": {"dateFrom": "2025-01-01"}})
                ],
            ),
        ],
        account: Account,
        exports: Exports,
        settings: Settings,
        idempotency_key: Annotated[
            str | None, Parameter(header="Idempotency-Key", max_length=255, required=False)
        ] = None,
    ) -> ExportCreated:
        # Litestar has checked the shape; the body goes on as the console's does, to the one submit path.
        job = await exports.submit(account, data, idempotency_key=idempotency_key)
        return ExportCreated(
            export_id=job.id,
            status=job.status.value,
            poll_url=f"{settings.web.public_url}/api/v1/exports/{job.id}",
        )

    @get("/exports", summary="The account's exports, newest first")
    async def list_exports(
        self,
        account: Account,
        exports: Exports,
        limit: Annotated[int, Parameter(ge=1, le=100)] = 20,
        status: ExportStatus | None = None,
    ) -> ExportList:
        items = await exports.recent(account, limit=limit, status=status)
        return ExportList([await export_out(exports, j) for j in items])

    @get("/exports/{export_id:uuid}", summary="One export's status, progress and download link")
    async def get_export(self, export_id: uuid.UUID, account: Account, exports: Exports) -> ExportOut:
        job = await exports.get(account, export_id)
        return await export_out(exports, job)

    @post("/exports/{export_id:uuid}/cancel", status_code=200, summary="Cancel a queued or running export")
    async def cancel(self, export_id: uuid.UUID, account: Account, exports: Exports) -> ExportOut:
        return await export_out(exports, await exports.cancel(account, export_id))

    @get(
        "/webhook-secret",
        tags=["webhooks"],
        summary="The account's webhook signing secret (made on first use)",
    )
    async def webhook_secret(self, account: Account, exports: Exports) -> WebhookSecretOut:
        return _secret_out(await exports.webhook_secret(account))

    @post(
        "/webhook-secret/rotate",
        status_code=200,
        tags=["webhooks"],
        summary="Replace the webhook signing secret; the old one keeps signing for a grace period",
    )
    async def rotate_webhook_secret(self, account: Account, exports: Exports) -> WebhookSecretOut:
        return _secret_out(await exports.rotate_webhook_secret(account))

    @get(
        "/exports/{export_id:uuid}/webhooks",
        tags=["webhooks"],
        summary="The export's webhook events and every delivery attempt",
    )
    async def webhook_deliveries(self, export_id: uuid.UUID, account: Account, exports: Exports) -> WebhookDeliveries:
        events, attempts = await exports.webhook_deliveries(account, export_id)
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


def _secret_out(secret: WebhookSecret) -> WebhookSecretOut:
    return WebhookSecretOut(
        secret=secret.secret,
        created_at=secret.created_at,
        previous_secret_expires_at=secret.previous_expires_at,
    )


@get(
    DOWNLOAD_PATH.replace("{export_id}", "{export_id:uuid}"),
    tags=["exports"],
    summary="Download a finished export through its signed link (no API key needed)",
    description="Serves a file on local disk; a file in S3 answers 307 to a fresh presigned URL.",
)
async def download(export_id: uuid.UUID, expires: str, signature: str, exports: Exports) -> File | Redirect:
    found = await exports.download(export_id, expires, signature)
    if found.redirect_url is not None:
        return Redirect(found.redirect_url, status_code=307)
    assert found.path is not None
    # Litestar adds "; charset=utf-8" to text/ types itself: give it the bare type, or CSV gets two.
    # no-store: the file is an account's HR data, and the link works for anyone who has it.
    return File(
        path=found.path,
        filename=found.job.file_name,
        media_type=found.job.format.media_type.split(";")[0],
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
