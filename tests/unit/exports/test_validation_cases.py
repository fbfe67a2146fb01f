"""exports/validation.py: the limits at their boundaries and the cases tests/unit/test_validation.py
leaves out (that file covers the faults of shape and of the catalog, and is kept where it is)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from exporthub.catalog import load_catalog
from exporthub.errors import InvalidRequest
from exporthub.exports.models import Filters
from exporthub.exports.validation import (
    MAX_DEPARTMENT_ID_LENGTH,
    MAX_DEPARTMENT_IDS,
    MAX_URL_LENGTH,
    parse_export_request,
)

HR = load_catalog()
PAYROLL = {"format": "csv", "resource": "payroll"}
DATE_WORDS = "expected a date as YYYY-MM-DD or a date and time with its offset, such as 2024-01-01T09:00:00+09:00"


def problems(body: Any, **options: Any) -> dict[str, str]:
    with pytest.raises(InvalidRequest) as info:
        parse_export_request(body, HR, **options)
    return {p.field: p.message for p in info.value.problems}


def with_filters(**filters: Any) -> dict[str, Any]:
    return PAYROLL | {"filters": filters}


def test_as_many_department_ids_as_allowed_pass_and_one_more_is_refused() -> None:
    ids = [f"d{i}" for i in range(MAX_DEPARTMENT_IDS)]
    assert len(parse_export_request(with_filters(departmentIds=ids), HR).filters.department_ids) == MAX_DEPARTMENT_IDS
    assert problems(with_filters(departmentIds=[*ids, "one-more"])) == {
        "filters.departmentIds": f"expected at most {MAX_DEPARTMENT_IDS} items"
    }


def test_a_department_id_as_long_as_allowed_passes_and_a_longer_one_is_refused() -> None:
    longest = "d" * MAX_DEPARTMENT_ID_LENGTH
    assert parse_export_request(with_filters(departmentIds=[longest]), HR).filters.department_ids == (longest,)
    assert problems(with_filters(departmentIds=["ok", longest + "d"])) == {
        "filters.departmentIds[1]": f"expected at most {MAX_DEPARTMENT_ID_LENGTH} characters"
    }


def test_repeated_department_ids_count_once_in_the_order_first_given() -> None:
    request = parse_export_request(with_filters(departmentIds=["b", "a", "b", "c", "a"]), HR)
    assert request.filters.department_ids == ("b", "a", "c")


def test_a_webhook_url_as_long_as_allowed_passes_and_a_longer_one_is_refused() -> None:
    stem = "https://hooks.example.com/"
    longest = stem + "p" * (MAX_URL_LENGTH - len(stem))
    assert len(longest) == MAX_URL_LENGTH
    assert parse_export_request(PAYROLL | {"webhookUrl": longest}, HR).webhook_url == longest
    assert problems(PAYROLL | {"webhookUrl": longest + "p"}) == {
        "webhookUrl": f"expected at most {MAX_URL_LENGTH} characters"
    }


@pytest.mark.parametrize(
    "url",
    [
        "",
        "https://",
        "//hooks.example.com/x",  # no scheme
        "mailto:ops@example.com",
        "https://" + "a" * 64 + ".example.com/",  # a label longer than DNS allows
        "https://a..b/",  # an empty label
        "https://[::1/",  # an unclosed IPv6 literal
    ],
)
def test_a_webhook_url_no_one_could_connect_to_is_refused(url: str) -> None:
    assert problems(PAYROLL | {"webhookUrl": url}) == {"webhookUrl": "expected an absolute http:// or https:// URL"}


def test_a_single_day_range_is_allowed() -> None:
    request = parse_export_request(with_filters(dateFrom="2024-02-29", dateTo="2024-02-29"), HR)
    assert request.filters.date_from == request.filters.date_to


@pytest.mark.parametrize(
    "value",
    [
        "2024-1-1",
        "20240101",
        "2024-W01-1",
        "01/02/2024",
        "2023-02-29",
        "",
        "2024-01-01 00:00:00Z",  # RFC 3339: a T between date and time
        "2024-01-01T25:00:00Z",
        "2024-01-01T00:00:00+0900",
        "2024-01-01T00:00:00+09:00[Asia/Tokyo]",
        "2024-02-30T00:00:00Z",
    ],
)
def test_a_date_not_written_as_a_real_yyyy_mm_dd_is_refused(value: str) -> None:
    assert problems(with_filters(dateTo=value)) == {"filters.dateTo": DATE_WORDS}


def test_a_date_and_time_without_its_offset_is_refused() -> None:
    assert problems(with_filters(dateFrom="2024-01-01T00:00:00")) == {
        "filters.dateFrom": "'2024-01-01T00:00:00' has no offset: add Z for UTC or one such as +09:00"
    }


@pytest.mark.parametrize(
    ("value", "moment"),
    [
        ("2024-01-01T00:00:00Z", dt.datetime(2024, 1, 1, tzinfo=dt.UTC)),
        ("2024-01-01t00:00z", dt.datetime(2024, 1, 1, tzinfo=dt.UTC)),
        ("2024-01-01T09:00:00+09:00", dt.datetime(2024, 1, 1, tzinfo=dt.UTC)),
        ("2023-12-31T19:30:00.250-04:30", dt.datetime(2024, 1, 1, 0, 0, 0, 250_000, tzinfo=dt.UTC)),
    ],
)
def test_a_date_and_time_with_its_offset_is_a_moment(value: str, moment: dt.datetime) -> None:
    filters = parse_export_request(with_filters(dateFrom=value), HR).filters
    assert isinstance(filters.date_from, dt.datetime) and filters.date_from == moment
    assert Filters.from_json(filters.to_json()) == filters  # stored and read back unchanged


@pytest.mark.parametrize(
    ("date_from", "date_to", "zone", "after"),
    [
        ("2024-01-02T00:00:00Z", "2024-01-01", None, True),  # UTC: 2024-01-01 ended at that moment
        ("2024-01-01T23:59:59Z", "2024-01-01", None, False),
        ("2024-01-01T23:59:59Z", "2024-01-01", "Asia/Tokyo", True),  # Tokyo's Jan 1 ended at 15:00 UTC
        ("2024-01-01", "2024-01-01T00:00:00+09:00", "Asia/Tokyo", False),  # the day's first moment: included
        ("2024-01-01", "2023-12-31T23:59:59+09:00", "Asia/Tokyo", True),
        ("2024-01-01T10:00:00+09:00", "2024-01-01T01:00:00Z", None, False),  # the same moment
        ("2024-01-01T10:00:00+09:00", "2024-01-01T00:59:59.999999Z", None, True),
        ("2024-01-01", "9999-12-31", "Asia/Tokyo", False),
        ("9999-12-31T00:00:00Z", "9999-12-30", None, True),
    ],
)
def test_date_from_after_date_to_compares_days_in_the_export_zone(
    date_from: str, date_to: str, zone: str | None, after: bool
) -> None:
    body = with_filters(dateFrom=date_from, dateTo=date_to) | ({"timezone": zone} if zone else {})
    if after:
        assert problems(body) == {"filters.dateFrom": "must not be after filters.dateTo"}
    else:
        assert parse_export_request(body, HR).filters.date_to is not None


@pytest.mark.parametrize(
    ("zone", "message"),
    [
        (
            "Asia/Tokio",
            "unknown time zone 'Asia/Tokio': expected an IANA name such as Europe/Berlin; did you mean Asia/Tokyo?",
        ),
        ("JST", "unknown time zone 'JST': expected an IANA name such as Europe/Berlin; did you mean MST?"),
        ("+09:00", "unknown time zone '+09:00': expected an IANA name such as Europe/Berlin"),
        ("../../etc/passwd", "unknown time zone '../../etc/passwd': expected an IANA name such as Europe/Berlin"),
        ("", "must not be empty (leave the field out for the default)"),
        ("A" * 65, "expected at most 64 characters"),
        ("A" * 100_000, "expected at most 64 characters"),
        (9, "expected a string, got a number"),
        (["Asia/Tokyo"], "expected a string, got a list"),
        ({"name": "Asia/Tokyo"}, "expected a string, got an object"),
        (True, "expected a string, got true or false"),
    ],
)
def test_a_time_zone_that_is_not_an_iana_name_is_refused_naming_timezone(zone: object, message: str) -> None:
    assert problems(PAYROLL | {"timezone": zone}) == {"timezone": message}


def test_a_time_zone_is_kept_and_left_out_means_the_account_default() -> None:
    assert parse_export_request(PAYROLL | {"timezone": "Asia/Tokyo"}, HR).time_zone == "Asia/Tokyo"
    assert parse_export_request(PAYROLL | {"timezone": None}, HR).time_zone is None
    assert parse_export_request(PAYROLL, HR).time_zone is None
    # Requests without one keep their former fingerprints (idempotency keys stay valid across the upgrade).
    plain, zoned = parse_export_request(PAYROLL, HR), parse_export_request(PAYROLL | {"timezone": "UTC"}, HR)
    assert plain.fingerprint() != zoned.fingerprint()


def test_a_filter_set_to_null_is_as_if_it_were_left_out_even_where_the_resource_lacks_it() -> None:
    nulls = with_filters(dateFrom=None, dateTo=None, departmentIds=None, status=None)
    assert parse_export_request(nulls, HR).filters.to_json() == {}
    bare = dataclasses.replace(HR.resources["payroll"], date_sql=None, status_sql=None, department_sql=None)
    catalog = dataclasses.replace(HR, resources={"payroll": bare})
    assert parse_export_request(nulls, catalog).filters.to_json() == {}


def test_with_an_unknown_resource_only_the_resource_is_at_fault_not_its_columns_or_filters() -> None:
    body = {"format": "csv", "resource": "salaries", "columns": ["anything"], "filters": {"status": "whatever"}}
    assert list(problems(body)) == ["resource"]


def test_the_callers_default_byte_order_mark_applies_unless_the_body_says() -> None:
    assert parse_export_request(PAYROLL, HR, default_csv_bom=False).csv_bom is False
    assert parse_export_request(PAYROLL | {"csvBom": True}, HR, default_csv_bom=False).csv_bom is True
    assert parse_export_request(PAYROLL | {"csvBom": False}, HR, default_csv_bom=True).csv_bom is False


@pytest.mark.parametrize(("given", "bom"), [("true", True), ("false", False)])
def test_a_flag_written_as_text_reads_as_the_form_sends_it(given: str, bom: bool) -> None:
    # read_request converts as Litestar converts a body (not strict), so the console's form values work.
    assert parse_export_request(PAYROLL | {"csvBom": given}, HR).csv_bom is bom
