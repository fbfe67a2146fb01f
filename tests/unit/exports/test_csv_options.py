"""csvDelimiter and csvGzip: what a request may ask for, and what every other value answers."""

from __future__ import annotations

import hashlib
import json

import pytest

from exporthub.catalog import load_catalog
from exporthub.errors import InvalidRequest
from exporthub.exports.models import ExportFormat, ExportRequest
from exporthub.exports.validation import parse_export_request
from tests.factories import create_job

HR = load_catalog()
CHOICES = 'one of "\\t", ",", ";"'


def fields_at_fault(body: object) -> dict[str, str]:
    with pytest.raises(InvalidRequest) as info:
        parse_export_request(body, HR)
    return {p.field: p.message for p in info.value.problems}


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
@pytest.mark.parametrize("gzip", [True, False])
def test_the_three_delimiters_with_or_without_gzip_are_taken(delimiter: str, gzip: bool) -> None:
    request = parse_export_request(
        {"format": "csv", "resource": "payroll", "csvDelimiter": delimiter, "csvGzip": gzip}, HR
    )
    assert (request.csv_delimiter, request.csv_gzip) == (delimiter, gzip)
    assert request.options() == {"csvBom": True, "csvDelimiter": delimiter, "csvGzip": gzip}


def test_left_out_or_null_they_are_a_comma_and_no_gzip() -> None:
    for body in ({}, {"csvDelimiter": None, "csvGzip": None}):
        request = parse_export_request({"format": "csv", "resource": "payroll", **body}, HR)
        assert (request.csv_delimiter, request.csv_gzip) == (",", False)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("|", f"unknown csvDelimiter '|'; {CHOICES}"),
        (";;", f"unknown csvDelimiter ';;'; {CHOICES}"),
        ("", f"unknown csvDelimiter ''; {CHOICES}"),
        ("\\t", f"unknown csvDelimiter '\\\\t'; {CHOICES}"),  # the two characters backslash and t
        (44, f"expected {CHOICES}, got a number"),
        ([";"], f"expected {CHOICES}, got a list"),
        ({"char": ";"}, f"expected {CHOICES}, got an object"),
        (True, f"expected {CHOICES}, got true or false"),
    ],
)
def test_any_other_delimiter_is_refused_by_name(value: object, message: str) -> None:
    assert fields_at_fault({"format": "csv", "resource": "payroll", "csvDelimiter": value}) == {"csvDelimiter": message}


def test_a_huge_delimiter_is_refused_and_not_echoed_back_whole() -> None:
    message = fields_at_fault({"format": "csv", "resource": "payroll", "csvDelimiter": ";" * 100_000})["csvDelimiter"]
    assert message.startswith("unknown csvDelimiter ';;;") and message.endswith(CHOICES)
    assert len(message) < 200


@pytest.mark.parametrize(("value", "got"), [("yes", "a string"), (2.5, "a number"), ([True], "a list")])
def test_csv_gzip_must_be_true_or_false(value: object, got: str) -> None:
    assert fields_at_fault({"format": "csv", "resource": "payroll", "csvGzip": value}) == {
        "csvGzip": f"expected true or false, got {got}"
    }


@pytest.mark.parametrize("fmt", ["xlsx", "pdf"])
def test_they_are_refused_for_any_format_but_csv(fmt: str) -> None:
    body = {"format": fmt, "resource": "payroll", "csvDelimiter": ";", "csvGzip": False}
    assert fields_at_fault(body) == {
        "csvDelimiter": f"CSV only; leave it out for {fmt}",
        "csvGzip": f"CSV only; leave it out for {fmt}",
    }
    # With other faults they are named along with them.
    problems = fields_at_fault({**body, "columns": ["nope"]})
    assert set(problems) == {"columns", "csvDelimiter", "csvGzip"}


def test_the_fingerprint_tells_the_options_apart_and_keeps_earlier_hashes() -> None:
    base = ExportRequest(resource="payroll", format=ExportFormat.CSV, columns=("netPay",))
    semicolon = ExportRequest(resource="payroll", format=ExportFormat.CSV, columns=("netPay",), csv_delimiter=";")
    gzipped = ExportRequest(resource="payroll", format=ExportFormat.CSV, columns=("netPay",), csv_gzip=True)
    assert len({base.fingerprint(), semicolon.fingerprint(), gzipped.fingerprint()}) == 3
    # A request made before these options existed hashed exactly these keys.
    earlier = json.dumps(
        {
            "resource": "payroll",
            "format": "csv",
            "columns": ["netPay"],
            "filters": {},
            "webhookUrl": None,
            "csvBom": True,
        },
        sort_keys=True,
    )
    assert base.fingerprint() == hashlib.sha256(earlier.encode()).hexdigest()


@pytest.mark.parametrize(
    ("fmt", "options", "extension", "media_type"),
    [
        (ExportFormat.CSV, {"csvGzip": True}, "csv.gz", "application/gzip"),
        (ExportFormat.CSV, {"csvGzip": False}, "csv", "text/csv; charset=utf-8"),
        (ExportFormat.CSV, {}, "csv", "text/csv; charset=utf-8"),
        (ExportFormat.XLSX, {"csvGzip": True}, "xlsx", ExportFormat.XLSX.media_type),
    ],
)
def test_a_gzipped_csv_is_named_and_typed_as_gzip(
    fmt: ExportFormat, options: dict[str, object], extension: str, media_type: str
) -> None:
    job = create_job(format=fmt, options=options)
    assert (job.extension, job.media_type) == (extension, media_type)
