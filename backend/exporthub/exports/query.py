"""Request -> parametrised SQL. The one place that applies the tenant filter to tenant data."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from exporthub.errors import ExportFailed
from exporthub.exports.catalog import Column, Resource
from exporthub.exports.models import Filters


@dataclasses.dataclass(frozen=True, slots=True)
class ExportQuery:
    select_sql: str
    count_sql: str
    args: tuple[Any, ...]
    columns: tuple[Column, ...]


def tenant_scope(account_id: uuid.UUID) -> tuple[str, list[Any]]:
    """WHERE condition and first argument that restrict any resource query to one account.

    Every query over tenant data (`r` being the resource's own table) starts from this; a test
    checks that no other module builds such a query.
    """
    return "r.account_id = $1", [account_id]


def build_export_query(
    resource: Resource,
    columns: tuple[str, ...],
    filters: Filters,
    account_id: uuid.UUID,
    *,
    csv_text: bool = False,
) -> ExportQuery:
    """The export's SELECT and COUNT over one account's rows.

    `csv_text=True` selects every cell already as the text the CSV writer would write (see
    `formats.csv_copy.csv_text_sql`), for `COPY (select_sql) TO STDOUT (FORMAT csv)`.
    """
    chosen = tuple(c for key in columns if (c := resource.column(key)) is not None)
    if len(chosen) != len(columns):
        missing = sorted(set(columns) - {c.key for c in chosen})
        raise ExportFailed(
            f"column(s) {', '.join(missing)} no longer exist in {resource.key}; "
            "submit the export again with current columns"
        )
    condition, args = tenant_scope(account_id)
    where = [condition]
    filtered_by: list[str] = []  # the filters' expressions: may the count leave out the joins?

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    def condition_on(expr: str, test: str) -> None:
        filtered_by.append(expr)
        where.append(f"{expr} {test}")

    if filters.date_from is not None:
        condition_on(resource.date_sql, f">= {arg(filters.date_from)}")
    if filters.date_to is not None:
        condition_on(resource.date_sql, f"<= {arg(filters.date_to)}")
    if filters.department_ids:
        condition_on(resource.department_sql, f"= ANY({arg(list(filters.department_ids))}::uuid[])")
    if filters.status is not None:
        condition_on(resource.status_sql, f"= {arg(filters.status)}")
    where_sql = " AND ".join(where)
    # The joins never change the number of rows (see catalog), so unless a filter reads a joined
    # table the count scans `r` alone: 500,000 payroll rows in 0.03 s instead of 0.13 s.
    count_from = resource.table + " r" if all(e.startswith("r.") for e in filtered_by) else resource.from_sql
    if csv_text:
        # Imported here: the web process builds queries too and must not load the writers (openpyxl).
        from exporthub.formats.csv_copy import csv_text_sql

        only = len(chosen) == 1
        select_list = ", ".join(f'{csv_text_sql(c.type, c.sql, only_column=only)} AS "{c.key}"' for c in chosen)
    else:
        select_list = ", ".join(f'{c.sql} AS "{c.key}"' for c in chosen)
    return ExportQuery(
        select_sql=(
            f"SELECT {select_list} FROM {resource.from_sql} WHERE {where_sql} ORDER BY {resource.date_sql}, r.id"
        ),
        count_sql=f"SELECT count(*) FROM {count_from} WHERE {where_sql}",
        args=tuple(args),
        columns=chosen,
    )
