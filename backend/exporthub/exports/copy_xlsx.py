"""XLSX rows straight from PostgreSQL: the server renders each row as its `<row>` element of sheet XML
(`xlsx_rows_sql`) and `COPY (...) TO STDOUT` streams them; Python only counts the lines and hands
them, in pieces of about 1 MiB, to `StreamingXlsxWriter.write_row_xml` (sheet roll-over, zip
framing, ISA-L deflate in the writer's thread). So rendering (PostgreSQL's core), receiving and
deflating (ours) overlap, where the Python row function took one core per cell while PostgreSQL
waited.

Each cell is what `formats.xlsx.cells.cell_xml` writes for the value asyncpg would have given
(the package docstring of `formats.xlsx` is the spec); `tests/integration/test_xlsx_copy.py` compares
the files with the openpyxl reference cell for cell. Per type:

- TEXT: an inline string of `sanitize.excel_text(v)`, escaped as lxml escapes it. A row whose text
  cells are all plain (none empty, no character below U+0020, no `& < > \\`, U+FFFE/U+FFFF or `_x`,
  no white space first or last, all together under 16,384 bytes: one regular expression over the
  row's texts, `_PLAIN_SQL`) takes the short form; any other row's text cells take `_text_cell`
  (`translate` the forbidden characters away, `_x005F_`, cut at 32,767 UTF-16 units,
  `xml:space="preserve"`, escaping).
- INTEGER: `<v>` digits below 10**15 in magnitude, else text. DECIMAL/MONEY: numeric of scale <= 2 below
  10**13 as its own digits without trailing zeros (at most 15 digits: the same double as the
  reference's "%.16g" of float(v), and an integer exactly when the reference's is one); others
  through float8 (`x::float8`, correctly rounded as Python's float(Decimal)), an integral double
  below 10**16 as its integer digits (the reference writes no point for it either), else float8's
  shortest text (`extra_float_digits` 1: it reads back as the same double); NaN, +-Infinity and
  magnitudes that round to infinity are text (as `csv_text_sql` writes them), magnitudes that round
  to zero are 0.
- DATE / DATETIME: Excel serials as openpyxl's `to_excel` computes them (days since 1899-12-30, one
  less up to 1900-02-28 for Excel's leap-year bug; + seconds / 86400 in float8, the same IEEE
  operations as Python), the wall time in the export's zone (the query's `local_time_sql`; UTC's
  wall time for 'UTC'), fractions of a second dropped; before 1900 ISO text with "+00:00", as
  `display_text` writes the value asyncpg gives; +-infinity as asyncpg's date(time).max / min.
- BOOLEAN: `t="b"` cells.

COPY's text format escapes backslash, tab, LF, CR (and other control characters as `\\b` ...):
the rendered XML has none of them raw (they are removed or written as character references such as
`&#10;`, which XML readers read as the character), so each line of COPY's output is exactly one
`<row>` and its bytes go to the zip untouched. Row numbers (`r`) come from row_number(), restarting
every `max_rows_per_sheet` rows at 2, the sheet's first data row.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import decimal
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import to_excel

from exporthub.catalog import Column, ColumnType
from exporthub.exports.copy_csv import csv_text_sql
from exporthub.formats.sanitize import EXCEL_MAX_TEXT

# Session settings the row SQL relies on: dates as ISO text, float8 written as its shortest exact
# text (0 or less would round), no parallel plan (see copy_csv.SESSION_SQL), and no JIT: compiling
# the long cell expressions took longer than it saved (a 500,000-row export: 6.8 s with it, 3.7 s
# without, PostgreSQL alone).
SESSION_SQL = (
    "SET LOCAL DateStyle TO 'ISO, YMD'; SET LOCAL extra_float_digits = 1;"
    " SET LOCAL max_parallel_workers_per_gather = 0; SET LOCAL jit = off"
)

PIECE_BYTES = 1 << 20  # COPY output handed to the writer's thread in pieces of about this size

# Python's str.isspace() characters (a unit test holds them equal): `inline_string` marks text that
# starts or ends with one as xml:space="preserve".
PY_SPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
PY_SPACE += "\u2028\u2029\u202f\u205f\u3000"
# What `sanitize.XML_ILLEGAL_RE` removes and PostgreSQL can hold (no NUL, no surrogates).
ILLEGAL = "".join(map(chr, [*range(1, 9), 11, 12, *range(14, 32)])) + "\ufffe\uffff"

_EPOCH = dt.date(1899, 12, 30)
_MAX_DATE_SERIAL = (dt.date.max - _EPOCH).days  # asyncpg reads 'infinity' as date.max
_MAX_DATETIME_SERIAL = repr(to_excel(dt.datetime.max.replace(microsecond=0)))  # ... and datetime.max
# |x| at or above this rounds to infinity as a double (halfway from DBL_MAX to 2**1024, ties to even);
# at or below TINY to zero (half the smallest subnormal). PostgreSQL's float8 refuses both.
_HUGE = str(2**1024 - 2**970)
_TINY = format(decimal.Decimal(2) ** -1075, "f")
_EXACT = 10**15


def _u(chars: str) -> str:
    """Characters as `\\uXXXX` regex escapes, backslashes doubled for an E'' literal."""
    return "".join(f"\\\\u{ord(c):04x}" for c in chars)


_SPACE_CLASS = f"[{_u(PY_SPACE)}]"
_ILLEGAL_CHARS = "".join(f"\\u{ord(c):04x}" for c in ILLEGAL)  # for translate() in an E'' literal
# A row's texts joined by `|` are "hard" if any has a character to remove, `_x`, white space first
# or last, or is empty (a `|` inside a text only sends the row to the careful path), and need
# escaping if any has `& < > \\`, tab, LF or CR.
_HARD_RE = f"E'[{_u(ILLEGAL)}]|_x|(^|\\\\|){_SPACE_CLASS}|{_SPACE_CLASS}(\\\\||$)|(^|\\\\|)(\\\\||$)'"
_ESCAPE_RE = f"E'[{_u(chr(9) + chr(10) + chr(13) + '&<>' + chr(92))}]'"
_PRESERVE_RE = f"E'^{_SPACE_CLASS}|{_SPACE_CLASS}$'"
_OOXML_ESCAPE_RE = "'_(?=x[0-9A-Fa-f]{4}_)'"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _escape_sql(t: str) -> str:
    """`cells.escape_text` plus the characters COPY would escape, as character references."""
    for char, ref in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\r", "&#13;")):
        t = f"replace({t}, {_literal(char)}, '{ref}')"
    for code in (92, 10, 9):  # backslash, LF, tab
        t = f"replace({t}, chr({code}), '&#{code};')"
    return t


def _g16(f: str) -> str:
    """The text openpyxl writes for the float8 `f` (finite, not zero), "%.16g" % f, as a value: the
    same double and, for openpyxl, the same type. float8's shortest text when it has at most 16
    digits (then "%.16g" reads back as f too); otherwise f's exact value (from its IEEE bits,
    float8send) rounded half to even to 16 significant digits, written as digits and an exponent,
    or as a whole number's digits when the rounded value is one below 10**16 ("%.16g" writes no
    point for it: an int for openpyxl). Callers write whole doubles from 10**15 up themselves
    (float8's shortest text has an exponent there, "%.16g" none)."""
    bits = f"('x' || encode(float8send({f}), 'hex'))::bit(64)::int8"
    raw_exponent = f"(({bits} >> 52) & 2047)"
    mantissa = f"(({bits} & 4503599627370495) + CASE WHEN {raw_exponent} = 0 THEN 0 ELSE 4503599627370496 END)"
    e2 = f"(greatest({raw_exponent}, 1) - 1075)"  # f = mantissa * 2^e2
    # f = digits * 10^-shift, exactly
    digits = (
        f"trunc(CASE WHEN {e2} >= 0 THEN {mantissa}::numeric * power(2::numeric, {e2})"
        f" ELSE {mantissa}::numeric * power(5::numeric, -{e2}) END)"
    )
    shift = f"greatest(-{e2}, 0)"
    # The 16 digits `rounded` times 10^k; "%.16g" writes a whole number below 10**16 without point
    # or exponent (123456789012345.01 as "123456789012345"), which openpyxl reads as an int.
    exact = (
        f"(SELECT CASE WHEN {f} < 0 THEN '-' ELSE '' END || CASE WHEN (k >= 0 OR mod(rounded, p) = 0) AND whole < 1e16"
        " THEN whole::text ELSE rounded::text || 'e' || k::text END"
        " FROM (SELECT rounded, k, p, CASE WHEN k >= 0 THEN rounded * p ELSE div(rounded, p) END AS whole FROM"
        " (SELECT rounded, k, trunc(power(10::numeric, abs(k))) AS p FROM"
        " (SELECT q + CASE WHEN r > h OR (r = h AND mod(q, 2) = 1) THEN 1 ELSE 0 END AS rounded,"
        f" dropped - {shift} AS k"
        " FROM (SELECT div(n, p) AS q, mod(n, p) AS r, p / 2 AS h, dropped FROM"
        " (SELECT n, trunc(power(10::numeric, dropped)) AS p, dropped FROM"
        f" (SELECT n, greatest(length(n::text) - 16, 0) AS dropped FROM (SELECT {digits} AS n) a) b) c) d) e) g) h)"
    )
    shortest = f"{f}::text"
    return (
        f"CASE WHEN length(translate(split_part({shortest}, 'e', 1), '-.', '')) <= 16 THEN {shortest} ELSE {exact} END"
    )


class _Lit(str):
    """A constant piece of a cell (`_cat` merges neighbouring ones into one literal)."""


def _cat(*parts: str) -> str:
    """SQL concatenating the pieces: `_Lit` constants and SQL text expressions."""
    merged: list[str] = []
    for part in parts:
        if isinstance(part, _Lit) and merged and isinstance(merged[-1], _Lit):
            merged[-1] = _Lit(merged[-1] + part)
        else:
            merged.append(part)
    return " || ".join(_literal(part) if isinstance(part, _Lit) else part for part in merged)


Head = tuple[str, ...]  # the pieces of `<c r="B2" s="3"` (or `<c s="3"`), without the closing `>`


def _text_cell(value: str, head: Head) -> str:
    """The careful path: `inline_string(ref, style, excel_text(value))`, NULL for no cell."""
    removed = f"translate({value}, E'{_ILLEGAL_CHARS}', '')"
    escaped = f"CASE WHEN strpos(t1, '_x') > 0 THEN regexp_replace(t1, {_OOXML_ESCAPE_RE}, '_x005F_', 'g') ELSE t1 END"
    # The longest prefix of at most 32,767 UTF-16 code units (astral characters count twice).
    cut = (
        f"CASE WHEN length(t2) <= {EXCEL_MAX_TEXT // 2} THEN t2 ELSE (SELECT left(t2, count(*)::int) FROM"
        " (SELECT sum(CASE WHEN ascii(ch) > 65535 THEN 2 ELSE 1 END) OVER (ORDER BY i) AS units"
        f" FROM unnest(string_to_array(left(t2, {EXCEL_MAX_TEXT}), NULL)) WITH ORDINALITY AS chars(ch, i)) u"
        f" WHERE units <= {EXCEL_MAX_TEXT}) END"
    )
    space = f"CASE WHEN t3 ~ {_PRESERVE_RE} THEN ' xml:space=\"preserve\">' ELSE '>' END"
    body = _cat(*head, _Lit(' t="inlineStr"><is><t'), space, _escape_sql("t3"), _Lit("</t></is></c>"))
    cell = f"CASE WHEN t3 <> '' THEN {body} END"
    return (
        f"(SELECT {cell} FROM (SELECT {cut} AS t3 FROM (SELECT {escaped} AS t2"
        f" FROM (SELECT {removed} AS t1 OFFSET 0) a OFFSET 0) b OFFSET 0) c)"
    )


def _plain_text(head: Head, value: str) -> str:
    return _cat(*head, _Lit(' t="inlineStr"><is><t>'), value, _Lit("</t></is></c>"))


def _number(head: Head, digits: str) -> str:
    return _cat(*head, _Lit("><v>"), digits, _Lit("</v></c>"))


def _cell_sql(column: Column, v: str, head: Head) -> str:
    """SQL for one cell: its `<c>` element, or NULL for no cell."""
    kind = column.type
    if kind is ColumnType.TEXT:
        escaped = _cat(*head, _Lit(' t="inlineStr"><is><t>'), _escape_sql(v), _Lit("</t></is></c>"))
        return (
            f"CASE texts WHEN 2 THEN {_plain_text(head, v)}"
            f" WHEN 1 THEN CASE WHEN {v} ~ {_ESCAPE_RE} THEN {escaped} ELSE {_plain_text(head, v)} END"
            f" ELSE {_text_cell(v, head)} END"
        )
    if kind is ColumnType.INTEGER:
        return (
            f"CASE WHEN {v} > {-_EXACT} AND {v} < {_EXACT} THEN {_number(head, v + '::text')}"
            f" ELSE {_plain_text(head, v + '::text')} END"
        )
    if kind in (ColumnType.DECIMAL, ColumnType.MONEY):
        f = f"{v}::float8"
        as_float = f"CASE WHEN {f} = trunc({f}) AND abs({f}) < 1e16::float8 THEN {f}::int8::text ELSE {_g16(f)} END"
        own = f"trim_scale({v})::text"
        return (
            f"CASE WHEN {v} > -1e13 AND {v} < 1e13 AND scale({v}) <= 2 THEN {_number(head, own)}"
            f" WHEN abs({v}) < {_HUGE} AND abs({v}) > {_TINY} THEN {_number(head, as_float)}"
            f" WHEN abs({v}) <= {_TINY} THEN {_number(head, _Lit('0'))}"
            f" ELSE {_plain_text(head, csv_text_sql(kind, v))} END"
        )
    if kind is ColumnType.DATE:
        after_leap, in_leap = f"({v} - DATE '1899-12-30')::text", f"({v} - DATE '1899-12-31')::text"
        return (
            f"CASE WHEN {v} >= '1900-03-01' AND {v} < 'infinity' THEN {_number(head, after_leap)}"
            f" WHEN {v} >= '1900-01-01' AND {v} < 'infinity' THEN {_number(head, in_leap)}"
            f" WHEN {v} = 'infinity' THEN {_number(head, _Lit(str(_MAX_DATE_SERIAL)))}"
            f" WHEN {v} = '-infinity' THEN {_plain_text(head, _Lit('0001-01-01'))}"
            f" ELSE {_plain_text(head, v + '::text')} END"
        )
    if kind is ColumnType.DATETIME:
        seconds = f"floor(date_part('epoch', {v}::time)) / 86400.0::float8"
        after_leap = _g16(f"(({v}::date - DATE '1899-12-30') + {seconds})")
        in_leap = _g16(f"(({v}::date - DATE '1899-12-31') + {seconds})")
        iso = f"replace(to_char({v}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US+00:00'), '.000000+', '+')"
        return (
            f"CASE WHEN {v} >= '1900-03-01' AND {v} < 'infinity' THEN {_number(head, after_leap)}"
            f" WHEN {v} >= '1900-01-01' AND {v} < 'infinity' THEN {_number(head, in_leap)}"
            f" WHEN {v} = 'infinity' THEN {_number(head, _Lit(_MAX_DATETIME_SERIAL))}"
            f" WHEN {v} = '-infinity' THEN {_plain_text(head, _Lit('0001-01-01T00:00:00+00:00'))}"
            f" ELSE {_plain_text(head, iso)} END"
        )
    if kind is ColumnType.BOOLEAN:
        yes, no = _cat(*head, _Lit(' t="b"><v>1</v></c>')), _cat(*head, _Lit(' t="b"><v>0</v></c>'))
        return f"CASE {v} WHEN true THEN {yes} WHEN false THEN {no} END"
    raise ValueError(f"no XLSX cell SQL for column type {kind!r}")  # pragma: no cover - every type above


def xlsx_rows_sql(
    select_sql: str,
    columns: Sequence[Column],
    styles: Sequence[str],
    *,
    max_rows_per_sheet: int,
    time_zone: str = "UTC",
) -> str:
    """SQL whose rows, as COPY's text format writes them (`copy_xlsx`), are the `<row>` elements of
    `select_sql`'s rows (from `build_export_query(..., time_zone=...)`: typed values, datetimes as
    the query gives them). `styles` are the columns' ` s="N"` attributes (or "") as the writer numbers
    them (`StreamingXlsxWriter.cell_styles`).

    One COPY column per cell, NULL (written as nothing) for no cell: COPY's tab between columns is
    white space between elements, which XML readers skip, and no concatenation of the row is needed.
    A cell has its `r` only after a missing cell (readers count columns, as they count rows).
    The inner query's ORDER BY is kept by the subquery (one with ORDER BY is never flattened), and
    row_number() OVER () numbers its rows in that order."""
    if max_rows_per_sheet < 1:
        raise ValueError("max_rows_per_sheet must be positive")
    values = []
    for n, column in enumerate(columns):
        v = f'q."{column.key}"'
        if column.type is ColumnType.DATETIME and time_zone == "UTC":
            v = f"({v} AT TIME ZONE 'UTC')"  # the query's timestamptz as its UTC wall time
        elif column.type is ColumnType.TEXT:
            v = f"({v})::text"  # varchar, name, enums
        values.append(f"{v} AS v{n}")
    texts = [f"v{n}" for n, column in enumerate(columns) if column.type is ColumnType.TEXT]
    joined = f"concat_ws('|', {', '.join(texts)})" if texts else "'x'"
    cells = []
    for n, (column, style) in enumerate(zip(columns, styles, strict=True)):
        with_ref = _cell_sql(column, f"v{n}", (_Lit(f'<c r="{get_column_letter(n + 1)}'), "r", _Lit(f'"{style}')))
        if n == 0:
            cells.append(_cell_sql(column, f"v{n}", (_Lit(f"<c{style}"),)))
            continue
        # texts 0: a text cell may be missing though not NULL (nothing left of it)
        without = _cell_sql(column, f"v{n}", (_Lit(f"<c{style}"),))
        cells.append(f"CASE WHEN texts = 0 OR v{n - 1} IS NULL THEN {with_ref} ELSE {without} END")
    # texts: 2 if the row's text cells are all plain, 1 if they only need escaping, 0 if any needs
    # the careful path (`_text_cell`); from the row's texts joined once (`joined`, level j).
    return (
        f"SELECT '<row r=\"' || r || '\">', {', '.join(cells)}, '</row>' FROM ("
        f"SELECT r, {', '.join(f'v{n}' for n in range(len(columns)))},"
        f" CASE WHEN octet_length(joined) > {EXCEL_MAX_TEXT // 2} OR joined ~ {_HARD_RE} THEN 0"
        f" WHEN joined ~ {_ESCAPE_RE} THEN 1 ELSE 2 END AS texts FROM ("
        f"SELECT *, {joined} AS joined FROM ("
        f"SELECT ((row_number() OVER () - 1) % {int(max_rows_per_sheet)} + 2)::text AS r, {', '.join(values)}"
        f" FROM ({select_sql}) q) w OFFSET 0) j OFFSET 0) x"
    )


async def copy_xlsx(
    conn: asyncpg.Connection,
    rows_sql: str,
    args: Sequence[object],
    write: Callable[[bytes], Awaitable[None]],
    *,
    copy_timeout: float,
    on_records: Callable[[int], Awaitable[None]],
    expected_rows: int | None = None,
) -> int:
    """Stream `rows_sql` (`xlsx_rows_sql`) with COPY into `write`, which gets the rows' XML in
    pieces of about PIECE_BYTES (each awaited before the next is handed over, the next received
    meanwhile). Returns the number of rows. `on_records`, `copy_timeout` and `expected_rows` as in
    `copy_csv.copy_csv` (what `on_records` raises stops the COPY, unless every row already came)."""
    await conn.execute(SESSION_SQL)
    stopped: BaseException | None = None
    pending: list[bytes] = []
    pending_bytes = 0
    records = 0
    handing: asyncio.Future[None] | None = None

    async def hand_over() -> None:
        nonlocal handing, pending_bytes
        if handing is not None:
            await handing  # one piece in the writer's thread at a time: memory stays bounded
        piece = b"".join(pending)
        pending.clear()
        pending_bytes = 0
        handing = asyncio.ensure_future(write(piece)) if piece else None

    async def sink(chunk: bytes) -> None:
        nonlocal stopped, pending_bytes, records
        pending.append(chunk)
        pending_bytes += len(chunk)
        count = chunk.count(b"\n")
        records += count
        if pending_bytes >= PIECE_BYTES:
            await hand_over()
        if count and stopped is None:
            try:
                await on_records(count)
            except Exception as exc:
                stopped = exc
        if stopped is not None and (expected_rows is None or records < expected_rows):
            raise stopped  # more rows to come: the query is still running, so cancelling it is safe

    try:
        status = await conn.copy_from_query(
            rows_sql, *args, output=sink, format="text", null="", encoding="UTF8", timeout=copy_timeout
        )
        if stopped is not None:
            raise stopped
        await hand_over()  # the last piece
        await hand_over()  # ... and wait for it
    finally:
        if handing is not None and not handing.done():
            with contextlib.suppress(BaseException):
                await handing
    copied = int(status.split()[-1])  # "COPY 500000"
    if copied != records:
        raise RuntimeError(f"COPY sent {copied} rows but {records} lines were counted")
    return copied
