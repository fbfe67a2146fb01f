"""What the console's templates show, computed in Python so that the templates stay plain `if`s.

`CardView` is everything `partials/export_card.html` needs for any state of an export; `FormView`
holds the new-export form's values and the problems to show next to each field.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from exporthub.catalog import Resource
from exporthub.errors import Problem
from exporthub.exports.downloads import DownloadSummary
from exporthub.exports.models import ExportFormat, ExportJob, ExportStatus
from exporthub.zones import zone_names

STATUS_LABELS = {
    ExportStatus.QUEUED: "Queued",
    ExportStatus.PROCESSING: "Exporting",
    ExportStatus.COMPLETED: "Ready",
    ExportStatus.FAILED: "Failed",
    ExportStatus.CANCELLED: "Cancelled",
    ExportStatus.EXPIRED: "Expired",
}

FORMAT_LABELS = {"csv": "CSV", "xlsx": "Excel (XLSX)", "pdf": "PDF"}


def card_dom_id(export_id: uuid.UUID) -> str:
    return f"export-{export_id}"


@dataclasses.dataclass(frozen=True, slots=True)
class CardView:
    id: uuid.UUID
    dom_id: str
    title: str
    details: str
    status: str
    status_label: str
    active: bool
    resource: str
    format: str
    created_at: dt.datetime
    queue_position: int | None
    percent: int
    processed_rows: int
    total_rows: int | None
    rows_per_second: int | None
    time_left: str | None
    cancel_requested: bool
    file_size: str | None
    download_url: str | None
    download_label: str | None
    expires_at: dt.datetime | None
    expires_in: str | None
    error_message: str | None
    downloads: DownloadSummary | None = None  # completed or expired exports whose file was downloaded

    @property
    def downloads_text(self) -> str:
        """ "downloaded 3 times, last" (the template adds the time)."""
        if self.downloads is None:
            return ""
        n = self.downloads.count
        return f"Downloaded {'once' if n == 1 else f'{n:,} times'}, last"

    @property
    def downloads_last_utc(self) -> str:
        """The last download's time in UTC, zone named: console.js shows it in the browser's zone."""
        if self.downloads is None:
            return ""
        at = self.downloads.last_at.astimezone(dt.UTC)
        same_day = at.date() == dt.datetime.now(dt.UTC).date()
        return at.strftime("%H:%M UTC" if same_day else "%d %b, %H:%M UTC")

    @property
    def order_key(self) -> str:
        """Sorts as the list does, newest last (console.js places live cards by it): fixed-width UTC time, then id."""
        return f"{self.created_at.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%S.%f}Z_{self.id}"

    @property
    def rows_text(self) -> str:
        if self.active and self.total_rows is not None:
            return f"{self.processed_rows:,} of {self.total_rows:,} rows"
        if self.status == "completed" and self.processed_rows == 0:
            return "No rows matched (the file has the header only)"
        return f"{self.processed_rows:,} row{'' if self.processed_rows == 1 else 's'}"


def card_view(
    job: ExportJob,
    resource: Resource | None,
    *,
    now: dt.datetime,
    queue_position: int | None = None,
    download_url: str | None = None,
    downloads: DownloadSummary | None = None,
) -> CardView:
    label = resource.label if resource else job.resource
    fmt = job.format.value.upper()
    rate, left = _speed(job, now)
    completed = job.status is ExportStatus.COMPLETED
    expires_in = None
    if completed and job.expires_at is not None:
        expires_in = "now" if job.expires_at <= now else "in " + duration(job.expires_at - now, coarse=True)
    return CardView(
        id=job.id,
        dom_id=card_dom_id(job.id),
        title=f"{label} · {fmt}",
        details=describe_request(job, resource),
        status=job.status.value,
        status_label=STATUS_LABELS[job.status],
        active=job.status.is_active,
        resource=job.resource,
        format=job.format.value,
        created_at=job.created_at,
        queue_position=queue_position if job.status is ExportStatus.QUEUED else None,
        percent=max(0, min(100, job.progress)),
        processed_rows=job.processed_rows,
        total_rows=job.total_rows,
        rows_per_second=rate,
        time_left=left,
        cancel_requested=job.cancel_requested,
        file_size=human_bytes(job.file_size) if job.file_size is not None else None,
        download_url=download_url if completed else None,
        download_label=f"Download {fmt}" if completed else None,
        expires_at=job.expires_at if completed else None,
        expires_in=expires_in,
        error_message=(job.error_message or "The export stopped unexpectedly. Please try again.")
        if job.status is ExportStatus.FAILED
        else None,
        downloads=downloads,
    )


def _speed(job: ExportJob, now: dt.datetime) -> tuple[int | None, str | None]:
    """Rows per second since the run started, and the time left at that pace."""
    if job.status is not ExportStatus.PROCESSING or job.started_at is None or job.processed_rows <= 0:
        return None, None
    elapsed = (now - job.started_at).total_seconds()
    if elapsed <= 0.05:
        return None, None
    rate = job.processed_rows / elapsed
    left = None
    if job.total_rows is not None and rate > 0:
        remaining = max(0, job.total_rows - job.processed_rows)
        left = "less than a second" if remaining / rate < 1 else duration(dt.timedelta(seconds=remaining / rate))
    return round(rate), left


def describe_request(job: ExportJob, resource: Resource | None) -> str:
    parts = [f"{len(job.columns)} column{'s' if len(job.columns) != 1 else ''}"]
    f = job.filters
    date_label = _date_label(resource)
    if f.date_from and f.date_to:
        parts.append(f"{date_label} {f.date_from.isoformat()} to {f.date_to.isoformat()}")
    elif f.date_from:
        parts.append(f"{date_label} from {f.date_from.isoformat()}")
    elif f.date_to:
        parts.append(f"{date_label} up to {f.date_to.isoformat()}")
    if f.department_ids:
        n = len(f.department_ids)
        parts.append(f"{n} department{'s' if n != 1 else ''}")
    if f.status:
        parts.append(f"status {f.status.replace('_', ' ')}")
    return " · ".join(parts)


def _date_label(resource: Resource | None) -> str:
    return resource.date_label if resource else "Date"


def human_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    value = float(n)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024 or unit == "GB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def duration(delta: dt.timedelta, *, coarse: bool = False) -> str:
    """'4 s', '2 min 5 s', '23 h 59 min'; coarse drops seconds once there are minutes."""
    seconds = max(0, round(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min" if coarse or not secs else f"{minutes} min {secs} s"
    return f"{secs} s"


# --- the new-export form ---------------------------------------------------------------------------

# Where each problem of the shared validation is shown; anything else goes to the top of the form.
_FIELD_SLOTS = {
    "resource": "resource",
    "format": "format",
    "columns": "columns",
    "filters.dateFrom": "date_from",
    "filters.dateTo": "date_to",
    "filters.status": "status",
    "filters.departmentIds": "departments",
    "timezone": "timezone",
    "csvDelimiter": "csv_options",
    "csvGzip": "csv_options",
}

# The form's names for the CSV delimiters the API takes (a tab cannot be a form value one can read).
CSV_DELIMITERS = {"comma": ",", "semicolon": ";", "tab": "\t"}


def problem_slot(field: str) -> str:
    return _FIELD_SLOTS.get(field.split("[", 1)[0], "form")


@dataclasses.dataclass(frozen=True, slots=True)
class Department:
    id: str
    name: str


@dataclasses.dataclass
class FormView:
    resource: Resource
    resources: list[Resource]  # those the signed-in key may export
    format: str = "csv"
    columns: tuple[str, ...] = ()
    date_from: str = ""
    date_to: str = ""
    status: str = ""
    department_ids: frozenset[str] = frozenset()
    timezone: str = ""  # empty: the page's script fills in the browser's; sent empty, the account's default
    csv_delimiter: str = "comma"  # a key of CSV_DELIMITERS
    csv_gzip: bool = False
    errors: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    @property
    def zone_names(self) -> tuple[str, ...]:
        return zone_names()

    @property
    def formats(self) -> list[tuple[str, str]]:
        return [(f, FORMAT_LABELS.get(f, f.upper())) for f in (fmt.value for fmt in ExportFormat)]

    @property
    def date_label(self) -> str:
        return _date_label(self.resource)

    def add_problems(self, problems: Iterable[Problem]) -> None:
        for p in problems:
            message = p.message.replace("filters.dateFrom", "the start date").replace("filters.dateTo", "the end date")
            if p.field == "columns" and not self.columns:
                message = "Tick at least one column."
            self.errors.setdefault(problem_slot(p.field), []).append(message)

    def error(self, slot: str) -> str | None:
        messages = self.errors.get(slot)
        return " ".join(_sentence(m) for m in messages) if messages else None


def _sentence(message: str) -> str:
    message = message[:1].upper() + message[1:]
    return message if message.endswith((".", "!", "?")) else message + "."


def new_form(
    resources: list[Resource], resource_key: str | None = None, *, date_from: str = "", date_to: str = ""
) -> FormView:
    resource = next((r for r in resources if r.key == resource_key), resources[0])
    return FormView(
        resource=resource,
        resources=resources,
        columns=resource.default_columns,
        date_from=date_from,
        date_to=date_to,
    )


def form_from_input(
    resources: list[Resource], values: Mapping[str, Any], getall: Any
) -> tuple[FormView, dict[str, Any]]:
    """The form as the person filled it in, and the API body it stands for (validated by the caller).

    Only the filters the resource offers are read: the form shows no others."""
    resource_key = str(values.get("resource") or "")
    resource = next((r for r in resources if r.key == resource_key), resources[0])
    columns = tuple(str(c) for c in getall("columns"))
    departments = [str(d) for d in getall("department_ids") if d]
    form = FormView(
        resource=resource,
        resources=resources,
        format=str(values.get("format") or ""),
        columns=columns,
        date_from=str(values.get("date_from") or "").strip(),
        date_to=str(values.get("date_to") or "").strip(),
        status=str(values.get("status") or ""),
        department_ids=frozenset(departments),
        timezone=str(values.get("timezone") or "").strip(),
        csv_delimiter=str(values.get("csv_delimiter") or "comma"),
        csv_gzip=bool(values.get("csv_gzip")),
    )
    filters: dict[str, Any] = {}
    if form.date_from and resource.date_sql:
        filters["dateFrom"] = form.date_from
    if form.date_to and resource.date_sql:
        filters["dateTo"] = form.date_to
    if departments and resource.department_sql:
        filters["departmentIds"] = departments
    if form.status and resource.status_sql:
        filters["status"] = form.status
    body: dict[str, Any] = {"resource": resource_key or None, "format": form.format or None, "columns": list(columns)}
    if filters:
        body["filters"] = filters
    if form.timezone:
        body["timezone"] = form.timezone
    if form.format == "csv":  # the CSV options are hidden, and refused by the API, for other formats
        if form.csv_delimiter != "comma":
            # An unknown name goes on as itself, for the API's 422 to name it.
            body["csvDelimiter"] = CSV_DELIMITERS.get(form.csv_delimiter, form.csv_delimiter)
        if form.csv_gzip:
            body["csvGzip"] = True
    return form, body


def departments_from(rows: Sequence[Any]) -> list[Department]:
    return [Department(r["id"], r["name"]) for r in rows]
