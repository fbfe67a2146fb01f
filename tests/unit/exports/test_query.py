from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid
from pathlib import Path

from exporthub.catalog import load_catalog
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
