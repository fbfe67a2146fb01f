"""The XLSX writer: our own streaming SpreadsheetML, typed and styled cells, one sheet per N rows.

Each sheet has a bold header row, panes frozen below it, an autofilter over header and data, and the
columns' widths. After `max_rows_per_sheet` data rows the export goes on in "<title> (2)", "(3)", ...

Cells, by column type (a value of an unexpected Python type is written as text, see below):
- TEXT: always a string cell (`t="inlineStr"`), so "=SUM(A1)", " =SUM(A1)", "\uff1dSUM(A1)" or "#N/A"
  stays text and nothing is ever a formula (whatever `sanitize.is_formula` says, which is the CSV
  rule); hence no quote prefix as in CSV, the text is kept as is, except that characters
  XML forbids are stripped, `_xHHHH_` is escaped so that Excel shows it literally, and text is cut
  at Excel's 32,767 characters (`sanitize.excel_text`). Empty text is an empty cell.
- INTEGER ("0"), DECIMAL ("#,##0.00##"), MONEY ("#,##0.00"): numbers. Excel numbers are doubles
  shown to 15 significant digits, so an integer of 10**15 or more is written as text to keep every
  digit; Decimals become floats (exact up to 15 significant digits); NaN and infinities are text.
- DATE ("yyyy-mm-dd") and DATETIME ("yyyy-mm-dd hh:mm:ss"): Excel serial dates. Excel has no time
  zone: aware datetimes are converted to UTC and made naive. Fractions of a second are dropped
  (Excel would round them into the displayed second, and 23:59:59.7 would show the next day).
  Dates before 1900-01-01, which Excel cannot show, are ISO text.
- BOOLEAN: boolean cells.

The reference is openpyxl's write-only workbook given the same cells (`tests/oracles/xlsx_openpyxl.py`,
test code only): this writer makes its workbook cell for cell, about 20x faster (CPU time). Values of
an unexpected type take a slow path that follows the reference line by line (`_cell_xml`), and the
cell XML is what openpyxl writes, so openpyxl, Excel or LibreOffice read back the same value, type
and number format:
- numbers read back as the very value the reference stores: an int below 10**15 as its digits, a
  Decimal as its own digits when that gives the same double as the reference's
  `"%.16g" % float(decimal)` (up to 15 digits, see `_DECIMAL_FAST`: "8.03" where openpyxl writes
  "8.029999999999999", both the double 8.03), otherwise as openpyxl writes it; a whole Decimal is an
  integer in both files ("7.00" comes back as the int 7);
- dates and datetimes are Excel serials computed as openpyxl's `to_excel` does (days since
  1899-12-30, one day less up to 1900-02-28 for Excel's 1900 leap-year bug; the seconds of the day
  / 86400, fractions of a second dropped), written with "%.16g" like openpyxl;
- text is an inline string (`t="inlineStr"`, nothing to hold in memory), escaped as lxml escapes it
  (`&amp; &lt; &gt;`, `\r` as `&#13;` so that it survives XML's line-end normalisation), with
  `xml:space="preserve"` when it has leading or trailing white space;
- the sheet layout (bold header, frozen pane, column widths, autofilter and its `_FilterDatabase`
  name, sheet names and the rollover after `max_rows_per_sheet` rows) is the reference's.
What differs and no reader sees: style ids (ours are fixed per column, openpyxl numbers them in order
of first use), `t="n"` left out (the default), some Decimals' digits (above), docProps.
`tests/unit/formats/test_formats_xlsx_stream.py` writes random rows with both writers and compares
every cell as openpyxl loads it, and the parsed cell XML.

How it is fast: one row function is generated for the export's columns (`_row_function`), so a row
is one loop iteration with each cell's common case inline (an int, a Decimal, a date, a UTC or naive
datetime, printable text; the XML of short text is cached per column) and no function call per cell.
The XML goes into the zip entry in pieces of about 1 MiB (`CHUNK_CHARS`), deflated by ISA-L (`isal`)
rather than zlib: at level 1 it is 3.7x faster than zlib's level 1 and makes smaller files. Nothing
is kept between batches but the bounded text cache: memory does not grow with the row count.

Measured here (2 cores shared with other sessions' work, load 1.2-3; Python 3.11; 500,000 rows x the
16 PAYROLL columns; the writer alone, batches of 5,000 rows; /tmp scripts; wall time swings with the
load, CPU time much less):

    writer                               wall s    CPU s   file MB   peak RSS over the process's
    openpyxl reference (load 4)            195      127        54     +2 MiB (and ~400 MB of temp files)
    this, ISA-L level 1 (the default)    5.9-9.4  6.0-8.3      64     +6 MiB, the same at 50,000 rows
    this, ISA-L level 1, threaded        7.4-9.7  6.8-8.5      64     +12 MiB
    this, ISA-L level 3                    7.8      7.6        61     +6 MiB
    this, zlib level 1 / threaded       10.4 / 8.8   8.9 / 10.7  69   +6 / +12 MiB
    this, zlib level 6 / threaded      19.9 / 12.2  14.8 / 15.7  53   +6 / +12 MiB

A row costs about 7-10 us to format, 1 us to encode, 1 us to deflate (ISA-L 1; zlib 1: 4 us). With
ISA-L a compressor thread (`threaded=True`, a queue of pieces) costs more in GIL hand-overs than it
gains, hence off by default; deflate releases the GIL anyway, so in the export pipeline the event
loop reads the next batch meanwhile. Without isal installed zlib is used, at the same level.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import math
import pathlib
import queue
import re
import threading
import zipfile
import zlib
from collections.abc import Callable, Sequence
from typing import Any

try:  # ISA-L's deflate: about 3.7x zlib's speed at level 1, and smaller files
    from isal import isal_zlib
except ImportError:  # pragma: no cover - isal is a dependency; zlib then does the same job slower
    isal_zlib = None  # type: ignore[assignment]
from openpyxl.compat import safe_string
from openpyxl.styles.numbers import BUILTIN_FORMATS_REVERSE
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import to_excel
from openpyxl.writer.theme import theme_xml

from exporthub.catalog import Column, ColumnType
from exporthub.formats.sanitize import EXCEL_MAX_TEXT, XML_ILLEGAL_RE, display_text, excel_text

DEFAULT_COMPRESSLEVEL = 1  # ISA-L's fastest, and still smaller files than zlib's level 1
CHUNK_CHARS = 1 << 20  # XML handed to the compressor thread in pieces of about this size (and a row)
QUEUE_CHUNKS = 4  # pieces waiting for it at most
SLICE_ROWS = 4096  # rows given to the row function at a time
CACHE_SIZE = 4096  # cached text cells per column (at most about 1.5 MB each)
CACHED_TEXT = 64  # longer text is not cached

MAX_ROWS_PER_SHEET = 1_048_575  # Excel's 1,048,576 rows, less the header
MAX_SHEET_TITLE = 31
DEFAULT_TITLE = "Export"

NUMBER_FORMATS = {
    ColumnType.INTEGER: "0",
    ColumnType.DECIMAL: "#,##0.00##",
    ColumnType.MONEY: "#,##0.00",
    ColumnType.DATE: "yyyy-mm-dd",
    ColumnType.DATETIME: "yyyy-mm-dd hh:mm:ss",
}

_EXACT_INTEGERS = 10**15  # |n| below this shows every digit in Excel; from here on integers are text
_EXCEL_EPOCH = dt.date(1899, 12, 30)
_EXCEL_EPOCH_ORDINAL = _EXCEL_EPOCH.toordinal()
_EXCEL_EPOCH_NAIVE = dt.datetime(1899, 12, 30)
_EXCEL_EPOCH_UTC = _EXCEL_EPOCH_NAIVE.replace(tzinfo=dt.UTC)
_FIRST_EXCEL_DATE = dt.date(1900, 1, 1)
_FIRST_EXCEL_DATETIME = dt.datetime(1900, 1, 1)
_LEAP_BUG_DAYS = 60  # serials up to here (1900-02-28) are one less; fast paths only above it
_SHEET_FORBIDDEN_RE = re.compile(r"[\[\]:*?/\\]")


_HEADER_STYLE = 1  # cellXfs 0 is the default, 1 the bold header; then one per number format

_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


def sheet_title(title: str, number: int = 1) -> str:
    """An Excel sheet name: at most 31 characters, none of []:*?/\\, no leading or trailing quote,
    not "History"; sheets after the first get " (n)"."""
    name = _SHEET_FORBIDDEN_RE.sub("-", XML_ILLEGAL_RE.sub("", title))
    name = " ".join(name.split()).strip("' ") or DEFAULT_TITLE
    if name.casefold() == "history":  # reserved by Excel
        name = f"{name} export"
    suffix = f" ({number})" if number > 1 else ""
    return name[: MAX_SHEET_TITLE - len(suffix)].rstrip("' ") + suffix


def _escape_text(text: str) -> str:
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


def _escape_attribute(text: str) -> str:
    return _escape_text(text).replace('"', "&quot;").replace("\n", "&#10;").replace("\t", "&#9;")


def _inline_string(ref: str, style: str, text: str) -> str:
    space = ' xml:space="preserve"' if text != text.strip() else ""
    return f'<c r="{ref}"{style} t="inlineStr"><is><t{space}>{_escape_text(text)}</t></is></c>'


def _excel_datetime(value: dt.datetime) -> dt.datetime | None:
    """Naive UTC without fractions of a second, None before 1900 (the module docstring's rule)."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    value = value.replace(microsecond=0)
    return value if value >= _FIRST_EXCEL_DATETIME else None


def _cell_xml(column_type: ColumnType, value: Any, ref: str, style: str) -> str:
    """One non-None value as the reference writes it (the oracle's `_fill` + openpyxl's cell writer):
    the slow path, for every value the generated fast paths do not take."""

    def text(value: Any) -> str:
        value = excel_text(value if type(value) is str else display_text(value, column_type))
        return _inline_string(ref, style, value) if value else ""

    def number(value: Any) -> str:
        return f'<c r="{ref}"{style}><v>{safe_string(value)}</v></c>'

    if column_type in (ColumnType.INTEGER, ColumnType.DECIMAL, ColumnType.MONEY):
        kind = type(value)
        if kind is int:
            return number(value) if -_EXACT_INTEGERS < value < _EXACT_INTEGERS else text(value)
        if kind is decimal.Decimal or kind is float:
            as_float = float(value)
            return number(as_float) if math.isfinite(as_float) else text(value)
        return text(value)
    if column_type in (ColumnType.DATE, ColumnType.DATETIME):
        if isinstance(value, dt.datetime):
            moment = _excel_datetime(value)
            return text(value) if moment is None else number(to_excel(moment))
        if isinstance(value, dt.date) and value >= _FIRST_EXCEL_DATE:
            return number(to_excel(value))
        return text(value)
    if column_type is ColumnType.BOOLEAN:
        if type(value) is not bool:
            return text(value)
        return f'<c r="{ref}"{style} t="b"><v>{safe_string(value)}</v></c>'
    return text(value)


# ---------------------------------------------------------------------------------------------------
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
#           append(xml := f'<row r="{rs}">{c0}{c1}{c2}</row>')
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
_DECIMAL_FAST = """\
elif type({v}) is Decimal:
    k = str({v})
    if k[-3:-2] == "." and len(k) <= 15:  # two places, as NUMERIC(p, 2) gives them
        {c} = f'<c r="{letter}{{rs}}"{style}><v>{{k if k[-1] != "0" else k[:-1] if k[-2] != "0" else k[:-3]}}</v></c>'
    elif len(k) <= 15 and k.lstrip("-").replace(".", "", 1).isdigit():  # plain, at most 15 digits
        {c} = f'<c r="{letter}{{rs}}"{style}><v>{{k.rstrip("0").rstrip(".") if "." in k else k}}</v></c>'
    elif (x := float({v})) - x == 0.0:
        {c} = f'<c r="{letter}{{rs}}"{style}><v>{{x:.16g}}</v></c>'
    else:
        {c} = slow{i}({v}, "{letter}" + rs)
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

RowFunction = Callable[[Sequence[Sequence[Any]], int, list[str], int], int]


def _row_function(columns: Sequence[Column], styles: Sequence[str]) -> RowFunction:
    """Compile `format_rows(rows, row_number, out, budget)`: appends one `<row>` string per row to
    `out` (so the rows before a failing one are kept, as the reference keeps them), and returns
    `budget` less their length as soon as that is used up, or at the end."""
    names: dict[str, Any] = {
        "E": _EXACT_INTEGERS,
        "MAX_PLAIN": EXCEL_MAX_TEXT // 2,  # no shorter text can exceed Excel's limit (excel_text)
        "Decimal": decimal.Decimal,
        "date": dt.date,
        "datetime": dt.datetime,
        "UTC": dt.UTC,
        "EPOCH_ORDINAL": _EXCEL_EPOCH_ORDINAL,
        "EPOCH_UTC": _EXCEL_EPOCH_UTC,
        "EPOCH_NAIVE": _EXCEL_EPOCH_NAIVE,
        "LEAP_BUG_DAYS": _LEAP_BUG_DAYS,
        "CACHE_SIZE": CACHE_SIZE,
        "CACHED_TEXT": CACHED_TEXT,
    }
    width = len(columns)
    body = [
        f"{', '.join(f'v{i}' for i in range(width))}, = row",
        "row_number += 1",
        "rs = str(row_number)",
    ]
    for i, (column, style) in enumerate(zip(columns, styles, strict=True)):
        letter, v, c = get_column_letter(i + 1), f"v{i}", f"c{i}"
        names[f"slow{i}"] = _slow_path(column.type, style)
        names[f"cache{i}"] = {}
        body += [f"if {v} is None:", f"    {c} = ''"]
        for template in _FAST_PATHS.get(column.type, ()):
            body += template.format(i=i, v=v, c=c, letter=letter, style=style).splitlines()
        body += ["else:", f"    {c} = slow{i}({v}, '{letter}' + rs)"]
    cells = "".join(f"{{c{i}}}" for i in range(width))
    body += [
        f"append(xml := f'<row r=\"{{rs}}\">{cells}</row>')",
        "budget -= len(xml)",
        "if budget <= 0:",
        "    return budget",
    ]
    source = "def format_rows(rows, row_number, out, budget):\n    append = out.append\n    for row in rows:\n"
    source += "".join(f"        {line}\n" for line in body) + "    return budget\n"
    code = compile(source, "<exporthub.formats.xlsx_stream row function>", "exec")
    exec(code, names)  # noqa: S102 - our own source: column letters and style ids only
    function: RowFunction = names["format_rows"]
    return function


def _slow_path(column_type: ColumnType, style: str) -> Callable[[Any, str], str]:
    return lambda value, ref: _cell_xml(column_type, value, ref, style)


# ---------------------------------------------------------------------------------------------------
# The package parts besides the sheets.


def _styles_xml(formats: Sequence[str]) -> tuple[str, dict[str, int]]:
    """styles.xml with the default and bold-header xfs, then one xf per number format; returns the
    xml and each format's xf id."""
    custom: dict[str, int] = {}
    xfs = [
        '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>',
        '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>',
    ]
    ids: dict[str, int] = {}
    for number_format in formats:
        if number_format in ids:
            continue
        builtin = BUILTIN_FORMATS_REVERSE.get(number_format)
        fmt_id = builtin if builtin is not None else custom.setdefault(number_format, 164 + len(custom))
        ids[number_format] = len(xfs)
        xfs.append(f'<xf numFmtId="{fmt_id}" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>')
    num_fmts = "".join(
        f'<numFmt numFmtId="{fmt_id}" formatCode="{_escape_attribute(code)}"/>' for code, fmt_id in custom.items()
    )
    xml = (
        f'{_XML_DECL}<styleSheet xmlns="{_MAIN_NS}">'
        + (f'<numFmts count="{len(custom)}">{num_fmts}</numFmts>' if custom else "")
        + '<fonts count="2"><font><name val="Calibri"/><family val="2"/><color theme="1"/><sz val="11"/>'
        '<scheme val="minor"/></font><font><b val="1"/></font></fonts>'
        '<fills count="2"><fill><patternFill/></fill><fill><patternFill patternType="gray125"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        f'<cellXfs count="{len(xfs)}">{"".join(xfs)}</cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        '<tableStyles count="0" defaultTableStyle="TableStyleMedium9" defaultPivotStyle="PivotStyleLight16"/>'
        "</styleSheet>"
    )
    return xml, ids


def _workbook_xml(sheets: Sequence[tuple[str, str]]) -> str:
    """sheets: (title, autofilter range such as "$A$1:$G$5")."""
    entries = "".join(
        f'<sheet name="{_escape_attribute(title)}" sheetId="{n}" state="visible" r:id="rId{n}"/>'
        for n, (title, _) in enumerate(sheets, start=1)
    )
    names = "".join(
        f'<definedName name="_xlnm._FilterDatabase" localSheetId="{n}" hidden="1">'
        f"{_escape_text(_quote_sheet(title))}!{ref}</definedName>"
        for n, (title, ref) in enumerate(sheets)
    )
    return (
        f'{_XML_DECL}<workbook xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}"><workbookPr/>'
        '<bookViews><workbookView visibility="visible" minimized="0" showHorizontalScroll="1" '
        'showVerticalScroll="1" showSheetTabs="1" tabRatio="600" firstSheet="0" activeTab="0" '
        'autoFilterDateGrouping="1"/></bookViews>'
        f"<sheets>{entries}</sheets><definedNames>{names}</definedNames>"
        '<calcPr calcId="124519" fullCalcOnLoad="1"/></workbook>'
    )


def _quote_sheet(title: str) -> str:
    return "'" + title.replace("'", "''") + "'"


def _workbook_rels(sheets: int) -> str:
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    items = [
        f'<Relationship Id="rId{n}" Type="{rel}/worksheet" Target="worksheets/sheet{n}.xml"/>'
        for n in range(1, sheets + 1)
    ]
    items.append(f'<Relationship Id="rId{sheets + 1}" Type="{rel}/styles" Target="styles.xml"/>')
    items.append(f'<Relationship Id="rId{sheets + 2}" Type="{rel}/theme" Target="theme/theme1.xml"/>')
    return f'{_XML_DECL}<Relationships xmlns="{_PKG_REL_NS}">{"".join(items)}</Relationships>'


def _content_types(sheets: int) -> str:
    sml = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    overrides = [
        ("/xl/workbook.xml", f"{sml}.sheet.main+xml"),
        ("/xl/styles.xml", f"{sml}.styles+xml"),
        ("/xl/theme/theme1.xml", "application/vnd.openxmlformats-officedocument.theme+xml"),
        ("/docProps/core.xml", "application/vnd.openxmlformats-package.core-properties+xml"),
        ("/docProps/app.xml", "application/vnd.openxmlformats-officedocument.extended-properties+xml"),
        *((f"/xl/worksheets/sheet{n}.xml", f"{sml}.worksheet+xml") for n in range(1, sheets + 1)),
    ]
    return (
        f'{_XML_DECL}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        + "".join(f'<Override PartName="{part}" ContentType="{kind}"/>' for part, kind in overrides)
        + "</Types>"
    )


_ROOT_RELS = (
    f'{_XML_DECL}<Relationships xmlns="{_PKG_REL_NS}">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'officeDocument" Target="xl/workbook.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/'
    'core-properties" Target="docProps/core.xml"/>'
    '<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'extended-properties" Target="docProps/app.xml"/>'
    "</Relationships>"
)
_APP_XML = (
    f'{_XML_DECL}<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
    "<Application>ExportHub</Application></Properties>"
)


def _core_xml(now: dt.datetime) -> str:
    stamp = now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f'{_XML_DECL}<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/'
        'core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><dc:creator>ExportHub</dc:creator>'
        f'<dcterms:created xsi:type="dcterms:W3CDTF">{stamp}</dcterms:created>'
        f'<dcterms:modified xsi:type="dcterms:W3CDTF">{stamp}</dcterms:modified></cp:coreProperties>'
    )


