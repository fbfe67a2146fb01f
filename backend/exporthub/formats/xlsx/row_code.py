"""The row function: Python source generated for an export's columns, compiled once with `exec` and
run for every slice of rows.

Why generated code: so that a row is one loop iteration with each cell's common case inline (an int,
a Decimal, a date, a UTC or naive datetime, printable text) and no function call per cell; that is
where the writer's speed comes from (measurements in `writer`). Each cell comes out as
`cells.cell_xml` would write it, and every other value goes to `cell_xml` itself. Only column
letters, style ids and the names passed to `exec` go into the source, never data.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Sequence
from typing import Any

from exporthub.catalog import Column, ColumnType
from exporthub.formats.sanitize import EXCEL_MAX_TEXT
from exporthub.formats.xlsx.cells import EXACT_INTEGERS, cell_xml, is_utc
from exporthub.formats.xlsx.excel import (
    EXCEL_EPOCH,
    EXCEL_EPOCH_ORDINAL,
    EXCEL_EPOCH_UTC,
    LEAP_BUG_DAYS,
    column_letter,
)

CACHE_SIZE = 4096  # cached text cells per column (at most about 1.5 MB each)
CACHED_TEXT = 64  # longer text is not cached

# The generated row function. For three columns (INTEGER, TEXT, DATE) it reads:
#
#   def format_rows(rows, row_number, out, budget):
#       append = out.append
#       for row in rows:
#           v0, v1, v2 = row
#           row_number += 1
#           rs = str(row_number)
#           if v0 is None:
#               c0 = ""
#           elif type(v0) is int and -E < v0 < E:
#               c0 = f'<c r="A{rs}" s="2"><v>{v0}</v></c>'
#           else:
#               c0 = slow0(v0, "A" + rs)
#           ...
#           append(xml := f'<row r="{rs}">{c0}{c1}{c2}</row>'.encode())
#           budget -= len(xml)
#           if budget <= 0:
#               return budget
#       return budget
#
# Only column letters, style ids and the names below go into the source, never data.

# Text repeats (names, departments, statuses): the XML of the first CACHE_SIZE distinct short texts
# of a column is cached (a full cache takes no more, so memory stays bounded and a column of unique
# values costs one dict look-up a cell).
_TEXT_FAST = """\
elif type({v}) is str:
    x = cache{i}.get({v})
    if x is None and {v}.isprintable() and 0 < len({v}) <= MAX_PLAIN and "_x" not in {v}:
        e = {v}
        if "&" in e or "<" in e or ">" in e:
            e = e.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        if e[0] == " " or e[-1] == " ":
            x = f'"{style} t="inlineStr"><is><t xml:space="preserve">{{e}}</t></is></c>'
        else:
            x = f'"{style} t="inlineStr"><is><t>{{e}}</t></is></c>'
        if len({v}) <= CACHED_TEXT and len(cache{i}) < CACHE_SIZE:
            cache{i}[{v}] = x
    {c} = f'<c r="{letter}{{rs}}{{x}}' if x is not None else slow{i}({v}, "{letter}" + rs)
"""
_INT_FAST = """\
elif type({v}) is int and -E < {v} < E:
    {c} = f'<c r="{letter}{{rs}}"{style}><v>{{{v}}}</v></c>'
"""
# The reference writes a Decimal d as "%.16g" % float(d) (openpyxl's safe_string), which costs a
# float() and a "%g", the most expensive part of a payroll row. When d has at most 15 digits (and
# plain notation), d's own digits read back as the same double: float(d) is the double
# nearest d, and the 16-digit text "%.16g" gives is at least as close to it as d is, so both parse
# to float(d). Trailing fraction zeros are stripped as "%g" strips them, so a whole number is an
# integer in both files (openpyxl reads "1000" as an exact int, "1000.5" as a float), so an integer
# must stay below 2**53, where the int is float(d) exactly. The test is cheap: str(d) of at most 15
# characters, digits but for a sign and a point (no exponent, NaN or Infinity); a point third from
# the end is enough (an exponent takes at least the last three characters, "E+5"). The text can differ from
# the reference's (8.03 rather than 8.029999999999999), the cell's value cannot. Longer Decimals
# go through float() and "%.16g" like the reference.
# The digits of a Decimal `k` (its str, or PostgreSQL's text of a numeric) that need no float():
_DIGITS = """\
    if k[-3:-2] == "." and len(k) <= 15:  # two places, as NUMERIC(p, 2) gives them
        {c} = f'<c r="{letter}{{rs}}"{style}><v>{{k if k[-1] != "0" else k[:-1] if k[-2] != "0" else k[:-3]}}</v></c>'
    elif len(k) <= 15 and k.lstrip("-").replace(".", "", 1).isdigit():  # plain, at most 15 digits
        {c} = f'<c r="{letter}{{rs}}"{style}><v>{{k.rstrip("0").rstrip(".") if "." in k else k}}</v></c>'
