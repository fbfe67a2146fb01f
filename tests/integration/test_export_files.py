"""Every resource in CSV and XLSX, end to end over HTTP: the downloaded file is opened and each cell
compared with what PostgreSQL holds, filters and column selection included."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import re
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import openpyxl
import pytest

from exporthub.accounts import account_by_slug
from exporthub.catalog import ColumnType, load_catalog
from exporthub.exports import service
from exporthub.exports.pipeline import PipelineConfig, run_export
from exporthub.exports.validation import parse_export_request
from exporthub.storage import LocalStorage
from tests.integration.helpers import export_and_download

HR = load_catalog()  # the HR catalog shipped in the package

RESOURCES = load_catalog().resources  # the HR catalog shipped in the package

# The oracle: each resource's rows written out by hand, independent of the catalog's SQL.
EXPECTED_SQL = {
    "employees": (
        """SELECT r.employee_number AS "employeeNumber", r.first_name AS "firstName", r.last_name AS "lastName",
                  r.email, d.name AS department, d.code AS "departmentCode", r.job_title AS "jobTitle", r.country,
                  r.employment_type AS "employmentType", r.status, r.hire_date AS "hireDate",
                  r.termination_date AS "terminationDate", r.salary, r.fte, r.is_manager AS "isManager", r.notes,
                  r.updated_at AS "updatedAt", r.department_id AS _dept
           FROM employees r JOIN departments d ON d.id = r.department_id""",
        "r.hire_date",
    ),
    "payroll": (
        """SELECT r.id AS "payrollId", e.employee_number AS "employeeNumber",
                  concat(e.first_name, ' ', e.last_name) AS "employeeName", d.name AS department,
                  r.period_start AS "periodStart", r.period_end AS "periodEnd", r.pay_date AS "payDate",
                  r.hours_worked AS "hoursWorked", r.gross_pay AS "grossPay", r.tax, r.deductions,
                  r.net_pay AS "netPay", r.currency, r.status, r.memo, r.processed_at AS "processedAt",
                  e.department_id AS _dept
           FROM payroll r JOIN employees e ON e.id = r.employee_id JOIN departments d ON d.id = e.department_id""",
        "r.pay_date",
    ),
    "timesheets": (
        """SELECT r.id AS "entryId", e.employee_number AS "employeeNumber",
                  concat(e.first_name, ' ', e.last_name) AS "employeeName", d.name AS department,
                  r.work_date AS "workDate", r.project, r.hours, r.overtime_hours AS "overtimeHours", r.billable,
                  r.status, r.approved_at AS "approvedAt", r.notes, e.department_id AS _dept
           FROM timesheets r JOIN employees e ON e.id = r.employee_id JOIN departments d ON d.id = e.department_id""",
        "r.work_date",
    ),
    "compliance": (
        """SELECT r.id AS "recordId", e.employee_number AS "employeeNumber",
                  concat(e.first_name, ' ', e.last_name) AS "employeeName", d.name AS department,
                  r.record_type AS "recordType", r.title, r.status, r.due_date AS "dueDate",
                  r.completed_at AS "completedAt", r.expires_on AS "expiresOn", r.notes,
                  e.department_id AS _dept
           FROM compliance r JOIN employees e ON e.id = r.employee_id JOIN departments d ON d.id = e.department_id""",
        "r.due_date",
    ),
}

# README: tab or CR first, or =+-@ or their full-width forms after leading white space.
FORMULA_LIKE = re.compile("[\t\r]|[ \u00a0\u3000\n\r\t]*[-=+@\uff1d\uff0b\uff0d\uff20]")
XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


async def expected_rows(pool: asyncpg.Pool, resource: str, filters: dict[str, Any]) -> list[asyncpg.Record]:
    sql, order = EXPECTED_SQL[resource]
    date_sql = order
    account = await account_by_slug(pool, "acme")
    where, args = ["r.account_id = $1"], [account.id]
    if "dateFrom" in filters:
        args.append(dt.date.fromisoformat(filters["dateFrom"]))
        where.append(f"{date_sql} >= ${len(args)}")
    if "dateTo" in filters:
        args.append(dt.date.fromisoformat(filters["dateTo"]))
        where.append(f"{date_sql} <= ${len(args)}")
    if "status" in filters:
        args.append(filters["status"])
        where.append(f"r.status = ${len(args)}")
    rows = await pool.fetch(f"{sql} WHERE {' AND '.join(where)} ORDER BY {order}, r.id", *args)
    if "departmentIds" in filters:
        wanted = {uuid.UUID(d) for d in filters["departmentIds"]}
        rows = [r for r in rows if r["_dept"] in wanted]
    return rows


def csv_text(value: Any, kind: ColumnType) -> str:
    if value is None:
        return ""
    if kind is ColumnType.BOOLEAN:
        return "true" if value else "false"
    if kind is ColumnType.MONEY:
        return f"{value:.2f}"
    if kind is ColumnType.DECIMAL:
        return format(value, "f")
    if kind is ColumnType.DATETIME:
        return value.astimezone(dt.UTC).isoformat()
    if kind in (ColumnType.DATE, ColumnType.INTEGER):
        return str(value)
    return "'" + value if FORMULA_LIKE.match(value) else value


def assert_xlsx_cell(cell: Any, value: Any, kind: ColumnType, where: str) -> None:
    if value is None:
        assert cell.value is None, where
    elif kind is ColumnType.TEXT:
        assert cell.data_type == "s", where  # never a formula, whatever the text starts with
        assert cell.value == XML_ILLEGAL.sub("", value), where
    elif kind is ColumnType.INTEGER:
        assert cell.value == value and cell.data_type == "n", where
    elif kind in (ColumnType.MONEY, ColumnType.DECIMAL):
        assert cell.data_type == "n", where
        assert decimal.Decimal(str(cell.value)) == value, where
        if kind is ColumnType.MONEY:
            assert cell.number_format == "#,##0.00", where
    elif kind is ColumnType.DATE:
        assert cell.value == dt.datetime.combine(value, dt.time()), where
        assert cell.is_date and "yy" in cell.number_format, where
    elif kind is ColumnType.DATETIME:
        # Excel has no time zone and shows whole seconds: UTC, fractions dropped.
        naive = value.astimezone(dt.UTC).replace(tzinfo=None, microsecond=0)
        assert cell.is_date, where
        assert cell.value == naive, where
    elif kind is ColumnType.BOOLEAN:
        assert cell.value is value and cell.data_type == "b", where


CASES = [
    ("employees", None, {}),  # every column
    ("payroll", None, {"dateFrom": "2026-01-01", "dateTo": "2026-02-28"}),
    ("payroll", None, {"dateFrom": "2026-03-01", "dateTo": "2026-05-31", "status": "paid"}),
    (
        "timesheets",
        ["workDate", "employeeName", "hours", "billable", "approvedAt", "notes"],
        {"departments": 2},
    ),
    ("compliance", "defaults", {}),
]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize(("resource", "columns", "filters"), CASES)
async def test_export_matches_the_database_cell_for_cell(
    api: httpx.AsyncClient, pool: asyncpg.Pool, fmt: str, resource: str, columns: Any, filters: dict
) -> None:
    spec = RESOURCES[resource]
    if columns is None:
        columns = [c.key for c in spec.columns]
    elif columns == "defaults":
        columns = list(spec.default_columns)
    filters = dict(filters)
    if n := filters.pop("departments", 0):
        acme = await account_by_slug(pool, "acme")
        ids = await pool.fetch("SELECT id FROM departments WHERE account_id = $1 ORDER BY code LIMIT $2", acme.id, n)
        filters["departmentIds"] = [str(r["id"]) for r in ids]
    body: dict[str, Any] = {"format": fmt, "resource": resource, "columns": columns}
    if filters:
        body["filters"] = filters
    status, content = await export_and_download(api, body)
    rows = await expected_rows(pool, resource, filters)
    assert 100 < len(rows) == status["totalRows"] == status["processedRows"]
    kinds = [spec.column(k).type for k in columns]
    labels = [spec.column(k).label for k in columns]
    checked_formulas = 0
    if fmt == "csv":
        assert content.startswith(b"\xef\xbb\xbf")
        lines = list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))
        assert lines[0] == labels
        assert len(lines) == len(rows) + 1
        for i, (line, row) in enumerate(zip(lines[1:], rows, strict=True)):
            expected = [csv_text(row[k], kind) for k, kind in zip(columns, kinds, strict=True)]
            assert line == expected, f"row {i + 1}"
            checked_formulas += sum(1 for v in expected if v.startswith("'"))
    else:
        path = Path(f"/tmp/{uuid.uuid4()}.xlsx")
        path.write_bytes(content)
        workbook = openpyxl.load_workbook(path)
        path.unlink()
        sheet = workbook.active
        # Every export has a zone (the account's default, UTC, here): datetime headers name it.
        assert [c.value for c in sheet[1]] == [
            f"{label} (UTC)" if kind is ColumnType.DATETIME else label
            for label, kind in zip(labels, kinds, strict=True)
        ]
        assert all(c.font.b for c in sheet[1])
        assert sheet.freeze_panes == "A2"
        assert sheet.auto_filter.ref == f"A1:{openpyxl.utils.get_column_letter(len(columns))}{len(rows) + 1}"
        assert sheet.max_row == len(rows) + 1
        for i, (row, cells) in enumerate(zip(rows, sheet.iter_rows(min_row=2), strict=True)):
            for cell, key, kind in zip(cells, columns, kinds, strict=True):
                assert_xlsx_cell(cell, row[key], kind, f"row {i + 1} {key}")
                v = row[key]
                checked_formulas += isinstance(v, str) and bool(FORMULA_LIKE.match(v))
        widths = [sheet.column_dimensions[openpyxl.utils.get_column_letter(i + 1)].width for i in range(len(columns))]
        assert widths == pytest.approx([spec.column(k).width for k in columns], abs=1)
    if "notes" in columns or "memo" in columns:
        assert checked_formulas > 0, "the seeded formula-like values should be among these rows"


async def test_csv_without_bom(api: httpx.AsyncClient) -> None:
    _, content = await export_and_download(
        api, {"format": "csv", "resource": "compliance", "columns": ["recordId", "notes"], "csvBom": False}
    )
    assert content.startswith(b"Record ID,Notes\r\n")


async def test_download_has_a_clear_name_type_and_length(api: httpx.AsyncClient) -> None:
    status, _ = await export_and_download(api, {"format": "xlsx", "resource": "compliance"})
    response = await api.get(status["downloadUrl"])
    assert re.fullmatch(r'attachment; filename="compliance-\d{8}-\d{6}\.xlsx"', response.headers["content-disposition"])
    assert response.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert int(response.headers["content-length"]) == status["fileSize"] == len(response.content)


async def test_tampered_and_expired_links_are_refused(api: httpx.AsyncClient, pool: asyncpg.Pool, hub) -> None:
    status, _ = await export_and_download(api, {"format": "csv", "resource": "compliance"})
    url = status["downloadUrl"]
    tampered = re.sub(r"signature=([0-9a-f])", lambda m: "signature=" + ("1" if m[1] != "1" else "2"), url)
    assert (await api.get(tampered)).status_code == 403
    other_id = url.replace(status["id"], str(uuid.uuid4()))
    assert (await api.get(other_id)).status_code == 403
    longer = re.sub(r"expires=(\d+)", lambda m: f"expires={int(m[1]) + 86400}", url)
    assert (await api.get(longer)).status_code == 403
    # a genuine link whose time has passed
    from exporthub.exports.links import sign_download_link

    past = sign_download_link(
        hub.base_url,
        hub.settings.secret_keys,
        uuid.UUID(status["id"]),
        dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5),
    )
    expired = await api.get(past)
    assert expired.status_code == 410
    assert "expired" in expired.json()["detail"]
    await pool.execute("UPDATE export_jobs SET status = 'expired' WHERE id = $1", uuid.UUID(status["id"]))
    assert (await api.get(url)).status_code == 410
    assert (await api.get(f"/api/v1/exports/{status['id']}")).json()["downloadUrl"] is None


async def test_xlsx_continues_on_a_second_sheet_past_the_row_limit(
    pool: asyncpg.Pool, clean_jobs, tmp_path: Path
) -> None:
    acme = await account_by_slug(pool, "acme")
    request = parse_export_request(
        {"format": "xlsx", "resource": "employees", "columns": ["employeeNumber", "salary"]}, HR
    )
    submitted = await service.submit_export(
        pool, pool, HR, acme, request, idempotency_key=None, max_active=100, idempotency_ttl_seconds=60
    )
    job = submitted.job
    config = PipelineConfig(
        batch_size=700, lease_seconds=10, link_ttl_seconds=60, max_rows_per_sheet=1_000, max_attempts=1
    )

    async def publish(_: Any) -> None:
        return None

    await run_export(
        job.id, pool=pool, source=pool, catalog=HR, storage=LocalStorage(tmp_path), publish=publish, config=config
    )
    expected = await expected_rows(pool, "employees", {})
    [path] = list(tmp_path.rglob("*.xlsx"))
    workbook = openpyxl.load_workbook(path)
    sizes = [ws.max_row - 1 for ws in workbook.worksheets]
    assert sizes == [1000] * (len(expected) // 1000) + ([len(expected) % 1000] if len(expected) % 1000 else [])
    numbers = []
    for ws in workbook.worksheets:
        assert [c.value for c in ws[1]] == ["Employee No.", "Salary"]
        assert ws.freeze_panes == "A2"
        numbers += [row[0] for row in ws.iter_rows(min_row=2, values_only=True)]
    assert numbers == [r["employeeNumber"] for r in expected]


async def test_pdf_report_reads_well(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    from pypdf import PdfReader

    body = {"format": "pdf", "resource": "compliance", "filters": {"status": "completed"}}
    status, content = await export_and_download(api, body)
    assert content.startswith(b"%PDF")
    rows = await expected_rows(pool, "compliance", body["filters"])
    reader = PdfReader(io.BytesIO(content))
    pages = [" ".join(page.extract_text().split()) for page in reader.pages]
    assert len(pages) > 1
    for number, text in enumerate(pages, start=1):
        assert "Employee No." in text and "Due date" in text  # the header on every page
        assert f"Page {number} of {len(pages)}" in text
    everything = "\n".join(pages)
    assert "Acme Corporation" in pages[0] and "Status: completed" in pages[0]
    for row in (rows[0], rows[len(rows) // 2], rows[-1]):
        assert row["employeeNumber"] in everything
    assert status["totalRows"] == len(rows)


async def test_pdf_over_the_cap_is_refused_with_a_suggestion(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    response = await api.post("/api/v1/exports", json={"format": "pdf", "resource": "payroll"})
    assert response.status_code == 422
    [problem] = response.json()["errors"]
    assert problem["field"] == "format"
    assert "200,000" in problem["message"] and "csv or xlsx" in problem["message"]
    assert await pool.fetchval("SELECT count(*) FROM export_jobs") == 0
