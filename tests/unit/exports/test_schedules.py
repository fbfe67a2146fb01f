"""exports/schedules.py: the window vocabulary's dates, the schedule's own checks, PATCH's merge, a
run's request and its idempotency key."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest

from exporthub.catalog import load_catalog
from exporthub.errors import InvalidRequest
from exporthub.exports.schedules import (
    Window,
    WindowKind,
    check_schedule,
    export_part,
    merge_changes,
    read_changes,
    read_schedule,
    run_key,
    run_request,
)

HR = load_catalog()
OWN = load_catalog(Path(__file__).resolve().parents[2] / "own_data" / "catalog.toml")
BODY = {"resource": "payroll", "format": "csv", "cron": "0 6 * * *", "timeZone": "Europe/Berlin"}
D = dt.date


@pytest.mark.parametrize(
    ("window", "day", "expected"),
    [
        (Window(WindowKind.PREVIOUS_DAY), D(2026, 3, 1), (D(2026, 2, 28), D(2026, 2, 28))),
        (Window(WindowKind.PREVIOUS_DAY), D(2028, 3, 1), (D(2028, 2, 29), D(2028, 2, 29))),
        (Window(WindowKind.LAST_DAYS, 7), D(2026, 6, 8), (D(2026, 6, 1), D(2026, 6, 7))),  # a Monday
        (Window(WindowKind.LAST_DAYS, 1), D(2026, 1, 1), (D(2025, 12, 31), D(2025, 12, 31))),
        (Window(WindowKind.PREVIOUS_WEEK), D(2026, 6, 8), (D(2026, 6, 1), D(2026, 6, 7))),  # Monday
        (Window(WindowKind.PREVIOUS_WEEK), D(2026, 6, 14), (D(2026, 6, 1), D(2026, 6, 7))),  # Sunday
        (Window(WindowKind.PREVIOUS_WEEK), D(2026, 1, 2), (D(2025, 12, 22), D(2025, 12, 28))),
        (Window(WindowKind.PREVIOUS_MONTH), D(2026, 3, 1), (D(2026, 2, 1), D(2026, 2, 28))),
        (Window(WindowKind.PREVIOUS_MONTH), D(2026, 3, 31), (D(2026, 2, 1), D(2026, 2, 28))),
        (Window(WindowKind.PREVIOUS_MONTH), D(2026, 1, 15), (D(2025, 12, 1), D(2025, 12, 31))),
        (Window(WindowKind.PREVIOUS_QUARTER), D(2026, 1, 1), (D(2025, 10, 1), D(2025, 12, 31))),
        (Window(WindowKind.PREVIOUS_QUARTER), D(2026, 6, 30), (D(2026, 1, 1), D(2026, 3, 31))),
        (Window(WindowKind.PREVIOUS_QUARTER), D(2026, 8, 5), (D(2026, 4, 1), D(2026, 6, 30))),
        (Window(WindowKind.PREVIOUS_YEAR), D(2026, 1, 1), (D(2025, 1, 1), D(2025, 12, 31))),
        (Window(WindowKind.MONTH_TO_DATE), D(2026, 2, 1), (D(2026, 2, 1), D(2026, 2, 1))),
        (Window(WindowKind.MONTH_TO_DATE), D(2026, 2, 17), (D(2026, 2, 1), D(2026, 2, 17))),
    ],
)
def test_a_window_names_whole_days_relative_to_the_runs_day(
    window: Window, day: dt.date, expected: tuple[dt.date, dt.date]
) -> None:
    assert window.dates(day) == expected


def test_every_kind_has_dates_and_words() -> None:
    for kind in WindowKind:
        window = Window(kind, 3 if kind is WindowKind.LAST_DAYS else None)
        date_from, date_to = window.dates(D(2026, 5, 20))
        assert date_from <= date_to <= D(2026, 5, 20)
        assert window.describe()
        assert Window.from_json(window.to_json()) == window


def test_a_run_sets_the_windows_dates_and_keeps_the_other_filters() -> None:
    export = {"resource": "payroll", "format": "csv", "filters": {"status": "paid"}}
    body = run_request(export, Window(WindowKind.PREVIOUS_MONTH), D(2026, 11, 1), "Europe/Berlin")
    assert body["filters"] == {"status": "paid", "dateFrom": "2026-10-01", "dateTo": "2026-10-31"}
    assert export["filters"] == {"status": "paid"}  # the schedule's own copy is left alone
    assert run_request(export, None, D(2026, 11, 1), "UTC") == {**export, "timezone": "UTC"}


def test_a_runs_export_is_in_the_schedules_zone_unless_the_request_names_one() -> None:
    export = {"resource": "timesheets", "format": "csv"}
    assert run_request(export, None, D(2026, 11, 1), "Asia/Tokyo")["timezone"] == "Asia/Tokyo"
    own = {**export, "timezone": "UTC"}
    assert run_request(own, None, D(2026, 11, 1), "Asia/Tokyo")["timezone"] == "UTC"


def test_a_due_times_key_names_the_schedule_and_the_instant() -> None:
    schedule = uuid.UUID(int=7)
    berlin = dt.datetime(2026, 10, 25, 2, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert run_key(schedule, berlin) == f"schedule:{schedule}:2026-10-25T00:30:00+00:00"
    assert run_key(schedule, berlin) == run_key(schedule, berlin.astimezone(dt.UTC))
    assert run_key(schedule, berlin) != run_key(schedule, berlin + dt.timedelta(hours=1))


def problems_of(body: dict[str, Any], catalog: Any = HR) -> dict[str, str]:
    spec, found = check_schedule(read_schedule(body), catalog)
    assert spec is None
    return {p.field: p.message for p in found}


def test_a_valid_schedule_is_checked_into_a_spec() -> None:
    spec, found = check_schedule(read_schedule({**BODY, "window": {"kind": "last_days", "days": 7}}), HR)
    assert found == [] and spec is not None
    assert spec.export == {"resource": "payroll", "format": "csv"}
    assert spec.cron.fields == "0 6 * * *" and spec.time_zone == "Europe/Berlin" and spec.enabled
    assert spec.window == Window(WindowKind.LAST_DAYS, 7)
    macro, _ = check_schedule(read_schedule({**BODY, "cron": "@daily"}), HR)
    assert macro is not None and macro.cron.fields == "0 0 * * *" and macro.cron.text == "@daily"


def test_a_window_needs_a_resource_with_a_date_filter() -> None:
    body = {**BODY, "resource": "headcount", "window": {"kind": "previous_day"}}
    assert problems_of(body, OWN) == {"window": "headcount has no date filter for a window to set"}


def test_a_name_is_one_line_of_text() -> None:
    assert problems_of({**BODY, "name": "a\x00b"}) == {
        "name": "must not contain control characters (line breaks, tabs, ...)"
    }


def test_the_shape_is_read_as_litestar_reads_it() -> None:
    with pytest.raises(InvalidRequest) as info:
        read_schedule({**BODY, "window": {"kind": "last_days", "days": 400}})
    assert [(p.field, p.message) for p in info.value.problems] == [("window.days", "expected a whole number <= 366")]
    with pytest.raises(InvalidRequest) as info:
        read_schedule({**BODY, "enabled": "maybe"})
    assert info.value.problems[0].field == "enabled"


def test_the_export_part_is_what_a_submit_takes() -> None:
    schedule = read_schedule({**BODY, "columns": ["netPay"], "webhookUrl": "https://h.example/x", "name": "n"})
    assert export_part(schedule) == {
        "resource": "payroll",
        "format": "csv",
        "columns": ["netPay"],
        "webhookUrl": "https://h.example/x",
    }


def test_patch_replaces_the_fields_given_and_null_clears() -> None:
    current = {**BODY, "window": {"kind": "previous_day"}, "webhookUrl": "https://h.example/x", "enabled": True}
    merged = merge_changes(current, read_changes({"format": "xlsx", "window": None, "enabled": False}))
    assert merged == {**BODY, "format": "xlsx", "webhookUrl": "https://h.example/x", "enabled": False}
    assert merge_changes(current, read_changes({})) == current
    with pytest.raises(InvalidRequest) as info:
        read_changes({"cron": 5})
    assert info.value.problems[0].field == "cron"
