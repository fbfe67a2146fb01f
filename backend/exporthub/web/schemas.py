"""The API's JSON answers (camelCase). The export request's body is exports.validation.ExportRequestIn."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec

from exporthub.catalog import Resource
from exporthub.exports.models import ExportJob, ExportStatus


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
    download_url: str | None
    expires_at: dt.datetime | None
    error_message: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
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
            download_url=download_url,
            expires_at=job.expires_at,
            error_message=job.error_message,
            created_at=job.created_at,
            started_at=job.started_at,
            completed_at=job.completed_at,
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
