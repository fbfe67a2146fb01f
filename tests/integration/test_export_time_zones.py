"""Exports in a time zone, end to end: the same export as CSV and XLSX in Asia/Tokyo opened and checked
cell by cell against PostgreSQL, the zone in the status, the account's default, date filters read in
the zone or given as moments, and every bad `timezone` answered 422 naming it."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import uuid
import zoneinfo
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import openpyxl
import pytest

from exporthub.accounts import account_by_slug, set_time_zone
from exporthub.catalog import Column, ColumnType, Resource, Tenant, load_catalog
from exporthub.exports.copy_csv import ZONE_SQL
from exporthub.exports.models import Filters
from exporthub.exports.query import build_export_query
from exporthub.exports.validation import parse_export_request
from tests.harness import exporthub_command as run_cli
from tests.integration.helpers import export_and_download, submit, wait_status

ROOT = Path(__file__).resolve().parents[2]
TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")
HR = load_catalog()


async def completed_records_since(pool: asyncpg.Pool, rows: int) -> tuple[dt.date, list[asyncpg.Record]]:
    """acme's completed compliance records due on or after a day chosen so that there are about `rows`."""
    acme = await account_by_slug(pool, "acme")
    assert acme is not None
    since = await pool.fetchval(
        "SELECT due_date FROM compliance WHERE account_id = $1 AND status = 'completed'"
        " ORDER BY due_date DESC OFFSET $2 LIMIT 1",
        acme.id,
        rows,
    )
    records = await pool.fetch(
        "SELECT r.id, e.employee_number, r.completed_at, r.due_date FROM compliance r"
        " JOIN employees e ON e.id = r.employee_id"
        " WHERE r.account_id = $1 AND r.status = 'completed' AND r.due_date >= $2 ORDER BY r.due_date, r.id",
        acme.id,
        since,
    )
    return since, records


