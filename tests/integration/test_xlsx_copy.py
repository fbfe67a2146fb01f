"""The XLSX rows PostgreSQL renders (exports/copy_xlsx.py) against the openpyxl reference, on a real
PostgreSQL: random values of every column type are inserted into a table, the reference writer gets
the rows as asyncpg returns them (the export's typed query, wall times in the zone), the production
writer gets the rows' XML through COPY, and both files must be the same cell for cell (values, types,
number formats, xml:space, sheets, layout)."""

from __future__ import annotations

import datetime as dt
import decimal
import pathlib
import zoneinfo
from typing import Any

import asyncpg
import openpyxl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from exporthub.catalog import Column, ColumnType
from exporthub.exports import copy_xlsx as copy_xlsx_module
from exporthub.exports.copy_xlsx import PY_SPACE, copy_xlsx, xlsx_rows_sql
from exporthub.exports.query import local_time_sql
from exporthub.formats.xlsx.writer import StreamingXlsxWriter
from tests.oracles.xlsx_openpyxl import OpenpyxlXlsxWriter
from tests.unit.formats.test_formats_xlsx_writer import FORMULAS, assert_same_workbook, raw_cells

T = ColumnType
UTC = dt.UTC
TABLE_COLUMNS = (
    Column("note", "Note & <more>", T.TEXT, "r.note", 20),
    Column("n", "Number", T.INTEGER, "r.n", 9),
    Column("dec", "Decimal", T.DECIMAL, "r.dec", 10),
    Column("amount", "Amount", T.MONEY, "r.amount", 11),
    Column("day", "Day", T.DATE, "r.day", 12),
    Column("at", "At", T.DATETIME, "r.at", 20),
    Column("flag", "Flag", T.BOOLEAN, "r.flag", 8),
    Column("label", "Label", T.TEXT, "r.label::varchar", 15),
)
TABLE_SQL = """CREATE TEMP TABLE IF NOT EXISTS xlsx_cells (
    id serial PRIMARY KEY, note text, n bigint, dec numeric, amount numeric, day date, at timestamptz,
    flag boolean, label text
)"""
INSERT_SQL = (
    "INSERT INTO xlsx_cells (note, n, dec, amount, day, at, flag, label) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
)

EXACT = 10**15
SPECIAL_TEXT = [
    *FORMULAS,
    "",
    " ",
    "_x0041_",
    "a_x000D_b",
    "_x0041_x0042_",
    "_x",
    " padded ",
    "\x01\x02",
    "bell\x07 and tab\tand\\backslash",
    "a\rb\r\nc\nd",
    "&<>\"']]>",
    "😀",
    "\ufffe\uffff",
    "\u00a0nbsp\u3000",
    "\u2028line sep",
    "trailing\x85",
    "R&D | Ops",
    "|",
]
texts = st.one_of(
    st.sampled_from(SPECIAL_TEXT),
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=25),
    st.text(alphabet=st.sampled_from([*"_x0041 \t\r\n&<>\\|", "\x0b", "\x1f", "\u3000", "😀"]), max_size=12),
)
# Around the 16,384-byte limit of the short form and the 32,767-unit cut (which
# test_long_texts_are_cut_at_excels_limit_in_utf16_units checks exactly): one text in 20, as each
# costs up to 0.1 s, and shrinking moves away from them.
long_texts = st.builds(
    lambda unit, n: unit * n, st.sampled_from(["x", "😀", "a😀", "_x0041_", "&"]), st.integers(16_000, 33_000)
)
notes = st.integers(0, 19).flatmap(lambda n: long_texts if n == 19 else texts)
integers = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-EXACT, EXACT),
    st.sampled_from([EXACT - 1, -EXACT + 1, EXACT, -EXACT, 2**63 - 1, -(2**63), 0]),
)
decimals = st.one_of(
    st.decimals(
        min_value=decimal.Decimal("-9999999999999.99"), max_value=decimal.Decimal("9999999999999.99"), places=2
    ),
    st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**40), max_value=10**40),
    st.decimals(places=6, min_value=-(10**9), max_value=10**9),
    st.integers(-(10**20), 10**20).map(decimal.Decimal),
    st.sampled_from(
        [
            decimal.Decimal(v)
            for v in (
                "8.03",
                "0.07",
                "-0.00",
                "7.00",
                "1E+3",
                "1.5E+20",
                "NaN",
                "Infinity",
                "-Infinity",
                "1E+400",
                "-1E+308",
                "1.7976931348623158E+308",
                "1.797693134862315808E+308",
                "1E-7",
                "1E-320",
                "1E-400",
                "9779964911340083",
                "-9007199254740993.0",
                "0.09999999999999999",
                "123456789012345.6",
                "1234567890123456.7",
                "0.1000000000000000055511151231257827",
                "9999999999999.995",
                "123456789012345.01",  # "%.16g" rounds these to whole numbers: openpyxl reads ints
                "1234567890123456.7",
                "-4503599627370495.5",
            )
        ]
    ),
)
dates = st.one_of(
    st.dates(),
    st.dates(min_value=dt.date(1899, 12, 1), max_value=dt.date(1900, 3, 2)),  # Excel's 1900 leap-year bug
    st.sampled_from([dt.date.min, dt.date.max]),  # asyncpg's -infinity and infinity
)
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))
datetimes = st.one_of(
    st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=offsets),
    st.datetimes(min_value=dt.datetime(1899, 12, 30), max_value=dt.datetime(1900, 3, 2), timezones=st.just(UTC)),
    st.builds(
        lambda day, second, micro: (
            dt.datetime.combine(day, dt.time(), tzinfo=UTC) + dt.timedelta(seconds=second, microseconds=micro)
        ),
        st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(9999, 12, 30)),
        st.sampled_from([0, 1, 59, 3599, 43_200, 86_399]),
        st.sampled_from([0, 1, 499_999, 500_000, 999_999]),
    ),
    st.sampled_from(
        [
            dt.datetime.max.replace(tzinfo=UTC),  # infinity
            dt.datetime.min.replace(tzinfo=UTC),  # -infinity
            dt.datetime(1, 1, 1, 12, tzinfo=UTC),
            dt.datetime(9999, 12, 31, 11, tzinfo=UTC),
        ]
    ),
)
rows = st.lists(
    st.tuples(
        st.none() | notes,
        st.none() | integers,
        st.none() | decimals,
        st.none() | decimals,
        st.none() | dates,
        st.none() | datetimes,
        st.none() | st.booleans(),
        st.none() | st.sampled_from(["Finance & Accounting", "Ops", "", " x", "paid", "R&D <lead>"]),
    ),
    max_size=14,
)
# Which columns, in which order.
column_choices = st.lists(st.integers(0, len(TABLE_COLUMNS) - 1), min_size=1, max_size=len(TABLE_COLUMNS), unique=True)
ZONES = ["UTC", "Asia/Tokyo", "America/St_Johns", "Australia/Lord_Howe", "Europe/Dublin", "Pacific/Kiritimati"]


