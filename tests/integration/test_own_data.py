"""ExportHub over an organisation's own database: a schema unlike the demo's (tests/own_data), described
by a catalog file, read from a source database apart from ExportHub's own, with accounts and keys made
by the admin CLI. Every resource exports in every format, cell for cell against SQL written here."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import re
import socket
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import openpyxl
import pypdf
import pytest

from exporthub.accounts import account_by_slug
from exporthub.catalog import Catalog, Column, ColumnType, load_catalog
from exporthub.catalog.check import check_catalog
from exporthub.exports import service
from exporthub.exports.models import ExportJob, ExportStatus
from exporthub.exports.pipeline import PipelineConfig, run_export
from exporthub.exports.validation import parse_export_request
from exporthub.storage import LocalStorage
from tests.harness import exporthub_command as cli
from tests.integration.helpers import export_and_download, submit, wait_status
from tests.own_data import CATALOG, OwnHub

T = ColumnType
# README: tab or CR first, or =+-@ or their full-width forms after leading white space.
FORMULA_LIKE = re.compile("[\t\r]|[ \u00a0\u3000\n\r\t]*[-=+@\uff1d\uff0b\uff0d\uff20]")
# The rows each resource must export for a company, as plain SQL over the source schema (the oracle:
# written independently of the catalog's expressions), with the type of each column.
ORACLE: dict[str, tuple[str, tuple[ColumnType, ...]]] = {
    "people": (
        "SELECT s.staff_no, s.full_name, t.team_name, s.active, s.started_on, s.weekly_hours, s.salary_eur,"
        " s.updated_at FROM staff s JOIN teams t ON (t.company, t.team_code) = (s.company, s.team_code)"
        " WHERE s.company = $1 ORDER BY s.staff_no",
        (T.INTEGER, T.TEXT, T.TEXT, T.BOOLEAN, T.DATE, T.INTEGER, T.MONEY, T.DATETIME),
    ),
    "shifts": (
        "SELECT x.shift_id, s.full_name, x.work_day, x.hours, x.state, x.note FROM shifts x"
        " JOIN staff s ON s.staff_no = x.staff_no WHERE x.company = $1 ORDER BY x.work_day, x.shift_id",
        (T.INTEGER, T.TEXT, T.DATE, T.DECIMAL, T.TEXT, T.TEXT),
    ),
    "headcount": (
        "SELECT t.team_name, count(s.staff_no), round(coalesce(avg(s.salary_eur), 0), 2),"
        " coalesce(bool_or(s.active), false) FROM teams t"
        " LEFT JOIN staff s ON (s.company, s.team_code) = (t.company, t.team_code)"
        " WHERE t.company = $1 GROUP BY t.team_code, t.team_name ORDER BY t.team_code",
        (T.TEXT, T.INTEGER, T.MONEY, T.BOOLEAN),
    ),
}
LABELS = {
    "people": ["Staff no.", "Name", "Team", "Active", "Start date", "Hours a week", "Salary (EUR)", "Updated"],
    "shifts": ["Shift", "Name", "Work day", "Hours", "State", "Note"],
    "headcount": ["Team", "Headcount", "Average salary", "Anyone active"],
}


def csv_text(value: Any, column_type: ColumnType) -> str:
    """The cell as the CSV promises it (README: booleans true/false, money with 2 decimals, ISO dates
    and UTC datetimes, formula-like text prefixed with ')."""
    if value is None:
        return ""
    if column_type is T.BOOLEAN:
        return "true" if value else "false"
    if column_type is T.MONEY:
        return f"{value:.2f}"
    if column_type is T.DECIMAL:
        return format(value, "f")
    if column_type is T.DATETIME:
        return value.astimezone(dt.UTC).isoformat()
    if column_type in (T.DATE, T.INTEGER):
        return str(value.isoformat() if column_type is T.DATE else value)
    return "'" + value if FORMULA_LIKE.match(value) else value


def xlsx_value(value: Any, column_type: ColumnType) -> Any:
    """The cell as openpyxl reads it back: typed, dates as datetimes, amounts as numbers."""
    if value is None:
        return None
    if column_type is T.DATE:
        return dt.datetime.combine(value, dt.time())
    if column_type is T.DATETIME:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    if column_type in (T.MONEY, T.DECIMAL):
        return pytest.approx(float(value))
    return value


async def oracle(own_hub: OwnHub, resource: str, tenant: str) -> tuple[list[asyncpg.Record], tuple[ColumnType, ...]]:
    sql, types = ORACLE[resource]
    conn = await asyncpg.connect(own_hub.source_url)
    try:
        return await conn.fetch(sql, tenant), types
    finally:
        await conn.close()


def client(own_hub: OwnHub, account: str) -> httpx.AsyncClient:
    key = own_hub.keys[account]
    return httpx.AsyncClient(base_url=own_hub.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


async def test_the_api_offers_the_catalogs_resources_and_their_own_filters(own_hub: OwnHub) -> None:
    async with client(own_hub, "northwind") as api:
        listed = (await api.get("/api/v1/resources")).json()["items"]
    by_key = {r["key"]: r for r in listed}
    assert list(by_key) == ["people", "shifts", "headcount"]
    assert by_key["people"]["filters"] == ["dateFrom", "dateTo", "departmentIds", "status"]
    assert by_key["people"]["dateLabel"] == "Start date" and by_key["people"]["dateFilter"] == "startedOn"
    assert by_key["shifts"]["filters"] == ["dateFrom", "dateTo", "status"]
    assert by_key["headcount"]["filters"] == [] and by_key["headcount"]["statuses"] == []
    assert [c["label"] for c in by_key["headcount"]["columns"]] == LABELS["headcount"]


async def test_a_filter_the_resource_does_not_have_is_refused_by_name(own_hub: OwnHub) -> None:
    async with client(own_hub, "northwind") as api:
        response = await api.post(
            "/api/v1/exports",
            json={
                "format": "csv",
                "resource": "headcount",
                "filters": {"dateFrom": "2024-01-01", "status": "active", "departmentIds": ["OPS"]},
            },
        )
        shifts = await api.post(
            "/api/v1/exports", json={"format": "csv", "resource": "shifts", "filters": {"departmentIds": ["OPS"]}}
        )
    assert response.status_code == 422, response.text
    errors = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert set(errors) == {"filters.dateFrom", "filters.status", "filters.departmentIds"}
    assert errors["filters.status"] == "headcount has no such filter; it offers none"
    assert shifts.status_code == 422
    assert shifts.json()["errors"] == [
        {
            "field": "filters.departmentIds",
            "message": "shifts has no such filter; it offers: dateFrom, dateTo, status",
        }
    ]


@pytest.mark.parametrize("resource", ["people", "shifts", "headcount"])
@pytest.mark.parametrize("fmt", ["csv", "xlsx", "pdf"])
async def test_every_resource_exports_in_every_format(own_hub: OwnHub, resource: str, fmt: str) -> None:
    catalog = load_catalog(CATALOG)
    columns = [c.key for c in catalog.resources[resource].columns]
    async with client(own_hub, "northwind") as api:
        status, content = await export_and_download(api, {"format": fmt, "resource": resource, "columns": columns})
    rows, types = await oracle(own_hub, resource, "nw-001")
    others, _ = await oracle(own_hub, resource, "cw-002")
    assert rows and others
    assert status["totalRows"] == status["processedRows"] == len(rows)
    if fmt == "csv":
        table = list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))
        assert table[0] == LABELS[resource]
        assert table[1:] == [[csv_text(v, t) for v, t in zip(row, types, strict=True)] for row in rows]
    elif fmt == "xlsx":
        sheet = openpyxl.load_workbook(io.BytesIO(content)).worksheets[0]
        cells = [[c.value for c in line] for line in sheet.iter_rows()]
        # A datetime column's header names the zone its wall times are in.
        zoned = {"Updated": "Updated (UTC)"}
        assert cells[0] == [zoned.get(label, label) for label in LABELS[resource]]
        assert sheet.freeze_panes == "A2"
        assert cells[1:] == [[xlsx_value(v, t) for v, t in zip(row, types, strict=True)] for row in rows]
    else:
        text = "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(content)).pages)
        assert "Northwind Staffing" in text and catalog.resources[resource].label in text
        for label in LABELS[resource]:
            assert label in text
        names = {row[1] if resource != "headcount" else row[0] for row in rows}
        theirs = {row[1] if resource != "headcount" else row[0] for row in others} - names
        assert {n for n in names if n.startswith("Person")} <= set(_words(text))
        assert theirs and not (theirs & set(_words(text)))  # Contoso's people and teams stay out


