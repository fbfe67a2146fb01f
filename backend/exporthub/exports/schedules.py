"""Scheduled exports: an export request, a cron expression in an IANA time zone, and a date window
that each run turns into the request's dateFrom / dateTo.

The body (`ScheduleIn`) is the export request's own Struct (validation.ExportRequestIn) with the
schedule's fields added, so the export part is checked by exactly the export's rules and its faults
carry the same names (`columns`, `filters.status`); `ScheduleChangesIn` is the same fields, each
optional, for PATCH. When a schedule comes due is exports/cron.py's; running it is the domain's
(`Exports.run_due_schedules`): every run is a normal export through `Exports.submit`.

Windows, relative to the day a run is due on in the schedule's time zone (the run's day itself is
included only by month_to_date):

    previous_day       the day before
    last_days (days)   the `days` whole days before (last_days 7 on a Monday: the Monday before to Sunday)
    previous_week      Monday to Sunday of the week before
    previous_month     the calendar month before
    previous_quarter   the calendar quarter before
    previous_year      the calendar year before
    month_to_date      the first of the month to the run's day
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import typing
import uuid
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, UnsetType

from exporthub.catalog import Catalog
from exporthub.errors import InvalidRequest, Problem
from exporthub.exports.cron import MAX_CRON_LENGTH, MAX_ZONE_LENGTH, Cron, CronInvalid, parse_cron, parse_zone
from exporthub.exports.validation import ExportRequestIn, shape_problem

MAX_WINDOW_DAYS = 366
MAX_NAME_LENGTH = 200
EXPORT_FIELDS = tuple(f.encode_name for f in msgspec.structs.fields(ExportRequestIn))


class WindowKind(enum.StrEnum):
    PREVIOUS_DAY = "previous_day"
    LAST_DAYS = "last_days"
    PREVIOUS_WEEK = "previous_week"
    PREVIOUS_MONTH = "previous_month"
    PREVIOUS_QUARTER = "previous_quarter"
    PREVIOUS_YEAR = "previous_year"
    MONTH_TO_DATE = "month_to_date"


class WindowIn(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Which days each run exports, relative to the day it is due on (in the schedule's time zone)."""

    kind: Annotated[
        WindowKind,
        Meta(
            description="previous_day, last_days (with days), previous_week (Monday to Sunday), "
            "previous_month, previous_quarter, previous_year, month_to_date (the run's day included)."
        ),
    ]
    days: (
        Annotated[int, Meta(ge=1, le=MAX_WINDOW_DAYS, description="last_days only: whole days before the run.")] | None
    ) = None


class ScheduleIn(ExportRequestIn, kw_only=True):
    """The body of POST /api/v1/schedules: an export request (as POST /api/v1/exports takes it; its
    webhookUrl is called when each run's export ends) plus when to run it."""

    cron: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=MAX_CRON_LENGTH,
            description="Five fields: minute hour day-of-month month day-of-week (or @hourly, @daily, "
            "@weekly, @monthly, @yearly), read in timeZone.",
            examples=["0 6 1 * *"],
        ),
    ]
    time_zone: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=MAX_ZONE_LENGTH,
            description="An IANA time zone: the cron expression and the window are read in it.",
            examples=["Europe/Berlin"],
        ),
    ]
    window: (
        Annotated[
            WindowIn,
            Meta(
                description="Sets filters.dateFrom and dateTo at each run; left out: the filters as given.",
                examples=[{"kind": "previous_month"}, {"kind": "last_days", "days": 7}],
            ),
        ]
        | None
    ) = None
    enabled: Annotated[bool, Meta(description="False: paused, no runs until enabled again.")] = True
    name: Annotated[str, Meta(max_length=MAX_NAME_LENGTH, description="A label; left out: none.")] | None = None


def _changes_struct() -> type[msgspec.Struct]:
    """ScheduleIn's fields, each optional (UNSET: left as it is), with their descriptions."""
    hints = typing.get_type_hints(ScheduleIn, include_extras=True)
    fields = [(f.name, hints[f.name] | UnsetType, UNSET) for f in msgspec.structs.fields(ScheduleIn)]
    return msgspec.defstruct(
        "ScheduleChangesIn",
        fields,
        rename="camel",
        forbid_unknown_fields=True,
        omit_defaults=True,
        module=__name__,
    )


ScheduleChangesIn = _changes_struct()
ScheduleChangesIn.__doc__ = (
    "The body of PATCH /api/v1/schedules/{id}: the fields given replace the schedule's; null clears an optional one."
)


