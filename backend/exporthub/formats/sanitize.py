"""Cell sanitising shared by the writers: one text form per value, formula neutralising, XML-safe text.

- `display_text(value, column_type)` is the text form of a value (CSV cells, XLSX/PDF text fallbacks):
  None -> "", bool -> "true"/"false", date -> "2024-01-31", datetime -> ISO 8601 in UTC with an
  explicit "+00:00" offset (`value.astimezone(UTC).isoformat()`: microseconds appear only when not
  zero; a naive datetime is taken to be UTC already), Decimal -> plain digits, never an exponent
  (MONEY always with two decimals), int -> digits.
- `is_formula(text)` is the one rule for text a spreadsheet might run as a formula: text that starts
  with tab or carriage return (OWASP's "CSV injection" list), or whose first character after any
  leading white space (space, NBSP U+00A0, ideographic space U+3000, LF, CR, tab; no other) is `=`,
  `+`, `-`, `@` or one of their full-width forms (U+FF1D, U+FF0B, U+FF0D, U+FF20), which
  spreadsheets with an East Asian input method take as the ASCII ones. `exports.copy_csv.csv_text_sql` is
  the same rule in SQL.
- `neutralize_formula(text)` prefixes a single quote to such text. Only for CSV: in XLSX the string
  cell type is what keeps any text inert, whatever it starts with.
- `excel_text(text)` makes text safe for a worksheet's XML and for Excel's cell limit.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from typing import Any

from exporthub.catalog import ColumnType

UTC = dt.UTC

FORMULA_SIGNS = "=+-@\uff1d\uff0b\uff0d\uff20"  # = + - @ and their full-width forms
FORMULA_SPACE = " \u00a0\u3000\n\r\t"  # white space skipped before a sign
FORMULA_ALONE = "\t\r"  # formulas whatever follows
# A text can be a formula only if its first character is one of these: a cheap first test.
FORMULA_FIRST = frozenset(FORMULA_SIGNS + FORMULA_SPACE)

EXCEL_MAX_TEXT = 32_767  # characters in one cell (UTF-16 code units, as Excel counts them)

# The control characters openpyxl refuses (`openpyxl.cell.cell.ILLEGAL_CHARACTERS_RE`, spelled out so
# that a CSV export, and the web process, never load openpyxl; a unit test holds them equal), plus
# what XML 1.0 also forbids and lxml refuses: lone surrogates (never from PostgreSQL, but cheap to
# rule out) and the non-characters U+FFFE and U+FFFF (PostgreSQL stores those happily).
OPENPYXL_ILLEGAL = r"[\000-\010]|[\013-\014]|[\016-\037]"
XML_ILLEGAL_RE = re.compile(rf"{OPENPYXL_ILLEGAL}|[\ud800-\udfff\ufffe\uffff]")

# Excel reads `_xHHHH_` inside a string as an escaped character (so "_x0041_" would show as "A"):
# an underscore that starts such a sequence is itself escaped as `_x005F_`. The look-ahead (rather
# than consuming the match) also escapes overlapping sequences such as "_x0041_x0042_".
_OOXML_ESCAPE_RE = re.compile(r"_(?=x[0-9A-Fa-f]{4}_)")


def is_formula(text: str) -> bool:
    """Whether a spreadsheet might run the text as a formula (the rule is in the module docstring)."""
    if not text or text[0] not in FORMULA_FIRST:
        return False
    if text[0] in FORMULA_ALONE:
        return True
    rest = text.lstrip(FORMULA_SPACE)
    return bool(rest) and rest[0] in FORMULA_SIGNS


def neutralize_formula(text: str) -> str:
    """Prefix `'` when a spreadsheet opening the CSV would treat the text as a formula."""
    return "'" + text if is_formula(text) else text


def excel_text(text: str) -> str:
    """Text as an XLSX string cell can hold it: XML-illegal characters stripped, `_xHHHH_` escaped,
    truncated to Excel's 32,767 characters."""
    text = XML_ILLEGAL_RE.sub("", text)
    if "_x" in text:
        text = _OOXML_ESCAPE_RE.sub("_x005F_", text)
    if len(text) > EXCEL_MAX_TEXT // 2:  # only then can it exceed the limit in UTF-16 code units
        text = _truncate_utf16(text, EXCEL_MAX_TEXT)
    return text


def _truncate_utf16(text: str, limit: int) -> str:
    text = text[:limit]
    excess = len(text.encode("utf-16-le")) // 2 - limit
    while excess > 0:  # astral characters count twice
        text = text[: len(text) - (excess + 1) // 2]
        excess = len(text.encode("utf-16-le")) // 2 - limit
    return text


def iso_utc(value: dt.datetime) -> str:
    """ISO 8601 in UTC, e.g. "2024-01-31T09:30:00+00:00" or "2024-01-31T09:30:00.000250+00:00"."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC).isoformat()
    return value.astimezone(UTC).isoformat()


# A moment is shown in an export's zone only between these (UTC) bounds: past them its wall time
# could leave years 1-9999, which Python cannot hold; it stays in UTC (`exports.query.LOCAL_RANGE_SQL`).
LOCAL_FIRST = dt.datetime(1, 1, 2, tzinfo=UTC)
LOCAL_LAST = dt.datetime(9999, 12, 30, tzinfo=UTC)


def iso_in_zone(value: dt.datetime, zone: dt.tzinfo | None) -> str:
    """ISO 8601 with the zone's offset at that moment, e.g. "2024-03-01T09:00:00+09:00" (a naive
    datetime is taken to be UTC); `iso_utc` for zone None and outside LOCAL_FIRST..LOCAL_LAST."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if zone is None or not LOCAL_FIRST <= value <= LOCAL_LAST:
        return iso_utc(value)
    return value.astimezone(zone).isoformat()


def decimal_text(value: decimal.Decimal | float) -> str:
    """Plain digits, never an exponent ("1E+3" -> "1000", 1e-05 -> "0.00001")."""
    if isinstance(value, float):
        value = decimal.Decimal(repr(value))
    return format(value, "f")


def display_text(value: Any, column_type: ColumnType = ColumnType.TEXT) -> str:
    """The text form of one value (see the module docstring); no formula neutralising."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if column_type is ColumnType.MONEY and isinstance(value, int | float | decimal.Decimal):
        return f"{value:.2f}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, decimal.Decimal | float):
        return decimal_text(value)
    if isinstance(value, dt.datetime):
        return iso_utc(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)
