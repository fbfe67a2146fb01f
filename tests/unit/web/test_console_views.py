"""web/console_views.py: what the export card shows in each state, and the new-export form's values,
body and problems. The rendered pages: tests/integration/test_console.py and tests/browser/."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

import pytest

from exporthub.catalog import load_catalog
from exporthub.errors import Problem
from exporthub.exports.models import ExportFormat, ExportStatus, Filters
from exporthub.web.console_views import (
    STATUS_LABELS,
    Department,
    card_view,
    departments_from,
    describe_request,
    duration,
    form_from_input,
    human_bytes,
    new_form,
    problem_slot,
)
from tests.factories import CREATED, create_job

HR = load_catalog()
PAYROLL = HR.resources["payroll"]
RESOURCES = list(HR.resources.values())
LINK = "http://hub/api/v1/exports/x/download?expires=1&signature=s"

# --- the card, in every state ------------------------------------------------------------------------

EXPECTED = {
    #  status                  label        active  download  error
    ExportStatus.QUEUED: ("Queued", True, False, False),
    ExportStatus.PROCESSING: ("Exporting", True, False, False),
    ExportStatus.COMPLETED: ("Ready", False, True, False),
    ExportStatus.FAILED: ("Failed", False, False, True),
    ExportStatus.CANCELLED: ("Cancelled", False, False, False),
    ExportStatus.EXPIRED: ("Expired", False, False, False),
}


def test_every_status_has_a_label() -> None:
    assert set(STATUS_LABELS) == set(ExportStatus) == set(EXPECTED)


@pytest.mark.parametrize("status", list(ExportStatus))
def test_the_card_of_each_state(status: ExportStatus) -> None:
    label, active, downloadable, failed = EXPECTED[status]
    job = create_job(status)
    card = card_view(job, PAYROLL, now=CREATED + dt.timedelta(hours=1), queue_position=3, download_url=LINK)
    assert (card.id, card.dom_id, card.status) == (job.id, f"export-{job.id}", status.value)
    assert card.title == "Payroll · CSV"
    assert card.status_label == label
    assert card.active is active
    assert card.created_at == job.created_at
    assert card.queue_position == (3 if status is ExportStatus.QUEUED else None)
    assert card.download_url == (LINK if downloadable else None)
    assert card.download_label == ("Download CSV" if downloadable else None)
    assert (card.expires_at is not None, card.expires_in is not None) == (downloadable, downloadable)
    assert (card.error_message is not None) is failed
    assert card.file_size == ("2.0 KB" if downloadable else None)


def test_a_queued_card_shows_its_place_in_the_accounts_queue() -> None:
    card = card_view(create_job(ExportStatus.QUEUED), PAYROLL, now=CREATED, queue_position=1)
    assert card.queue_position == 1
    assert card.rows_per_second is None and card.time_left is None and card.percent == 0
    assert card.rows_text == "0 rows"  # not counted yet


def test_a_running_card_shows_percent_rows_speed_and_time_left() -> None:
    job = create_job(ExportStatus.PROCESSING, progress=25, processed_rows=2_500, total_rows=10_000)
    assert job.started_at is not None
    card = card_view(job, PAYROLL, now=job.started_at + dt.timedelta(seconds=10))
    assert card.percent == 25
    assert card.rows_text == "2,500 of 10,000 rows"
    assert card.rows_per_second == 250
    assert card.time_left == "30 s"  # 7,500 rows at 250 rows/s


def test_a_running_card_near_its_end_has_less_than_a_second_left() -> None:
    job = create_job(ExportStatus.PROCESSING, progress=99, processed_rows=9_990, total_rows=10_000)
    assert job.started_at is not None
    card = card_view(job, PAYROLL, now=job.started_at + dt.timedelta(seconds=10))
    assert card.time_left == "less than a second"


def test_a_running_card_with_more_rows_than_counted_has_no_time_left_to_wait() -> None:
    job = create_job(ExportStatus.PROCESSING, processed_rows=1_200, total_rows=1_000)
    assert job.started_at is not None
    assert card_view(job, PAYROLL, now=job.started_at + dt.timedelta(seconds=2)).time_left == "less than a second"


@pytest.mark.parametrize(
    ("fields", "seconds"),
    [
        ({"processed_rows": 0, "total_rows": 1_000}, 10),  # nothing written yet
        ({"processed_rows": 100, "total_rows": 1_000}, 0.01),  # too early to tell a pace
        ({"processed_rows": 100, "total_rows": 1_000, "started_at": None}, 10),
    ],
)
def test_a_running_card_shows_no_speed_before_there_is_one(fields: dict[str, Any], seconds: float) -> None:
    job = create_job(ExportStatus.PROCESSING, **fields)
    card = card_view(job, PAYROLL, now=CREATED + dt.timedelta(seconds=1 + seconds))
    assert (card.rows_per_second, card.time_left) == (None, None)


def test_a_running_card_whose_rows_are_not_counted_yet_shows_speed_without_time_left() -> None:
    job = create_job(ExportStatus.PROCESSING, processed_rows=500, total_rows=None)
    assert job.started_at is not None
    card = card_view(job, PAYROLL, now=job.started_at + dt.timedelta(seconds=5))
    assert (card.rows_per_second, card.time_left) == (100, None)
    assert card.rows_text == "500 rows"


@pytest.mark.parametrize(("progress", "percent"), [(-5, 0), (0, 0), (57, 57), (100, 100), (130, 100)])
def test_the_bar_stays_between_0_and_100(progress: int, percent: int) -> None:
    assert card_view(create_job(ExportStatus.PROCESSING, progress=progress), PAYROLL, now=CREATED).percent == percent


def test_a_running_card_asked_to_cancel_says_so() -> None:
    card = card_view(create_job(ExportStatus.PROCESSING, cancel_requested=True), PAYROLL, now=CREATED)
    assert card.cancel_requested and card.active


def test_a_ready_card_says_when_its_link_expires() -> None:
    job = create_job(ExportStatus.COMPLETED, expires_at=CREATED + dt.timedelta(hours=23, minutes=59, seconds=30))
    card = card_view(job, PAYROLL, now=CREATED, download_url=LINK)
    assert card.expires_at == job.expires_at
    assert card.expires_in == "in 23 h 59 min"
    soon = card_view(
        dataclasses.replace(job, expires_at=CREATED + dt.timedelta(minutes=4, seconds=40)), PAYROLL, now=CREATED
    )
    assert soon.expires_in == "in 4 min"  # coarse: no seconds once there are minutes


@pytest.mark.parametrize("past", [dt.timedelta(0), dt.timedelta(minutes=5)])
def test_a_ready_card_past_its_expiry_says_now(past: dt.timedelta) -> None:
    job = create_job(ExportStatus.COMPLETED, expires_at=CREATED)
    assert card_view(job, PAYROLL, now=CREATED + past).expires_in == "now"


def test_a_ready_card_shows_the_file_in_its_format_and_size() -> None:
    job = create_job(ExportStatus.COMPLETED, format=ExportFormat.XLSX, file_size=3 * 1024 * 1024)
    card = card_view(job, PAYROLL, now=CREATED, download_url=LINK)
    assert (card.title, card.download_label, card.file_size) == ("Payroll · XLSX", "Download XLSX", "3.0 MB")
    assert card.rows_text == "1,000 rows"  # done: the count, not "1,000 of 1,000"


@pytest.mark.parametrize(("rows", "text"), [(0, "No rows matched (the file has the header only)"), (1, "1 row")])
def test_a_ready_card_says_when_nothing_or_one_row_matched(rows: int, text: str) -> None:
    job = create_job(ExportStatus.COMPLETED, processed_rows=rows, total_rows=rows)
    assert card_view(job, PAYROLL, now=CREATED, download_url=LINK).rows_text == text


def test_a_failed_card_shows_the_exports_message_or_a_general_one() -> None:
    failed = create_job(ExportStatus.FAILED, error_message="narrow the filters")
    assert card_view(failed, PAYROLL, now=CREATED).error_message == "narrow the filters"
    silent = dataclasses.replace(failed, error_message=None)
    assert card_view(silent, PAYROLL, now=CREATED).error_message == "The export stopped unexpectedly. Please try again."


def test_a_card_of_a_resource_the_catalog_no_longer_has_uses_its_key() -> None:
    card = card_view(create_job(resource="bonuses", format=ExportFormat.PDF), None, now=CREATED)
    assert card.title == "bonuses · PDF"


# --- what the card says was asked ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("columns", "filters", "text"),
    [
        (("grossPay",), Filters(), "1 column"),
        (("grossPay", "tax"), Filters(), "2 columns"),
        (
            ("grossPay",),
            Filters(dt.date(2024, 1, 1), dt.date(2024, 3, 31)),
            "1 column · Pay date 2024-01-01 to 2024-03-31",
        ),
        (("grossPay",), Filters(date_from=dt.date(2024, 1, 1)), "1 column · Pay date from 2024-01-01"),
        (("grossPay",), Filters(date_to=dt.date(2024, 1, 1)), "1 column · Pay date up to 2024-01-01"),
        (("grossPay",), Filters(department_ids=("d1",)), "1 column · 1 department"),
        (("grossPay",), Filters(department_ids=("d1", "d2")), "1 column · 2 departments"),
        (("grossPay",), Filters(status="on_leave"), "1 column · status on leave"),
    ],
)
def test_the_card_describes_the_request_in_words(columns: tuple[str, ...], filters: Filters, text: str) -> None:
    assert describe_request(create_job(columns=columns, filters=filters), PAYROLL) == text


def test_without_its_resource_the_description_calls_the_date_a_date() -> None:
    job = create_job(filters=Filters(date_from=dt.date(2024, 1, 1)))
    assert describe_request(job, None).endswith("Date from 2024-01-01")


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 bytes"),
        (1023, "1023 bytes"),
        (1024, "1.0 KB"),
        (1536, "1.5 KB"),
        (1024**2, "1.0 MB"),
        (5 * 1024**3, "5.0 GB"),
        (2048 * 1024**3, "2048.0 GB"),  # GB is the largest unit
    ],
)
def test_file_sizes_read_in_the_nearest_unit(size: int, text: str) -> None:
    assert human_bytes(size) == text


@pytest.mark.parametrize(
    ("seconds", "coarse", "text"),
    [
        (0, False, "0 s"),
        (-3, False, "0 s"),
        (4.4, False, "4 s"),
        (59.6, False, "1 min"),
        (120, False, "2 min"),
        (125, False, "2 min 5 s"),
        (125, True, "2 min"),
        (3600, False, "1 h 0 min"),
        (86_340, True, "23 h 59 min"),
    ],
)
def test_durations_read_in_hours_minutes_and_seconds(seconds: float, coarse: bool, text: str) -> None:
    assert duration(dt.timedelta(seconds=seconds), coarse=coarse) == text


# --- the new-export form -----------------------------------------------------------------------------


def test_a_new_form_starts_on_the_first_resource_with_its_default_columns() -> None:
    form = new_form(RESOURCES)
    assert form.resource is RESOURCES[0] and form.resources == RESOURCES
    assert form.columns == RESOURCES[0].default_columns
    assert (form.format, form.date_from, form.date_to, form.status) == ("csv", "", "", "")
    assert form.department_ids == frozenset() and form.errors == {}
    assert form.date_label == RESOURCES[0].date_label


def test_switching_resource_offers_that_resources_default_columns_and_keeps_the_dates() -> None:
    form = new_form(RESOURCES, "timesheets", date_from="2024-01-01", date_to="2024-01-31")
    assert form.resource.key == "timesheets"
    assert form.columns == HR.resources["timesheets"].default_columns
    assert (form.date_from, form.date_to) == ("2024-01-01", "2024-01-31")
    assert form.date_label == "Work date"


@pytest.mark.parametrize("key", [None, "", "salaries", "payroll"])
def test_a_resource_not_offered_falls_back_to_the_first_offered(key: str | None) -> None:
    offered = [HR.resources["compliance"], HR.resources["employees"]]  # a key limited to these
    assert new_form(offered, key).resource.key == "compliance"


def test_the_form_offers_every_format_with_a_label() -> None:
    assert new_form(RESOURCES).formats == [("csv", "CSV"), ("xlsx", "Excel (XLSX)"), ("pdf", "PDF")]


class Posted:
    """A submitted form: one value per field, several for the ticked boxes (`getall`)."""

    def __init__(self, values: Mapping[str, Any], many: Mapping[str, list[str]] | None = None) -> None:
        self.values, self.many = values, many or {}

    def read(self, resources: list[Any] = RESOURCES) -> tuple[Any, dict[str, Any]]:
        return form_from_input(resources, self.values, lambda name: self.many.get(name, []))


def test_a_filled_in_form_becomes_the_api_body_it_stands_for() -> None:
    form, body = Posted(
        {
            "resource": "payroll",
            "format": "xlsx",
            "date_from": " 2024-01-01 ",
            "date_to": "2024-03-31",
            "status": "paid",
        },
        {"columns": ["grossPay", "tax"], "department_ids": ["d2", "", "d1"]},
    ).read()
    assert body == {
        "resource": "payroll",
        "format": "xlsx",
        "columns": ["grossPay", "tax"],
        "filters": {"dateFrom": "2024-01-01", "dateTo": "2024-03-31", "departmentIds": ["d2", "d1"], "status": "paid"},
    }
    assert form.resource is PAYROLL and form.format == "xlsx"
    assert form.columns == ("grossPay", "tax")
    assert (form.date_from, form.date_to, form.status) == ("2024-01-01", "2024-03-31", "paid")
    assert form.department_ids == frozenset({"d1", "d2"})


def test_the_csv_options_go_with_csv_only() -> None:
    chosen = {"resource": "payroll", "csv_delimiter": "semicolon", "csv_gzip": "1"}
    _, body = Posted({**chosen, "format": "csv"}, {"columns": ["netPay"]}).read()
    assert (body["csvDelimiter"], body["csvGzip"]) == (";", True)
    _, body = Posted({**chosen, "format": "csv", "csv_delimiter": "tab"}, {"columns": ["netPay"]}).read()
    assert body["csvDelimiter"] == "\t"
    _, body = Posted({**chosen, "format": "xlsx"}, {"columns": ["netPay"]}).read()
    assert "csvDelimiter" not in body and "csvGzip" not in body  # hidden with XLSX, and refused by the API
    form, body = Posted({"resource": "payroll", "format": "csv"}, {"columns": ["netPay"]}).read()
    assert "csvDelimiter" not in body and "csvGzip" not in body  # the defaults are not sent
    assert (form.csv_delimiter, form.csv_gzip) == ("comma", False)
    # A value the form does not offer goes on as posted, for validation to name it.
    _, body = Posted({**chosen, "format": "csv", "csv_delimiter": "pipe"}, {"columns": ["netPay"]}).read()
    assert body["csvDelimiter"] == "pipe"


def test_an_empty_form_becomes_a_body_that_validation_refuses_by_field() -> None:
    form, body = Posted({}).read()
    assert body == {"resource": None, "format": None, "columns": []}
    assert form.resource is RESOURCES[0]


def test_empty_filters_are_left_out_of_the_body() -> None:
    _, body = Posted(
        {"resource": "payroll", "format": "csv", "date_from": "  ", "status": ""}, {"columns": ["tax"]}
    ).read()
    assert "filters" not in body


def test_only_the_filters_the_resource_offers_are_read() -> None:
    bare = dataclasses.replace(PAYROLL, date_sql=None, status_sql=None, department_sql=None)
    form, body = Posted(
        {"resource": "payroll", "format": "csv", "date_from": "2024-01-01", "status": "paid"},
        {"columns": ["tax"], "department_ids": ["d1"]},
    ).read([bare])
    assert "filters" not in body
    assert form.date_from == "2024-01-01"  # kept as typed, though the form shows no such field


def test_a_resource_not_offered_is_sent_as_posted_for_validation_to_name() -> None:
    form, body = Posted({"resource": "salaries", "format": "csv"}, {"columns": ["x"]}).read()
    assert body["resource"] == "salaries"
    assert form.resource is RESOURCES[0]


@pytest.mark.parametrize(
    ("field", "slot"),
    [
        ("resource", "resource"),
        ("format", "format"),
        ("columns", "columns"),
        ("filters.dateFrom", "date_from"),
        ("filters.dateTo", "date_to"),
        ("filters.status", "status"),
        ("filters.departmentIds", "departments"),
        ("filters.departmentIds[3]", "departments"),
        ("webhookUrl", "form"),
        ("body", "form"),
        ("colour", "form"),
    ],
)
def test_each_problem_is_shown_next_to_its_field_or_atop_the_form(field: str, slot: str) -> None:
    assert problem_slot(field) == slot


def test_problems_read_as_sentences_in_the_forms_own_words() -> None:
    form, _ = Posted({"resource": "payroll", "format": "csv"}, {"columns": ["tax"]}).read()
    form.add_problems(
        [
            Problem("filters.dateFrom", "must not be after filters.dateTo"),
            Problem("filters.departmentIds[0]", "no department d9 in this account"),
            Problem("filters.departmentIds[1]", "no department d8 in this account"),
            Problem("format", "unknown format 'docx'; one of csv, xlsx, pdf"),
        ]
    )
    assert form.error("date_from") == "Must not be after the end date."
    assert form.error("departments") == "No department d9 in this account. No department d8 in this account."
    assert form.error("format") == "Unknown format 'docx'; one of csv, xlsx, pdf."
    assert form.error("columns") is None and form.error("form") is None


def test_no_ticked_column_asks_for_one() -> None:
    form, _ = Posted({"resource": "payroll", "format": "csv"}).read()
    form.add_problems([Problem("columns", "choose at least one column, or leave the field out for the defaults")])
    assert form.error("columns") == "Tick at least one column."


def test_a_column_problem_with_columns_ticked_keeps_its_message() -> None:
    form, _ = Posted({"resource": "payroll", "format": "csv"}, {"columns": ["bonus"]}).read()
    form.add_problems([Problem("columns", "unknown column(s) bonus for payroll")])
    assert form.error("columns") == "Unknown column(s) bonus for payroll."


def test_a_message_ending_in_its_own_punctuation_gets_no_second_one() -> None:
    form = new_form(RESOURCES)
    form.add_problems([Problem("webhookUrl", "refused!")])
    assert form.error("form") == "Refused!"


# --- departments ---------------------------------------------------------------------------------------


def test_departments_come_from_rows_in_their_order() -> None:
    rows = [{"id": "d2", "name": "Sales"}, {"id": "d1", "name": "Engineering"}]
    assert departments_from(rows) == [Department("d2", "Sales"), Department("d1", "Engineering")]
    assert departments_from([]) == []