"""
_DECIMAL_FAST = (
    """\
elif type({v}) is Decimal:
    k = str({v})
"""
    + _DIGITS
    + """\
    elif (x := float({v})) - x == 0.0:
        {c} = f'<c r="{letter}{{rs}}"{style}><v>{{x:.16g}}</v></c>'
    else:
        {c} = slow{i}({v}, "{letter}" + rs)
"""
)
# Prepared cells (`prepared=True`, as the export's XLSX query selects them: exports/query.py) spare
# the worker's one busy core work that PostgreSQL, on the other, does for less:
# - MONEY and DECIMAL come as PostgreSQL's text of the numeric (`numeric::text`: plain digits at the
#   column's scale, never an exponent; NaN, Infinity), which asyncpg hands over as it is, where
#   building a Decimal cost 0.6 s of the worker's CPU per 500,000 payroll rows (five such columns).
#   The digits are the Decimal's own, so the Decimal rules above apply to them unchanged; anything
#   else becomes the Decimal it spells and takes the slow path.
# - A DATETIME or a DATE comes as two values: its Excel serial where the fast path would take it (as
#   the fast path computes it: whole days, for a datetime plus whole seconds / 86400 as a float),
#   else None; and the value itself only where there is no serial (before 1900-03-01, +-infinity),
#   for the slow path.
_NUMERIC_TEXT_FAST = (
    """\
elif type({v}) is str:
    k = {v}
"""
    + _DIGITS
    + """\
    else:
        {c} = slow{i}(numeric(k), "{letter}" + rs)
"""
)
_SERIAL = """\
if {v} is not None:
    {c} = f'<c r="{letter}{{rs}}"{style}><v>{{{v}{spec}}}</v></c>'
elif {w} is None:
    {c} = ''
else:
    {c} = slow{i}({w}, "{letter}" + rs)
"""
_DATE_FAST = """\
elif type({v}) is date and (d := {v}.toordinal() - EPOCH_ORDINAL) > LEAP_BUG_DAYS:
    {c} = f'<c r="{letter}{{rs}}"{style}><v>{{d}}</v></c>'
"""
_DATETIME_FAST = """\
elif (
    type({v}) is datetime
    and ((z := {v}.tzinfo) is UTC or z is None)
    and (d := (t := {v} - (EPOCH_NAIVE if z is None else EPOCH_UTC)).days) > LEAP_BUG_DAYS
):
    {c} = f'<c r="{letter}{{rs}}"{style}><v>{{d + t.seconds / 86400:.16g}}</v></c>'
"""
_BOOLEAN_FAST = """\
elif {v} is True:
    {c} = f'<c r="{letter}{{rs}}"{style} t="b"><v>1</v></c>'
elif {v} is False:
    {c} = f'<c r="{letter}{{rs}}"{style} t="b"><v>0</v></c>'
