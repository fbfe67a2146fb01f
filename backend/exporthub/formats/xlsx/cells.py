"""Cell XML: one value of a column as the `<c>` element the reference writes.

The reference is openpyxl's write-only writer given the cells the spec (the package docstring) asks
for (`tests/oracles/xlsx_openpyxl.py`, test code only). `cell_xml` follows it line by line and is the
slow path; `row_code` inlines the common cases, and both must give what openpyxl would write, so that
openpyxl, Excel or LibreOffice read back the same value, type and number format:
- numbers read back as the very value the reference stores: an int below 10**15 as its digits, a
  Decimal as its own digits when that gives the same double as the reference's
  `"%.16g" % float(decimal)` (up to 15 digits, see `row_code._DECIMAL_FAST`: "8.03" where openpyxl
  writes "8.029999999999999", both the double 8.03), otherwise as openpyxl writes it; a whole Decimal is an
  integer in both files ("7.00" comes back as the int 7);
- datetimes are wall times: an aware one in the writer's zone (UTC without one; `wall_time`), whose
  name the header of a datetime column then carries (`zone_labels`), a naive one as it is;
- dates and datetimes are Excel serials computed as openpyxl's `to_excel` does (`excel.excel_serial`: days since
  1899-12-30, one day less up to 1900-02-28 for Excel's 1900 leap-year bug; the seconds of the day
  / 86400, fractions of a second dropped), written with "%.16g" like openpyxl;
- text is an inline string (`t="inlineStr"`, nothing to hold in memory), escaped as lxml escapes it
  (`&amp; &lt; &gt;`, `\r` as `&#13;` so that it survives XML's line-end normalisation), with
  `xml:space="preserve"` when it has leading or trailing white space.
What differs and no reader sees: style ids (ours are fixed per column, openpyxl numbers them in order
of first use), `t="n"` left out (the default), some Decimals' digits (above).
`tests/unit/formats/test_formats_xlsx_writer.py` writes random rows with both writers and compares
every cell as openpyxl loads it, and the parsed cell XML.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import math
import zoneinfo
from collections.abc import Sequence
from typing import Any

from exporthub.catalog import Column, ColumnType
from exporthub.formats.sanitize import LOCAL_FIRST, LOCAL_LAST, display_text, excel_text
from exporthub.formats.xlsx.excel import excel_serial, number_text

NUMBER_FORMATS = {  # by column type; the other types have none (General)
    ColumnType.INTEGER: "0",
    ColumnType.DECIMAL: "#,##0.00##",
    ColumnType.MONEY: "#,##0.00",
    ColumnType.DATE: "yyyy-mm-dd",
    ColumnType.DATETIME: "yyyy-mm-dd hh:mm:ss",
}

EXACT_INTEGERS = 10**15  # |n| below this shows every digit in Excel; from here on integers are text
_FIRST_EXCEL_DATE = dt.date(1900, 1, 1)
_FIRST_EXCEL_DATETIME = dt.datetime(1900, 1, 1)


def escape_text(text: str) -> str:
    """Element text as lxml writes it."""
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if "\r" in text:
        text = text.replace("\r", "&#13;")
    return text


def escape_attribute(text: str) -> str:
    return escape_text(text).replace('"', "&quot;").replace("\n", "&#10;").replace("\t", "&#9;")


def inline_string(ref: str, style: str, text: str) -> str:
    space = ' xml:space="preserve"' if text != text.strip() else ""
    return f'<c r="{ref}"{style} t="inlineStr"><is><t{space}>{escape_text(text)}</t></is></c>'


UTC_KEYS = frozenset({"UTC", "Etc/UTC"})  # zone names whose wall time is UTC's at every moment


def is_utc(zone: dt.tzinfo | None) -> bool:
    """Whether `zone` (None meaning UTC) shows UTC's wall time: an aware UTC datetime is its own wall time."""
    return zone is None or zone is dt.UTC or getattr(zone, "key", None) in UTC_KEYS


def wall_time(value: dt.datetime, zone: dt.tzinfo | None) -> dt.datetime:
    """Naive: an aware datetime's wall time in `zone` (UTC for None, and outside the range
    `sanitize.iso_in_zone` shows in a zone); a naive one is a wall time already."""
    if value.tzinfo is None:
        return value
    if zone is not None and LOCAL_FIRST <= value <= LOCAL_LAST:
        return value.astimezone(zone).replace(tzinfo=None)
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def zone_labels(columns: Sequence[Column], zone: zoneinfo.ZoneInfo | None) -> tuple[Column, ...]:
    """The columns, datetime columns' labels naming the zone: "Created at (Asia/Tokyo)"."""
    if zone is None:
        return tuple(columns)
    return tuple(
        dataclasses.replace(c, label=f"{c.label} ({zone.key})") if c.type is ColumnType.DATETIME else c for c in columns
    )


def _excel_datetime(value: dt.datetime, zone: dt.tzinfo | None = None) -> dt.datetime | None:
    """Naive wall time without fractions of a second, None before 1900 (the package docstring's rule)."""
    value = wall_time(value, zone)
    value = value.replace(microsecond=0)
    return value if value >= _FIRST_EXCEL_DATETIME else None


def cell_xml(column_type: ColumnType, value: Any, ref: str, style: str, zone: dt.tzinfo | None = None) -> str:
    """One non-None value as the reference writes it (the oracle's `_fill` + openpyxl's cell writer):
    the slow path, for every value the generated fast paths do not take."""

    def text(value: Any) -> str:
        value = excel_text(value if type(value) is str else display_text(value, column_type))
        return inline_string(ref, style, value) if value else ""

    def number(value: Any) -> str:
        return f'<c r="{ref}"{style}><v>{number_text(value)}</v></c>'

    if column_type in (ColumnType.INTEGER, ColumnType.DECIMAL, ColumnType.MONEY):
        kind = type(value)
        if kind is int:
            return number(value) if -EXACT_INTEGERS < value < EXACT_INTEGERS else text(value)
        if kind is decimal.Decimal or kind is float:
            as_float = float(value)
            return number(as_float) if math.isfinite(as_float) else text(value)
        return text(value)
    if column_type in (ColumnType.DATE, ColumnType.DATETIME):
        if isinstance(value, dt.datetime):
            moment = _excel_datetime(value, zone)
            return text(value) if moment is None else number(excel_serial(moment))
        if isinstance(value, dt.date) and value >= _FIRST_EXCEL_DATE:
            return number(excel_serial(value))
        return text(value)
    if column_type is ColumnType.BOOLEAN:
        if type(value) is not bool:
            return text(value)
        return f'<c r="{ref}"{style} t="b"><v>{int(value)}</v></c>'
    return text(value)
