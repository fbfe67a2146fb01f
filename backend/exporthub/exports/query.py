"""Request -> parametrised SQL over the source database. The one place that applies the tenant filter."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from exporthub.catalog import Column, ColumnType, Departments, Resource, Tenant
from exporthub.errors import ExportFailed
from exporthub.exports.copy_csv import LOCAL_RANGE_SQL, csv_cell_sql
from exporthub.exports.models import Filters

# The export's zone for the transaction the queries run in (copy_csv.ZONE_SQL): a date filter on a
# timestamp compares with midnight there, and the CSV cell SQL writes local times with their offsets.


def zone_literal(time_zone: str) -> str:
    """A checked IANA name as an SQL string literal (it takes no parameter: the COUNT shares the args)."""
    return "'" + time_zone.replace("'", "''") + "'"


def local_time_sql(expr: str, time_zone: str) -> str:
    """A timestamptz as its wall time in the zone (timestamp without time zone), for the writers."""
    t = f"({expr})::timestamptz"
    local = f"{t} AT TIME ZONE {zone_literal(time_zone)}"
    return f"CASE WHEN {t} {LOCAL_RANGE_SQL} THEN {local} ELSE {t} AT TIME ZONE 'UTC' END"


@dataclasses.dataclass(frozen=True, slots=True)
class ExportQuery:
    select_sql: str
    count_sql: str
    args: tuple[Any, ...]
    columns: tuple[Column, ...]


def tenant_scope(tenant: Tenant, tenant_key: str) -> tuple[str, list[Any]]:
    """WHERE condition and first argument that restrict a catalog query to one account's rows.

    Every query over source data starts from this; a test checks that no other module builds one.
    The key is sent as text and cast in SQL to the expression's type, so an index on it still serves.
    """
    return f"({tenant.sql}) = $1::text::{tenant.type}", [tenant_key]


def build_export_query(
    resource: Resource,
    columns: tuple[str, ...],
    filters: Filters,
    tenant_key: str,
    *,
    csv_text: bool = False,
    xlsx_cells: bool = False,
    time_zone: str = "UTC",
) -> ExportQuery:
    """The export's SELECT and COUNT over one account's rows.

    `csv_text=True` selects every cell such that COPY writes it as the CSV writer would (see
    `copy_csv.csv_cell_sql`), for `COPY (select_sql) TO STDOUT (FORMAT csv)`. Otherwise datetimes
    outside UTC come as wall times in `time_zone`; `xlsx_cells=True` selects the cells the XLSX
    writer takes `prepared` (`xlsx_cell_sql`). Both queries expect the
    transaction's TimeZone to be `time_zone` (`ZONE_SQL` with it): that is where a day of the date
    filter starts.
    """
    chosen = tuple(c for key in columns if (c := resource.column(key)) is not None)
    if len(chosen) != len(columns):
        missing = sorted(set(columns) - {c.key for c in chosen})
        raise ExportFailed(
            f"column(s) {', '.join(missing)} no longer exist in {resource.key}; "
            "submit the export again with current columns"
        )
    condition, args = tenant_scope(resource.tenant, tenant_key)
    where = [condition]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    # A filter the resource lacks was refused at submit; one that the catalog dropped since is an error.
    if (filters.date_from or filters.date_to) and resource.date_sql is None:
        raise ExportFailed(f"{resource.key} no longer has a date filter; submit the export again without one")
    if filters.status is not None and resource.status_sql is None:
        raise ExportFailed(f"{resource.key} no longer has a status filter; submit the export again without one")
    if filters.department_ids and resource.department_sql is None:
        raise ExportFailed(f"{resource.key} no longer has a department filter; submit the export again without one")
    # Dates compare as dates: a timestamp falls on dateTo until the next midnight (in the session's
    # TimeZone, the export's). A moment (an aware datetime) compares as one, both ends included.
    if isinstance(filters.date_from, dt.datetime):
        where.append(f"({resource.date_sql}) >= {arg(filters.date_from)}::timestamptz")
    elif filters.date_from is not None:
        where.append(f"({resource.date_sql}) >= {arg(filters.date_from)}::date")
    if isinstance(filters.date_to, dt.datetime):
        where.append(f"({resource.date_sql}) <= {arg(filters.date_to)}::timestamptz")
    elif filters.date_to is not None:
        where.append(f"({resource.date_sql}) < {arg(filters.date_to)}::date + 1")
    if filters.status is not None:
        where.append(f"({resource.status_sql})::text = {arg(filters.status)}::text")
    if filters.department_ids:
        where.append(f"({resource.department_sql})::text = ANY({arg(list(filters.department_ids))}::text[])")
    where_sql = " AND ".join(where)
    # count_from has the same rows without the lookups (see catalog); the department filter may read them.
    count_from = resource.count_from if resource.count_from and not filters.department_ids else resource.from_sql
    if csv_text:
        only = len(chosen) == 1
        select_list = ", ".join(
            f'{csv_cell_sql(c.type, c.sql, only_column=only, time_zone=time_zone)} AS "{c.key}"' for c in chosen
        )
    else:
        select_list = ", ".join(
            ", ".join(xlsx_cell_sql(c, time_zone)) if xlsx_cells else f'{_typed_cell_sql(c, time_zone)} AS "{c.key}"'
            for c in chosen
        )
    return ExportQuery(
        select_sql=f"SELECT {select_list} FROM {resource.from_sql} WHERE {where_sql} ORDER BY {resource.order_by}",
        count_sql=f"SELECT count(*) FROM {count_from} WHERE {where_sql}",
        args=tuple(args),
        columns=chosen,
    )


def _typed_cell_sql(column: Column, time_zone: str) -> str:
    if column.type is ColumnType.DATETIME and time_zone != "UTC":
        return local_time_sql(column.sql, time_zone)
    return column.sql


def xlsx_cell_sql(column: Column, time_zone: str) -> list[str]:
    """The select-list items of one column for the XLSX writer's `prepared` rows (formats/xlsx/row_code.py):
    - money and decimal: the numeric's text, which asyncpg passes on as it is (a Decimal costs more);
    - a date or a datetime: its Excel serial where the writer's fast path applies (from 1900-03-01
      on, finite), computed as that path computes it: whole days, for a datetime plus whole seconds
      / 86400 in float8 (exactly the double Python makes; `::time` keeps the seconds of the day
      exact, where an epoch in float8 would not be at microseconds past the year 2200), and the value
      itself (a datetime's wall time in the zone) only where there is no serial;
    - anything else as the writers always take it.
    The datetime's expression repeats: PostgreSQL evaluates it on its own core, which an XLSX export
    leaves mostly idle."""
    key = f'"{column.key}"'
    if column.type in (ColumnType.MONEY, ColumnType.DECIMAL):
        return [f"({column.sql})::text AS {key}"]
    if column.type in (ColumnType.DATE, ColumnType.DATETIME):
        w = f"({_typed_cell_sql(column, time_zone)})"
        serial_range = f"{w} >= '1900-03-01' AND {w} < 'infinity'"
        serial = f"{w} - DATE '1899-12-30'"
        if column.type is ColumnType.DATETIME:
            serial = f"({w}::date - DATE '1899-12-30')::float8 + floor(date_part('epoch', {w}::time)) / 86400"
        return [
            f"CASE WHEN {serial_range} THEN {serial} END AS {key}",
            f'CASE WHEN NOT ({serial_range}) THEN {w} END AS "{column.key}:value"',
        ]
    return [f"{column.sql} AS {key}"]


def departments_query(departments: Departments, tenant_key: str, ids: list[str] | None = None) -> tuple[str, list[Any]]:
    """SELECT id, name (both as text) of one account's departments, optionally only those in `ids`."""
    condition, args = tenant_scope(departments.tenant, tenant_key)
    if ids is not None:
        args.append(ids)
        condition += f" AND ({departments.id_sql})::text = ANY($2::text[])"
    return (
        f"SELECT ({departments.id_sql})::text AS id, ({departments.name_sql})::text AS name"
        f" FROM {departments.from_sql} WHERE {condition} ORDER BY {departments.order_by}",
        args,
    )
