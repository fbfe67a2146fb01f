from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid
from pathlib import Path

import pytest

from exporthub.catalog import ColumnType, load_catalog
from exporthub.errors import ExportFailed
from exporthub.exports.copy_csv import csv_cell_sql, csv_text_sql
from exporthub.exports.models import Filters
from exporthub.exports.query import build_export_query, departments_query

RESOURCES = load_catalog().resources  # the HR catalog shipped in the package

BACKEND = Path(__file__).resolve().parents[3] / "backend" / "exporthub"
assert (BACKEND / "exports" / "query.py").is_file(), BACKEND  # else the guards below would scan nothing


def test_every_query_is_scoped_to_the_account_first() -> None:
    account = str(uuid.uuid4())
    for resource in RESOURCES.values():
        q = build_export_query(resource, resource.default_columns, Filters(), account)
        assert q.args[0] == account
        # The key travels as text and is cast to the column's type, so the (account_id, ...) index serves.
        assert "WHERE (r.account_id) = $1::text::uuid" in q.select_sql
        assert "WHERE (r.account_id) = $1::text::uuid" in q.count_sql


def test_filters_become_parameters_never_literals() -> None:
    dept = uuid.uuid4()
    resource = RESOURCES["payroll"]
    filters = Filters(dt.date(2024, 1, 1), dt.date(2024, 6, 30), (str(dept),), "paid")
    q = build_export_query(resource, ("grossPay",), filters, str(uuid.uuid4()))
    assert q.args[1:] == (dt.date(2024, 1, 1), dt.date(2024, 6, 30), "paid", [str(dept)])
    assert "paid" not in q.select_sql and "2024" not in q.select_sql
    assert [c.key for c in q.columns] == ["grossPay"]


def test_no_other_module_queries_tenant_tables() -> None:
    """The HR tables are read only through the catalog and query.py (and written by the seeder)."""
    allowed = {"exports/query.py", "db/seed.py", "catalog/load.py"}  # load.py: its docstring's example
    pattern = re.compile(r"\b(FROM|JOIN)\s+(employees|payroll|timesheets|compliance)\b", re.IGNORECASE)
    offenders = [
        str(path.relative_to(BACKEND))
        for path in BACKEND.rglob("*.py")
        if str(path.relative_to(BACKEND)) not in allowed and pattern.search(path.read_text())
    ]
    assert offenders == []


def test_the_count_leaves_out_the_joins_unless_a_filter_reads_them() -> None:
    account, dept = str(uuid.uuid4()), str(uuid.uuid4())
    payroll = RESOURCES["payroll"]
    plain = build_export_query(payroll, ("employeeName",), Filters(dt.date(2024, 1, 1), None, (), "paid"), account)
    assert plain.count_sql.startswith("SELECT count(*) FROM payroll r WHERE") and "JOIN" not in plain.count_sql
    assert "JOIN employees e" in plain.select_sql
    by_department = build_export_query(payroll, ("grossPay",), Filters(None, None, (dept,), None), account)
    assert "JOIN employees e" in by_department.count_sql  # e.department_id
    employees = build_export_query(RESOURCES["employees"], ("email",), Filters(None, None, (), "active"), account)
    assert "JOIN" not in employees.count_sql


def test_only_query_py_turns_the_catalog_into_sql_over_source_data() -> None:
    """The one tenant filter: nothing but exports/query.py reads a resource's FROM or tenant expression
    to build a query (catalog/check.py runs them with LIMIT 0 to check their types, reading no row)."""
    allowed = {"exports/query.py", "catalog/check.py", "catalog/load.py", "catalog/model.py"}
    pattern = re.compile(r"\.(from_sql|count_from|tenant)\b")
    offenders = [
        str(path.relative_to(BACKEND))
        for path in BACKEND.rglob("*.py")
        if str(path.relative_to(BACKEND)) not in allowed and pattern.search(path.read_text())
    ]
    assert offenders == []


def test_every_catalog_query_starts_with_the_tenant_filter() -> None:
    catalog = load_catalog()
    key = "tenant-7"
    every_filter = Filters(dt.date(2024, 1, 1), dt.date(2024, 2, 1), ("d1",), "paid")
    for resource in catalog.resources.values():
        filters = dataclasses.replace(every_filter, status=resource.statuses[0])
        for csv_text in (False, True):
            q = build_export_query(resource, resource.default_columns, filters, key, csv_text=csv_text)
            condition = f"WHERE ({resource.tenant.sql}) = $1::text::{resource.tenant.type}"
            assert condition in q.select_sql and condition in q.count_sql
            assert q.args[0] == key
    assert catalog.departments is not None
    sql, args = departments_query(catalog.departments, key, ["d1"])
    assert "WHERE (d.account_id) = $1::text::uuid AND" in sql and args == [key, ["d1"]]


