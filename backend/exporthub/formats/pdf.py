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

Memory: reportlab (like every PDF library we tried) keeps a whole document in memory until it is
saved, about 20 KB a page. So the report is drawn as a series of small reportlab documents ("pieces"
of `pages_per_piece` pages, in memory), and each finished piece is copied into `path` object by
object at once (`PdfAssembler`: pypdf reads the piece, objects are renumbered and written out; a
plain pypdf merge would again hold every page until the end). What stays in memory is one piece and,
per page, an object number and a file offset: about 20 bytes a page. Each piece embeds its own font
subsets (some 30 KB a piece, a few per cent of the file).

Totals that are only known at the end (page count, row count) are form XObjects that every page
references; the assembler writes them once, on close, into objects reserved up front. So the file
says "Page 3 of 120" and "Rows: 4,980" without anything being held back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import decimal
import io
import math
import pathlib
from collections.abc import Callable, Sequence
from typing import Any

from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.rl_accel import escapePDF
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen.canvas import Canvas

from exporthub.catalog import Column, ColumnType
from exporthub.formats import pdf_text
from exporthub.formats.output import DigestFile
from exporthub.formats.pdf_assembly import PdfAssembler
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
PAGES_PER_PIECE = 100  # about 2 MB of reportlab state; see the module docstring
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

_PAGE_TOTAL_FORM = "pageTotal"
_ROW_TOTAL_FORM = "rowTotal"
_FORM_SIZES = {_PAGE_TOTAL_FORM: FOOTER_SIZE, _ROW_TOTAL_FORM: META_SIZE}

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
        self._widths, self._default = self._chain.advances(font_name)
        self._size = size
        self._scale = size / 1000.0
        self._ellipsis = self._widths.get(ord(ELLIPSIS), self._default) * self._scale

    def width(self, runs: list[Run]) -> float:
        return self._chain.width(runs, self._size)

    def fit(self, text: str, available: float) -> tuple[list[Run], float]:
        """`text`, or its longest prefix that fits with "…" appended, as runs; and the width drawn."""
        if len(text) > _MAX_CELL_CHARS:
            text = text[:_MAX_CELL_CHARS]
        if not text.isascii():
            return self._fit_runs(text, available)
        get, default = self._widths.get, self._default
        advances = [get(ord(char), default) for char in text]
        total = sum(advances) * self._scale
        if total <= available:
            return ([(self._font, text)] if text else []), total
        cut = _cut(advances, (available - self._ellipsis) / self._scale)
        runs = [(self._font, text[:cut].rstrip() + ELLIPSIS)]
        return runs, self.width(runs)

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
            widths, default = self._chain.advances(font_name)
            get = widths.get
            advances += [get(ord(char), default) for char in chunk]
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


def canvas_document(canvas: Canvas) -> Any:
    """The document a canvas writes into, which a TrueType font needs to number its glyph subsets
    (`splitString`, `getSubsetInternalName`). Private API: reportlab has no public accessor, and its
    own text objects read `canvas._doc` too (reportlab is pinned to 5.x in pyproject.toml;
    tests/unit/formats/test_formats_pdf.py fails loudly if this changes)."""
    return canvas._doc


class _BodyText:
    """Cell text as PDF text operators, for one piece (reportlab numbers a font's glyph subsets per
    document). Drawing through reportlab's text objects costs ~4x more per cell (number formatting,
    width measuring and escaping, each in pure Python); repeated values (dates, departments,
    statuses) are encoded once per column and piece."""

    _CACHE_LIMIT = 2_000  # entries per column; emptied when full

    def __init__(self, canvas: Canvas, measure: _Measure, columns: int) -> None:
        self._doc = canvas_document(canvas)
        self._fonts: dict[str, Any] = {}
        self._measure = measure
        self._caches: list[dict[str, tuple[str, float]]] = [{} for _ in range(columns + 1)]

    def cell(self, column: int, text: str, available: float) -> tuple[str, float]:
        """("/F1+0 7.5 Tf (...) Tj ...", one per run and glyph subset; the width drawn) for `text`
        cut to `available` points."""
        cache = self._caches[column]
        hit = cache.get(text)
        if hit is not None:
            return hit
        runs, width = self._measure.fit(text, available)
        if len(runs) == 1:  # the usual case: one font
            ops = self._ops(*runs[0])
        else:
            ops = " ".join([self._ops(font_name, chunk) for font_name, chunk in runs])
        if len(cache) >= self._CACHE_LIMIT:
            cache.clear()
        cache[text] = (ops, width)
        return ops, width

    def _ops(self, font_name: str, text: str) -> str:
        font = self._fonts.get(font_name)
        if font is None:
            font = self._fonts[font_name] = pdfmetrics.getFont(font_name)
        doc = self._doc
        return " ".join(
            [
                f"{font.getSubsetInternalName(subset, doc)} {BODY_SIZE} Tf ({escapePDF(chunk)}) Tj"
                for subset, chunk in font.splitString(text, doc)
            ]
        )


