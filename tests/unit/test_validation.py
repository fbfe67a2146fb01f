from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import pytest

from exporthub.catalog import load_catalog
from exporthub.errors import InvalidRequest
from exporthub.exports.models import ExportFormat
from exporthub.exports.validation import parse_export_request

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


def test_every_field_at_fault_is_named_at_once() -> None:
    problems = fields_at_fault(
        {
            "format": "docx",
            "resource": "payroll",
            "columns": ["grossPay", "salary"],
            "filters": {
                "status": "bogus",
                "dateFrom": "2024-02-01",
                "dateTo": "2024-01-01",
                "departmentIds": [""],
            },
            "webhookUrl": "ftp://example.com",
            "colour": "red",
        }
    )
    assert set(problems) == {
        "format",
        "columns",
        "filters.status",
        "filters.dateFrom",
        "filters.departmentIds[0]",
        "webhookUrl",
        "colour",
    }
    assert "salary" in problems["columns"] and "grossPay" not in problems["columns"].split(";")[0]
    assert "docx" in problems["format"]
    assert "draft" in problems["filters.status"]


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
        ({"format": "csv", "resource": "payroll", "columns": [1, 2]}, "columns"),
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
