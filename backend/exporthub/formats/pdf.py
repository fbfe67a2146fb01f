"""The PDF writer: a landscape A4 table report, streamed in pieces so that memory stays flat.

Layout: page 1 opens with a title block (the resource label, account, filters in words, generated-at
time in UTC, the zone of the datetimes when given, row count); every page has the header row,
zebra-striped rows of one line each and a footer ("Page 3 of 120" on the left, title, account and
time on the right). Column widths are proportional to `Column.width`; text too wide for its column
is cut with "…", so a cell never overflows and every page holds the same number of rows.

Cells, by column type (a value of an unexpected Python type is shown as `sanitize.display_text`):
None -> empty; TEXT as is, shown literally (a PDF runs nothing, so "=SUM(A1)" needs no quote),
control characters (newlines, tabs) shown as spaces; INTEGER -> digits; DECIMAL -> "1,234.5"
(thousands separators, never an exponent); MONEY -> "1,234.50"; DATE -> "2024-01-31"; DATETIME ->
"2024-01-31 09:30" in UTC (a naive datetime is taken to be UTC); BOOLEAN -> Yes/No. Numbers are
right-aligned, header labels of number columns too.

Fonts: every script is drawn with a font that has its glyphs: DejaVu Sans Condensed (Latin, Greek,
Cyrillic), Noto Sans Arabic and Noto Sans Hebrew, Droid Sans Fallback (Chinese, Japanese, Korean),
vendored in `fonts/` with their licences and embedded as subsets. Each text is drawn as runs of one
font each; Arabic is joined and right-to-left text is put in the order it is drawn (pdf_text.py
says how). Characters no font has show as empty boxes (.notdef); nothing raises on any character.

Memory and speed: the file is written page by page as rows arrive. Each page's content stream is
made as PDF operators directly (cell text encoded once per distinct value and column, with this
file's font codes: pdf_fonts.py), deflated and written out with its page object; what stays in
memory is the open page and, per page, an object number and a file offset (pdf_file.py). The font
subsets, the page tree and the shared resources are written at the end, into object numbers
reserved when they were first referred to; reportlab only reads the fonts' headers and subsets them (pdf_face.py).

Totals that are only known at the end (page count, row count) are form XObjects that every page
references and that are written on close. So the file says "Page 3 of 120" and "Rows: 4,980"
without anything being held back.
"""

from __future__ import annotations

import array
import contextlib
import dataclasses
import datetime as dt
import decimal
import math
import pathlib
from collections.abc import Callable, Sequence
from typing import Any

from reportlab.lib.pagesizes import A4, landscape

from exporthub.catalog import Column, ColumnType
from exporthub.formats import pdf_text
from exporthub.formats.output import DigestFile
from exporthub.formats.pdf_file import PdfObjects
from exporthub.formats.pdf_fonts import EmbeddedFont, escape_ascii
from exporthub.formats.pdf_text import BOLD_FONT, REGULAR_FONT, Run, register_fonts
from exporthub.formats.sanitize import display_text

PAGE_WIDTH, PAGE_HEIGHT = landscape(A4)
MARGIN = 28.0  # points (about 1 cm)
BODY_SIZE = 7.5
ROW_HEIGHT = 12.0
HEADER_SIZE = 7.5
HEADER_HEIGHT = 16.0
PADDING = 3.0  # inside each cell, left and right
FOOTER_SIZE = 7.0
TITLE_SIZE = 15.0
META_SIZE = 8.5
META_LEADING = 11.5
MAX_FILTER_LINES = 4
ELLIPSIS = "…"
_MAX_CELL_CHARS = 600  # no column of a landscape A4 page shows more; longer text is cut before measuring

TABLE_TOP = PAGE_HEIGHT - MARGIN
TABLE_BOTTOM = MARGIN + 14.0  # the footer sits below
TABLE_WIDTH = PAGE_WIDTH - 2 * MARGIN

_HEADER_FILL = 0.87
_ZEBRA_FILL = 0.955
_MUTED = 0.35
_NUMBERS = (ColumnType.INTEGER, ColumnType.DECIMAL, ColumnType.MONEY)
_CONTROL = dict.fromkeys([*range(32), *range(0x7F, 0xA0), 0x2028, 0x2029], " ")

