"""web/schedule_views.py: a schedule's card in each state, when it asks for itself again, and the
new-schedule form's body."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

from exporthub.catalog import load_catalog
from exporthub.errors import Problem
from exporthub.exports.models import ExportStatus
from exporthub.exports.schedules import RunOutcome, Schedule, Window, WindowKind
from exporthub.web.console_views import card_view
from exporthub.web.schedule_views import schedule_card_view, schedule_form_from_input
from tests.factories import create_job

HR = load_catalog()
NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)
PAYROLL = HR.resources["payroll"]


def create_schedule(**fields: object) -> Schedule:
    schedule = Schedule(
        id=uuid.UUID(int=1),
        account_id=uuid.UUID(int=2),
        name="",
        export={"resource": "payroll", "format": "xlsx"},
        cron="0 6 1 * *",
        time_zone="Europe/Berlin",
        window=Window(WindowKind.PREVIOUS_MONTH),
        enabled=True,
        next_run_at=dt.datetime(2027, 1, 1, 5, 0, tzinfo=dt.UTC),
        retry_at=None,
        last_due_at=None,
        last_run_at=None,
        last_outcome=None,
        last_error=None,
        last_export_id=None,
        created_at=NOW,
        updated_at=NOW,
    )
    return dataclasses.replace(schedule, **fields)


def test_an_active_schedule_in_words_with_its_next_run_in_its_zone() -> None:
    card = schedule_card_view(create_schedule(), PAYROLL, now=NOW, last_card=None)
    assert (card.title, card.status, card.status_label) == ("Payroll · XLSX", "active", "Active")
    assert card.when == "At 06:00 on the first day of every month (Europe/Berlin)"
    assert card.window == "the calendar month before each run"
    assert card.next_run_text == "Fri 01 Jan 2027, 06:00 CET"
    assert card.last_outcome is None and card.last_card is None
    assert card.refresh_seconds == 3600  # it looks again within the hour, and at its run


def test_paused_waiting_and_failed() -> None:
    paused = schedule_card_view(create_schedule(enabled=False, next_run_at=None), PAYROLL, now=NOW, last_card=None)
    assert (paused.status, paused.next_run_text, paused.refresh_seconds) == ("paused", None, None)

    due = NOW - dt.timedelta(minutes=1)
    waiting = create_schedule(
        next_run_at=due, retry_at=NOW + dt.timedelta(seconds=20), last_due_at=due, last_outcome=RunOutcome.WAITING
    )
    card = schedule_card_view(waiting, PAYROLL, now=NOW, last_card=None)
    assert (card.status, card.retry_in, card.last_outcome, card.refresh_seconds) == ("waiting", "20 s", "waiting", 22)

    failed = create_schedule(last_due_at=due, last_outcome=RunOutcome.FAILED, last_error="columns: unknown column(s) x")
    card = schedule_card_view(failed, PAYROLL, now=NOW, last_card=None)
    assert (card.status, card.last_outcome, card.last_error) == ("active", "failed", "columns: unknown column(s) x")


def test_the_last_runs_export_is_an_export_card_with_an_id_of_its_own() -> None:
    job = create_job(ExportStatus.PROCESSING)
    schedule = create_schedule(last_due_at=NOW, last_outcome=RunOutcome.SUBMITTED, last_export_id=job.id)
    card = schedule_card_view(schedule, PAYROLL, now=NOW, last_card=card_view(job, PAYROLL, now=NOW))
    assert card.last_card is not None and card.last_card.id == job.id
    assert card.last_card.dom_id == f"schedule-{schedule.id}-last-export"
    assert card.refresh_seconds == 2  # while its export runs


def test_the_form_stands_for_an_api_body() -> None:
    resources = list(HR.resources.values())
    values = {
        "resource": "timesheets",
        "format": "csv",
        "cron": " 30 7 * * 1 ",
        "time_zone": "",
        "window": "last_days:7",
    }
    form, body = schedule_form_from_input(resources, values)
    assert body == {
        "resource": "timesheets",
        "format": "csv",
        "cron": "30 7 * * 1",
        "timeZone": "UTC",
        "window": {"kind": "last_days", "days": 7},
    }
    form.add_problems([Problem("timeZone", "unknown time zone 'x'"), Problem("filters.status", "odd")])
    assert form.error("time_zone") == "Unknown time zone 'x'."
    assert form.error("form") == "Filters.status: odd."
