from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import msgspec
import pytest

from exporthub.catalog import load_catalog
from exporthub.errors import InvalidRequest
from exporthub.exports.models import ExportFormat
from exporthub.exports.validation import parse_export_request, read_request

HR = load_catalog()  # the HR catalog shipped in the package
RESOURCES = HR.resources


def fields_at_fault(body: object) -> dict[str, str]:
    with pytest.raises(InvalidRequest) as info:
        parse_export_request(body, HR)
    return {p.field: p.message for p in info.value.problems}


def test_minimal_request_gets_the_resource_defaults() -> None:
    request = parse_export_request({"format": "csv", "resource": "payroll"}, HR)
    assert request.format is ExportFormat.CSV
    assert request.columns == RESOURCES["payroll"].default_columns
    assert request.filters.to_json() == {}
    assert request.csv_bom is True


def test_full_request_is_parsed() -> None:
    dept = uuid.uuid4()
    request = parse_export_request(
        {
            "format": "xlsx",
            "resource": "timesheets",
            "columns": ["workDate", "hours"],
            "filters": {
                "dateFrom": "2024-01-01",
                "dateTo": "2024-01-31",
                "departmentIds": [str(dept)],
                "status": "approved",
            },
            "webhookUrl": "https://hooks.example.com/exports",
            "csvBom": False,
        },
        HR,
    )
    assert request.columns == ("workDate", "hours")
    assert request.filters.date_from == dt.date(2024, 1, 1)
    assert request.filters.department_ids == (str(dept),)
    assert request.filters.status == "approved"
    assert request.webhook_url == "https://hooks.example.com/exports"
    assert request.csv_bom is False


def test_every_field_the_catalog_refuses_is_named_at_once() -> None:
    problems = fields_at_fault(
        {
            "format": "csv",
            "resource": "payroll",
            "columns": ["grossPay", "salary"],
            "filters": {"status": "bogus", "dateFrom": "2024-02-01", "dateTo": "2024-01-01"},
            "webhookUrl": "ftp://example.com",
        }
    )
    assert set(problems) == {"columns", "filters.status", "filters.dateFrom", "webhookUrl"}
    assert "salary" in problems["columns"] and "grossPay" not in problems["columns"].split(";")[0]
    assert "draft" in problems["filters.status"]


def test_a_body_of_the_wrong_shape_is_refused_at_its_first_fault() -> None:
    # msgspec stops at the first fault of shape (as Litestar does for the API); the catalog's checks,
    # which name every field at fault, run on a body of the right shape only.
    problems = fields_at_fault(
        {"format": "docx", "resource": "payroll", "filters": {"departmentIds": [""]}, "colour": "red"}
    )
    assert problems == {"format": "unknown format 'docx'; one of csv, xlsx, pdf"}


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "format", "required; one of csv, xlsx, pdf"),
        ({"format": "csv"}, "resource", "required"),
        ({"format": None, "resource": "payroll"}, "format", "required; one of csv, xlsx, pdf"),
        ({"format": 3, "resource": "payroll"}, "format", "expected one of csv, xlsx, pdf, got a number"),
        ({"format": "csv", "resource": ["payroll"]}, "resource", "expected a string, got a list"),
        ({"format": "csv", "resource": "p" * 201}, "resource", "expected at most 200 characters"),
        (
            {"format": "csv", "resource": "payroll", "columns": "grossPay"},
            "columns",
            "expected a list of strings, got a string",
        ),
        (
            {"format": "csv", "resource": "payroll", "columns": []},
            "columns",
            "must not be empty (leave the field out for the default)",
        ),
        (
            {"format": "csv", "resource": "payroll", "columns": ["tax", 2]},
            "columns[1]",
            "expected a string, got a number",
        ),
        ({"format": "csv", "resource": "payroll", "filters": ["status"]}, "filters", "expected an object, got a list"),
        (
            {"format": "csv", "resource": "payroll", "filters": {"dateFrom": "2024-13-01"}},
            "filters.dateFrom",
            "expected a date as YYYY-MM-DD or a date and time with its offset, such as 2024-01-01T09:00:00+09:00",
        ),
        (
            {"format": "csv", "resource": "payroll", "filters": {"dateTo": 20240101}},
            "filters.dateTo",
            "expected a date as YYYY-MM-DD or a date and time with its offset, such as 2024-01-01T09:00:00+09:00,"
            " got a number",
        ),
        (
            {"format": "csv", "resource": "payroll", "filters": {"departmentIds": "abc"}},
            "filters.departmentIds",
            "expected a list of strings, got a string",
        ),
        (
            {"format": "csv", "resource": "payroll", "filters": {"departmentIds": ["a"] * 501}},
            "filters.departmentIds",
            "expected at most 500 items",
        ),
        (
            {"format": "csv", "resource": "payroll", "filters": {"departmentIds": ["a", ""]}},
            "filters.departmentIds[1]",
            "must not be empty",
        ),
        (
            {"format": "csv", "resource": "payroll", "filters": {"status": True}},
            "filters.status",
            "expected a string, got true or false",
        ),
        (
            {"format": "csv", "resource": "payroll", "filters": {"region": "EU"}},
            "filters.region",
            "unknown field; allowed: dateFrom, dateTo, departmentIds, status",
        ),
        (
            {"format": "csv", "resource": "payroll", "colour": "red"},
            "colour",
            "unknown field; allowed: columns, csvBom, csvDelimiter, csvGzip, filters, format, resource, timezone, "
            "webhookUrl",
        ),
        ({"format": "csv", "resource": "payroll", "webhookUrl": 5}, "webhookUrl", "expected a string, got a number"),
        ({"format": "csv", "resource": "payroll", "csvBom": "yes"}, "csvBom", "expected true or false, got a string"),
        ({"format": "csv", "resource": "payroll", "columns": [None]}, "columns[0]", "expected a string, got null"),
        ([1, 2, 3], "body", "expected a JSON object, got a list"),
        (None, "body", "expected a JSON object, got null"),
    ],
)
def test_a_fault_of_shape_is_named_in_words(body: object, field: str, message: str) -> None:
    assert fields_at_fault(body) == {field: message}