# ---------------------------------------------------------------------------------------------------
# The compressor thread.

_OPEN, _CLOSE, _STOP = "open", "close", "stop"


_ZLIB_COMPRESS = type(zlib.compressobj())


def _use_isal(entry: Any, level: int | None) -> None:
    """Swap the zlib compressor of a zip entry being written (`zipfile._ZipWriteFile._compressor`,
    so in CPython 3.6 to 3.13 at least) for ISA-L's, which makes the same raw deflate stream; where
    that attribute is not a zlib compressor, zlib stays."""
    if level is not None and isal_zlib is not None and type(getattr(entry, "_compressor", None)) is _ZLIB_COMPRESS:
        entry._compressor = isal_zlib.compressobj(level, zlib.DEFLATED, -15)


class _Compressor:
    """Writes queued XML (str) into the zip entry that is open, in its own thread. Commands are
    tuples: (_OPEN, name), (_CLOSE,), (_STOP,). After a failure it drains the queue (so that `put`
    never blocks for ever) and keeps the first error for the writer to raise."""

    def __init__(self, archive: zipfile.ZipFile, *, threaded: bool, isal_level: int | None) -> None:
        self._archive = archive
        self._isal_level = isal_level
        self._entry: Any = None
        self.error: BaseException | None = None
        self._queue: queue.Queue[Any] | None = None
        self._thread: threading.Thread | None = None
        if threaded:
            self._queue = queue.Queue(maxsize=QUEUE_CHUNKS)
            self._thread = threading.Thread(target=self._run, name="xlsx-compressor", daemon=True)
            self._thread.start()

    def put(self, item: Any) -> None:
        if self.error is not None:
            raise self.error
        if self._queue is None:
            try:
                self._handle(item)
            except BaseException as error:  # the entry is broken: every later put fails the same way
                self.error = error
                raise
        else:
            self._queue.put(item)

    def stop(self) -> None:
        """Wait until everything queued is written (or dropped after an error)."""
        if self._queue is not None and self._thread is not None:
            self._queue.put((_STOP,))
            self._thread.join()
            self._queue = self._thread = None

    def discard_entry(self) -> None:
        entry, self._entry = self._entry, None
        if entry is not None:
            with contextlib.suppress(Exception):
                entry.close()

    def _run(self) -> None:
        assert self._queue is not None
        get = self._queue.get
        while True:
            item = get()
            if type(item) is tuple and item[0] == _STOP:
                return
            if self.error is None:
                try:
                    self._handle(item)
                except BaseException as error:
                    self.error = error

    def _handle(self, item: Any) -> None:
        if type(item) is str:
            self._entry.write(item.encode())
        elif item[0] == _OPEN:
            self._entry = self._archive.open(item[1], "w", force_zip64=True)
            _use_isal(self._entry, self._isal_level)
        elif item[0] == _CLOSE:
            entry, self._entry = self._entry, None
            entry.close()


