"""The API's JSON answers (camelCase). The export request's body is exports.validation.ExportRequestIn, a
schedule's exports.schedules.ScheduleIn (and ScheduleChangesIn for PATCH)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from exporthub.catalog import Resource
from exporthub.exports.downloads import DownloadRecord, DownloadVia
from exporthub.exports.models import ExportJob, ExportStatus
from exporthub.exports.schedules import Schedule


class ExportCreated(msgspec.Struct, rename="camel"):
    export_id: uuid.UUID
    status: str
    poll_url: str


class ExportOut(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    resource: str
    format: str
    filters: dict[str, Any]
    columns: list[str]
    status: str
    progress: int
    processed_rows: int
    total_rows: int | None
    file_size: int | None
    file_name: str | None
    sha256: (
        Annotated[
            str,
            Meta(
                description="Completed only: the file's SHA-256 (hex), as its download's Repr-Digest header "
                "gives it (base64) and as `exporthub export` checks it.",
                pattern="^[0-9a-f]{64}$",
            ),
        ]
        | None
    )
    download_url: str | None
    expires_at: dt.datetime | None
    error_message: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    # The IANA zone its datetimes are written in and its date filters read in (given, or the account's default).
    timezone: str
    # Queued only: 1 for the export the workers start next, in their fair order across accounts.
    queue_position: int | None = None

    @classmethod
    def from_job(cls, job: ExportJob, download_url: str | None, queue_position: int | None = None) -> ExportOut:
        return cls(
            id=job.id,
            resource=job.resource,
            format=job.format.value,
            filters=job.filters.to_json(),
            columns=list(job.columns),
            status=job.status.value,
            progress=job.progress,
            processed_rows=job.processed_rows,
            total_rows=job.total_rows,
            file_size=job.file_size,
            file_name=job.file_name,
            sha256=job.sha256 if job.status is ExportStatus.COMPLETED else None,
            download_url=download_url,
            expires_at=job.expires_at,
            error_message=job.error_message,
            created_at=job.created_at,
            started_at=job.started_at,
            completed_at=job.completed_at,
            timezone=job.time_zone,
            queue_position=queue_position if job.status is ExportStatus.QUEUED else None,
        )


class ExportList(msgspec.Struct, rename="camel"):
    items: list[ExportOut]


class WebhookSecretOut(msgspec.Struct, rename="camel"):
    secret: str
    created_at: dt.datetime
    previous_secret_expires_at: dt.datetime | None  # until then the old secret signs too


class WebhookEventOut(msgspec.Struct, rename="camel"):
    event_id: uuid.UUID
    event: str
    url: str
    state: str  # pending | delivered | failed
    attempts: int
    next_attempt_at: dt.datetime | None
    created_at: dt.datetime
    finished_at: dt.datetime | None


class WebhookAttemptOut(msgspec.Struct, rename="camel"):
    event_id: uuid.UUID
    event: str
    attempt: int
    url: str
    status_code: int | None
    error: str | None
    duration_ms: int
    attempted_at: dt.datetime
    next_retry_at: dt.datetime | None


class WebhookDeliveries(msgspec.Struct, rename="camel"):
    events: list[WebhookEventOut]
    items: list[WebhookAttemptOut]  # every attempt, oldest first


class DownloadKeyOut(msgspec.Struct, rename="camel"):
    prefix: str  # the key's first characters, as `exporthub apikey list` shows them
    name: str


class DownloadOut(msgspec.Struct, rename="camel"):
    downloaded_at: dt.datetime
    via: DownloadVia  # api_key | console | signed_link (the link alone)
    # The key sent along (api_key), or the one the console session signed in with (None: a demo sign-in,
    # or the link alone).
    api_key: DownloadKeyOut | None
    session_started_at: dt.datetime | None  # console: when that session signed in
    redirected: bool  # true: answered 307 to a presigned S3 URL; false: the file itself
    client_ip: str | None
    user_agent: str | None  # cut to 512 characters

    @classmethod
    def from_record(cls, r: DownloadRecord) -> DownloadOut:
        key = DownloadKeyOut(r.api_key_prefix, r.api_key_name or "") if r.api_key_prefix is not None else None
        return cls(
            downloaded_at=r.downloaded_at,
            via=r.via,
            api_key=key,
            session_started_at=r.session_started_at,
            redirected=r.redirected,
            client_ip=r.client_ip,
            user_agent=r.user_agent,
        )


class DownloadList(msgspec.Struct, rename="camel"):
    items: list[DownloadOut]  # newest first
    next_cursor: str | None  # the `cursor` of the next, older page; None: no more


class ColumnOut(msgspec.Struct, rename="camel"):
    key: str
    label: str
    type: str
    width: int
    default: bool


class ResourceOut(msgspec.Struct, rename="camel"):
    key: str
    label: str
    columns: list[ColumnOut]
    date_filter: str | None  # the column dateFrom / dateTo compare, when the date is one of the columns
    date_label: str | None  # what dateFrom / dateTo filter, in words; None: no date filter
    filters: list[str]  # the filters this resource offers
    statuses: list[str]

    @classmethod
    def from_resource(cls, r: Resource) -> ResourceOut:
        filters = []
        if r.date_sql is not None:
            filters += ["dateFrom", "dateTo"]
        if r.department_sql is not None:
            filters.append("departmentIds")
        if r.status_sql is not None:
            filters.append("status")
        return cls(
            key=r.key,
            label=r.label,
            columns=[ColumnOut(c.key, c.label, c.type.value, c.width, c.key in r.default_columns) for c in r.columns],
            date_filter=next((c.key for c in r.columns if r.date_sql is not None and c.sql == r.date_sql), None),
            date_label=r.date_label if r.date_sql is not None else None,
            filters=filters,
            statuses=list(r.statuses),
        )


class ResourceList(msgspec.Struct, rename="camel"):
    items: list[ResourceOut]


class FieldProblem(msgspec.Struct):
    field: str
    message: str


class ProblemOut(msgspec.Struct):
    """RFC 9457 problem details, plus `errors` naming each field at fault."""

    title: str
    status: int
    detail: str
    errors: list[FieldProblem] = []
    type: str = "about:blank"


class QuotaExceededOut(ProblemOut):
    """429 of the start rate: the IETF ratelimit draft's "quota-exceeded" problem, naming the policy
    that refused (`violated-policies`, as RateLimit-Policy names it) and the seconds to wait."""

    violated_policies: list[str] = msgspec.field(default_factory=list, name="violated-policies")
    retry_after: int | None = msgspec.field(default=None, name="retryAfter")


class ScheduleRunOut(msgspec.Struct, rename="camel"):
    due_at: dt.datetime  # the due time the run was for
    ran_at: dt.datetime | None
    outcome: str  # submitted | waiting (at the active-export cap: tried again at retryAt) | failed
    export_id: uuid.UUID | None  # the export the last successful run made
    error: str | None


class ScheduleOut(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    name: str
    resource: str
    format: str
    columns: list[str] | None  # None: the resource's default columns at each run
    filters: dict[str, Any]
    webhook_url: str | None
    csv_bom: bool | None
    csv_delimiter: str | None
    csv_gzip: bool | None
    cron: str
    time_zone: str
    window: dict[str, Any] | None
    enabled: bool
    description: str  # the cron expression in words, with its zone
    next_run_at: dt.datetime | None  # UTC; None while paused
    retry_at: dt.datetime | None  # a due run waiting for a place under the account's cap is tried again then
    last_run: ScheduleRunOut | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def from_schedule(cls, s: Schedule) -> ScheduleOut:
        last = None
        if s.last_due_at is not None and s.last_outcome is not None:
            last = ScheduleRunOut(s.last_due_at, s.last_run_at, s.last_outcome.value, s.last_export_id, s.last_error)
        return cls(
            id=s.id,
            name=s.name,
            resource=s.resource,
            format=s.format,
            columns=s.export.get("columns"),
            filters=s.export.get("filters") or {},
            webhook_url=s.export.get("webhookUrl"),
            csv_bom=s.export.get("csvBom"),
            csv_delimiter=s.export.get("csvDelimiter"),
            csv_gzip=s.export.get("csvGzip"),
            cron=s.cron,
            time_zone=s.time_zone,
            window=s.window.to_json() if s.window else None,
            enabled=s.enabled,
            description=s.describe(),
            next_run_at=s.next_run_at,
            retry_at=s.retry_at,
            last_run=last,
            created_at=s.created_at,
            updated_at=s.updated_at,
        )


class ScheduleList(msgspec.Struct, rename="camel"):
    items: list[ScheduleOut]  # oldest first
