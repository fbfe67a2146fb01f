"""Check a catalog against the source database: every expression runs, and every column has the
PostgreSQL type its declared type promises (the writers and the COPY cell SQL rely on it).

Each resource's query runs with `LIMIT 0` in a read-only transaction, so nothing is read or written.
"""

from __future__ import annotations

import asyncpg

from exporthub.catalog.model import Catalog, ColumnType, Departments, Resource
from exporthub.errors import CatalogInvalid

# The PostgreSQL types each declared type accepts: those for which the CSV cell SQL and the writers
# agree cell for cell (tests/integration/test_csv_copy.py). Money and decimal are numeric only (floats
# would not round-trip); a timestamp without time zone must say which zone it is in.
ACCEPTED_TYPES: dict[ColumnType, frozenset[str]] = {
    ColumnType.TEXT: frozenset({"text", "varchar", "name"}),
    ColumnType.INTEGER: frozenset({"int2", "int4", "int8"}),
    ColumnType.DECIMAL: frozenset({"numeric"}),
    ColumnType.MONEY: frozenset({"numeric"}),
    ColumnType.DATE: frozenset({"date"}),
    ColumnType.DATETIME: frozenset({"timestamptz"}),
    ColumnType.BOOLEAN: frozenset({"bool"}),
}
_DATE_TYPES = frozenset({"date", "timestamptz", "timestamp"})
_READABLE = {
    "int2": "smallint",
    "int4": "integer",
    "int8": "bigint",
    "bpchar": "character",
    "varchar": "character varying",
    "float4": "real",
    "float8": "double precision",
    "bool": "boolean",
    "timestamptz": "timestamp with time zone",
    "timestamp": "timestamp without time zone",
}


def _readable(type_name: str) -> str:
    return _READABLE.get(type_name, type_name)


def _hint(declared: ColumnType, actual: str) -> str:
    if declared in (ColumnType.DECIMAL, ColumnType.MONEY) and actual in {"float4", "float8", "int2", "int4", "int8"}:
        return " (cast it: (expression)::numeric)"
    if declared is ColumnType.TEXT:
        return " (cast it: (expression)::text)"
    if declared is ColumnType.DATETIME and actual == "timestamp":
        return " (say its zone: (expression) AT TIME ZONE 'UTC')"
    return ""


async def check_catalog(conn: asyncpg.Connection, catalog: Catalog) -> None:
    """Raise CatalogInvalid naming every expression that fails or has the wrong type."""
    problems: list[str] = []
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        await conn.execute("SET LOCAL statement_timeout = 30000")
        if catalog.departments is not None:
            await _check_departments(conn, catalog.departments, problems)
        for resource in catalog.resources.values():
            await _check_resource(conn, resource, problems)
    if problems:
        raise CatalogInvalid(catalog.path, problems)


async def _types(conn: asyncpg.Connection, sql: str) -> list[tuple[str, str]] | str:
    """(name, kind) of each result column of `sql`, or the database's error message."""
    try:
        async with conn.transaction():  # a savepoint: one failing statement leaves the check going
            statement = await conn.prepare(sql)
    except asyncpg.PostgresError as exc:
        return str(exc).splitlines()[0]
    return [(a.type.name, a.type.kind) for a in statement.get_attributes()]


def _type_problem(where: str, declared: ColumnType, name: str, kind: str) -> str | None:
    if name in ACCEPTED_TYPES[declared] or (declared is ColumnType.TEXT and kind == "e"):  # enums read as text
        return None
    return f"{where}: declared {declared.value}, the database says {_readable(name)}{_hint(declared, name)}"


async def _check_departments(conn: asyncpg.Connection, departments: Departments, problems: list[str]) -> None:
    error = await _types(conn, f"SELECT 1 FROM {departments.from_sql} LIMIT 0")
    if isinstance(error, str):
        problems.append(f"departments.from: {error}")
        return
    for field, sql in (
        ("tenant", _tenant_test(departments.tenant.sql, departments.tenant.type)),
        ("id", f"SELECT ({departments.id_sql})::text FROM {departments.from_sql} LIMIT 0"),
        ("name", f"SELECT ({departments.name_sql})::text FROM {departments.from_sql} LIMIT 0"),
        ("order_by", f"SELECT 1 FROM {departments.from_sql} ORDER BY {departments.order_by} LIMIT 0"),
    ):
        if field == "tenant":
            sql = f"SELECT 1 FROM {departments.from_sql} WHERE {sql} LIMIT 0"
        found = await _types(conn, sql)
        if isinstance(found, str):
            problems.append(f"departments.{field}: {found}")


