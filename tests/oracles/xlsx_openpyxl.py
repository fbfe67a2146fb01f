"""The reference XLSX writer, for tests only: openpyxl's write-only workbook given the cells the
production writer (`exporthub.formats.xlsx`, whose docstring is the spec) means to write.
Tests write the same rows with both and compare the files cell by cell.

It shares the spec's constants and sheet names with the production code (`NUMBER_FORMATS`,
`MAX_ROWS_PER_SHEET`, `sheet_title`); the cells are made here, the way openpyxl's users make them.

Only openpyxl's public API: `WriteOnlyCell`s with their value, type and style set, given to the
write-only sheet's `append`, as openpyxl's documentation shows. A cell's type is forced after its
value is set (`data_type = "s"`), so that text such as "=SUM(A1)" or "#N/A" stays a string. One
template cell per column and sheet is refilled for every row (a row is serialised before `append`
returns). Speed is not its point: it no longer replaces openpyxl's private `_values_to_row` as it
did while it shipped (that was about 1.5x faster).

Rows go to openpyxl's temporary file per sheet and are zipped into `path` on `close`; after `abort`
openpyxl deletes those files at interpreter exit.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import math
import pathlib
import zoneinfo
from collections.abc import Callable, Sequence
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import Cell, WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from exporthub.catalog import Column, ColumnType
from exporthub.formats.output import DigestFile
from exporthub.formats.sanitize import LOCAL_FIRST, LOCAL_LAST, display_text, excel_text
from exporthub.formats.xlsx.cells import NUMBER_FORMATS
from exporthub.formats.xlsx.parts import sheet_title
from exporthub.formats.xlsx.writer import MAX_ROWS_PER_SHEET

_EXACT_INTEGERS = 10**15  # |n| below this shows every digit in Excel
_FIRST_EXCEL_DATE = dt.date(1900, 1, 1)
_FIRST_EXCEL_DATETIME = dt.datetime(1900, 1, 1)  # naive: Excel has no time zones
_BOLD = Font(bold=True)

Fill = Callable[[Any], Cell | None]


class OpenpyxlXlsxWriter:
    def __init__(
        self,
        path: pathlib.Path,
        columns: Sequence[Column],
        *,
        title: str = "",
        max_rows_per_sheet: int = MAX_ROWS_PER_SHEET,
        time_zone: zoneinfo.ZoneInfo | None = None,
    ) -> None:
        if not 1 <= max_rows_per_sheet <= MAX_ROWS_PER_SHEET:
            raise ValueError(f"max_rows_per_sheet must be between 1 and {MAX_ROWS_PER_SHEET}")
        self._columns = tuple(columns)
        self._zone = time_zone
        self._title = title
        self._max_rows = max_rows_per_sheet
        self._last_column = get_column_letter(len(self._columns))
        self._workbook: Any = None
        self._sheet: Any = None
        self._sheets = 0
        self._rows_in_sheet = 0
        self._fills: list[Fill] = []
        self._finished = False
        # Opened now so that an unusable path fails at once; the zip is written into it on close.
        self._file = DigestFile(path)
        try:
            self._workbook = Workbook(write_only=True)
            self._new_sheet()
        except BaseException:
            self.abort()
            raise

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        if self._finished:
            raise ValueError("write_rows on a closed XLSX writer")
        fills, append = self._fills, self._sheet.append
        width = len(fills)
        for row in rows:
            if self._rows_in_sheet >= self._max_rows:
                self._new_sheet()
                fills, append = self._fills, self._sheet.append
            if len(row) != width:
                raise ValueError(f"a row has {len(row)} values for {width} columns")
            append([None if value is None else fill(value) for fill, value in zip(fills, row, strict=True)])
            self._rows_in_sheet += 1

    def close(self) -> None:
        if self._finished:
            return
        try:
            self._set_autofilter()
            self._workbook.save(self._file)
            self._file.close()
        except BaseException:
            self.abort()
            raise
        self._finished = True
        self._workbook = self._sheet = None
        self._fills = []

    def sha256(self) -> str:
        return self._file.sha256()

    def abort(self) -> None:
        if self._finished:
            return
        self._finished = True
        workbook, self._workbook, self._sheet, self._fills = self._workbook, None, None, []
        for sheet in workbook.worksheets if workbook is not None else ():
            with contextlib.suppress(Exception):  # closes its temporary file's handle
                if not sheet.closed:
                    sheet.close()
        with contextlib.suppress(OSError):
            self._file.close()

    def _new_sheet(self) -> None:
        if self._sheet is not None:
            self._set_autofilter()
        self._sheets += 1
        sheet = self._workbook.create_sheet(sheet_title(self._title, self._sheets))
        self._sheet, self._rows_in_sheet = sheet, 0
        # Views and column widths are written before the first row, so they are set first.
        sheet.freeze_panes = "A2"
        header = []
        for index, column in enumerate(self._columns, start=1):
            sheet.column_dimensions[get_column_letter(index)].width = column.width
            label = column.label
            if self._zone is not None and column.type is ColumnType.DATETIME:
                label = f"{label} ({self._zone.key})"  # the wall times' zone
            cell = WriteOnlyCell(sheet, excel_text(label))
            cell.column, cell.data_type, cell.font = index, "s", _BOLD
            header.append(cell)
        sheet.append(header)
        self._fills = [
            _fill(column.type, _template(sheet, index, column.type), self._zone)
            for index, column in enumerate(self._columns, start=1)
        ]

    def _set_autofilter(self) -> None:
        self._sheet.auto_filter.ref = f"A1:{self._last_column}{self._rows_in_sheet + 1}"


def _template(sheet: Any, index: int, column_type: ColumnType) -> Cell:
    cell = WriteOnlyCell(sheet)
    cell.column = index
    number_format = NUMBER_FORMATS.get(column_type)
    if number_format is not None:
        cell.number_format = number_format
    return cell


def _excel_datetime(value: dt.datetime, zone: zoneinfo.ZoneInfo | None) -> dt.datetime | None:
    """Excel has no time zones: an aware datetime as its wall time in the zone (UTC without one, and
    outside the range a zone may show), a naive one as it is."""
    if value.tzinfo is not None:
        shown_in = zone if zone is not None and LOCAL_FIRST <= value <= LOCAL_LAST else dt.UTC
        value = value.astimezone(shown_in).replace(tzinfo=None)
    value = value.replace(microsecond=0)
    return value if value >= _FIRST_EXCEL_DATETIME else None


def _fill(column_type: ColumnType, cell: Cell, zone: zoneinfo.ZoneInfo | None = None) -> Fill:
    """A function that puts one non-None value into the column's template cell and returns it (or
    None for an empty cell)."""

    def text(value: Any) -> Cell | None:
        value = excel_text(value if type(value) is str else display_text(value, column_type))
        if not value:
            return None
        cell.value = value
        cell.data_type = "s"  # openpyxl would make "=..." a formula and "#N/A" an error
        return cell

    if column_type in (ColumnType.INTEGER, ColumnType.DECIMAL, ColumnType.MONEY):

        def number(value: Any) -> Cell | None:
            kind = type(value)
            if kind is int:
                if not -_EXACT_INTEGERS < value < _EXACT_INTEGERS:
                    return text(value)
                cell.value = value
            elif kind is decimal.Decimal or kind is float:
                as_float = float(value)
                if not math.isfinite(as_float):
                    return text(value)
                cell.value = as_float
            else:
                return text(value)
            cell.data_type = "n"
            return cell

        return number

    if column_type in (ColumnType.DATE, ColumnType.DATETIME):

        def temporal(value: Any) -> Cell | None:
            if isinstance(value, dt.datetime):
                moment = _excel_datetime(value, zone)
                if moment is None:
                    return text(value)
                cell.value = moment
            elif isinstance(value, dt.date) and value >= _FIRST_EXCEL_DATE:
                cell.value = value
            else:
                return text(value)
            cell.data_type = "d"
            return cell

        return temporal

    if column_type is ColumnType.BOOLEAN:

        def boolean(value: Any) -> Cell | None:
            if type(value) is not bool:
                return text(value)
            cell.value = value
            cell.data_type = "b"
            return cell

        return boolean

    return text