@dataclasses.dataclass(frozen=True, slots=True)
class Window:
    kind: WindowKind
    days: int | None = None

    def dates(self, day: dt.date) -> tuple[dt.date, dt.date]:
        """(dateFrom, dateTo), both included, for a run due on `day`."""
        if self.kind is WindowKind.PREVIOUS_DAY:
            return day - dt.timedelta(days=1), day - dt.timedelta(days=1)
        if self.kind is WindowKind.LAST_DAYS:
            assert self.days is not None
            return day - dt.timedelta(days=self.days), day - dt.timedelta(days=1)
        if self.kind is WindowKind.PREVIOUS_WEEK:
            monday = day - dt.timedelta(days=day.weekday() + 7)
            return monday, monday + dt.timedelta(days=6)
        if self.kind is WindowKind.PREVIOUS_MONTH:
            last = day.replace(day=1) - dt.timedelta(days=1)
            return last.replace(day=1), last
        if self.kind is WindowKind.PREVIOUS_QUARTER:
            first_of_quarter = dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
            last = first_of_quarter - dt.timedelta(days=1)
            return dt.date(last.year, last.month - 2, 1), last
        if self.kind is WindowKind.PREVIOUS_YEAR:
            return dt.date(day.year - 1, 1, 1), dt.date(day.year - 1, 12, 31)
        if self.kind is WindowKind.MONTH_TO_DATE:
            return day.replace(day=1), day
        raise AssertionError(self.kind)

    def describe(self) -> str:
        if self.kind is WindowKind.LAST_DAYS:
            return f"the {self.days} day{'s' if self.days != 1 else ''} before each run"
        return {
            WindowKind.PREVIOUS_DAY: "the day before each run",
            WindowKind.PREVIOUS_WEEK: "the week (Monday to Sunday) before each run",
            WindowKind.PREVIOUS_MONTH: "the calendar month before each run",
            WindowKind.PREVIOUS_QUARTER: "the quarter before each run",
            WindowKind.PREVIOUS_YEAR: "the year before each run",
            WindowKind.MONTH_TO_DATE: "the month so far, the run's day included",
        }[self.kind]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, **({"days": self.days} if self.days is not None else {})}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Window | None:
        return cls(WindowKind(data["kind"]), data.get("days")) if data else None


@dataclasses.dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """A checked schedule body. `export` is the export request as given (JSON builtins), which every
    run submits again, with the window's dates, through the one submit path."""

    name: str
    export: dict[str, Any]
    cron: Cron
    time_zone: str
    window: Window | None
    enabled: bool

    @property
    def resource(self) -> str:
        return str(self.export["resource"])


def read_schedule(body: Any) -> ScheduleIn:
    """The body as a ScheduleIn (converted as Litestar converts a body), or InvalidRequest naming the
    first field of the wrong shape."""
    if isinstance(body, ScheduleIn):
        return body
    return _convert(body, ScheduleIn)


def read_changes(body: Any) -> msgspec.Struct:
    if isinstance(body, ScheduleChangesIn):
        return body
    return _convert(body, ScheduleChangesIn)


def _convert(body: Any, kind: Any) -> Any:
    try:
        return msgspec.convert(body, kind, strict=False, str_keys=True)
    except msgspec.ValidationError as exc:
        message, _, at = str(exc).rpartition(" - at `$")
        if not message:
            message, at = str(exc), ""
        raise InvalidRequest([shape_problem(message, at.removeprefix(".").removesuffix("`"), kind)]) from None


def export_part(schedule: ScheduleIn) -> dict[str, Any]:
    """The export request inside a schedule body, as JSON builtins (what POST /api/v1/exports takes)."""
    body = msgspec.to_builtins(schedule)
    return {k: body[k] for k in EXPORT_FIELDS if k in body}


def merge_changes(current: dict[str, Any], changes: msgspec.Struct) -> dict[str, Any]:
    """A schedule body (builtins) with PATCH's changes applied: a field given replaces, null removes."""
    merged = dict(current)
    for field in msgspec.structs.fields(changes):
        value = getattr(changes, field.name)
        if value is UNSET:
            continue
        if value is None:
            merged.pop(field.encode_name, None)
        else:
            merged[field.encode_name] = msgspec.to_builtins(value)
    return merged


def check_schedule(schedule: ScheduleIn, catalog: Catalog) -> tuple[ScheduleSpec | None, list[Problem]]:
    """The schedule's own fields (cron, timeZone, window, with the resource it applies to); the export
    part is the caller's (Exports checks it as a submit does)."""
    problems: list[Problem] = []
    if schedule.name and any(ord(c) < 32 or ord(c) == 127 for c in schedule.name):
        problems.append(Problem("name", "must not contain control characters (line breaks, tabs, ...)"))
    cron: Cron | None = None
    try:
        cron = parse_cron(schedule.cron)
    except CronInvalid as exc:
        problems.append(Problem("cron", str(exc)))
    try:
        parse_zone(schedule.time_zone)
    except CronInvalid as exc:
        problems.append(Problem("timeZone", str(exc)))
    window = None
    if schedule.window is not None:
        window, window_problems = _check_window(schedule, catalog)
        problems += window_problems
    if problems or cron is None:
        return None, problems
    spec = ScheduleSpec(
        name=(schedule.name or "").strip(),
        export=export_part(schedule),
        cron=cron,
        time_zone=schedule.time_zone,
        window=window,
        enabled=schedule.enabled,
    )
    return spec, []


