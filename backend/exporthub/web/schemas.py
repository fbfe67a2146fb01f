"""The API's JSON shapes (camelCase), and the OpenAPI description of the export request body."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

import msgspec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

from exporthub.catalog import Resource
from exporthub.exports.models import ExportFormat, ExportJob


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

    @classmethod
    def from_job(cls, job: ExportJob, download_url: str | None) -> ExportOut:
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


def _export_request_schema() -> Schema:
    string = Schema(type=OpenAPIType.STRING)
    return Schema(
        type=OpenAPIType.OBJECT,
        required=["format", "resource"],
        properties={
            "format": Schema(type=OpenAPIType.STRING, enum=[f.value for f in ExportFormat]),
            # The catalog is the deployment's and a key may be limited to some of it: see GET /api/v1/resources.
            "resource": Schema(type=OpenAPIType.STRING, description="A resource key from GET /api/v1/resources."),
            "columns": Schema(
                type=OpenAPIType.ARRAY,
                items=string,
                description="Column keys of the resource (GET /api/v1/resources); defaults when left out.",
            ),
            "filters": Schema(
                type=OpenAPIType.OBJECT,
                properties={
                    "dateFrom": Schema(type=OpenAPIType.STRING, format="date"),  # type: ignore[arg-type]
                    "dateTo": Schema(type=OpenAPIType.STRING, format="date"),  # type: ignore[arg-type]
                    "departmentIds": Schema(
                        type=OpenAPIType.ARRAY,
                        items=Schema(type=OpenAPIType.STRING, description="A department id of the account."),
                    ),
                    "status": Schema(type=OpenAPIType.STRING, description="One of the resource's statuses."),
                },
            ),
            "webhookUrl": Schema(type=OpenAPIType.STRING, format="uri"),  # type: ignore[arg-type]
            "csvBom": Schema(type=OpenAPIType.BOOLEAN, description="CSV only: start with a UTF-8 BOM (default true)."),
        },
        examples=[{"format": "xlsx", "resource": "payroll", "filters": {"dateFrom": "2025-01-01"}}],
    )


@dataclasses.dataclass
class ExportRequestOperation(Operation):
    """The body is validated by exports/validation.py (to report every field at once); document it here."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            content={"application/json": OpenAPIMediaType(schema=_export_request_schema())},
        )
