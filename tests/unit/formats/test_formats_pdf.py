import datetime as dt
import gc
import pathlib
import re
import tracemalloc
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from pypdf import PdfReader

from exporthub.catalog import Column, ColumnType
from exporthub.formats import ReportInfo, Writer, open_writer, pdf_text
from exporthub.formats.pdf import ELLIPSIS, PdfWriter

T, INT, DEC, M, D, DT, B = (
    ColumnType.TEXT,
    ColumnType.INTEGER,
    ColumnType.DECIMAL,
    ColumnType.MONEY,
    ColumnType.DATE,
    ColumnType.DATETIME,
    ColumnType.BOOLEAN,
)

COLUMNS = (
    Column("number", "Row No.", INT, "r.n", 8),
    Column("name", "Employee", T, "r.name", 22),
    Column("memo", "Memo", T, "r.memo", 16),
    Column("pay", "Gross pay", M, "r.pay", 12),
    Column("hours", "Hours", DEC, "r.hours", 8),
    Column("payDate", "Pay date", D, "r.pay_date", 11),
    Column("processedAt", "Processed at", DT, "r.processed_at", 15),
    Column("manager", "Manager", B, "r.manager", 8),
)
LABELS = [column.label for column in COLUMNS]
REPORT = ReportInfo(
    account_name="Acme Ελλάς Группа",
    filters=("Status: paid, approved", "Pay date: 2024-01-01 to 2024-03-31"),
    generated_at=dt.datetime(2024, 5, 1, 11, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
)


def _row(n: int) -> tuple[Any, ...]:
    return (n, f"Employee {n:05d}", f"memo {n}", Decimal(n) + Decimal("0.5"), None, None, None, None)


def _pages(path: pathlib.Path) -> list[str]:
    """Each page's text with whitespace runs made single spaces."""
    return [" ".join(page.extract_text().split()) for page in PdfReader(path).pages]


def _write(path: pathlib.Path, rows: Sequence[Sequence[Any]], **kwargs: Any) -> PdfWriter:
    writer = PdfWriter(path, COLUMNS, title="Payroll", account_name="Acme", **kwargs)
    for start in range(0, len(rows), 70):  # batches that do not line up with pages
        writer.write_rows(rows[start : start + 70])
    writer.close()
    return writer


def test_open_writer_makes_a_pdf_with_the_title_block(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "out.pdf"
    writer = open_writer("pdf", path, COLUMNS, title="Payroll", report=REPORT)
    assert isinstance(writer, Writer)
    writer.write_rows([_row(n) for n in range(1, 4)])
    writer.close()
    first = _pages(path)[0]
    for text in (
        "Payroll",
        "Account Acme Ελλάς Группа",
        "Filters Status: paid, approved",
        "Pay date: 2024-01-01 to 2024-03-31",
        "Generated 2024-05-01 09:30 UTC",  # 11:30 at +02:00, shown in UTC
        "Rows 3",
        "Page 1 of 1",
    ):
        assert text in first
    metadata = PdfReader(path).metadata
    assert metadata is not None
    assert metadata.title == "Payroll"


def test_the_title_block_names_the_zone_of_the_times(tmp_path: pathlib.Path) -> None:
    """The export's query gives wall times in its zone (naive datetimes): shown as they are, the zone named."""
    path = tmp_path / "out.pdf"
    writer = open_writer("pdf", path, COLUMNS, title="Payroll", report=REPORT, time_zone="Asia/Tokyo")
    writer.write_rows([(1, "Ada", "", Decimal("1.5"), None, None, dt.datetime(2024, 3, 1, 9, 0), None)])
    writer.close()
    first = _pages(path)[0]
    assert "Times in Asia/Tokyo" in first and "2024-03-01 09:00" in first
    assert "Rows 1" in first and "Generated 2024-05-01 09:30 UTC" in first
    open_writer("pdf", tmp_path / "utc.pdf", COLUMNS, title="Payroll", report=REPORT).close()
    assert "Times in" not in _pages(tmp_path / "utc.pdf")[0]  # no zone given: none named (UTC)


def test_pages_headers_page_numbers_and_rows_in_place(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "out.pdf"
    probe = PdfWriter(tmp_path / "probe.pdf", COLUMNS, title="Payroll")
    probe.close()
    first, per_page = probe.rows_first_page, probe.rows_per_page
    assert 25 < first < per_page <= 45
    count = first + 3 * per_page + 5  # five pages, the last one nearly empty
    _write(path, [_row(n) for n in range(1, count + 1)])

    pages = _pages(path)
    assert len(pages) == 5
    for number, text in enumerate(pages, start=1):
        assert all(label in text for label in LABELS), number
        assert f"Page {number} of 5" in text
        assert "Payroll · Acme · generated" in text
    assert f"Rows {count:,}" in pages[0]
    # Row n is on page 1 if n <= first, else on page 2 + (n - first - 1) // per_page.
    for n in (1, first, first + 1, first + per_page, first + per_page + 1, count):
        page = 0 if n <= first else 1 + (n - first - 1) // per_page
        assert f"{n} Employee {n:05d} memo {n} " in pages[page], n
        assert all(f"Employee {n:05d} " not in text for index, text in enumerate(pages) if index != page)


def test_typed_values_are_formatted(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "out.pdf"
    rows = [
        (
            1234567,
            "Δημήτρης Παπαδόπουλος",
            "=SUM(A1:A9)",
            Decimal("1234.5"),
            Decimal("1234.25"),
            dt.date(2024, 1, 31),
            dt.datetime(2024, 1, 31, 11, 30, 59, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            True,
        ),
        (2, "Светлана Иванова", "@cmd|' /C calc'!A0", Decimal("-12.5"), 7, None, dt.datetime(2024, 2, 1, 8, 5), False),
        (3, "José Zoë", None, 0, Decimal("7.50"), None, None, None),
        (4, None, "-1+1", None, None, None, None, None),
    ]
    _write(path, rows)
    text = _pages(path)[0]
    assert "1234567 Δημήτρης Παπαδόπουλος =SUM(A1:A9) 1,234.50 1,234.25 2024-01-31 2024-01-31 09:30 Yes" in text
    assert "2 Светлана Иванова @cmd|' /C calc'!A0 -12.50 7 2024-02-01 08:05 No" in text
    assert "3 José Zoë 0.00 7.50 4 -1+1" in text  # None cells are empty, no "None"
    assert "None" not in text
    assert "'=" not in text  # formula-like text is shown as it is, never quoted


def test_long_text_is_cut_with_an_ellipsis(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "out.pdf"
    long_name = "Maximiliane Konstantinopoulou-Vanderbilt " * 10
    long_memo = "x" * 100_000
    _write(path, [(1, long_name, long_memo, None, None, None, None, None), (2, "Ann", "line\none\ttab", *[None] * 5)])
    text = _pages(path)[0]
    shown = re.search(f"1 (Maximiliane[^{ELLIPSIS}]*){ELLIPSIS} (x+){ELLIPSIS} 2 Ann", text)
    assert shown is not None, text
    name, memo = shown.groups()
    assert long_name.startswith(name)
    assert 20 < len(name) < 80
    assert 10 < len(memo) < 100
    assert "2 Ann line one tab" in text  # line breaks and tabs are shown as spaces


def test_cells_never_overflow_their_column(tmp_path: pathlib.Path) -> None:
    """Every text run drawn in a row starts inside its column and ends before the next one (its
    width measured with the font it is drawn in)."""
    path = tmp_path / "out.pdf"
    writer = PdfWriter(path, COLUMNS, title="Payroll")
    lefts = [cell.left for cell in writer._cells] + [writer._cells[-1].left + writer._cells[-1].width]
    writer.write_rows(
        [
            (10**30, "W" * 80, "Ш" * 80, Decimal("9" * 25), Decimal("1" * 20), dt.date.max, dt.datetime.max, True),
            (1, "i" * 300, "ﷺ" * 30, Decimal("1e30"), Decimal("-1E-10"), None, None, False),
            (2, "欧阳子涵" * 30, "محمد العلي " * 30, None, None, None, None, None),
            (3, "Zoë 李 محمد " * 20, "דוד כהן " * 30, None, None, None, None, None),
        ]
    )
    writer.close()
    fonts = {pathlib.Path(file).stem: name for name, file in pdf_text.FONT_FILES.items()}
    for text, x, base_font in _runs(path):
        column = max(index for index, left in enumerate(lefts) if left <= x + 0.01)
        assert column < len(COLUMNS), (text, x)
        face = pdf_text.face(fonts[base_font])
        end = x + 7.5 / 1000 * sum(face.getCharWidth(ord(c)) for c in text)
        assert end <= lefts[column + 1] + 0.01, (text, x, end)


def _runs(path: pathlib.Path) -> list[tuple[str, float, str]]:
    """(text, x, font file name) of every body text run below the header row on page 1."""
    runs: list[tuple[str, float, str]] = []

    def visit(text: str, cm: Any, tm: Any, font: Any, size: float) -> None:
        if text.strip() and size == 7.5 and tm[5] < 470:
            runs.append((text, tm[4], str(font["/BaseFont"]).split("+")[-1]))

    PdfReader(path).pages[0].extract_text(visitor_text=visit)
    assert runs
    return runs


def test_no_rows_still_makes_one_page(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "out.pdf"
    writer = open_writer("pdf", path, COLUMNS, title="Payroll")
    writer.close()
    (text,) = _pages(path)
    assert "No rows match" in text
    assert "Rows 0" in text
    assert "Page 1 of 1" in text
    assert all(label in text for label in LABELS)


def test_scripts_without_glyphs_do_not_fail(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "out.pdf"
    names = ["李小龙", "محمد علي", "😀 emoji", "\x00\x07\ufffe\u2028", "Zoë (parens) \\ back"]
    _write(path, [(n, name, name, None, None, None, None, None) for n, name in enumerate(names)])
    text = _pages(path)[0]
    assert "Zoë (parens) \\ back" in text


def test_protocol_errors(tmp_path: pathlib.Path) -> None:
    writer = PdfWriter(tmp_path / "out.pdf", COLUMNS, title="T")
    with pytest.raises(ValueError, match="8 columns"):
        writer.write_rows([(1, 2)])
    writer.abort()
    writer.abort()
    with pytest.raises(ValueError, match="closed"):
        writer.write_rows([_row(1)])
    writer.close()  # no-op after abort
    with pytest.raises(FileNotFoundError):
        PdfWriter(tmp_path / "missing" / "out.pdf", COLUMNS)


def test_memory_stays_flat_across_pages(tmp_path: pathlib.Path) -> None:
    """After the first pages, 60 more pages cost only their entries in the page list."""
    writer = PdfWriter(tmp_path / "out.pdf", COLUMNS, title="Payroll")
    batch = [_row(n) for n in range(writer.rows_per_page)]  # one page a batch
    for _ in range(12):
        writer.write_rows(batch)
    tracemalloc.start()
    try:
        gc.collect()  # a reportlab document is a web of cycles: count only what is still reachable
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(60):
            writer.write_rows(batch)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    writer.close()
    # Unbounded, 60 pages would hold over 1 MB; a page's entry is 8 bytes, the open page ~20 KB.
    assert after - before < 64 * 1024