async def test_csv_and_xlsx_of_one_export_in_tokyo_hold_its_local_times_cell_by_cell(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    since, records = await completed_records_since(pool, 300)
    body = {
        "resource": "compliance",
        "columns": ["recordId", "employeeNumber", "completedAt", "dueDate"],
        "filters": {"status": "completed", "dateFrom": since.isoformat()},
        "timezone": "Asia/Tokyo",
    }
    csv_status, csv_bytes = await export_and_download(api, body | {"format": "csv"})
    xlsx_status, xlsx_bytes = await export_and_download(api, body | {"format": "xlsx"})
    assert csv_status["timezone"] == xlsx_status["timezone"] == "Asia/Tokyo"
    assert csv_status["totalRows"] == xlsx_status["totalRows"] == len(records) > 250

    lines = list(csv.reader(io.StringIO(csv_bytes.decode("utf-8-sig"), newline="")))
    assert lines[0] == ["Record ID", "Employee No.", "Completed at", "Due date"]
    workbook = openpyxl.load_workbook(io.BytesIO(xlsx_bytes))
    sheet = workbook.active
    assert [c.value for c in sheet[1]] == ["Record ID", "Employee No.", "Completed at (Asia/Tokyo)", "Due date"]
    day_changed = 0
    for n, (record, line, cells) in enumerate(zip(records, lines[1:], sheet.iter_rows(min_row=2), strict=True)):
        local = record["completed_at"].astimezone(TOKYO)
        where = f"row {n + 1}"
        # CSV: ISO 8601 with Tokyo's offset, the same moment as PostgreSQL's.
        assert line == [str(record["id"]), record["employee_number"], local.isoformat(), record["due_date"].isoformat()]
        assert line[2].endswith("+09:00") and dt.datetime.fromisoformat(line[2]) == record["completed_at"], where
        # XLSX: a real datetime cell holding Tokyo's wall time (Excel keeps whole seconds).
        assert [c.value for c in cells] == [
            record["id"],
            record["employee_number"],
            local.replace(tzinfo=None, microsecond=0),
            dt.datetime.combine(record["due_date"], dt.time()),
        ], where
        assert cells[2].is_date and cells[2].number_format == "yyyy-mm-dd hh:mm:ss", where
        day_changed += local.date() != record["completed_at"].astimezone(dt.UTC).date()
    assert day_changed > 0  # some records were completed after 15:00 UTC: the next day in Tokyo

    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    first = [f"CSV  {' | '.join(line)}" for line in lines[:4]]
    first += [f"XLSX {' | '.join(str(c.value) for c in row)}" for row in sheet.iter_rows(max_row=4)]
    (artifacts / "tz-tokyo.txt").write_text(
        "One compliance export in Asia/Tokyo, the first rows of each file:\n" + "\n".join(first) + "\n"
    )


async def test_an_export_without_a_zone_is_in_utc_and_its_status_says_so(api: httpx.AsyncClient) -> None:
    created = await submit(api, {"format": "csv", "resource": "compliance", "columns": ["completedAt"]})
    status = await wait_status(api, created["exportId"])
    assert status["status"] == "completed" and status["timezone"] == "UTC"
    content = (await api.get(status["downloadUrl"])).content.decode("utf-8-sig")
    times = [line for line in content.splitlines()[1:] if line not in ("", '""')]  # "": not completed
    assert times and all(t.endswith("+00:00") for t in times)


async def test_the_account_default_zone_applies_to_exports_that_name_none(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    await set_time_zone(pool, "acme", "America/New_York")
    try:
        first = await submit(api, {"format": "xlsx", "resource": "timesheets", "columns": ["entryId", "approvedAt"]})
        given = await submit(api, {"format": "csv", "resource": "timesheets", "timezone": "UTC"})
        await set_time_zone(pool, "acme", "Europe/Berlin")  # later exports only: a recorded one keeps its zone
        done = await wait_status(api, first["exportId"])
    finally:
        await set_time_zone(pool, "acme", "UTC")
    assert done["status"] == "completed" and done["timezone"] == "America/New_York"
    assert (await api.get(f"/api/v1/exports/{given['exportId']}")).json()["timezone"] == "UTC"
    sheet = openpyxl.load_workbook(io.BytesIO((await api.get(done["downloadUrl"])).content)).active
    assert [c.value for c in sheet[1]] == ["Entry ID", "Approved at (America/New_York)"]
    acme = await account_by_slug(pool, "acme")
    approved = dict(await pool.fetch("SELECT id, approved_at FROM timesheets WHERE account_id = $1", acme.id))
    new_york = zoneinfo.ZoneInfo("America/New_York")
    checked = 0
    for entry_id, cell in sheet.iter_rows(min_row=2, max_row=2000, values_only=True):
        moment = approved[entry_id]
        assert cell == (moment.astimezone(new_york).replace(tzinfo=None, microsecond=0) if moment else None)
        checked += moment is not None
    assert checked > 100


@pytest.mark.parametrize(
    ("date_from", "same_as_day"),
    [
        ("2026-01-01T00:00:00Z", "2026-01-01"),  # a day's first moment: the day included
        ("2026-01-01T09:00:00+09:00", "2026-01-01"),  # the same moment, with an offset
        ("2026-01-01T00:00:00+09:00", "2026-01-01"),  # 2025-12-31 15:00 UTC: 31 December starts before it
        ("2026-01-01T00:00:01Z", "2026-01-02"),  # after 1 January's first moment: from the 2nd
        ("2026-01-01T23:59:59-05:00", "2026-01-03"),  # 2 January 04:59:59 UTC
    ],
)
async def test_date_from_as_a_moment_with_z_or_an_offset(
    api: httpx.AsyncClient, date_from: str, same_as_day: str
) -> None:
    async def total(filters: dict[str, str]) -> dict[str, Any]:
        body = {"format": "csv", "resource": "payroll", "columns": ["payrollId"], "filters": filters}
        return await wait_status(api, (await submit(api, body))["exportId"])

    moment = await total({"dateFrom": date_from, "dateTo": "2026-01-31"})
    day = await total({"dateFrom": same_as_day, "dateTo": "2026-01-31"})
    assert moment["status"] == day["status"] == "completed"
    assert moment["totalRows"] == day["totalRows"] > 0
    assert moment["filters"]["dateFrom"] == dt.datetime.fromisoformat(date_from).isoformat()  # kept as a moment


async def test_date_filters_on_a_timestamp_read_days_in_the_export_zone(db_conn: asyncpg.Connection) -> None:
    """A resource whose date filter is a timestamptz: a day starts at midnight in the export's zone;
    a moment compares as one, both ends included."""
    await db_conn.execute("CREATE TABLE events (id int PRIMARY KEY, tenant text, at timestamptz)")
    await db_conn.execute(
        "INSERT INTO events VALUES (1, 't', '2024-01-01 14:59:59+00'), (2, 't', '2024-01-01 15:00:00+00'),"
        " (3, 't', '2024-01-02 14:59:59+00'), (4, 't', '2024-01-02 15:00:00+00'), (5, 'other', '2024-01-02 00:00+00')"
    )
    resource = Resource(
        key="events",
        label="Events",
        from_sql="events r",
        tenant=Tenant("r.tenant"),
        order_by="r.id",
        columns=(Column("id", "Id", ColumnType.INTEGER, "r.id"), Column("at", "At", ColumnType.DATETIME, "r.at")),
        default_columns=("id", "at"),
        date_sql="r.at",
    )

    async def ids(filters: Filters, zone: str) -> list[int]:
        query = build_export_query(resource, ("id", "at"), filters, "t", time_zone=zone)
        async with db_conn.transaction():
            await db_conn.execute(ZONE_SQL, zone)
            rows = await db_conn.fetch(query.select_sql, *query.args)
            assert await db_conn.fetchval(query.count_sql, *query.args) == len(rows)
        return [r["id"] for r in rows]

    jan2 = dt.date(2024, 1, 2)
    assert await ids(Filters(date_from=jan2, date_to=jan2), "Asia/Tokyo") == [2, 3]  # 2 January in Tokyo
    assert await ids(Filters(date_from=jan2, date_to=jan2), "UTC") == [3, 4]
    moment = dt.datetime(2024, 1, 2, 0, 0, tzinfo=TOKYO)  # = 2024-01-01 15:00 UTC
    assert await ids(Filters(date_from=moment), "UTC") == [2, 3, 4]
    assert await ids(Filters(date_to=moment), "America/New_York") == [1, 2]
    # The rows themselves: wall times in the zone for the writers (naive), as they are in UTC.
    query = build_export_query(resource, ("id", "at"), Filters(), "t", time_zone="Asia/Tokyo")
    async with db_conn.transaction():
        await db_conn.execute(ZONE_SQL, "Asia/Tokyo")
        first = await db_conn.fetchrow(query.select_sql, *query.args)
    assert first["at"] == dt.datetime(2024, 1, 1, 23, 59, 59)


@pytest.mark.parametrize(
    ("zone", "message"),
    [
        (
            "Asia/Tokio",
            "unknown time zone 'Asia/Tokio': expected an IANA name such as Europe/Berlin; did you mean Asia/Tokyo?",
        ),
        ("utc+9", "unknown time zone 'utc+9': expected an IANA name such as Europe/Berlin"),
        ("", "must not be empty (leave the field out for the default)"),
        (9, "expected a string, got a number"),
        (["Asia/Tokyo"], "expected a string, got a list"),
        ({"zone": "Asia/Tokyo"}, "expected a string, got an object"),
        ("Z" * 60_000, "expected at most 64 characters"),
    ],
)
async def test_a_bad_timezone_is_a_422_naming_the_field(api: httpx.AsyncClient, zone: Any, message: str) -> None:
    response = await api.post("/api/v1/exports", json={"format": "csv", "resource": "payroll", "timezone": zone})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [(e["field"], e["message"]) for e in response.json()["errors"]] == [("timezone", message)]


async def test_a_bad_moment_is_a_422_naming_the_filter(api: httpx.AsyncClient) -> None:
    for value, words in [
        ("2024-01-01T00:00:00", "has no offset"),
        ("2024-01-01T25:00:00Z", "expected a date as YYYY-MM-DD or a date and time"),
        ("0001-01-01T00:00:00+01:00", "expected a date as YYYY-MM-DD or a date and time"),
    ]:
        body = {"format": "csv", "resource": "payroll", "filters": {"dateFrom": value}}
        response = await api.post("/api/v1/exports", json=body)
        assert response.status_code == 422, response.text
        [error] = response.json()["errors"]
        assert error["field"] == "filters.dateFrom" and words in error["message"]


async def test_openapi_documents_the_zone_of_the_request_and_the_status(api: httpx.AsyncClient) -> None:
    schema = (await api.get("/schema/openapi.json")).json()
    components = schema["components"]["schemas"]
    request = next(s for name, s in components.items() if name.endswith("ExportRequestIn"))
    assert "IANA" in request["properties"]["timezone"]["description"]
    status = next(s for name, s in components.items() if name.endswith("ExportOut"))
    assert status["properties"]["timezone"]["type"] == "string" and "timezone" in status["required"]


def test_an_operator_sets_an_account_default_zone(settings) -> None:
    slug = f"tz-{uuid.uuid4().hex[:8]}"
    assert run_cli(settings, "accounts", "create", "--slug", slug, "--name", "Zoned").returncode == 0
    wrong = run_cli(settings, "accounts", "set-timezone", "--slug", slug, "--zone", "Asia/Tokio")
    assert wrong.returncode == 1 and "Traceback" not in wrong.stderr
    assert "unknown time zone 'Asia/Tokio'" in wrong.stderr and "did you mean Asia/Tokyo?" in wrong.stderr
    unknown = run_cli(settings, "accounts", "set-timezone", "--slug", "no-such-account", "--zone", "UTC")
    assert unknown.returncode == 1 and "no-such-account" in unknown.stderr
    done = run_cli(settings, "accounts", "set-timezone", "--slug", slug, "--zone", "Asia/Tokyo")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"account {slug}: exports that name no time zone are in Asia/Tokyo"
    listed = json.loads(run_cli(settings, "accounts", "list", "--json").stdout)
    assert next(a for a in listed if a["slug"] == slug)["timeZone"] == "Asia/Tokyo"
    assert all(a["timeZone"] == "UTC" for a in listed if a["slug"] in {"acme", "globex"})


def test_a_request_fingerprint_keeps_the_zone_as_given() -> None:
    """An Idempotency-Key replay compares what was asked: no zone (the default, whatever it is by then)
    is not the same request as one naming a zone."""
    base = {"format": "csv", "resource": "payroll"}
    plain = parse_export_request(base, HR)
    assert dataclasses.replace(plain, time_zone=None).fingerprint() == plain.fingerprint()
    assert parse_export_request(base | {"timezone": "Asia/Tokyo"}, HR).fingerprint() != plain.fingerprint()