def select_sql(columns: tuple[Column, ...], zone: str) -> str:
    """The export's typed query over the table, as `build_export_query` makes it."""
    values = ", ".join(
        f'{local_time_sql(c.sql, zone) if c.type is T.DATETIME and zone != "UTC" else c.sql} AS "{c.key}"'
        for c in columns
    )
    return f"SELECT {values} FROM xlsx_cells r ORDER BY r.id"


async def write_both(
    conn: asyncpg.Connection, tmp_path: pathlib.Path, columns: tuple[Column, ...], zone: str, max_rows: int
) -> tuple[pathlib.Path, pathlib.Path, list[int]]:
    sql = select_sql(columns, zone)
    reference, stream = tmp_path / "reference.xlsx", tmp_path / "stream.xlsx"
    counted: list[int] = []
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        await conn.execute("SELECT set_config('TimeZone', $1, true)", zone)
        records = await conn.fetch(sql)
        oracle = OpenpyxlXlsxWriter(
            reference, columns, title="Cells", max_rows_per_sheet=max_rows, time_zone=zoneinfo.ZoneInfo(zone)
        )
        oracle.write_rows(records)
        oracle.close()
        writer = StreamingXlsxWriter(
            stream, columns, title="Cells", max_rows_per_sheet=max_rows, time_zone=zoneinfo.ZoneInfo(zone)
        )
        rows_sql = xlsx_rows_sql(sql, columns, writer.cell_styles, max_rows_per_sheet=max_rows, time_zone=zone)

        async def write(piece: bytes) -> None:
            writer.write_row_xml(piece)

        async def on_records(count: int) -> None:
            counted.append(count)

        copied = await copy_xlsx(conn, rows_sql, (), write, copy_timeout=60, on_records=on_records)
        writer.close()
    assert copied == len(records) == sum(counted)
    return stream, reference, counted


