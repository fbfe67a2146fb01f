"""REST API under /api/v1: resources, exports (submit, read, list, cancel) and signed downloads."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from typing import Annotated, Any

import asyncpg
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example, OpenAPIHeader, OpenAPIResponse, OpenAPIType, Operation, Schema
from litestar.params import Body, Parameter
from litestar.response import File, Redirect

from exporthub.accounts import Account
from exporthub.exports.account_scope import WebhookSecret
from exporthub.exports.links import DOWNLOAD_PATH
from exporthub.exports.models import ExportJob, ExportStatus
from exporthub.exports.schedules import ScheduleChangesIn, ScheduleIn
from exporthub.exports.service import Exports
from exporthub.exports.validation import ExportRequestIn
from exporthub.settings import Settings
from exporthub.web.auth import api_account
from exporthub.web.errors import PROBLEM_JSON
from exporthub.web.presented import presented
from exporthub.web.rate_limit import POLICY_HEADER_DOC, RATELIMIT_HEADER_DOC, RETRY_AFTER_DOC, start_rate_headers
from exporthub.web.schemas import (
    DownloadList,
    DownloadOut,
    ExportCreated,
    ExportList,
    ExportOut,
    QuotaExceededOut,
    ResourceList,
    ResourceOut,
    ScheduleList,
    ScheduleOut,
    WebhookAttemptOut,
    WebhookDeliveries,
    WebhookEventOut,
    WebhookSecretOut,
)

log = logging.getLogger(__name__)

REPR_DIGEST_DOC = (
    "The file's SHA-256 (RFC 9530): `sha-256=:<base64 of the digest>:`; the export's status gives the same "
    "digest as `sha256`, in hex. Absent for files made before checksums were kept."
)


_STRING = Schema(type=OpenAPIType.STRING)
DOWNLOAD_CURSOR_PATTERN = r"^[1-9][0-9]{0,17}$"  # a record id; opaque to clients
_TOO_MANY = (
    "Too many exports started: the account's start rate allows no new export yet (type "
    '`https://iana.org/assignments/http-problem-types#quota-exceeded`, `violated-policies: ["start"]`, '
    "`retryAfter`; with the RateLimit headers). Or too many active: the account already has its maximum of "
    "exports queued or running (5 by default; `Retry-After` only). Either way, wait `Retry-After` seconds "
    "and try again."
)


@dataclasses.dataclass
class SubmitOperation(Operation):
    """POST /api/v1/exports in OpenAPI, with the headers of its answers (a ResponseSpec cannot name
    headers, and a documentation-only ResponseHeader has no schema)."""

    def __post_init__(self) -> None:
        rate = {
            "RateLimit-Policy": OpenAPIHeader(schema=_STRING, description=POLICY_HEADER_DOC),
            "RateLimit": OpenAPIHeader(schema=_STRING, description=RATELIMIT_HEADER_DOC),
        }
        retry = {"Retry-After": OpenAPIHeader(schema=Schema(type=OpenAPIType.INTEGER), description=RETRY_AFTER_DOC)}
        for status, headers in (("202", rate), ("429", retry | rate)):
            response = (self.responses or {}).get(status)
            if isinstance(response, OpenAPIResponse):
                response.headers = {**(response.headers or {}), **headers}


@dataclasses.dataclass
class DownloadOperation(Operation):
    """The download in OpenAPI, with the Repr-Digest header of its 200."""

    def __post_init__(self) -> None:
        response = (self.responses or {}).get("200")
        if isinstance(response, OpenAPIResponse):
            digest = OpenAPIHeader(
                schema=_STRING,
                description=REPR_DIGEST_DOC,
                example="sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:",
            )
            response.headers = {**(response.headers or {}), "Repr-Digest": digest}


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

    @post(
        "/exports",
        status_code=202,
        summary="Submit an export; answers at once with its id",
        description="Each new export counts against the account's start rate (an idempotent replay, or a "
        "refused request, does not): the answer's `RateLimit-Policy` and `RateLimit` headers say how many more "
        "may start now; over the rate, 429 with `Retry-After`.",
        responses={
            429: ResponseSpec(QuotaExceededOut, description=_TOO_MANY, media_type=PROBLEM_JSON, generate_examples=False)
        },
        operation_class=SubmitOperation,
    )
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
    ) -> Response[ExportCreated]:
        # Litestar has checked the shape; the body goes on as the console's does, to the one submit path.
        submitted = await exports.submit(account, data, idempotency_key=idempotency_key)
        job = submitted.job
        created = ExportCreated(
            export_id=job.id,
            status=job.status.value,
            poll_url=f"{settings.web.public_url}/api/v1/exports/{job.id}",
        )
        return Response(created, status_code=202, headers=start_rate_headers(submitted.start_rate))

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
        "/exports/{export_id:uuid}/downloads",
        summary="Who downloaded the export's file, and when: newest first, a page at a time",
        description="One record per answer of the export's download link (the file, or the 307 to S3): when, "
        "the client's address and user agent, and `via`: `api_key` (a key of this account sent along, as "
        "`exporthub export` does), `console` (a signed-in console session) or `signed_link` (the link alone). "
        "Records are kept `EXPORTHUB_AUDIT_RETENTION_DAYS` (400 days). Pass `nextCursor` as `cursor` for the "
        "next, older page; it is null on the last.",
    )
    async def downloads(
        self,
        export_id: uuid.UUID,
        account: Account,
        exports: Exports,
        limit: Annotated[int, Parameter(ge=1, le=100, description="records per page")] = 20,
        cursor: Annotated[
            str | None,
            Parameter(
                pattern=DOWNLOAD_CURSOR_PATTERN,
                max_length=18,
                description="`nextCursor` of the previous page (opaque); leave out for the newest",
            ),
        ] = None,
    ) -> DownloadList:
        page = await exports.downloads(account, export_id, limit=limit, before=int(cursor) if cursor else None)
        return DownloadList(
            items=[DownloadOut.from_record(r) for r in page.items],
            next_cursor=str(page.next_before) if page.next_before is not None else None,
        )

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


class SchedulesController(Controller):
    """Scheduled exports: each run submits the export request as POST /api/v1/exports does."""

    path = "/api/v1/schedules"
    tags = ["schedules"]
    dependencies = {"account": Provide(api_account)}
    security = [{"apiKey": []}]

    @post(
        "/",
        status_code=201,
        summary="Create a schedule: an export request run at the due times of a cron expression in a time zone",
    )
    async def create(
        self,
        data: Annotated[
            ScheduleIn,
            Body(
                description="The export request's fields (as POST /api/v1/exports takes them) plus cron, timeZone, "
                "window, enabled and name. A field not listed here is refused.",
                examples=[
                    Example(
                        summary="Payroll of the previous month, on the 1st at 06:00 in Berlin",
                        value={
                            "resource": "payroll",
                            "format": "xlsx",
                            "cron": "0 6 1 * *",
                            "timeZone": "Europe/Berlin",
                            "window": {"kind": "previous_month"},
                            "webhookUrl": "https://hooks.example.com/exports",
                        },
                    ),
                    Example(
                        summary="Timesheets of the previous 7 days, every Monday at 07:30 in New York",
                        value={
                            "resource": "timesheets",
                            "format": "csv",
                            "cron": "30 7 * * 1",
                            "timeZone": "America/New_York",
                            "window": {"kind": "last_days", "days": 7},
                        },
                    ),
                ],
            ),
        ],
        account: Account,
        exports: Exports,
    ) -> ScheduleOut:
        return ScheduleOut.from_schedule(await exports.create_schedule(account, data))

    @get("/", summary="The account's schedules, oldest first")
    async def list_schedules(self, account: Account, exports: Exports) -> ScheduleList:
        return ScheduleList([ScheduleOut.from_schedule(s) for s in await exports.schedules(account)])

    @get("/{schedule_id:uuid}", summary="One schedule: its next run and its last run")
    async def get_schedule(self, schedule_id: uuid.UUID, account: Account, exports: Exports) -> ScheduleOut:
        return ScheduleOut.from_schedule(await exports.schedule(account, schedule_id))

    @patch("/{schedule_id:uuid}", summary="Change a schedule (e.g. pause it with enabled: false)")
    async def update(
        self,
        schedule_id: uuid.UUID,
        data: Annotated[
            ScheduleChangesIn,  # type: ignore[valid-type]
            Body(
                description="The fields given replace the schedule's; null clears an optional one. A new cron, "
                "timeZone or enabled reschedules it from now.",
                examples=[Example(summary="Pause", value={"enabled": False})],
            ),
        ],
        account: Account,
        exports: Exports,
    ) -> ScheduleOut:
        return ScheduleOut.from_schedule(await exports.update_schedule(account, schedule_id, data))

    @delete("/{schedule_id:uuid}", status_code=204, summary="Delete a schedule (the exports it made stay)")
    async def delete_schedule(self, schedule_id: uuid.UUID, account: Account, exports: Exports) -> None:
        await exports.delete_schedule(account, schedule_id)


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
    description="Serves a file on local disk, with its SHA-256 in a `Repr-Digest` header (RFC 9530); a file "
    "in S3 answers 307 to a fresh presigned URL (the object carries its checksum: `x-amz-meta-sha256`). Each "
    "such answer is recorded (GET /api/v1/exports/{id}/downloads), with the API key or console session sent "
    "along, if any.",
    operation_class=DownloadOperation,
)
async def download(
    export_id: uuid.UUID,
    expires: str,
    signature: str,
    exports: Exports,
    request: Request[Any, Any, Any],
    settings: Settings,
) -> File | Redirect:
    found = await exports.download(export_id, expires, signature, presented(request, settings))
    if found.redirect_url is not None:
        return Redirect(found.redirect_url, status_code=307)
    assert found.path is not None
    # Litestar adds "; charset=utf-8" to text/ types itself: give it the bare type, or CSV gets two.
    # no-store: the file is an account's HR data, and the link works for anyone who has it.
    return File(
        path=found.path,
        filename=found.job.file_name,
        media_type=found.job.media_type.split(";")[0],
        headers={"Cache-Control": "no-store", **found.headers},
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