_PAGE_TOTAL_FORM = "/PageTotal"
_ROW_TOTAL_FORM = "/RowTotal"
_FORM_SIZES = {_PAGE_TOTAL_FORM: FOOTER_SIZE, _ROW_TOTAL_FORM: META_SIZE}
_MEDIA_BOX = f"[0 0 {PAGE_WIDTH:.4f} {PAGE_HEIGHT:.4f}]".encode()

Format = Callable[[Any], str]


def _clean(text: str) -> str:
    """One line of text: control characters and line breaks become spaces."""
    if text.isprintable():
        return text
    return text.translate(_CONTROL)


def format_utc_minutes(value: dt.datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return f"{value:%Y-%m-%d %H:%M}"


def _formatter(column_type: ColumnType) -> Format:
    """The cell text of one non-None value of the column (see the module docstring)."""

    def other(value: Any) -> str:
        if isinstance(value, bool):
            return "Yes" if value else "No"
        return _clean(display_text(value, column_type))

    if column_type is ColumnType.TEXT:
        return lambda value: _clean(value) if type(value) is str else other(value)
    if column_type is ColumnType.INTEGER:
        return lambda value: str(value) if type(value) is int else other(value)
    if column_type in (ColumnType.DECIMAL, ColumnType.MONEY):
        pattern = ",.2f" if column_type is ColumnType.MONEY else ",f"

        def number(value: Any) -> str:
            kind = type(value)
            if kind is float:
                if not math.isfinite(value):
                    return str(value)
                value, kind = decimal.Decimal(repr(value)), decimal.Decimal
            if kind is decimal.Decimal:
                return format(value, pattern) if value.is_finite() else str(value)
            if kind is int:
                return format(value, ",.2f" if column_type is ColumnType.MONEY else ",")
            return other(value)

        return number
    if column_type is ColumnType.DATE:
        return lambda value: value.isoformat() if type(value) is dt.date else other(value)
    if column_type is ColumnType.DATETIME:
        return lambda value: format_utc_minutes(value) if type(value) is dt.datetime else other(value)
    if column_type is ColumnType.BOOLEAN:
        return lambda value: ("Yes" if value else "No") if type(value) is bool else other(value)
    return other


class _Measure:
    """Text widths, and cutting text to a width with an ellipsis. Text comes out as runs of one font
    each, right-to-left text shaped and in drawing order (pdf_text.py); ASCII text takes a short cut."""

    def __init__(self, font_name: str, size: float) -> None:
        self._font = font_name
        self._chain = pdf_text.chain(font_name)
        widths = self._chain.advances(font_name)
        self._ascii = [widths[code] for code in range(128)]
        self._size = size
        self._scale = size / 1000.0
        self._ellipsis = widths[ord(ELLIPSIS)] * self._scale

    def width(self, runs: list[Run]) -> float:
        return self._chain.width(runs, self._size)

    def fit(self, text: str, available: float) -> tuple[list[Run], float]:
        """`text`, or its longest prefix that fits with "…" appended, as runs; and the width drawn."""
        if len(text) > _MAX_CELL_CHARS:
            text = text[:_MAX_CELL_CHARS]
        if not text.isascii():
            return self._fit_runs(text, available)
        advances = self._ascii
        total = sum(map(advances.__getitem__, text.encode())) * self._scale
        if total <= available:
            return ([(self._font, text)] if text else []), total
        cut = _cut([advances[code] for code in text.encode()], (available - self._ellipsis) / self._scale)
        shown = text[:cut].rstrip()
        width = sum(map(advances.__getitem__, shown.encode())) * self._scale + self._ellipsis
        return [(self._font, shown + ELLIPSIS)], width

    def _fit_runs(self, text: str, available: float) -> tuple[list[Run], float]:
        """`fit` for text that may need other fonts than the primary one, or right-to-left order.
        A right-to-left text is shaped, cut in reading order (the "…" ends it, so it shows on its
        left), then reordered."""
        rtl = pdf_text.needs_bidi(text)
        if rtl:
            text = pdf_text.shaped(text)
        runs = self._chain.runs(text)
        advances: list[float] = []
        for font_name, chunk in runs:
            widths = self._chain.advances(font_name)
            advances += [widths[ord(char)] for char in chunk]
        total = sum(advances) * self._scale
        if total > available:
            text = text[: _cut(advances, (available - self._ellipsis) / self._scale)].rstrip() + ELLIPSIS
        elif not rtl:
            return runs, total
        if rtl:
            text = pdf_text.visual(text)
        runs = self._chain.runs(text)
        return runs, self.width(runs)


def _cut(advances: list[float], limit: float) -> int:
    """How many characters, with these advances, fit in `limit` (in the same units)."""
    used = 0.0
    for index, advance in enumerate(advances):
        if used + advance > limit:
            return index
        used += advance
    return len(advances)


class _Fonts:
    """The file's embedded fonts, each added on its first use."""

    def __init__(self, objects: PdfObjects) -> None:
        self._objects = objects
        self.embedded: dict[str, EmbeddedFont] = {}

    def font(self, font_name: str) -> EmbeddedFont:
        font = self.embedded.get(font_name)
        if font is None:
            font = self.embedded[font_name] = EmbeddedFont(font_name, f"F{len(self.embedded)}_", self._objects.reserve)
        return font

    def show(self, runs: list[Run], size: float) -> str:
        if len(runs) == 1:
            font_name, chunk = runs[0]
            return self.font(font_name).show(chunk, size)
        return " ".join([self.font(font_name).show(chunk, size) for font_name, chunk in runs])

    def at(self, x: float, y: float, runs: list[Run], size: float) -> str:
        """Operators drawing `runs` with their baseline starting at (x, y), inside BT ... ET."""
        return f"1 0 0 1 {x:.2f} {y:.2f} Tm {self.show(runs, size)}" if runs else ""


class _BodyText:
    """Cell text as PDF text operators. Repeated values (dates, departments, statuses) are measured
    and encoded once per column; a character's code is the same on every page (pdf_fonts.py)."""

    _CACHE_LIMIT = 2_000  # entries per column; emptied when full

    def __init__(self, fonts: _Fonts, measure: _Measure, cells: Sequence[_Cell]) -> None:
        self._fonts = fonts
        self._measure = measure
        self._cells = cells
        self._caches: list[dict[str, tuple[str, str]]] = [{} for _ in cells]
        self._ascii = f"{fonts.font(REGULAR_FONT).ascii_resource} {BODY_SIZE} Tf"

    def cell(self, column: int, text: str) -> tuple[str, str]:
        """("1 0 0 1 x ", "Tm /F0_0 7.5 Tf (...) Tj"): the matrix up to the baseline, and the text's
        operators, for `text` cut to the column's width."""
        cache = self._caches[column]
        hit = cache.get(text)
        if hit is not None:
            return hit
        cell = self._cells[column]
        runs, width = self._measure.fit(text, cell.width - 2 * PADDING)
        x = cell.left + cell.width - PADDING - width if cell.right_aligned else cell.left + PADDING
        # The usual case: ASCII in the primary font, whose subset 0 has ASCII as itself.
        if len(runs) == 1 and runs[0][0] == REGULAR_FONT and runs[0][1].isascii():
            shown = f"Tm {self._ascii} ({escape_ascii(runs[0][1])}) Tj"
        else:
            shown = f"Tm {self._fonts.show(runs, BODY_SIZE)}" if runs else ""
        found = (f"1 0 0 1 {x:.2f} ", shown)
        if len(cache) >= self._CACHE_LIMIT:
            cache.clear()
        cache[text] = found
        return found


def _fit_label(label: str, available: float) -> tuple[list[Run], float, float]:
    """A header label, in a smaller size if that saves it from being cut: (runs, width, size)."""
    for size in (HEADER_SIZE, HEADER_SIZE - 1):
        measure = _Measure(BOLD_FONT, size)
        if measure.fit(label, math.inf)[1] <= available:
            break
    runs, width = measure.fit(label, available)
    return runs, width, size


@dataclasses.dataclass(frozen=True, slots=True)
class _Cell:
    index: int
    left: float  # x of the column's left edge
    width: float
    right_aligned: bool
    format: Format


class PdfWriter:
    """Streams rows into a PDF report at `path` (see the module docstring)."""

    def __init__(
        self,
        path: pathlib.Path,
        columns: Sequence[Column],
        *,
        title: str = "",
        account_name: str = "",
        filter_lines: Sequence[str] = (),
        generated_at: dt.datetime | None = None,
        time_zone: str | None = None,  # the datetimes' (wall times there), named in the title block
    ) -> None:
        if not columns:
            raise ValueError("a PDF report needs at least one column")
        register_fonts()
        self._title = _clean(title) or "Export"
        self._account = _clean(account_name)
        self._filters = [_clean(line) for line in filter_lines if line]
        self._generated = format_utc_minutes(generated_at or dt.datetime.now(dt.UTC)) + " UTC"
        self._time_zone = _clean(time_zone or "")
        self._body = _Measure(REGULAR_FONT, BODY_SIZE)
        self._footer_measure = _Measure(REGULAR_FONT, FOOTER_SIZE)
        self._cells = self._layout(columns)
        self._header = [
            (cell, *_fit_label(_clean(column.label), cell.width - 2 * PADDING))
            for cell, column in zip(self._cells, columns, strict=True)
        ]
        self._title_height = self._title_block_height()
        self.rows_first_page = int((TABLE_TOP - self._title_height - HEADER_HEIGHT - TABLE_BOTTOM) // ROW_HEIGHT)
        self.rows_per_page = int((TABLE_TOP - HEADER_HEIGHT - TABLE_BOTTOM) // ROW_HEIGHT)

        self._rows = 0
        self._pages = 0
        self._rows_left_on_page = 0  # 0: no page open
        self._row_y = 0.0  # top of the next row on the open page
        self._row_in_page = 0
        self._page: list[str] = []  # the open page's operators before its rows: title block, header
        self._zebra: list[str] = []  # the open page's stripes
        self._ops: list[str] = []  # the open page's cell text
        self._headers: dict[float, tuple[str, str]] = {}  # by the header's top: (band, labels)
        self._kids = array.array("q")  # page object numbers
        self._finished = False
        self._file = DigestFile(path)  # hashed as written (formats/output.py)
        try:
            self._objects = objects = PdfObjects(self._file)
            self._catalog, self._page_tree, self._info, self._resources = (objects.reserve() for _ in range(4))
            self._forms = {name: objects.reserve() for name in _FORM_SIZES}
            self._fonts = _Fonts(objects)
            self._fonts.font(REGULAR_FONT)  # the totals' forms draw digits in its subset 0
            self._body_text = _BodyText(self._fonts, self._body, self._cells)
            self._footer = self._footer_text()
        except BaseException:
            self.abort()
            raise

    # -- the protocol ------------------------------------------------------------------------------

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        if self._finished:
            raise ValueError("write_rows on a closed PDF writer")
        width = len(self._cells)
        for row in rows:
            if len(row) != width:
                raise ValueError(f"a row has {len(row)} values for {width} columns")
            if not self._rows_left_on_page:
                self._start_page()
            self._draw_row(row)
            self._rows += 1
            self._rows_left_on_page -= 1
            if not self._rows_left_on_page:
                self._finish_page()

    def close(self) -> None:
        if self._finished:
            return
        try:
            if self._rows_left_on_page:
                self._finish_page()
            if not self._pages:
                self._start_page()
                self._draw_no_rows()
                self._finish_page()
            self._write_trailer()
            self._file.close()
        except BaseException:
            self.abort()
            raise
        self._finished = True

    def sha256(self) -> str:
        """The file's SHA-256 (hex), once closed."""
        return self._file.sha256()

    def abort(self) -> None:
        if self._finished:
            return
        self._finished = True
        self._page, self._zebra, self._ops = [], [], []
        with contextlib.suppress(OSError):
            self._file.close()

    # -- layout ------------------------------------------------------------------------------------

    @staticmethod
    def _layout(columns: Sequence[Column]) -> list[_Cell]:
        total = sum(max(column.width, 1) for column in columns)
        cells, left = [], MARGIN
        for index, column in enumerate(columns):
            width = TABLE_WIDTH * max(column.width, 1) / total
            cells.append(_Cell(index, left, width, column.type in _NUMBERS, _formatter(column.type)))
            left += width
        return cells

    def _title_block_height(self) -> float:
        lines = 3 + min(len(self._filters), MAX_FILTER_LINES)  # account, filters..., generated, rows
        lines += 1 if self._time_zone else 0
        if not self._filters:
            lines += 1  # "Filters: none"
        return TITLE_SIZE + 8 + lines * META_LEADING + 8

    def _footer_text(self) -> str:
        """The footer's right-hand text (title, account and time), the same on every page."""
        parts = [self._title, self._account, f"generated {self._generated}"]
        runs, width = _Measure(REGULAR_FONT, FOOTER_SIZE).fit(" · ".join(p for p in parts if p), TABLE_WIDTH * 0.7)
        return self._fonts.at(PAGE_WIDTH - MARGIN - width, MARGIN, runs, FOOTER_SIZE)

    # -- drawing -----------------------------------------------------------------------------------

    def _start_page(self) -> None:
        self._pages += 1
        top = TABLE_TOP
        if self._pages == 1:
            self._page.append(self._title_block())
            top -= self._title_height
            self._rows_left_on_page = self.rows_first_page
        else:
            self._rows_left_on_page = self.rows_per_page
        header = self._headers.get(top)
        if header is None:
            header = self._headers[top] = self._header_row(top)
        self._page.append(header[1])
        self._band = header[0]
        self._row_y = top - HEADER_HEIGHT
        self._row_in_page = 0

    def _header_row(self, top: float) -> tuple[str, str]:
        band = f"{MARGIN:.2f} {top - HEADER_HEIGHT:.2f} {TABLE_WIDTH:.2f} {HEADER_HEIGHT:.2f} re f"
        baseline = top - HEADER_HEIGHT + (HEADER_HEIGHT - HEADER_SIZE) / 2 + 1.2
        labels = []
        for cell, label, width, size in self._header:
            x = cell.left + cell.width - PADDING - width if cell.right_aligned else cell.left + PADDING
            labels.append(self._fonts.at(x, baseline, label, size))
        return band, "\n".join(labels)

    def _draw_row(self, row: Sequence[Any]) -> None:
        top = self._row_y - ROW_HEIGHT
        if self._row_in_page % 2:
            self._zebra.append(f"{MARGIN:.2f} {top:.2f} {TABLE_WIDTH:.2f} {ROW_HEIGHT:.2f} re f")
        baseline = f"{top + (ROW_HEIGHT - BODY_SIZE) / 2 + 1.0:.2f} "
        append, cell_text = self._ops.append, self._body_text.cell
        for cell, value in zip(self._cells, row, strict=True):
            if value is None:
                continue
            matrix, shown = cell_text(cell.index, cell.format(value))
            if shown:
                append(matrix + baseline + shown)
        self._row_y = top
        self._row_in_page += 1

    def _draw_no_rows(self) -> None:
        runs, _ = self._body.fit("No rows match this export's filters.", TABLE_WIDTH)
        self._ops.append(self._fonts.at(MARGIN + PADDING, self._row_y - ROW_HEIGHT + 3, runs, BODY_SIZE))

    def _finish_page(self) -> None:
        # Header band and stripes, then all the text, then the footer's rule and page total.
        total_x = MARGIN + self._body_width(f"Page {self._pages} of ")
        # (A form is drawn outside BT ... ET, where text extraction finds it in reading order.)
        parts = [
            f"q {_HEADER_FILL} g {self._band} Q",
            f"q {_ZEBRA_FILL} g",
            *self._zebra,
            "Q BT 0 g",
            *self._page,
            *self._ops,
            f"{_MUTED} g",
            self._footer,  # first: text extraction then reads "Page n of N" as its own line's end
            self._fonts.at(MARGIN, MARGIN, [(REGULAR_FONT, f"Page {self._pages} of ")], FOOTER_SIZE),
            "ET",
            f"q {_MUTED} g 1 0 0 1 {total_x:.2f} {MARGIN:.2f} cm {_PAGE_TOTAL_FORM} Do Q",
            f"q 0.7 G 0.4 w {MARGIN:.2f} {MARGIN + 9:.2f} m {PAGE_WIDTH - MARGIN:.2f} {MARGIN + 9:.2f} l S Q",
        ]
        content = "\n".join(parts).encode("latin-1")
        self._page.clear()
        self._zebra.clear()
        self._ops.clear()
        self._rows_left_on_page = 0
        objects = self._objects
        contents, page = objects.reserve(), objects.reserve()
        objects.write_stream(contents, content)
        objects.write_object(
            page,
            b"<< /Type /Page /Parent %d 0 R /MediaBox %s /Resources %d 0 R /Contents %d 0 R >>"
            % (self._page_tree, _MEDIA_BOX, self._resources, contents),
        )
        self._kids.append(page)

    def _body_width(self, ascii_text: str) -> float:
        return self._footer_measure.fit(ascii_text, math.inf)[1]

    def _title_block(self) -> str:
        fonts = self._fonts
        y = TABLE_TOP - TITLE_SIZE
        title = _Measure(BOLD_FONT, TITLE_SIZE).fit(self._title, TABLE_WIDTH)[0]
        ops = [fonts.at(MARGIN, y, title, TITLE_SIZE)]
        y -= 8
        meta = _Measure(REGULAR_FONT, META_SIZE)
        label_width = 52.0
        lines: list[tuple[str, str]] = [("Account", self._account or "—")]
        filters = self._filters or ["none"]
        if len(filters) > MAX_FILTER_LINES:
            filters = [*filters[: MAX_FILTER_LINES - 1], "; ".join(filters[MAX_FILTER_LINES - 1 :])]
        lines += [("Filters" if index == 0 else "", line) for index, line in enumerate(filters)]
        lines.append(("Generated", self._generated))
        if self._time_zone:
            lines.append(("Times in", self._time_zone))
        lines.append(("Rows", ""))  # its value is the row-total form
        for label, value in lines:
            y -= META_LEADING
            if label:
                ops += [f"{_MUTED} g", fonts.at(MARGIN, y, [(REGULAR_FONT, label)], META_SIZE)]
            if value:
                runs = meta.fit(value, TABLE_WIDTH - label_width)[0]
                ops += ["0 g", fonts.at(MARGIN + label_width, y, runs, META_SIZE)]
        ops += ["ET", f"q 0 g 1 0 0 1 {MARGIN + label_width:.2f} {y:.2f} cm {_ROW_TOTAL_FORM} Do Q", "BT 0 g"]
        return "\n".join(ops)

    def _write_trailer(self) -> None:
        """The totals' forms, the fonts, the shared resources, the page tree, catalogue and info."""
        objects = self._objects
        primary = self._fonts.font(REGULAR_FONT)
        texts = {_PAGE_TOTAL_FORM: str(self._pages), _ROW_TOTAL_FORM: f"{self._rows:,}"}
        font_resource, font_number = primary.resources()[0]
        for name, number in self._forms.items():
            content = f"BT 0 0 Td {primary.show(texts[name], _FORM_SIZES[name])} ET".encode()
            extra = b"/Type /XObject /Subtype /Form /BBox [0 -4 400 20] /Resources << /Font << %s %d 0 R >> >>" % (
                font_resource.encode(),
                font_number,
            )
            objects.write_stream(number, content, extra)
        fonts = []
        for font in self._fonts.embedded.values():
            font.write(objects.reserve, objects.write_object, objects.write_stream)
            fonts += [f"{name} {number} 0 R" for name, number in font.resources()]
        forms = " ".join(f"{name} {number} 0 R" for name, number in self._forms.items())
        objects.write_object(
            self._resources,
            f"<< /ProcSet [/PDF /Text] /Font << {' '.join(fonts)} >> /XObject << {forms} >> >>".encode(),
        )
        kids = b" ".join(b"%d 0 R" % kid for kid in self._kids)
        objects.write_object(self._page_tree, b"<< /Type /Pages /Count %d /Kids [%s] >>" % (len(self._kids), kids))
        objects.write_object(self._catalog, b"<< /Type /Catalog /Pages %d 0 R >>" % self._page_tree)
        title = self._title.encode("utf-16-be").hex().encode()
        objects.write_object(self._info, b"<< /Title <feff%s> /Producer (ExportHub) >>" % title)
        objects.finish(self._catalog, self._info)