def _check_window(schedule: ScheduleIn, catalog: Catalog) -> tuple[Window | None, list[Problem]]:
    raw = schedule.window
    assert raw is not None
    problems = []
    if raw.kind is WindowKind.LAST_DAYS and raw.days is None:
        problems.append(Problem("window.days", f"required for last_days: 1 to {MAX_WINDOW_DAYS}"))
    elif raw.kind is not WindowKind.LAST_DAYS and raw.days is not None:
        problems.append(Problem("window.days", "only last_days takes days; leave it out"))
    filters = schedule.filters
    if filters is not None and (filters.date_from is not None or filters.date_to is not None):
        problems.append(Problem("window", "give either a window or filters.dateFrom / dateTo, not both"))
    resource = catalog.resource(schedule.resource)
    if resource is not None and resource.date_sql is None:
        problems.append(Problem("window", f"{resource.key} has no date filter for a window to set"))
    return (None, problems) if problems else (Window(raw.kind, raw.days), [])


def run_request(spec_export: dict[str, Any], window: Window | None, due_day: dt.date, time_zone: str) -> dict[str, Any]:
    """The export request a run due on `due_day` (in the schedule's zone, `time_zone`) submits. Its
    export is in the schedule's zone too unless the request names its own `timezone`: the window's
    days are the schedule's days, on timestamp columns as well."""
    body = json.loads(json.dumps(spec_export))  # a deep copy of plain JSON
    body.setdefault("timezone", time_zone)
    if window is not None:
        date_from, date_to = window.dates(due_day)
        body["filters"] = {**body.get("filters", {}), "dateFrom": date_from.isoformat(), "dateTo": date_to.isoformat()}
    return body


def run_key(schedule_id: uuid.UUID, due: dt.datetime) -> str:
    """The Idempotency-Key of one due time's export: a run retried after a crash finds the export it made."""
    return f"schedule:{schedule_id}:{due.astimezone(dt.UTC).isoformat()}"


class RunOutcome(enum.StrEnum):
    SUBMITTED = "submitted"  # an export was made (or found, when a run is repeated)
    WAITING = "waiting"  # the account was at its active-export cap, or submitting failed: tried again at retry_at
    FAILED = "failed"  # the request is no longer valid (a column the catalog dropped, ...): that due time is skipped


@dataclasses.dataclass(frozen=True, slots=True)
class Schedule:
    id: uuid.UUID
    account_id: uuid.UUID
    name: str
    export: dict[str, Any]
    cron: str
    time_zone: str
    window: Window | None
    enabled: bool
    next_run_at: dt.datetime | None  # None while paused; a run waiting for a place keeps its due time here
    retry_at: dt.datetime | None
    last_due_at: dt.datetime | None
    last_run_at: dt.datetime | None
    last_outcome: RunOutcome | None
    last_error: str | None
    last_export_id: uuid.UUID | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def from_record(cls, r: Any) -> Schedule:
        return cls(
            id=r["id"],
            account_id=r["account_id"],
            name=r["name"],
            export=json.loads(r["export"]),
            cron=r["cron"],
            time_zone=r["time_zone"],
            window=Window.from_json(json.loads(r["date_window"]) if r["date_window"] else None),
            enabled=r["enabled"],
            next_run_at=r["next_run_at"],
            retry_at=r["retry_at"],
            last_due_at=r["last_due_at"],
            last_run_at=r["last_run_at"],
            last_outcome=RunOutcome(r["last_outcome"]) if r["last_outcome"] else None,
            last_error=r["last_error"],
            last_export_id=r["last_export_id"],
            created_at=r["created_at"],
            updated_at=r["updated_at"],
        )

    @property
    def resource(self) -> str:
        return str(self.export["resource"])

    @property
    def format(self) -> str:
        return str(self.export["format"])

    def body(self) -> dict[str, Any]:
        """The schedule as its POST body (builtins), for PATCH to change."""
        body: dict[str, Any] = {**self.export, "cron": self.cron, "timeZone": self.time_zone, "enabled": self.enabled}
        if self.window is not None:
            body["window"] = self.window.to_json()
        if self.name:
            body["name"] = self.name
        return body

    def describe(self) -> str:
        """In words, with the zone: 'At 06:00 on the first day of every month (Europe/Berlin)'."""
        try:
            words = parse_cron(self.cron).describe()
        except CronInvalid:
            words = self.cron
        return f"{words} ({self.time_zone})"