def _words(text: str) -> list[str]:
    """Candidate cells of the PDF's text: 'Person N' names and the team names."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        out += [f"Person {parts[i + 1]}" for i, w in enumerate(parts[:-1]) if w == "Person"]
        out += [t for t in ("Operations", "Kitchen", "Front of house", "Delivery", "Nobody yet") if t in line]
    return out


async def test_filters_run_in_the_source_database_for_the_accounts_tenant_only(own_hub: OwnHub) -> None:
    body = {
        "format": "csv",
        "resource": "people",
        "columns": ["staffNo"],
        "filters": {
            "departmentIds": ["KIT", "OPS"],
            "status": "active",
            "dateFrom": "2020-06-01",
            "dateTo": "2021-06-30",
        },
    }
    async with client(own_hub, "northwind") as api:
        _, content = await export_and_download(api, body)
        foreign = await api.post(
            "/api/v1/exports", json={**body, "filters": {"departmentIds": ["DEL"]}}
        )  # a Contoso team
    conn = await asyncpg.connect(own_hub.source_url)
    try:
        expected = await conn.fetch(
            "SELECT staff_no FROM staff WHERE company = 'nw-001' AND team_code IN ('KIT', 'OPS') AND active"
            " AND started_on BETWEEN '2020-06-01' AND '2021-06-30' ORDER BY staff_no"
        )
    finally:
        await conn.close()
    table = list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))
    assert table[1:] == [[str(r["staff_no"])] for r in expected] and len(expected) >= 3
    assert foreign.status_code == 422
    assert foreign.json()["errors"] == [
        {"field": "filters.departmentIds[0]", "message": "no department DEL in this account"}
    ]


async def test_each_account_sees_its_own_tenant(own_hub: OwnHub) -> None:
    async with client(own_hub, "contoso") as api:
        _, content = await export_and_download(api, {"format": "csv", "resource": "people", "columns": ["staffNo"]})
        created = await submit(api, {"format": "csv", "resource": "headcount"})
        done = await wait_status(api, created["exportId"])
    async with client(own_hub, "northwind") as api:
        assert (await api.get(f"/api/v1/exports/{created['exportId']}")).status_code == 404
    table = list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))
    assert table[1:] == [[str(n)] for n in range(41, 56)]
    assert done["totalRows"] == 3  # OPS, DEL and the empty team


# --- checked before use --------------------------------------------------------------------------------


def _broken(tmp_path: Path, *replacements: tuple[str, str]) -> Path:
    text = CATALOG.read_text()
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "catalog.toml"
    path.write_text(text)
    return path


def test_catalog_check_names_each_mistake_then_passes(own_hub: OwnHub, tmp_path: Path) -> None:
    duplicate = _broken(
        tmp_path,
        (
            '{ key = "team", label = "Team", type = "text", sql = "t.team_name"',
            '{ key = "name", label = "Team", sql = "t.team_name", type = "text"',
        ),
    )
    first = cli(own_hub.settings, "catalog", "check", EXPORTHUB_CATALOG=str(duplicate))
    assert first.returncode == 2, first
    assert f"{duplicate}: people.columns.name: a second column with this key" in first.stderr.splitlines()
    assert "Traceback" not in first.stderr

    wrong = _broken(
        tmp_path,
        ('type = "money", sql = "s.salary_eur"', 'type = "integer", sql = "s.salary_eur"'),
        ('sql = "s.weekly_hours"', 'sql = "s.weekly_hourz"'),
        ('tenant = "x.company"', 'tenant = "x.compny"'),
        ('type = "date", sql = "x.work_day"', 'type = "datetime", sql = "x.work_day"'),
    )
    second = cli(own_hub.settings, "catalog", "check", EXPORTHUB_CATALOG=str(wrong))
    assert second.returncode == 2
    assert second.stderr.splitlines() == [
        f"{wrong}: people.columns.weeklyHours: column s.weekly_hourz does not exist",
        f"{wrong}: people.columns.salary: declared integer, the database says numeric",
        f"{wrong}: shifts.columns.workDay: declared datetime, the database says date",
        f"{wrong}: shifts.tenant: column x.compny does not exist",
    ]

    fine = cli(own_hub.settings, "catalog", "check")
    assert fine.returncode == 0, fine.stderr
    assert (
        fine.stdout.strip()
        == f"catalog {CATALOG}: 3 resource(s), 18 column(s), checked against the source database: OK"
    )


def test_a_catalog_that_is_not_toml_or_names_the_wrong_type_of_tenant(own_hub: OwnHub, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.toml"
    garbage.write_text("[[resources]\nkey = ")
    result = cli(own_hub.settings, "catalog", "check", EXPORTHUB_CATALOG=str(garbage))
    assert result.returncode == 2 and result.stderr.startswith(f"{garbage}: not valid TOML:")
    missing = cli(own_hub.settings, "catalog", "check", EXPORTHUB_CATALOG=str(tmp_path / "nowhere.toml"))
    assert missing.returncode == 2 and "cannot read the file" in missing.stderr
    typed = _broken(tmp_path, ('tenant = "v.company"', 'tenant = "v.company"\ntenant_type = "integer"'))
    result = cli(own_hub.settings, "catalog", "check", EXPORTHUB_CATALOG=str(typed))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"{typed}: headcount.tenant: declared integer (tenant_type), the database says text"
    ]


def test_serve_and_worker_refuse_an_invalid_catalog_with_exit_code_2(own_hub: OwnHub, tmp_path: Path) -> None:
    wrong = _broken(tmp_path, ('type = "money", sql = "s.salary_eur"', 'type = "integer", sql = "s.salary_eur"'))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    for command in ("serve", "worker"):
        result = cli(own_hub.settings, command, EXPORTHUB_CATALOG=str(wrong), EXPORTHUB_PORT=port)
        assert result.returncode == 2, (command, result.stderr[-2000:])
        assert f"{wrong}: people.columns.salary: declared integer, the database says numeric" in result.stderr
        assert "Traceback" not in result.stderr


# --- the source database is only read ------------------------------------------------------------------


async def _run_with_column(own_hub: OwnHub, tmp_path: Path, column: Column, fmt: str, timeout_ms: int) -> ExportJob:
    """Submit and run (in this process) a people export with one extra catalog column."""
    base = load_catalog(CATALOG)
    people = base.resources["people"]
    catalog: Catalog = dataclasses.replace(
        base, resources={"people": dataclasses.replace(people, columns=(*people.columns, column))}
    )
    pool = await asyncpg.create_pool(own_hub.settings.db.url, min_size=1, max_size=3)
    source = await asyncpg.create_pool(own_hub.source_url, min_size=1, max_size=3)
    try:
        conn = await source.acquire()
        try:
            await check_catalog(conn, catalog)  # LIMIT 0 evaluates no row: the check cannot see it
        finally:
            await source.release(conn)
        account = await account_by_slug(pool, "northwind")
        assert account is not None
        request = parse_export_request(
            {"format": fmt, "resource": "people", "columns": ["staffNo", column.key]}, catalog
        )
        submitted = await service.submit_export(
            pool, source, catalog, account, request, idempotency_key=None, max_active=100, idempotency_ttl_seconds=60
        )
        job = submitted.job
        config = PipelineConfig(
            batch_size=500,
            lease_seconds=10,
            link_ttl_seconds=60,
            max_rows_per_sheet=1_048_575,
            max_attempts=2,
            statement_timeout_ms=timeout_ms,
            retry_backoff_seconds=(0.1,),
        )

        async def publish(event: ExportJob) -> None:
            pass

        storage = LocalStorage(tmp_path / "files")
        status = await run_export(
            job.id, pool=pool, source=source, catalog=catalog, storage=storage, publish=publish, config=config
        )
        assert status is ExportStatus.FAILED
        row = await pool.fetchrow("SELECT * FROM export_jobs WHERE id = $1", job.id)
        assert row["file_key"] is None and row["attempts"] == 1  # not retried: it would fail the same way
        assert [p for p in (tmp_path / "files").rglob("*") if p.is_file()] == []  # no file, not even a partial one
        return ExportJob.from_record(row)
    finally:
        await pool.close()
        await source.close()


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
async def test_a_catalog_expression_that_writes_fails_cleanly(own_hub: OwnHub, tmp_path: Path, fmt: str) -> None:
    conn = await asyncpg.connect(own_hub.source_url)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS touched (at timestamptz);"
            " CREATE OR REPLACE FUNCTION touch() RETURNS integer LANGUAGE sql VOLATILE"
            " AS $$ INSERT INTO touched VALUES (now()) RETURNING 1 $$"
        )
        job = await _run_with_column(own_hub, tmp_path, Column("touched", "Touched", T.INTEGER, "touch()"), fmt, 60_000)
        assert job.error_message is not None
        assert job.error_message.startswith("the source database refused the export's query: ")
        assert "read-only transaction" in job.error_message
        assert await conn.fetchval("SELECT count(*) FROM touched") == 0
    finally:
        await conn.close()


async def test_a_query_past_the_source_statement_timeout_fails_with_a_clear_message(
    own_hub: OwnHub, tmp_path: Path
) -> None:
    slow = Column("slow", "Slow", T.TEXT, "concat(s.full_name, pg_sleep(0.2))")  # 0.2 s a row, 8 s in all
    job = await _run_with_column(own_hub, tmp_path, slow, "csv", 1_000)
    assert job.error_message is not None
    assert "did not answer within 1 s (EXPORTHUB_SOURCE_STATEMENT_TIMEOUT)" in job.error_message
