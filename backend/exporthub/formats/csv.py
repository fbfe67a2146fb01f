"""The CSV writer: RFC 4180 (minimal quoting, CRLF; cells apart by a comma, semicolon or tab), UTF-8 with
an optional BOM, one buffered file whose SHA-256 is known when it is closed.

Cell text follows `sanitize.display_text`: None -> empty, bool -> "true"/"false", date -> "2024-01-31",
datetime -> ISO 8601 in UTC with a "+00:00" offset ("2024-01-31T09:30:00+00:00"; microseconds only
when not zero, e.g. "...09:30:00.000250+00:00"), or with `zone` in that zone with its offset at the
moment ("2024-01-31T18:30:00+09:00"; `sanitize.iso_in_zone`), Decimal -> plain digits (MONEY: two decimals),
int -> digits.

Formula injection: text that `sanitize.is_formula` calls a formula gets a leading `'`: text that starts
with `=`, `+`, `-`, `@`, tab or carriage return, or whose first character after leading white space
(space, NBSP, ideographic space, LF, CR, tab) is one of `=+-@` or their full-width forms (U+FF1D,
U+FF0B, U+FF0D, U+FF20). That applies to every value of a TEXT column, and to any text that turns up
in a typed column; numbers, dates and booleans of typed columns are never prefixed (a negative amount
stays `-12.50`).
Control characters are kept: CSV has no reason to refuse them.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import decimal
import io
import pathlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from exporthub.catalog import Column, ColumnType
from exporthub.formats.output import DigestFile
from exporthub.formats.sanitize import (
    FORMULA_FIRST,
    display_text,
    is_formula,
    iso_in_zone,
    iso_utc,
    neutralize_formula,
)

Formatter = Callable[[Any], str]

_BUFFER_BYTES = 1 << 16
DELIMITERS = (",", ";", "\t")  # comma; semicolon for Excel where the decimal separator is a comma; tab
_TYPED = (bool, int, float, decimal.Decimal, dt.date)  # values whose text can never be a formula


class CsvWriter:
    def __init__(
        self,
        path: pathlib.Path,
        columns: Sequence[Column],
        *,
        bom: bool = True,
        zone: dt.tzinfo | None = None,
        delimiter: str = ",",
    ) -> None:
        if delimiter not in DELIMITERS:
            raise ValueError(f"unsupported CSV delimiter {delimiter!r}")
        self._formatters = [_formatter(column.type, zone) for column in columns]
        self._output = DigestFile(path, _BUFFER_BYTES)
        self._file = io.TextIOWrapper(self._output, encoding="utf-8-sig" if bom else "utf-8", newline="")
        self._closed = False
        try:
            self._csv = csv.writer(self._file, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n", delimiter=delimiter)
            self._csv.writerow([neutralize_formula(column.label) for column in columns])
        except BaseException:
            self.abort()
            raise

    def sha256(self) -> str:
        """The file's SHA-256 (hex), once closed."""
        return self._output.sha256()

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        if self._closed:
            raise ValueError("write_rows on a closed CSV writer")
        self._csv.writerows(self._lines(rows))

    def _lines(self, rows: Iterable[Sequence[Any]]) -> Iterator[list[str]]:
        formatters = self._formatters
        width = len(formatters)
        for row in rows:
            if len(row) != width:
                raise ValueError(f"a row has {len(row)} values for {width} columns")
            yield [format_value(value) for format_value, value in zip(formatters, row, strict=True)]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._file.close()  # flushes; if that fails the file stays closed and the error propagates

    def abort(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):  # the caller deletes the file anyway
            self._file.close()


def header_line(columns: Sequence[Column], *, bom: bool, delimiter: str = ",") -> bytes:
    """The bytes `CsvWriter` starts a file with: the BOM (if asked for) and the header row."""
    text = io.StringIO()
    csv.writer(text, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n", delimiter=delimiter).writerow(
        [neutralize_formula(column.label) for column in columns]
    )
    return ("\ufeff" if bom else "").encode() + text.getvalue().encode()


def _fallback(value: Any, column_type: ColumnType) -> str:
    """A value whose type is not the column's: its text, neutralised unless it is a typed value."""
    if value is None:
        return ""
    text = display_text(value, column_type)
    return text if isinstance(value, _TYPED) else neutralize_formula(text)


def _formatter(column_type: ColumnType, zone: dt.tzinfo | None = None) -> Formatter:
    """One fast function per column type; an unexpected Python type goes through `_fallback`."""
    if column_type is ColumnType.TEXT:

        def text(value: Any) -> str:
            if type(value) is not str:
                if value is None:
                    return ""
                value = display_text(value)
            # The first-character test inline: most text starts with a letter or digit.
            return "'" + value if value and value[0] in FORMULA_FIRST and is_formula(value) else value

        return text

    if column_type is ColumnType.INTEGER:
        return lambda value: str(value) if type(value) is int else _fallback(value, column_type)

    if column_type is ColumnType.DECIMAL:

        def number(value: Any) -> str:
            if type(value) is decimal.Decimal:
                return format(value, "f")
            return str(value) if type(value) is int else _fallback(value, column_type)

        return number

    if column_type is ColumnType.MONEY:

        def money(value: Any) -> str:
            if type(value) is decimal.Decimal or type(value) is int:
                return f"{value:.2f}"
            return _fallback(value, column_type)

        return money

    if column_type is ColumnType.DATE:
        return lambda value: value.isoformat() if type(value) is dt.date else _fallback(value, column_type)

    if column_type is ColumnType.DATETIME and zone is not None:
        return lambda value: iso_in_zone(value, zone) if type(value) is dt.datetime else _fallback(value, column_type)

    if column_type is ColumnType.DATETIME:
        return lambda value: iso_utc(value) if type(value) is dt.datetime else _fallback(value, column_type)

    if column_type is ColumnType.BOOLEAN:
        return lambda value: ("true" if value else "false") if type(value) is bool else _fallback(value, column_type)

    return lambda value: _fallback(value, column_type)
