"""What the console's Schedules panel shows, computed in Python so that its templates stay plain `if`s.

`ScheduleCardView` is everything `partials/schedule_card.html` needs: the schedule in words, its next
run (in its own zone here; the page's script shows it in the browser's), and its last run with the
export card of the export it made (`partials/export_card.html`, embedded under an id of its own).
`ScheduleFormView` holds the new-schedule form's values and the problems to show next to each field.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
import zoneinfo
from collections.abc import Iterable, Mapping
from typing import Any

from exporthub.catalog import Resource
from exporthub.errors import Problem
from exporthub.exports.models import ExportFormat
from exporthub.exports.schedules import RunOutcome, Schedule
from exporthub.web.console_views import FORMAT_LABELS, CardView, duration

WINDOW_CHOICES = [
    ("", "All dates"),
    ("previous_day", "The day before"),
    ("last_days:7", "The 7 days before"),
    ("last_days:30", "The 30 days before"),
    ("previous_week", "The week before (Monday to Sunday)"),
    ("previous_month", "The month before"),
    ("previous_quarter", "The quarter before"),
    ("previous_year", "The year before"),
    ("month_to_date", "This month so far"),
]
CRON_EXAMPLES = [("0 6 * * 1", "Mondays at 06:00"), ("0 6 1 * *", "the 1st at 06:00"), ("0 * * * *", "every hour")]
POLL_SECONDS = 2  # while the last run's export is active, the card checks itself this often
MAX_REFRESH_SECONDS = 3600


def schedule_dom_id(schedule_id: uuid.UUID) -> str:
    return f"schedule-{schedule_id}"


@dataclasses.dataclass(frozen=True, slots=True)
class ScheduleCardView:
    id: uuid.UUID
    dom_id: str
    title: str
    when: str  # the cron expression in words, with its zone
    window: str | None
    enabled: bool
    status: str  # active | paused | waiting
    status_label: str
    next_run_at: dt.datetime | None
    next_run_text: str | None  # in the schedule's zone; the page's script rewrites it in the browser's
    retry_in: str | None
    last_outcome: str | None  # submitted | waiting | failed
    last_due_at: dt.datetime | None
    last_due_text: str | None  # in the schedule's zone, as next_run_text
    last_error: str | None
    last_card: CardView | None
    refresh_seconds: int | None  # when the card asks for itself again (its next run, or its running export)


def schedule_card_view(
    schedule: Schedule, resource: Resource | None, *, now: dt.datetime, last_card: CardView | None
) -> ScheduleCardView:
    label = resource.label if resource else schedule.resource
    title = schedule.name or f"{label} · {schedule.format.upper()}"
    waiting = schedule.last_outcome is RunOutcome.WAITING and schedule.retry_at is not None
    status = "paused" if not schedule.enabled else "waiting" if waiting else "active"
    last_due = schedule.last_due_at if schedule.last_outcome is not None else None
    if last_card is not None:
        last_card = dataclasses.replace(last_card, dom_id=f"{schedule_dom_id(schedule.id)}-last-export")
    return ScheduleCardView(
        id=schedule.id,
        dom_id=schedule_dom_id(schedule.id),
        title=title,
        when=schedule.describe(),
        window=schedule.window.describe() if schedule.window else None,
        enabled=schedule.enabled,
        status=status,
        status_label={"paused": "Paused", "waiting": "Waiting", "active": "Active"}[status],
        next_run_at=schedule.next_run_at,
        next_run_text=_in_zone(schedule.next_run_at, schedule.time_zone) if schedule.next_run_at else None,
        retry_in=duration(schedule.retry_at - now, coarse=True) if waiting and schedule.retry_at else None,
        last_outcome=schedule.last_outcome.value if last_due and schedule.last_outcome else None,
        last_due_at=last_due,
        last_due_text=_in_zone(last_due, schedule.time_zone) if last_due else None,
        last_error=schedule.last_error if schedule.last_outcome is RunOutcome.FAILED else None,
        last_card=last_card,
        refresh_seconds=_refresh(schedule, last_card, now),
    )


def _in_zone(at: dt.datetime, zone: str) -> str:
    return at.astimezone(zoneinfo.ZoneInfo(zone)).strftime("%a %d %b %Y, %H:%M %Z")


def _refresh(schedule: Schedule, last_card: CardView | None, now: dt.datetime) -> int | None:
    if last_card is not None and last_card.active:
        return POLL_SECONDS
    if not schedule.enabled or schedule.next_run_at is None:
        return None
    next_look = schedule.retry_at if schedule.retry_at is not None else schedule.next_run_at
    seconds = (next_look - now).total_seconds() + POLL_SECONDS
    return int(min(MAX_REFRESH_SECONDS, max(POLL_SECONDS, seconds)))


# --- the new-schedule form -----------------------------------------------------------------------------

_FIELD_SLOTS = {
    "name": "name",
    "resource": "resource",
    "format": "format",
    "cron": "cron",
    "timeZone": "time_zone",
    "window": "window",
    "window.kind": "window",
    "window.days": "window",
    "webhookUrl": "webhook_url",
}


@dataclasses.dataclass
class ScheduleFormView:
    resource: Resource
    resources: list[Resource]
    name: str = ""
    format: str = "csv"
    cron: str = "0 6 * * 1"
    time_zone: str = ""  # empty: the page's script fills in the browser's zone
    window: str = ""
    webhook_url: str = ""
    errors: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    @property
    def formats(self) -> list[tuple[str, str]]:
        return [(f.value, FORMAT_LABELS.get(f.value, f.value.upper())) for f in ExportFormat]

    @property
    def windows(self) -> list[tuple[str, str]]:
        return WINDOW_CHOICES if self.resource.date_sql else WINDOW_CHOICES[:1]

    @property
    def cron_examples(self) -> list[tuple[str, str]]:
        return CRON_EXAMPLES

    def add_problems(self, problems: Iterable[Problem]) -> None:
        for p in problems:
            slot = _FIELD_SLOTS.get(p.field.split("[", 1)[0], "form")
            message = p.message if slot != "form" else f"{p.field}: {p.message}"
            self.errors.setdefault(slot, []).append(message)

    def error(self, slot: str) -> str | None:
        messages = self.errors.get(slot)
        return " ".join(_sentence(m) for m in messages) if messages else None


def _sentence(message: str) -> str:
    message = message[:1].upper() + message[1:]
    return message if message.endswith((".", "!", "?")) else message + "."


def new_schedule_form(resources: list[Resource]) -> ScheduleFormView:
    return ScheduleFormView(resource=resources[0], resources=resources)


def schedule_form_from_input(
    resources: list[Resource], values: Mapping[str, Any]
) -> tuple[ScheduleFormView, dict[str, Any]]:
    """The form as filled in, and the API body it stands for (the resource's default columns, no
    filters but the window: the API sets any)."""
    resource_key = str(values.get("resource") or "")
    form = ScheduleFormView(
        resource=next((r for r in resources if r.key == resource_key), resources[0]),
        resources=resources,
        name=str(values.get("name") or "").strip(),
        format=str(values.get("format") or ""),
        cron=str(values.get("cron") or "").strip(),
        time_zone=str(values.get("time_zone") or "").strip(),
        window=str(values.get("window") or ""),
        webhook_url=str(values.get("webhook_url") or "").strip(),
    )
    body: dict[str, Any] = {
        "resource": resource_key or None,
        "format": form.format or None,
        "cron": form.cron,
        "timeZone": form.time_zone or "UTC",
    }
    if form.name:
        body["name"] = form.name
    if form.webhook_url:
        body["webhookUrl"] = form.webhook_url
    if form.window:
        kind, _, days = form.window.partition(":")
        body["window"] = {"kind": kind, **({"days": int(days)} if days.isdigit() else {})}
    return form, body
