"""The domain's value types: what is asked for (ExportRequest) and what is tracked (ExportJob)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import json
import uuid
from typing import Any


class ExportFormat(enum.StrEnum):
    CSV = "csv"
    XLSX = "xlsx"
    PDF = "pdf"

    @property
    def media_type(self) -> str:
        return {
            ExportFormat.CSV: "text/csv; charset=utf-8",
            ExportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ExportFormat.PDF: "application/pdf",
        }[self]


class ExportStatus(enum.StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def is_active(self) -> bool:
        return self in (ExportStatus.QUEUED, ExportStatus.PROCESSING)


def _moment_or_day(text: str) -> dt.date:
    """A stored dateFrom / dateTo: a datetime with its offset ("T" in it), else a date."""
    return dt.datetime.fromisoformat(text) if "T" in text else dt.date.fromisoformat(text)


@dataclasses.dataclass(frozen=True, slots=True)
class Filters:
    # A day (dt.date), read in the export's zone, or a moment (an aware dt.datetime, a subclass of date).
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    department_ids: tuple[str, ...] = ()  # as the catalog's departments id reads as text
    status: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.date_from:
            out["dateFrom"] = self.date_from.isoformat()
        if self.date_to:
            out["dateTo"] = self.date_to.isoformat()
        if self.department_ids:
            out["departmentIds"] = list(self.department_ids)
        if self.status:
            out["status"] = self.status
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Filters:
        return cls(
            date_from=_moment_or_day(data["dateFrom"]) if data.get("dateFrom") else None,
            date_to=_moment_or_day(data["dateTo"]) if data.get("dateTo") else None,
            department_ids=tuple(str(d) for d in data.get("departmentIds", ())),
            status=data.get("status"),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class ExportRequest:
    """A validated request: resource, format and columns are known to the catalog."""

    resource: str
    format: ExportFormat
    columns: tuple[str, ...]
    filters: Filters = Filters()
    webhook_url: str | None = None
    csv_bom: bool = True
    time_zone: str | None = None  # an IANA name; None: the account's default, taken when it is recorded
    csv_delimiter: str = ","
    csv_gzip: bool = False

    def options(self) -> dict[str, Any]:
        """The file's options, as export_jobs.options keeps them."""
        return {"csvBom": self.csv_bom, "csvDelimiter": self.csv_delimiter, "csvGzip": self.csv_gzip}

    def fingerprint(self) -> str:
        """Stable hash of what was asked, to compare requests that share an Idempotency-Key."""
        # Options at their defaults are left out, so that the hashes of earlier requests still match.
        defaults = {"csvDelimiter": ",", "csvGzip": False}
        body = json.dumps(
            {
                "resource": self.resource,
                "format": self.format.value,
                "columns": list(self.columns),
                "filters": self.filters.to_json(),
                "webhookUrl": self.webhook_url,
                "csvBom": self.csv_bom,
                **{k: v for k, v in self.options().items() if k in defaults and v != defaults[k]},
                # Only when given, so that the fingerprints of requests without one stay as they were.
                **({"timezone": self.time_zone} if self.time_zone is not None else {}),
            },
            sort_keys=True,
        )
        return hashlib.sha256(body.encode()).hexdigest()


@dataclasses.dataclass(frozen=True, slots=True)
class ExportJob:
    id: uuid.UUID
    account_id: uuid.UUID
    resource: str
    format: ExportFormat
    filters: Filters
    columns: tuple[str, ...]
    options: dict[str, Any]
    webhook_url: str | None
    status: ExportStatus
    progress: int
    processed_rows: int
    total_rows: int | None
    file_key: str | None
    file_name: str | None
    file_size: int | None
    error_message: str | None
    cancel_requested: bool
    attempts: int
    created_at: dt.datetime
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    expires_at: dt.datetime | None
    time_zone: str = "UTC"  # IANA name: datetimes are shown, and date filters read, in it
    sha256: str | None = None  # hex, of the file as stored; hashed as it was written

    @property
    def csv_gzip(self) -> bool:
        return self.format is ExportFormat.CSV and bool(self.options.get("csvGzip"))

    @property
    def extension(self) -> str:
        return "csv.gz" if self.csv_gzip else self.format.value

    @property
    def media_type(self) -> str:
        return "application/gzip" if self.csv_gzip else self.format.media_type

    @classmethod
    def from_record(cls, r: Any) -> ExportJob:
        return cls(
            id=r["id"],
            account_id=r["account_id"],
            resource=r["resource"],
            format=ExportFormat(r["format"]),
            filters=Filters.from_json(json.loads(r["filters"])),
            columns=tuple(r["columns"]),
            options=json.loads(r["options"]),
            webhook_url=r["webhook_url"],
            status=ExportStatus(r["status"]),
            progress=r["progress"],
            processed_rows=r["processed_rows"],
            total_rows=r["total_rows"],
            file_key=r["file_key"],
            file_name=r["file_name"],
            file_size=r["file_size"],
            error_message=r["error_message"],
            cancel_requested=r["cancel_requested"],
            attempts=r["attempts"],
            created_at=r["created_at"],
            started_at=r["started_at"],
            completed_at=r["completed_at"],
            expires_at=r["expires_at"],
            time_zone=r["time_zone"],
            sha256=r.get("file_sha256"),
        )
