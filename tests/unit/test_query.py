from __future__ import annotations

import datetime as dt
import re
import uuid
from pathlib import Path

from exporthub.exports.catalog import RESOURCES
from exporthub.exports.models import Filters
from exporthub.exports.query import build_export_query

BACKEND = Path(__file__).resolve().parents[2] / "backend" / "exporthub"


def test_every_query_is_scoped_to_the_account_first() -> None:
    account = uuid.uuid4()
    for resource in RESOURCES.values():
        q = build_export_query(resource, resource.default_columns, Filters(), account)
        assert q.args[0] == account
        assert "WHERE r.account_id = $1" in q.select_sql
        assert "WHERE r.account_id = $1" in q.count_sql


def test_filters_become_parameters_never_literals() -> None:
    dept = uuid.uuid4()
    resource = RESOURCES["payroll"]
    filters = Filters(dt.date(2024, 1, 1), dt.date(2024, 6, 30), (dept,), "paid")
    q = build_export_query(resource, ("grossPay",), filters, uuid.uuid4())
    assert q.args[1:] == (dt.date(2024, 1, 1), dt.date(2024, 6, 30), [dept], "paid")
    assert "paid" not in q.select_sql and "2024" not in q.select_sql
    assert [c.key for c in q.columns] == ["grossPay"]


def test_no_other_module_queries_tenant_tables() -> None:
    """The HR tables are read only through query.py (and written by the seeder)."""
    allowed = {"exports/query.py", "exports/catalog.py", "db/seed.py"}
    pattern = re.compile(r"\b(FROM|JOIN)\s+(employees|payroll|timesheets|compliance)\b", re.IGNORECASE)
    offenders = [
        str(path.relative_to(BACKEND))
        for path in BACKEND.rglob("*.py")
        if str(path.relative_to(BACKEND)) not in allowed and pattern.search(path.read_text())
    ]
    assert offenders == []


def test_the_count_leaves_out_the_joins_unless_a_filter_reads_them() -> None:
    account, dept = uuid.uuid4(), uuid.uuid4()
    payroll = RESOURCES["payroll"]
    plain = build_export_query(payroll, ("employeeName",), Filters(dt.date(2024, 1, 1), None, (), "paid"), account)
    assert plain.count_sql.startswith("SELECT count(*) FROM payroll r WHERE") and "JOIN" not in plain.count_sql
    assert "JOIN employees e" in plain.select_sql
    by_department = build_export_query(payroll, ("grossPay",), Filters(None, None, (dept,), None), account)
    assert "JOIN employees e" in by_department.count_sql  # e.department_id
    employees = build_export_query(RESOURCES["employees"], ("email",), Filters(None, None, (dept,), None), account)
    assert "JOIN" not in employees.count_sql  # r.department_id
