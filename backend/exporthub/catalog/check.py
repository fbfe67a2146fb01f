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


async def _run(conn: asyncpg.Connection, problems: list[str], field: str, sql: str) -> list[tuple[str, str]] | None:
    """The result types of `sql` (run with LIMIT 0), or None with the database's error recorded for `field`."""
    found = await _types(conn, f"{sql} LIMIT 0")
    if isinstance(found, str):
        problems.append(f"{field}: {found}")
        return None
    return found


def _type_problem(where: str, declared: ColumnType, name: str, kind: str) -> str | None:
    if name in ACCEPTED_TYPES[declared] or (declared is ColumnType.TEXT and kind == "e"):  # enums read as text
        return None
    return f"{where}: declared {declared.value}, the database says {_readable(name)}{_hint(declared, name)}"


def _tenant_test(tenant_sql: str, tenant_type: str) -> str:
    return f"({tenant_sql}) = $1::text::{tenant_type}"


async def _check_departments(conn: asyncpg.Connection, departments: Departments, problems: list[str]) -> None:
    source = departments.from_sql
    if await _run(conn, problems, "departments.from", f"SELECT 1 FROM {source}") is None:
        return
    tenant = _tenant_test(departments.tenant.sql, departments.tenant.type)
    await _run(conn, problems, "departments.tenant", f"SELECT 1 FROM {source} WHERE {tenant}")
    await _run(conn, problems, "departments.id", f"SELECT ({departments.id_sql})::text FROM {source}")
    await _run(conn, problems, "departments.name", f"SELECT ({departments.name_sql})::text FROM {source}")
    await _run(conn, problems, "departments.order_by", f"SELECT 1 FROM {source} ORDER BY {departments.order_by}")


async def _check_resource(conn: asyncpg.Connection, resource: Resource, problems: list[str]) -> None:
    key, source = resource.key, resource.from_sql
    if await _run(conn, problems, f"{key}.from", f"SELECT 1 FROM {source}") is None:
        return
    everything = ", ".join(f"({c.sql})" for c in resource.columns)
    found = await _types(conn, f"SELECT {everything} FROM {source} LIMIT 0")
    for index, column in enumerate(resource.columns):
        field = f"{key}.columns.{column.key}"
        if isinstance(found, str):  # find the culprits one by one
            one = await _run(conn, problems, field, f"SELECT ({column.sql}) FROM {source}")
            types = one[0] if one else None
        else:
            types = found[index]
        if types is not None:
            _append(problems, _type_problem(field, column.type, *types))
    filters_ok = await _check_tenant(conn, resource, problems)
    await _run(conn, problems, f"{key}.order_by", f"SELECT 1 FROM {source} ORDER BY {resource.order_by}")
    if resource.date_sql is not None:
        date = await _run(conn, problems, f"{key}.date", f"SELECT ({resource.date_sql}) FROM {source}")
        if date is not None and date[0][0] not in _DATE_TYPES:
            problems.append(f"{key}.date: expected a date or timestamp, the database says {_readable(date[0][0])}")
        filters_ok = filters_ok and date is not None
    if resource.status_sql is not None:
        status = await _run(conn, problems, f"{key}.status", f"SELECT ({resource.status_sql})::text FROM {source}")
        filters_ok = filters_ok and status is not None
    if resource.department_sql is not None:
        await _run(conn, problems, f"{key}.department", f"SELECT ({resource.department_sql})::text FROM {source}")
    if resource.count_from is not None and filters_ok:  # a broken filter expression is reported once, above
        read = ", ".join(f"({e})" for e in (resource.tenant.sql, resource.date_sql, resource.status_sql) if e)
        counted = await _types(conn, f"SELECT {read} FROM {resource.count_from} LIMIT 0")
        if isinstance(counted, str):
            problems.append(f"{key}.count_from: {counted} (tenant, date and status must read only count_from)")


async def _check_tenant(conn: asyncpg.Connection, resource: Resource, problems: list[str]) -> bool:
    """Whether the tenant expression runs and has the declared type."""
    tenant, source = resource.tenant, resource.from_sql
    found = await _run(conn, problems, f"{resource.key}.tenant", f"SELECT ({tenant.sql}) FROM {source}")
    if found is None:
        return False
    name = found[0][0]
    if _canonical(name) != _canonical(tenant.type):
        problems.append(
            f"{resource.key}.tenant: declared {tenant.type} (tenant_type), the database says {_readable(name)}"
        )
        return False
    compared = f"SELECT 1 FROM {source} WHERE {_tenant_test(tenant.sql, tenant.type)}"
    return await _run(conn, problems, f"{resource.key}.tenant_type", compared) is not None


# Names a catalog may give tenant_type, back to PostgreSQL's own (`integer` -> int4).
_ALIASES = {readable: name for name, readable in _READABLE.items()} | {"int": "int4"}


def _canonical(type_name: str) -> str:
    return _ALIASES.get(type_name, type_name)


def _append(problems: list[str], problem: str | None) -> None:
    if problem is not None:
        problems.append(problem)