def test_what_we_echo_back_is_cut_short() -> None:
    problems = fields_at_fault({"format": "x" * 10_000, "resource": "payroll"})
    assert len(problems["format"]) < 120
    (name,) = fields_at_fault({"format": "csv", "resource": "payroll", "y" * 10_000: 1})
    assert len(name) <= 60


def test_null_means_left_out() -> None:
    request = parse_export_request(
        {"format": "csv", "resource": "payroll", "columns": None, "filters": None, "webhookUrl": None, "csvBom": None},
        HR,
        default_csv_bom=False,
    )
    assert request.columns == RESOURCES["payroll"].default_columns
    assert request.webhook_url is None and request.csv_bom is False


def test_the_struct_itself_is_taken_as_it_is() -> None:
    body = read_request({"format": "pdf", "resource": "compliance", "filters": {"dateFrom": "2024-01-01"}})
    assert parse_export_request(body, HR) == parse_export_request(msgspec.to_builtins(body), HR)
    assert msgspec.to_builtins(body) == {
        "format": "pdf",
        "resource": "compliance",
        "filters": {"dateFrom": "2024-01-01"},
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "format"),
        ({"format": "csv"}, "resource"),
        ({"format": "csv", "resource": "salaries"}, "resource"),
        ({"format": 3, "resource": "payroll"}, "format"),
        ({"format": "csv", "resource": ["payroll"]}, "resource"),
        ({"format": "csv", "resource": "payroll", "columns": "grossPay"}, "columns"),
        ({"format": "csv", "resource": "payroll", "columns": []}, "columns"),
        ({"format": "csv", "resource": "payroll", "columns": ["tax", "tax"]}, "columns"),
        ({"format": "csv", "resource": "payroll", "columns": [1, 2]}, "columns[0]"),
        ({"format": "csv", "resource": "payroll", "filters": []}, "filters"),
        ({"format": "csv", "resource": "payroll", "filters": {"dateFrom": "2024-13-01"}}, "filters.dateFrom"),
        ({"format": "csv", "resource": "payroll", "filters": {"dateTo": 20240101}}, "filters.dateTo"),
        (
            {"format": "csv", "resource": "payroll", "filters": {"departmentIds": "abc"}},
            "filters.departmentIds",
        ),
        (
            {"format": "csv", "resource": "payroll", "filters": {"departmentIds": [str(uuid.uuid4())] * 501}},
            "filters.departmentIds",
        ),
        ({"format": "csv", "resource": "employees", "filters": {"status": "paid"}}, "filters.status"),
        ({"format": "csv", "resource": "payroll", "filters": {"region": "EU"}}, "filters.region"),
        ({"format": "csv", "resource": "payroll", "webhookUrl": "not a url"}, "webhookUrl"),
        (
            {"format": "csv", "resource": "payroll", "webhookUrl": "https://" + "a" * 3000 + ".com"},
            "webhookUrl",
        ),
        ({"format": "csv", "resource": "payroll", "csvBom": "yes"}, "csvBom"),
        ([1, 2, 3], "body"),
        ("payroll", "body"),
        (None, "body"),
    ],
)
def test_bad_input_names_its_field(body: object, field: str) -> None:
    assert field in fields_at_fault(body)


def test_pdf_is_a_format() -> None:
    assert parse_export_request({"format": "pdf", "resource": "compliance"}, HR).format is ExportFormat.PDF


def test_fingerprint_tells_different_requests_apart() -> None:
    a = parse_export_request({"format": "csv", "resource": "payroll"}, HR)
    b = parse_export_request({"format": "csv", "resource": "payroll", "columns": list(a.columns)}, HR)
    c = parse_export_request({"format": "xlsx", "resource": "payroll"}, HR)
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != c.fingerprint()


def test_a_filter_the_resource_lacks_is_refused_by_name() -> None:
    catalog = load_catalog()
    bare = dataclasses.replace(catalog.resources["payroll"], date_sql=None, status_sql=None, department_sql=None)
    catalog = dataclasses.replace(catalog, resources={"payroll": bare})
    with pytest.raises(InvalidRequest) as info:
        parse_export_request(
            {
                "format": "csv",
                "resource": "payroll",
                "filters": {"dateFrom": "2024-01-01", "status": "paid", "departmentIds": ["d1"]},
            },
            catalog,
        )
    problems = {p.field: p.message for p in info.value.problems}
    assert set(problems) == {"filters.dateFrom", "filters.status", "filters.departmentIds"}
    assert problems["filters.status"] == "payroll has no such filter; it offers none"


def test_department_ids_are_the_catalogs_own_strings() -> None:
    request = parse_export_request(
        {"format": "csv", "resource": "payroll", "filters": {"departmentIds": ["SALES", "42"]}}, HR
    )
    assert request.filters.department_ids == ("SALES", "42")
    with pytest.raises(InvalidRequest) as info:
        parse_export_request({"format": "csv", "resource": "payroll", "filters": {"departmentIds": [7]}}, HR)
    assert [p.field for p in info.value.problems] == ["filters.departmentIds[0]"]