def _fit_label(label: str, available: float) -> tuple[list[Run], float, float]:
    """A header label, in a smaller size if that saves it from being cut: (runs, width, size)."""
    for size in (HEADER_SIZE, HEADER_SIZE - 1):
        measure = _Measure(BOLD_FONT, size)
        if measure.fit(label, math.inf)[1] <= available:
            break
    runs, width = measure.fit(label, available)
    return runs, width, size


def _text_runs(text: Any, runs: list[Run], size: float) -> None:
    """Add runs to a reportlab text object, each in its font."""
    for font_name, chunk in runs:
        text.setFont(font_name, size)
        text.textOut(chunk)


def _draw_runs(canvas: Canvas, x: float, y: float, runs: list[Run], size: float) -> None:
    text = canvas.beginText(x, y)
    _text_runs(text, runs, size)
    canvas.drawText(text)


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
        pages_per_piece: int = PAGES_PER_PIECE,
        time_zone: str | None = None,  # the datetimes' (wall times there), named in the title block
    ) -> None:
        if not columns:
            raise ValueError("a PDF report needs at least one column")
        if pages_per_piece < 1:
            raise ValueError("pages_per_piece must be at least 1")
        register_fonts()
        self._title = _clean(title) or "Export"
        self._account = _clean(account_name)
        self._filters = [_clean(line) for line in filter_lines if line]
        self._generated = format_utc_minutes(generated_at or dt.datetime.now(dt.UTC)) + " UTC"
        self._time_zone = _clean(time_zone or "")
        self._pages_per_piece = pages_per_piece
        self._body = _Measure(REGULAR_FONT, BODY_SIZE)
        self._cells = self._layout(columns)
        self._header = [
            (cell, *_fit_label(_clean(column.label), cell.width - 2 * PADDING))
            for cell, column in zip(self._cells, columns, strict=True)
        ]
        self._footer = self._footer_text()
        self._title_height = self._title_block_height()
        self.rows_first_page = int((TABLE_TOP - self._title_height - HEADER_HEIGHT - TABLE_BOTTOM) // ROW_HEIGHT)
        self.rows_per_page = int((TABLE_TOP - HEADER_HEIGHT - TABLE_BOTTOM) // ROW_HEIGHT)

        self._rows = 0
        self._pages = 0
        self._pages_in_piece = 0
        self._rows_left_on_page = 0  # 0: no page open
        self._row_y = 0.0  # top of the next row on the open page
        self._zebra: list[str] = []  # the open page's operators: stripes and cell text
        self._ops: list[str] = []
        self._body_text: _BodyText
        self._canvas: Canvas | None = None
        self._piece = io.BytesIO()
        self._row_in_page = 0
        self._finished = False
        self._file = DigestFile(path)  # hashed as written (formats/output.py)
        try:
            self._assembler = PdfAssembler(self._file, title=self._title, forms=list(_FORM_SIZES))
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
            if self._canvas is not None:
                self._flush_piece()
            self._assembler.finish(
                {_PAGE_TOTAL_FORM: str(self._pages), _ROW_TOTAL_FORM: f"{self._rows:,}"}, _FORM_SIZES
            )
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
        self._canvas = None
        self._piece = io.BytesIO()
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

    def _footer_text(self) -> tuple[list[Run], float]:
        parts = [self._title, self._account, f"generated {self._generated}"]
        text = " · ".join(part for part in parts if part)
        return _Measure(REGULAR_FONT, FOOTER_SIZE).fit(text, TABLE_WIDTH * 0.7)

    # -- drawing -----------------------------------------------------------------------------------

    def _new_canvas(self) -> Canvas:
        self._piece = io.BytesIO()
        canvas = Canvas(self._piece, pagesize=(PAGE_WIDTH, PAGE_HEIGHT), pageCompression=1, invariant=1)
        # Placeholders for the totals; the assembler replaces them with the real forms on close.
        for name, size in _FORM_SIZES.items():
            canvas.beginForm(name)
            canvas.setFont(REGULAR_FONT, size)
            canvas.drawString(0, 0, "0123456789,")
            canvas.endForm()
        self._body_text = _BodyText(canvas, self._body, len(self._cells))
        return canvas

    def _start_page(self) -> None:
        if self._canvas is None:
            self._canvas = self._new_canvas()
        canvas = self._canvas
        self._pages += 1
        self._pages_in_piece += 1
        top = TABLE_TOP
        if self._pages == 1:
            self._draw_title_block(canvas)
            top -= self._title_height
            self._rows_left_on_page = self.rows_first_page
        else:
            self._rows_left_on_page = self.rows_per_page
        canvas.setFillGray(_HEADER_FILL)
        canvas.rect(MARGIN, top - HEADER_HEIGHT, TABLE_WIDTH, HEADER_HEIGHT, stroke=0, fill=1)
        canvas.setFillGray(0)
        text = canvas.beginText()
        text.setFont(BOLD_FONT, HEADER_SIZE)
        baseline = top - HEADER_HEIGHT + (HEADER_HEIGHT - HEADER_SIZE) / 2 + 1.2
        for cell, label, width, size in self._header:
            x = cell.left + cell.width - PADDING - width if cell.right_aligned else cell.left + PADDING
            text.setTextOrigin(x, baseline)
            _text_runs(text, label, size)
        canvas.drawText(text)
        self._row_y = top - HEADER_HEIGHT
        self._row_in_page = 0

    def _draw_row(self, row: Sequence[Any]) -> None:
        top = self._row_y - ROW_HEIGHT
        if self._row_in_page % 2:
            self._zebra.append(f"{MARGIN:.2f} {top:.2f} {TABLE_WIDTH:.2f} {ROW_HEIGHT:.2f} re f")
        baseline = f"{top + (ROW_HEIGHT - BODY_SIZE) / 2 + 1.0:.2f} Tm "
        ops, cell_text = self._ops, self._body_text.cell
        for cell, value in zip(self._cells, row, strict=True):
            if value is None:
                continue
            shown, width = cell_text(cell.index, cell.format(value), cell.width - 2 * PADDING)
            if shown:
                x = cell.left + cell.width - PADDING - width if cell.right_aligned else cell.left + PADDING
                ops.append(f"1 0 0 1 {x:.2f} {baseline}{shown}")
        self._row_y = top
        self._row_in_page += 1

    def _draw_no_rows(self) -> None:
        shown, _ = self._body_text.cell(-1, "No rows match this export's filters.", TABLE_WIDTH)
        self._ops.append(f"1 0 0 1 {MARGIN + PADDING:.2f} {self._row_y - ROW_HEIGHT + 3:.2f} Tm {shown}")

    def _finish_page(self) -> None:
        canvas = self._canvas
        assert canvas is not None
        # The rows, written as PDF operators: zebra stripes first, then all the cells' text.
        zebra = "\n".join(self._zebra)
        canvas.addLiteral(f"q {_ZEBRA_FILL} g\n{zebra}\nQ\nq 0 g BT\n" + "\n".join(self._ops) + "\nET Q")
        self._zebra.clear()
        self._ops.clear()
        self._rows_left_on_page = 0
        # The footer: "Page n of " then the page-total form; title, account and time on the right.
        canvas.setStrokeGray(0.7)
        canvas.setLineWidth(0.4)
        canvas.line(MARGIN, MARGIN + 9, PAGE_WIDTH - MARGIN, MARGIN + 9)
        canvas.setFillGray(_MUTED)
        canvas.setFont(REGULAR_FONT, FOOTER_SIZE)
        label = f"Page {self._pages} of "
        canvas.drawString(MARGIN, MARGIN, label)
        canvas.saveState()
        canvas.translate(MARGIN + pdfmetrics.stringWidth(label, REGULAR_FONT, FOOTER_SIZE), MARGIN)
        canvas.doForm(_PAGE_TOTAL_FORM)
        canvas.restoreState()
        runs, width = self._footer
        _draw_runs(canvas, PAGE_WIDTH - MARGIN - width, MARGIN, runs, FOOTER_SIZE)
        canvas.showPage()
        if self._pages_in_piece >= self._pages_per_piece:
            self._flush_piece()

    def _draw_title_block(self, canvas: Canvas) -> None:
        y = TABLE_TOP - TITLE_SIZE
        canvas.setFillGray(0)
        _draw_runs(canvas, MARGIN, y, _Measure(BOLD_FONT, TITLE_SIZE).fit(self._title, TABLE_WIDTH)[0], TITLE_SIZE)
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
        for label, value in lines:
            y -= META_LEADING
            self._draw_meta_line(canvas, meta, y, label, value, label_width)
        y -= META_LEADING
        self._draw_meta_line(canvas, meta, y, "Rows", "", label_width)
        canvas.saveState()
        canvas.setFillGray(0)
        canvas.translate(MARGIN + label_width, y)
        canvas.doForm(_ROW_TOTAL_FORM)
        canvas.restoreState()

    @staticmethod
    def _draw_meta_line(canvas: Canvas, meta: _Measure, y: float, label: str, value: str, label_width: float) -> None:
        canvas.setFillGray(_MUTED)
        canvas.setFont(REGULAR_FONT, META_SIZE)
        if label:
            canvas.drawString(MARGIN, y, label)
        canvas.setFillGray(0)
        if value:
            _draw_runs(canvas, MARGIN + label_width, y, meta.fit(value, TABLE_WIDTH - label_width)[0], META_SIZE)

    def _flush_piece(self) -> None:
        canvas, self._canvas = self._canvas, None
        assert canvas is not None
        self._pages_in_piece = 0
        canvas.save()
        data, self._piece = self._piece.getvalue(), io.BytesIO()
        self._assembler.add_piece(data)