@settings(
    max_examples=40,  # about 3 s here; a long text's example about 0.5 s, at most about 1.5 s
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(rows=rows, chosen=column_choices, zone=st.sampled_from(ZONES), max_rows=st.integers(1, 6))
# Found with --hypothesis-seed=56156667512549255707517542075285656353: a double that is not whole but
# which "%.16g" writes as one (openpyxl reads an int) came out with an exponent (a float).
@example(
    rows=[
        (None, None, decimal.Decimal(dec), decimal.Decimal(amount), None, None, None, None)
        for dec, amount in [("123456789012345.01", "1234567890123456.7"), ("-4503599627370495.5", "1E+15")]
    ],
    chosen=[3, 2],
    zone="UTC",
    max_rows=1,
)
async def test_rows_rendered_by_postgresql_are_the_reference_cell_for_cell(
    db_conn: asyncpg.Connection,
    tmp_path: pathlib.Path,
    rows: list[tuple[Any, ...]],
    chosen: list[int],
    zone: str,
    max_rows: int,
) -> None:
    await db_conn.execute(TABLE_SQL)
    await db_conn.execute("TRUNCATE xlsx_cells")
    if rows:  # asyncpg 0.32's executemany of nothing leaves an implicit transaction open
        await db_conn.executemany(INSERT_SQL, rows)
    columns = tuple(TABLE_COLUMNS[i] for i in chosen)
    stream, reference, _ = await write_both(db_conn, tmp_path, columns, zone, max_rows)
    assert_same_workbook(stream, reference)


async def test_every_special_value_at_once_across_sheets(db_conn: asyncpg.Connection, tmp_path: pathlib.Path) -> None:
    """Each special text, number and moment in one export, rolling over every 7 rows."""
    await db_conn.execute(TABLE_SQL)
    await db_conn.execute("TRUNCATE xlsx_cells")
    special_numbers = [
        decimal.Decimal(v)
        for v in ("NaN", "Infinity", "-Infinity", "1E+400", "1E-400", "1E-320", "-0.00", "7.00", "9779964911340083")
    ]
    moments = [
        dt.datetime.max.replace(tzinfo=UTC),
        dt.datetime.min.replace(tzinfo=UTC),
        dt.datetime(1900, 2, 28, 23, 59, 59, 999_999, tzinfo=UTC),
        dt.datetime(1900, 3, 1, tzinfo=UTC),
        dt.datetime(1899, 12, 31, 23, 59, tzinfo=UTC),
    ]
    days = [dt.date.max, dt.date.min, dt.date(1900, 2, 28), dt.date(1900, 3, 1), dt.date(1899, 12, 31)]
    count = max(len(SPECIAL_TEXT), len(special_numbers))
    await db_conn.executemany(
        INSERT_SQL,
        [
            (
                SPECIAL_TEXT[i % len(SPECIAL_TEXT)],
                [2**63 - 1, -(2**63), EXACT, EXACT - 1][i % 4],
                special_numbers[i % len(special_numbers)],
                special_numbers[(i + 1) % len(special_numbers)],
                days[i % len(days)],
                moments[i % len(moments)],
                i % 3 == 0 if i % 3 else None,
                SPECIAL_TEXT[(i + 5) % len(SPECIAL_TEXT)],
            )
            for i in range(count)
        ],
    )
    for zone in ("UTC", "Asia/Tokyo"):
        stream, reference, _ = await write_both(db_conn, tmp_path, TABLE_COLUMNS, zone, 7)
        assert_same_workbook(stream, reference)
    assert len(openpyxl.load_workbook(stream).sheetnames) == -(-count // 7)


async def test_long_texts_are_cut_at_excels_limit_in_utf16_units(
    db_conn: asyncpg.Connection, tmp_path: pathlib.Path
) -> None:
    await db_conn.execute(TABLE_SQL)
    await db_conn.execute("TRUNCATE xlsx_cells")
    longs = [
        "x" * 40_000,
        "😀" * 20_000,
        "a" + "😀" * 16_383 + "b",
        "_x0041_" * 5_000,
        "&" * 33_000,
        " " + "y" * 32_767,
    ]
    await db_conn.executemany(INSERT_SQL, [(text, None, None, None, None, None, None, None) for text in longs])
    stream, reference, _ = await write_both(db_conn, tmp_path, (TABLE_COLUMNS[0],), "UTC", 1_048_575)
    assert_same_workbook(stream, reference)
    cells = raw_cells(stream)[0]
    assert len(cells["A2"][1][0]) == 32_767
    assert len(cells["A3"][1][0].encode("utf-16-le")) // 2 == 32_766  # an astral character is not split


def test_the_white_space_of_the_preserve_rule_is_pythons() -> None:
    assert "".join(c for c in map(chr, range(0x110000)) if c.isspace()) == PY_SPACE


async def test_rows_roll_over_to_new_sheets_with_the_progress_counted(
    db_conn: asyncpg.Connection, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(copy_xlsx_module, "PIECE_BYTES", 300)  # several pieces, each handed over
    await db_conn.execute(TABLE_SQL)
    await db_conn.execute("TRUNCATE xlsx_cells")
    await db_conn.executemany(
        INSERT_SQL, [(f"row {n}", n, None, None, None, None, n % 2 == 0, None) for n in range(23)]
    )
    stream, reference, counted = await write_both(db_conn, tmp_path, TABLE_COLUMNS, "UTC", 5)
    assert_same_workbook(stream, reference)
    sheets = openpyxl.load_workbook(stream).worksheets
    assert [sheet.max_row for sheet in sheets] == [6, 6, 6, 6, 4]
    assert [sheet.title for sheet in sheets] == ["Cells", "Cells (2)", "Cells (3)", "Cells (4)", "Cells (5)"]
    assert sum(counted) == 23
