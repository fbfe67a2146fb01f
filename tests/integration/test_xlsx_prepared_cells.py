"""The XLSX query's prepared cells (`query.xlsx_cell_sql`: numerics as text, datetimes as Excel
serials) make, through the writer's `prepared` path, the very workbook the reference makes of the
same rows selected as typed values: edge values and random ones, in zones with odd offsets."""

from __future__ import annotations

import pathlib

import asyncpg
import pytest

from exporthub.catalog import Column, ColumnType, Resource, Tenant
from exporthub.exports.copy_csv import ZONE_SQL
from exporthub.exports.models import Filters
from exporthub.exports.query import build_export_query
from tests.unit.formats.test_formats_xlsx_writer import assert_same_workbook, write

T = ColumnType
COLUMNS = (
    Column("id", "Id", T.INTEGER, "r.id"),
    Column("at", "At", T.DATETIME, "r.at"),
    Column("pay", "Pay", T.MONEY, "r.pay"),
    Column("rate", "Rate", T.DECIMAL, "r.rate"),
    Column("note", "Note", T.TEXT, "r.note"),
    Column("day", "Day", T.DATE, "r.day"),
)
RESOURCE = Resource(
    key="cells",
    label="Cells",
    from_sql="cells r",
    tenant=Tenant("r.tenant"),
    order_by="r.id",
    columns=COLUMNS,
    default_columns=tuple(c.key for c in COLUMNS),
)
EDGE_MOMENTS = [
    "1900-02-28 23:59:59+00",
    "1900-03-01 00:00:00+00",
    "1900-03-01 00:00:00+09",  # 28 February in UTC
    "1900-03-01 08:59:59+09",
    "1899-12-30 00:00:00+00",
    "0001-01-01 00:00:00+00",
    "1800-06-01 12:00:00+00",  # local mean time in Dublin and Tokyo
    "2024-02-29 12:34:56.999999+00",
    "2026-10-31 23:59:59.5+00",
    "2262-04-12 00:00:00.999999+00",  # past where an epoch in float8 keeps microseconds
    "9999-12-31 23:59:59.999999+00",
    "infinity",
    "-infinity",
    None,
]
EDGE_NUMBERS = ["1234.50", "-0.05", "0", "NaN", "Infinity", "-Infinity", "1e20", "0.0000001", "-0.001"]
EDGE_NUMBERS += ["123456789012345.67", "99999999999999.99", None]
EDGE_DAYS = ["1900-02-28", "1900-03-01", "1899-12-30", "0001-01-01", "9999-12-31", "infinity", "-infinity", None]


@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo", "America/St_Johns", "Europe/Dublin", "Pacific/Kiritimati"])
async def test_prepared_cells_are_the_reference_of_the_typed_rows(
    db_conn: asyncpg.Connection, tmp_path: pathlib.Path, zone: str
) -> None:
    await db_conn.execute(
        "CREATE TABLE IF NOT EXISTS cells"
        " (id int, tenant text, at timestamptz, pay numeric, rate numeric, note text, day date)"
    )
    await db_conn.execute("TRUNCATE cells")
    edges = max(len(EDGE_MOMENTS), len(EDGE_NUMBERS), len(EDGE_DAYS))
    await db_conn.executemany(
        "INSERT INTO cells VALUES"
        " ($1, 't', $2::text::timestamptz, $3::text::numeric, $4::text::numeric, 'x', $5::text::date)",
        [
            (
                n,
                EDGE_MOMENTS[n % len(EDGE_MOMENTS)],
                EDGE_NUMBERS[n % len(EDGE_NUMBERS)],
                EDGE_NUMBERS[-n % len(EDGE_NUMBERS)],
                EDGE_DAYS[n % len(EDGE_DAYS)],
            )
            for n in range(edges)
        ],
    )
    # And 2,000 pseudo-random moments and amounts over Excel's whole calendar.
    await db_conn.execute("SELECT setseed(0.14)")
    await db_conn.execute(
        f"""INSERT INTO cells SELECT {edges} + n, 't',
               timestamptz '1899-06-01 00:00:00+00' + random() * interval '8100 years',
               round((random() - 0.5)::numeric * 10::numeric ^ (random() * 16)::int, 2),
               (random() - 0.5)::numeric * 10::numeric ^ (random() * 20 - 8)::int,
               'row ' || n,
               date '1899-06-01' + (random() * 2958000)::int
           FROM generate_series(1, 2000) n"""
    )
    keys = tuple(c.key for c in COLUMNS)
    typed = build_export_query(RESOURCE, keys, Filters(), "t", time_zone=zone)
    prepared = build_export_query(RESOURCE, keys, Filters(), "t", time_zone=zone, xlsx_cells=True)
    async with db_conn.transaction(isolation="repeatable_read", readonly=True):
        await db_conn.execute(ZONE_SQL, zone)
        typed_rows = [tuple(r) for r in await db_conn.fetch(typed.select_sql, *typed.args)]
        prepared_rows = [tuple(r) for r in await db_conn.fetch(prepared.select_sql, *prepared.args)]
    assert len(prepared_rows) == len(typed_rows) == edges + 2000
    assert len(prepared_rows[0]) == len(COLUMNS) + 2  # the datetime and the date are two values each
    assert any(r[1] is None and r[2] is not None for r in prepared_rows)  # some moments have no serial
    assert sum(isinstance(r[1], float) for r in prepared_rows) > 1900
    assert all(isinstance(r[3], str) for r in prepared_rows if r[3] is not None)
    write("oracle", tmp_path / "reference.xlsx", COLUMNS, [typed_rows], time_zone=zone)
    write("stream", tmp_path / "prepared.xlsx", COLUMNS, [prepared_rows], time_zone=zone, prepared=True)
    assert_same_workbook(tmp_path / "prepared.xlsx", tmp_path / "reference.xlsx")