class StreamingXlsxWriter:
    """`Writer` for XLSX: `title` (sheet names come from it) and `max_rows_per_sheet`, plus
    `compresslevel` (0-9; 1-3 are ISA-L's levels when `use_isal` and isal is installed, zlib's
    otherwise) and `threaded` (compress in a second thread)."""

    def __init__(
        self,
        path: pathlib.Path,
        columns: Sequence[Column],
        *,
        title: str = "",
        max_rows_per_sheet: int = MAX_ROWS_PER_SHEET,
        compresslevel: int = DEFAULT_COMPRESSLEVEL,
        threaded: bool = False,
        use_isal: bool = True,
    ) -> None:
        if not 1 <= max_rows_per_sheet <= MAX_ROWS_PER_SHEET:
            raise ValueError(f"max_rows_per_sheet must be between 1 and {MAX_ROWS_PER_SHEET}")
        self._columns = tuple(columns)
        self._title = title
        self._max_rows = max_rows_per_sheet
        self._last_column = get_column_letter(len(self._columns))
        formats = [NUMBER_FORMATS.get(column.type) for column in self._columns]
        self._styles_xml, ids = _styles_xml([f for f in formats if f is not None])
        styles = [f' s="{ids[f]}"' if f is not None else "" for f in formats]
        self._format_rows = _row_function(self._columns, styles)
        self._sheet_head = self._make_sheet_head()
        self._sheets: list[tuple[str, str]] = []  # (title, autofilter range) of finished sheets
        self._rows_in_sheet = 0
        self._pending: list[str] = []  # rows of this batch not yet handed to the compressor
        self._budget = CHUNK_CHARS  # characters until they are
        self._finished = False
        self._archive: zipfile.ZipFile | None = None
        self._compressor: _Compressor | None = None
        # Opened now so that an unusable path fails at once.
        self._file = open(path, "wb")  # noqa: SIM115 - closed by close/abort
        try:
            self._archive = zipfile.ZipFile(
                self._file, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=compresslevel
            )
            self._archive.writestr("_rels/.rels", _ROOT_RELS)
            self._archive.writestr("docProps/app.xml", _APP_XML)
            self._archive.writestr("docProps/core.xml", _core_xml(dt.datetime.now(dt.UTC)))
            isal_level = compresslevel if use_isal and isal_zlib is not None and 1 <= compresslevel <= 3 else None
            self._compressor = _Compressor(self._archive, threaded=threaded, isal_level=isal_level)
            self._open_sheet()
        except BaseException:
            self.abort()
            raise

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        if self._finished:
            raise ValueError("write_rows on a closed XLSX writer")
        if not isinstance(rows, list | tuple):
            rows = list(rows)
        out, done, total = self._pending, 0, len(rows)
        while done < total:
            if self._rows_in_sheet >= self._max_rows:
                self._close_sheet()
                self._open_sheet()
            take = min(total - done, self._max_rows - self._rows_in_sheet, SLICE_ROWS)
            before = len(out)
            try:
                self._budget = self._format_rows(rows[done : done + take], self._rows_in_sheet + 1, out, self._budget)
            except ValueError:
                bad = rows[done + len(out) - before]
                if len(bad) != len(self._columns):
                    raise ValueError(f"a row has {len(bad)} values for {len(self._columns)} columns") from None
                raise
            finally:  # the rows before a failing one are written, as by the reference
                written = len(out) - before
                self._rows_in_sheet += written
                done += written
            if self._budget <= 0:
                self._flush()
        self._flush()  # nothing is kept between batches

    def close(self) -> None:
        if self._finished:
            return
        assert self._archive is not None and self._compressor is not None
        try:
            self._close_sheet()
            self._compressor.stop()
            if self._compressor.error is not None:
                raise self._compressor.error
            archive, count = self._archive, len(self._sheets)
            archive.writestr("xl/workbook.xml", _workbook_xml(self._sheets))
            archive.writestr("xl/_rels/workbook.xml.rels", _workbook_rels(count))
            archive.writestr("xl/styles.xml", self._styles_xml)
            archive.writestr("xl/theme/theme1.xml", theme_xml)
            archive.writestr("[Content_Types].xml", _content_types(count))
            archive.close()
            self._file.close()
        except BaseException:
            self.abort()
            raise
        self._finished = True

    def abort(self) -> None:
        if self._finished:
            return
        self._finished = True
        self._pending = []
        if self._compressor is not None:
            with contextlib.suppress(Exception):
                self._compressor.stop()
            self._compressor.discard_entry()
        if self._archive is not None:
            with contextlib.suppress(Exception):  # writes a directory into a file the caller deletes
                self._archive.close()
        with contextlib.suppress(OSError):
            self._file.close()

    def __del__(self) -> None:
        # A writer dropped without close or abort releases its file, its thread and the zip entry
        # (whose own finaliser would otherwise complain about the open entry).
        with contextlib.suppress(Exception):
            if hasattr(self, "_file"):
                self.abort()

    def _open_sheet(self) -> None:
        """Start a sheet; its zip entry (and compressor) is opened with its first piece of XML."""
        number = len(self._sheets) + 1
        self._sheet_name = sheet_title(self._title, number)
        self._sheet_entry: str | None = f"xl/worksheets/sheet{number}.xml"
        self._rows_in_sheet = 0
        self._pending.append(self._sheet_head)
        self._budget -= len(self._sheet_head)

    def _flush(self) -> None:
        assert self._compressor is not None
        if self._pending:
            if self._sheet_entry is not None:
                self._compressor.put((_OPEN, self._sheet_entry))
                self._sheet_entry = None
            self._compressor.put("".join(self._pending))
            self._pending.clear()
        self._budget = CHUNK_CHARS

    def _close_sheet(self) -> None:
        assert self._compressor is not None
        self._flush()
        last_row = self._rows_in_sheet + 1
        self._compressor.put(
            f'</sheetData><autoFilter ref="A1:{self._last_column}{last_row}"/>'
            '<pageMargins left="0.75" right="0.75" top="1" bottom="1" header="0.5" footer="0.5"/></worksheet>'
        )
        self._compressor.put((_CLOSE,))
        self._sheets.append((self._sheet_name, f"$A$1:${self._last_column}${last_row}"))

    def _make_sheet_head(self) -> str:
        cols = "".join(
            f'<col min="{n}" max="{n}" width="{safe_string(column.width)}" customWidth="1"/>'
            for n, column in enumerate(self._columns, start=1)
        )
        header = []
        for n, column in enumerate(self._columns, start=1):
            ref, label = f"{get_column_letter(n)}1", excel_text(column.label)
            style = f' s="{_HEADER_STYLE}"'
            # An empty label is still a (bold, empty) cell in the reference.
            header.append(_inline_string(ref, style, label) if label else f'<c r="{ref}"{style} t="inlineStr"></c>')
        return (
            f'{_XML_DECL}<worksheet xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}">'
            '<sheetPr><outlinePr summaryBelow="1" summaryRight="1"/><pageSetUpPr/></sheetPr>'
            '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" activePane="bottomLeft"'
            ' state="frozen"/><selection pane="bottomLeft" activeCell="A1" sqref="A1"/></sheetView></sheetViews>'
            f'<sheetFormatPr baseColWidth="8" defaultRowHeight="15"/><cols>{cols}</cols>'
            f'<sheetData><row r="1">{"".join(header)}</row>'
        )


__all__ = ["DEFAULT_COMPRESSLEVEL", "MAX_ROWS_PER_SHEET", "NUMBER_FORMATS", "StreamingXlsxWriter", "sheet_title"]