"""
_FAST_PATHS = {
    ColumnType.TEXT: (_TEXT_FAST,),
    ColumnType.INTEGER: (_INT_FAST, _DECIMAL_FAST),
    ColumnType.DECIMAL: (_DECIMAL_FAST, _INT_FAST),
    ColumnType.MONEY: (_DECIMAL_FAST, _INT_FAST),
    ColumnType.DATE: (_DATE_FAST,),
    ColumnType.DATETIME: (_DATETIME_FAST,),
    ColumnType.BOOLEAN: (_BOOLEAN_FAST,),
}

_PREPARED_PATHS = {
    ColumnType.DECIMAL: (_NUMERIC_TEXT_FAST, _DECIMAL_FAST, _INT_FAST),
    ColumnType.MONEY: (_NUMERIC_TEXT_FAST, _DECIMAL_FAST, _INT_FAST),
}

RowFunction = Callable[[Sequence[Sequence[Any]], int, list[bytes], int], int]


def value_count(columns: Sequence[Column], prepared: bool) -> int:
    """How many values a row of these columns has: one a column, two for a prepared date or datetime."""
    return len(columns) + sum(_serial(column, prepared) for column in columns)


def _serial(column: Column, prepared: bool) -> bool:
    return prepared and column.type in (ColumnType.DATE, ColumnType.DATETIME)


def numeric(text: str) -> decimal.Decimal | str:
    """The Decimal that numeric text spells; text that spells none stays text (a text cell)."""
    try:
        return decimal.Decimal(text)
    except decimal.InvalidOperation:
        return text


def row_function(
    columns: Sequence[Column], styles: Sequence[str], zone: dt.tzinfo | None = None, *, prepared: bool = False
) -> RowFunction:
    """Compile `format_rows(rows, row_number, out, budget)`: appends one `<row>` (UTF-8) per row to
    `out` (so the rows before a failing one are kept, as the reference keeps them), and returns
    `budget` less their bytes as soon as that is used up, or at the end. With a `zone` other than
    UTC, aware datetimes go to `cell_xml` (its wall time); naive ones, wall times already, stay on the
    fast path. UTC, an account's default zone, keeps UTC datetimes on the fast path (half an export's
    time when they went to `cell_xml`). With `prepared`, rows come as the export's XLSX query selects
    them (see `_NUMERIC_TEXT_FAST` and `_SERIAL`): `value_count(columns, prepared)` values a row."""
    names: dict[str, Any] = {
        "E": EXACT_INTEGERS,
        "MAX_PLAIN": EXCEL_MAX_TEXT // 2,  # no shorter text can exceed Excel's limit (excel_text)
        "Decimal": decimal.Decimal,
        "date": dt.date,
        "datetime": dt.datetime,
        "UTC": dt.UTC,
        "EPOCH_ORDINAL": EXCEL_EPOCH_ORDINAL,
        "EPOCH_UTC": EXCEL_EPOCH_UTC,
        "EPOCH_NAIVE": EXCEL_EPOCH,
        "LEAP_BUG_DAYS": LEAP_BUG_DAYS,
        "CACHE_SIZE": CACHE_SIZE,
        "CACHED_TEXT": CACHED_TEXT,
        "numeric": numeric,
    }
    width = len(columns)
    values = [f"v{i}, w{i}" if _serial(column, prepared) else f"v{i}" for i, column in enumerate(columns)]
    body = [
        f"{', '.join(values)}, = row",
        "row_number += 1",
        "rs = str(row_number)",
    ]
    for i, (column, style) in enumerate(zip(columns, styles, strict=True)):
        letter, v, c = column_letter(i + 1), f"v{i}", f"c{i}"
        names[f"slow{i}"] = _slow_path(column.type, style, zone)
        names[f"cache{i}"] = {}
        if _serial(column, prepared):
            spec = ":.16g" if column.type is ColumnType.DATETIME else ""  # a date's serial is an int
            body += _SERIAL.format(i=i, v=v, w=f"w{i}", c=c, letter=letter, style=style, spec=spec).splitlines()
            continue
        body += [f"if {v} is None:", f"    {c} = ''"]
        templates = (_PREPARED_PATHS.get(column.type) if prepared else None) or _FAST_PATHS.get(column.type, ())
        for template in templates:
            if template is _DATETIME_FAST and not is_utc(zone):  # only a naive datetime is a wall time already
                template = template.replace("is UTC or z is None", "is None")
            body += template.format(i=i, v=v, c=c, letter=letter, style=style).splitlines()
        body += ["else:", f"    {c} = slow{i}({v}, '{letter}' + rs)"]
    cells = "".join(f"{{c{i}}}" for i in range(width))
    body += [
        # Encoded a row at a time: one row with a character past Latin-1 (a Cyrillic name) made a
        # whole joined piece UCS-2, which then took 2.5x longer to join and encode.
        f"append(xml := f'<row r=\"{{rs}}\">{cells}</row>'.encode())",
        "budget -= len(xml)",
        "if budget <= 0:",
        "    return budget",
    ]
    source = "def format_rows(rows, row_number, out, budget):\n    append = out.append\n    for row in rows:\n"
    source += "".join(f"        {line}\n" for line in body) + "    return budget\n"
    code = compile(source, "<exporthub.formats.xlsx.row_code row function>", "exec")
    exec(code, names)  # noqa: S102 - our own source: column letters and style ids only
    function: RowFunction = names["format_rows"]
    return function


def _slow_path(column_type: ColumnType, style: str, zone: dt.tzinfo | None) -> Callable[[Any, str], str]:
    return lambda value, ref: cell_xml(column_type, value, ref, style, zone)
