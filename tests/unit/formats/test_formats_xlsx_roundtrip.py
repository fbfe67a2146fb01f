"""Property: whatever asyncpg can hand over comes back from the XLSX file equal, after the documented
normalisation (see exporthub.formats.xlsx): text loses XML-illegal characters (and shows `_xHHHH_`
literally in Excel), empty text is an empty cell, integers of 10**15 or more are text, Decimals are
doubles, dates come back as midnight datetimes, datetimes as naive UTC without fractions of a second."""

import datetime as dt
import pathlib
import re
from decimal import Decimal
from typing import Any

import openpyxl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporthub.catalog import Column, ColumnType
from exporthub.formats import open_writer

COLUMNS = (
    Column("text", "Text", ColumnType.TEXT, "r.text"),
    Column("integer", "Integer", ColumnType.INTEGER, "r.integer"),
    Column("decimal", "Decimal", ColumnType.DECIMAL, "r.decimal"),
    Column("money", "Money", ColumnType.MONEY, "r.money"),
    Column("date", "Date", ColumnType.DATE, "r.date"),
    Column("datetime", "Datetime", ColumnType.DATETIME, "r.datetime"),
    Column("boolean", "Boolean", ColumnType.BOOLEAN, "r.boolean"),
    Column("notes", "Notes", ColumnType.TEXT, "r.notes"),
)
UTC = dt.UTC
EXACT = 10**15 - 1
FIRST, LAST = dt.datetime(1900, 3, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999_999)

texts = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(max_codepoint=0x40), max_size=12),  # control characters and =+-@
    st.sampled_from(["=1+2", "+1", "-1", "@A1", "\t=x", "#N/A", "_x0041_", "a_x000D_b", " ", "\ufffe"]),
)
integers = st.one_of(
    st.integers(-EXACT, EXACT),
    st.sampled_from([EXACT, -EXACT, EXACT + 1, -EXACT - 1, 2**63 - 1, -(2**63), 0]),
)
amounts = st.decimals(
    min_value=Decimal("-9999999999999.99"),
    max_value=Decimal("9999999999999.99"),
    places=2,
    allow_nan=False,
    allow_infinity=False,
)
dates = st.dates(min_value=FIRST.date(), max_value=LAST.date())
datetimes = st.one_of(
    st.datetimes(min_value=FIRST, max_value=LAST, timezones=st.just(UTC)),
    st.sampled_from(
        [
            dt.datetime(2024, 1, 31, 23, 59, 59, 999_999, tzinfo=UTC),
            dt.datetime(2024, 2, 29, 0, 0, 0, 1, tzinfo=UTC),
            dt.datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC),
            FIRST.replace(tzinfo=UTC),
            LAST.replace(tzinfo=UTC),
        ]
    ),
)
rows = st.lists(
    st.tuples(
        *(
            st.none() | strategy
            for strategy in (texts, integers, amounts, amounts, dates, datetimes, st.booleans(), texts)
        )
    ),
    max_size=12,
)


def excel_decode(text: str) -> str:
    """What Excel shows for a string cell: `_xHHHH_` sequences decoded, left to right."""
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m[1], 16)), text)


def xml_safe(text: str) -> str:
    return "".join(c for c in text if c in "\t\n\r" or (c >= " " and c not in "\ufffe\uffff"))


def expected(value: Any, column: Column) -> tuple[Any, str | None]:
    """(value as openpyxl reads it back, after Excel's own decoding for text; its data type)."""
    if value is None:
        return None, None
    if column.type is ColumnType.TEXT:
        text = xml_safe(value)
        return (text, "s") if text else (None, None)
    if column.type is ColumnType.INTEGER:
        return (value, "n") if abs(value) <= EXACT else (str(value), "s")
    if column.type in (ColumnType.DECIMAL, ColumnType.MONEY):
        return value, "n"
    if column.type is ColumnType.DATE:
        return dt.datetime.combine(value, dt.time()), "d"
    if column.type is ColumnType.DATETIME:
        return value.astimezone(UTC).replace(tzinfo=None, microsecond=0), "d"
    return value, "b"


def actual(cell: Any, column: Column) -> tuple[Any, str | None]:
    if cell.value is None:
        return None, None
    if cell.data_type == "s":
        return excel_decode(cell.value), "s"
    if column.type in (ColumnType.DECIMAL, ColumnType.MONEY):
        return Decimal(repr(cell.value)).quantize(Decimal("0.01")), cell.data_type
    return cell.value, cell.data_type


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=rows, max_rows_per_sheet=st.integers(1, 5))
def test_xlsx_round_trip(tmp_path: pathlib.Path, data: list[tuple], max_rows_per_sheet: int) -> None:
    path = tmp_path / "roundtrip.xlsx"
    writer = open_writer("xlsx", path, COLUMNS, title="Round trip", max_rows_per_sheet=max_rows_per_sheet)
    writer.write_rows(data[:5])
    writer.write_rows(data[5:])
    writer.close()

    workbook = openpyxl.load_workbook(path)
    sizes = [len(data[start : start + max_rows_per_sheet]) for start in range(0, len(data), max_rows_per_sheet)]
    assert len(workbook.worksheets) == max(1, len(sizes))
    read_back = []
    for sheet, size in zip(workbook.worksheets, sizes or [0], strict=True):
        assert [cell.value for cell in sheet[1]] == [column.label for column in COLUMNS]
        assert sheet.auto_filter.ref == f"A1:H{size + 1}"
        if size:  # with max_row given, openpyxl also returns rows that have no cells at all
            read_back.extend(sheet.iter_rows(min_row=2, max_row=size + 1, max_col=len(COLUMNS)))
    assert len(read_back) == len(data)
    for values, cells in zip(data, read_back, strict=True):
        want = [expected(value, column) for value, column in zip(values, COLUMNS, strict=True)]
        got = [actual(cell, column) for cell, column in zip(cells, COLUMNS, strict=True)]
        assert got == want