def _tenant_test(tenant_sql: str, tenant_type: str) -> str:
    return f"({tenant_sql}) = $1::text::{tenant_type}"


async def _check_resource(conn: asyncpg.Connection, resource: Resource, problems: list[str]) -> None:
    key = resource.key
    error = await _types(conn, f"SELECT 1 FROM {resource.from_sql} LIMIT 0")
    if isinstance(error, str):
        problems.append(f"{key}.from: {error}")
        return
    found = await _types(
        conn, f"SELECT {', '.join(f'({c.sql})' for c in resource.columns)} FROM {resource.from_sql} LIMIT 0"
    )
    if isinstance(found, str):  # find the culprits one by one
        for column in resource.columns:
            one = await _types(conn, f"SELECT ({column.sql}) FROM {resource.from_sql} LIMIT 0")
            if isinstance(one, str):
                problems.append(f"{key}.columns.{column.key}: {one}")
            else:
                _append(problems, _type_problem(f"{key}.columns.{column.key}", column.type, *one[0]))
    else:
        for column, (name, kind) in zip(resource.columns, found, strict=True):
            _append(problems, _type_problem(f"{key}.columns.{column.key}", column.type, name, kind))
    await _check_tenant(conn, resource, problems)
    order = await _types(conn, f"SELECT 1 FROM {resource.from_sql} ORDER BY {resource.order_by} LIMIT 0")
    if isinstance(order, str):
        problems.append(f"{key}.order_by: {order}")
    if resource.date_sql is not None:
        date = await _types(conn, f"SELECT ({resource.date_sql}) FROM {resource.from_sql} LIMIT 0")
        if isinstance(date, str):
            problems.append(f"{key}.date: {date}")
        elif date[0][0] not in _DATE_TYPES:
            problems.append(f"{key}.date: expected a date or timestamp, the database says {_readable(date[0][0])}")
    if resource.status_sql is not None:
        status = await _types(conn, f"SELECT ({resource.status_sql})::text FROM {resource.from_sql} LIMIT 0")
        if isinstance(status, str):
            problems.append(f"{key}.status: {status}")
    if resource.department_sql is not None:
        department = await _types(conn, f"SELECT ({resource.department_sql})::text FROM {resource.from_sql} LIMIT 0")
        if isinstance(department, str):
            problems.append(f"{key}.department: {department}")
    filter_fields = (f"{key}.tenant", f"{key}.date:", f"{key}.status:")
    if resource.count_from is not None and not any(p.startswith(filter_fields) for p in problems):
        filters = [resource.tenant.sql, resource.date_sql, resource.status_sql]
        select = ", ".join(f"({e})" for e in filters if e is not None)
        counted = await _types(conn, f"SELECT {select} FROM {resource.count_from} LIMIT 0")
        if isinstance(counted, str):
            problems.append(f"{key}.count_from: {counted} (tenant, date and status must read only count_from)")


async def _check_tenant(conn: asyncpg.Connection, resource: Resource, problems: list[str]) -> None:
    tenant = resource.tenant
    found = await _types(conn, f"SELECT ({tenant.sql}) FROM {resource.from_sql} LIMIT 0")
    if isinstance(found, str):
        problems.append(f"{resource.key}.tenant: {found}")
        return
    name = found[0][0]
    if _canonical(name) != _canonical(tenant.type):
        problems.append(
            f"{resource.key}.tenant: declared {tenant.type} (tenant_type), the database says {_readable(name)}"
        )
        return
    compared = await _types(
        conn, f"SELECT 1 FROM {resource.from_sql} WHERE {_tenant_test(tenant.sql, tenant.type)} LIMIT 0"
    )
    if isinstance(compared, str):
        problems.append(f"{resource.key}.tenant_type: {compared}")


# Names a catalog may give tenant_type, back to PostgreSQL's own (`integer` -> int4).
_ALIASES = {readable: name for name, readable in _READABLE.items()} | {"int": "int4"}


def _canonical(type_name: str) -> str:
    return _ALIASES.get(type_name, type_name)


def _append(problems: list[str], problem: str | None) -> None:
    if problem is not None:
        problems.append(problem)
