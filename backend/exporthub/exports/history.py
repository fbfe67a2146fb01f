"""An account's exports, page by page, newest first: what the console's list shows and filters.

Keyset paging by (created_at, id): a page starts strictly after the last export of the page before,
so exports started meanwhile never shift a page (no export shown twice, none skipped), and each page
is one range of the (account_id, created_at, id) index however far back it is.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

from exporthub.errors import InvalidRequest, Problem
from exporthub.exports.models import ExportFormat, ExportJob, ExportStatus

PAGE_SIZE = 20
MAX_CURSOR_LENGTH = 80  # 16 digits, "_", a 36-character uuid, with room to spare
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# Past every export: the bound of the first page (a finite timestamp keeps the row comparison an index range).
NEWEST = (dt.datetime(9999, 12, 31, tzinfo=dt.UTC), uuid.UUID(int=(1 << 128) - 1))


@dataclasses.dataclass(frozen=True, slots=True)
class HistoryFilter:
    """Which of the account's exports to list; None: any."""

    status: ExportStatus | None = None
    resource: str | None = None
    format: ExportFormat | None = None

    def params(self) -> dict[str, str]:
        """The filter as query parameters (the console's URLs), the unset ones left out."""
        values = {"status": self.status, "resource": self.resource, "format": self.format}
        return {k: str(v) for k, v in values.items() if v is not None}


def read_history_filter(
    status: str, resource: str, format: str, resources: Iterable[str]
) -> tuple[HistoryFilter, list[Problem]]:
    """The filter from query parameters ("" for unset), and a problem for each value that names no
    status, resource (of `resources`) or format: the caller refuses them or shows all instead."""
    problems: list[Problem] = []
    known = list(resources)

    def pick(field: str, value: str, choices: list[str]) -> str | None:
        if not value:
            return None
        if value not in choices:
            problems.append(Problem(field, f"unknown {field} {_shown(value)}; one of {', '.join(choices)}"))
            return None
        return value

    picked_status = pick("status", status, [s.value for s in ExportStatus])
    picked_format = pick("format", format, [f.value for f in ExportFormat])
    return (
        HistoryFilter(
            status=ExportStatus(picked_status) if picked_status else None,
            resource=pick("resource", resource, known),
            format=ExportFormat(picked_format) if picked_format else None,
        ),
        problems,
    )


def _shown(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "…")


@dataclasses.dataclass(frozen=True, slots=True)
class Cursor:
    """Where an older page starts: after the export created at `created_at` with this `id`.

    As text, `<microseconds since 1970 UTC>_<id>`: exact (PostgreSQL keeps microseconds), and short."""

    created_at: dt.datetime
    id: uuid.UUID

    @classmethod
    def after(cls, job: ExportJob) -> Cursor:
        return cls(job.created_at, job.id)

    def __str__(self) -> str:
        micros = (self.created_at - _EPOCH) // dt.timedelta(microseconds=1)
        return f"{micros}_{self.id}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        """Raises InvalidRequest naming `before` for anything `str(Cursor)` does not make."""
        micros, _, export_id = text.partition("_")
        try:
            if len(text) > MAX_CURSOR_LENGTH or not micros.isdigit() or not micros.isascii():
                raise ValueError(text)
            return cls(_EPOCH + dt.timedelta(microseconds=int(micros)), uuid.UUID(export_id))
        except (ValueError, OverflowError):
            raise InvalidRequest(
                [Problem("before", "not a position in the list; use the link of the Older exports button")]
            ) from None

    def bound(self) -> tuple[dt.datetime, uuid.UUID]:
        return self.created_at, self.id


@dataclasses.dataclass(frozen=True, slots=True)
class HistoryPage:
    jobs: list[ExportJob]
    older: Cursor | None  # where the next page starts; None: this page holds the oldest


def page_of(rows: list[ExportJob], limit: int) -> HistoryPage:
    """A page from `limit + 1` rows read: the extra one only tells that there is an older page."""
    jobs = rows[:limit]
    return HistoryPage(jobs, Cursor.after(jobs[-1]) if len(rows) > limit and jobs else None)


def request_of(job: ExportJob) -> dict[str, Any]:
    """The request an export was made from, as a submit body: running it again checks it afresh (so a
    column or department gone since is named, as for any submit)."""
    body: dict[str, Any] = {"resource": job.resource, "format": job.format.value, "columns": list(job.columns)}
    filters = job.filters.to_json()
    if filters:
        body["filters"] = filters
    if job.webhook_url is not None:
        body["webhookUrl"] = job.webhook_url
    if "csvBom" in job.options:
        body["csvBom"] = bool(job.options["csvBom"])
    if job.format is ExportFormat.CSV:  # refused with the other formats
        body |= {key: job.options[key] for key in ("csvDelimiter", "csvGzip") if key in job.options}
    body["timezone"] = job.time_zone  # the zone it was recorded in, though the account's default moved since
    return body