def test_columns_are_selected_in_the_requested_order_under_their_keys() -> None:
    payroll = RESOURCES["payroll"]
    q = build_export_query(payroll, ("netPay", "employeeName"), Filters(), "tenant")
    assert [c.key for c in q.columns] == ["netPay", "employeeName"]
    assert q.select_sql.index('AS "netPay"') < q.select_sql.index('AS "employeeName"')
    assert q.select_sql.endswith(f"ORDER BY {payroll.order_by}")
    assert q.args == ("tenant",)  # no filter, no argument but the tenant's


def test_csv_text_selects_each_cell_as_copy_must_write_it() -> None:
    payroll = RESOURCES["payroll"]
    columns = ("employeeName", "payDate", "payrollId", "hoursWorked", "grossPay", "processedAt")
    plain = build_export_query(payroll, columns, Filters(), "tenant")
    as_text = build_export_query(payroll, columns, Filters(), "tenant", csv_text=True)
    for key in columns:
        column = payroll.column(key)
        assert column is not None
        assert f'{csv_cell_sql(column.type, column.sql)} AS "{key}"' in as_text.select_sql
    assert as_text.count_sql == plain.count_sql and as_text.args == plain.args
    # Integers and numerics go out as PostgreSQL writes them; text, money and datetimes as text.
    assert ', (r.id) AS "payrollId"' in as_text.select_sql
    assert '(r.hours_worked) AS "hoursWorked"' in as_text.select_sql
    for key in ("employeeName", "grossPay", "processedAt"):
        column = payroll.column(key)
        assert column is not None
        assert csv_cell_sql(column.type, column.sql) == csv_text_sql(column.type, column.sql)


@pytest.mark.parametrize("column_type", list(ColumnType))
def test_an_only_column_is_always_selected_as_text(column_type: ColumnType) -> None:
    """COPY must write its NULL as "" (the reference's one empty cell): only text can be COALESCEd to ''."""
    sql = csv_cell_sql(column_type, "r.x", only_column=True)
    assert sql == csv_text_sql(column_type, "r.x", only_column=True)
    assert sql.startswith("COALESCE(") or column_type is ColumnType.TEXT


def test_a_date_range_includes_the_whole_last_day() -> None:
    q = build_export_query(
        RESOURCES["timesheets"], ("hours",), Filters(dt.date(2024, 1, 1), dt.date(2024, 1, 31)), "tenant"
    )
    date_sql = RESOURCES["timesheets"].date_sql
    assert f"({date_sql}) >= $2::date" in q.select_sql
    assert f"({date_sql}) < $3::date + 1" in q.select_sql


def test_a_column_the_catalog_dropped_since_submit_fails_the_export_by_name() -> None:
    with pytest.raises(ExportFailed, match=r"column\(s\) bonus, perks no longer exist in payroll"):
        build_export_query(RESOURCES["payroll"], ("grossPay", "perks", "bonus"), Filters(), "tenant")


@pytest.mark.parametrize(
    ("dropped", "filters", "name"),
    [
        ("date_sql", Filters(date_to=dt.date(2024, 1, 1)), "date"),
        ("status_sql", Filters(status="paid"), "status"),
        ("department_sql", Filters(department_ids=("d1",)), "department"),
    ],
)
def test_a_filter_the_catalog_dropped_since_submit_fails_the_export(dropped: str, filters: Filters, name: str) -> None:
    resource = dataclasses.replace(RESOURCES["payroll"], **{dropped: None})
    with pytest.raises(ExportFailed, match=f"payroll no longer has a {name} filter"):
        build_export_query(resource, ("grossPay",), filters, "tenant")
    build_export_query(resource, ("grossPay",), Filters(), "tenant")  # without that filter it still runs


def test_all_of_an_accounts_departments_or_only_the_named_ones() -> None:
    departments = load_catalog().departments
    assert departments is not None
    every_sql, every_args = departments_query(departments, "tenant")
    assert every_args == ["tenant"] and "ANY" not in every_sql
    assert every_sql.endswith(f"ORDER BY {departments.order_by}")
    some_sql, some_args = departments_query(departments, "tenant", ["d1", "d2"])
    assert some_args == ["tenant", ["d1", "d2"]] and "= ANY($2::text[])" in some_sql
