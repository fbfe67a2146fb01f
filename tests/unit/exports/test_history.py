"""exports/history.py: the list's filter read from query parameters, the keyset cursor as text, a page
from the rows read, and a finished export's request as a submit body. Over PostgreSQL:
tests/integration/exports/test_account_scope.py; through the console: tests/integration/test_console_history.py."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from exporthub.catalog import load_catalog
from exporthub.errors import InvalidRequest
from exporthub.exports.history import Cursor, HistoryFilter, page_of, read_history_filter, request_of
from exporthub.exports.models import ExportFormat, ExportStatus, Filters
from exporthub.exports.validation import parse_export_request
from tests.factories import CREATED, create_job

RESOURCES = ("employees", "payroll")


def test_an_empty_filter_lists_everything() -> None:
    assert read_history_filter("", "", "", RESOURCES) == (HistoryFilter(), [])
    assert HistoryFilter().params() == {}


def test_each_known_value_filters() -> None:
    filter, problems = read_history_filter("failed", "payroll", "xlsx", RESOURCES)
    assert problems == []
    assert filter == HistoryFilter(ExportStatus.FAILED, "payroll", ExportFormat.XLSX)
    assert filter.params() == {"status": "failed", "resource": "payroll", "format": "xlsx"}


@pytest.mark.parametrize(
    ("status", "resource", "format", "field"),
    [
        ("done", "", "", "status"),
        ("FAILED", "", "", "status"),  # exactly as the API spells it
        ("", "timesheets", "", "resource"),  # in the catalog, but not among the key's resources
        ("", "", "docx", "format"),
        ("", "", "x" * 10_000, "format"),
    ],
)
def test_an_unknown_value_is_named_and_left_out(status: str, resource: str, format: str, field: str) -> None:
    filter, problems = read_history_filter(status, resource, format, RESOURCES)
    assert filter == HistoryFilter()
    assert [p.field for p in problems] == [field]
    assert problems[0].message.startswith(f"unknown {field} ")
    assert len(problems[0].message) < 200  # a huge value is not echoed whole


def test_every_unknown_value_is_named() -> None:
    filter, problems = read_history_filter("nope", "payroll", "nope", RESOURCES)
    assert filter == HistoryFilter(resource="payroll")
    assert [p.field for p in problems] == ["status", "format"]


def test_a_cursor_reads_back_exactly() -> None:
    for at in (CREATED, CREATED.replace(microsecond=123_456), dt.datetime(1999, 12, 31, 23, 59, 59, 1, tzinfo=dt.UTC)):
        cursor = Cursor(at, uuid.uuid4())
        assert Cursor.parse(str(cursor)) == cursor
    assert str(Cursor(dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=dt.UTC), uuid.UUID(int=1))) == (
        "1000000_00000000-0000-0000-0000-000000000001"
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "_",
        "abc",
        "1767268800000000",
        "1767268800000000_",
        "1767268800000000_not-a-uuid",
        "-1_00000000-0000-0000-0000-000000000001",
        "1.5_00000000-0000-0000-0000-000000000001",
        "\uff11\uff12_00000000-0000-0000-0000-000000000001",  # full-width digits: isdigit, but not ours
        "9" * 30 + "_00000000-0000-0000-0000-000000000001",  # past any datetime
        "1" * 5000,
    ],
)
def test_anything_else_is_not_a_cursor(text: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        Cursor.parse(text)
    assert [p.field for p in raised.value.problems] == ["before"]


def test_a_page_knows_whether_an_older_one_follows() -> None:
    jobs = [create_job(created_at=CREATED - dt.timedelta(minutes=i)) for i in range(3)]
    assert page_of(jobs, 3).older is None
    page = page_of(jobs, 2)
    assert page.jobs == jobs[:2]
    assert page.older == Cursor(jobs[1].created_at, jobs[1].id)
    assert page_of([], 20).older is None


def test_a_finished_exports_request_reads_back_as_it_was_asked() -> None:
    catalog = load_catalog()
    filters = Filters(date_from=dt.date(2024, 1, 1), date_to=dt.date(2024, 3, 31), status="paid")
    job = create_job(
        ExportStatus.COMPLETED,
        resource="payroll",
        format=ExportFormat.XLSX,
        columns=("netPay", "grossPay"),
        filters=filters,
        options={"csvBom": False},
        webhook_url="https://hooks.example.com/done",
        time_zone="Asia/Tokyo",
    )
    body = request_of(job)
    assert body == {
        "resource": "payroll",
        "format": "xlsx",
        "columns": ["netPay", "grossPay"],
        "filters": {"dateFrom": "2024-01-01", "dateTo": "2024-03-31", "status": "paid"},
        "webhookUrl": "https://hooks.example.com/done",
        "csvBom": False,
        "timezone": "Asia/Tokyo",
    }
    again = parse_export_request(body, catalog)
    assert (again.resource, again.format, again.columns, again.filters) == (
        "payroll",
        ExportFormat.XLSX,
        ("netPay", "grossPay"),
        filters,
    )
    assert (again.webhook_url, again.csv_bom) == ("https://hooks.example.com/done", False)
    assert again.time_zone == "Asia/Tokyo"
    # A CSV's delimiter and gzip go along; an XLSX's options (all kept) would be refused, so they do not.
    csv = create_job(ExportStatus.COMPLETED, options={"csvBom": True, "csvDelimiter": ";", "csvGzip": True})
    again = parse_export_request(request_of(csv), catalog)
    assert (again.csv_delimiter, again.csv_gzip, again.csv_bom) == (";", True, True)
    xlsx = create_job(ExportStatus.COMPLETED, format=ExportFormat.XLSX, options={"csvDelimiter": ",", "csvGzip": False})
    assert parse_export_request(request_of(xlsx), catalog).format is ExportFormat.XLSX
    # No filters, no webhook: none asked for again; the zone it was made in, always.
    assert request_of(create_job(ExportStatus.FAILED, options={})) == {
        "resource": "payroll",
        "format": "csv",
        "columns": ["grossPay", "netPay"],
        "timezone": "UTC",
    }
