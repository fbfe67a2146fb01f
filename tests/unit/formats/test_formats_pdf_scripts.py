"""Every script the demo data uses is legible in a PDF report: drawn with a font that has its glyphs,
embedded in the file, Arabic joined and right-to-left text in drawing order.

Two readings of the same page, each honest about what it shows:
- the drawn text: each cell's glyph codes, in the order the content stream draws them (left to
  right), decoded through the embedded font's own ToUnicode map. Left-to-right names must come out
  as typed; a right-to-left name must come out as its shaped letters reversed, and shaped means
  Arabic letters in presentation forms (one joined form per position), which NFKC folds back to the
  letters the name was typed with.
- pypdf's `extract_text`, as any reader of the file would copy it: pypdf itself reverses runs of
  right-to-left characters back into reading order, so its line, NFKC-folded, must be the name as
  typed.
"""

from __future__ import annotations

import datetime as dt
import gc
import pathlib
import re
import tracemalloc
import unicodedata
from collections.abc import Iterator
from typing import Any

import pytest
from pypdf import PdfReader
from pypdf.generic import ContentStream

from exporthub.catalog import Column, ColumnType
from exporthub.db.seed import _CULTURES
from exporthub.formats import pdf_text
from exporthub.formats.pdf import MARGIN, PADDING, TABLE_WIDTH, PdfWriter

ROOT = pathlib.Path(__file__).resolve().parents[3]
ARTIFACT = ROOT / "test-artifacts" / "pdf-scripts.png"

COLUMNS = (
    Column("number", "No.", ColumnType.INTEGER, "r.n", 5),
    Column("name", "Employee", ColumnType.TEXT, "r.name", 30),
    Column("note", "Note", ColumnType.TEXT, "r.note", 40),
)
NAME_X = MARGIN + TABLE_WIDTH * 5 / 75 + PADDING  # where the name column's text starts, in points
NOTE_X = MARGIN + TABLE_WIDTH * 35 / 75 + PADDING

# The seed has Chinese and Arabic names but no Japanese, Korean or Hebrew ones: these stand in for them.
# "علاء" has a lam-alef ligature, which none of the seed's Arabic names has.
EXTRA_NAMES = ("山田 太郎", "さくら 佐藤", "カタカナ", "김민준", "이 서연", "דוד כהן", "שרה לוי", "علاء")
_RTL = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]")
_ARABIC_BASE = re.compile("[\u0600-\u06ff]")
_PRESENTATION = re.compile("[\ufb50-\ufdff\ufe70-\ufeff]")


def seed_names() -> list[str]:
    """Every first name of every culture the seed draws from, each with one of its culture's last
    names (the payroll's "Employee" column is first_name || ' ' || last_name), and every last name
    alone; the cultures take turns, so that page 1 shows every script."""
    per_culture = []
    for culture in _CULTURES:
        last = culture.last_names
        per_culture.append([f"{first} {last[index % len(last)]}" for index, first in enumerate(culture.first_names)])
        per_culture[-1] += list(last)
    longest = max(len(names) for names in per_culture)
    return [names[index] for index in range(longest) for names in per_culture if index < len(names)]


ALL_NAMES = [*EXTRA_NAMES, *seed_names()]


def _write(path: pathlib.Path, names: list[str], notes: list[str] | None = None, *, latin_title: bool = False) -> None:
    writer = PdfWriter(
        path,
        COLUMNS,
        title="Employees",
        account_name="Acme" if latin_title else "Acme 株式会社 شركة",
        filter_lines=[] if latin_title else ["Name: 欧阳 or محمد"],
        generated_at=dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.UTC),
    )
    notes = notes or [""] * len(names)
    writer.write_rows([(n, name, note or None) for n, (name, note) in enumerate(zip(names, notes, strict=True))])
    writer.close()


def _to_unicode(font: Any) -> dict[int, str]:
    """The font's ToUnicode map (reportlab writes one-byte codes as bfchar entries)."""
    data = font["/ToUnicode"].get_object().get_data().decode("latin-1")
    return {int(code, 16): chr(int(uni, 16)) for code, uni in re.findall(r"<([0-9A-F]{2})> <([0-9A-F]{4})>", data)}


def drawn_cells(reader: PdfReader, page_number: int) -> Iterator[tuple[float, float, str, list[str]]]:
    """(x, y, text, base font names) of every cell the page's content stream draws (one `Tm` each),
    the text in drawing order, decoded code by code through each font's ToUnicode map."""
    page = reader.pages[page_number]
    fonts = {name: font.get_object() for name, font in page["/Resources"]["/Font"].items()}
    maps: dict[str, dict[int, str]] = {}
    current: list[Any] = []  # [x, y, text parts, fonts]
    font_name = ""
    for operands, operator in ContentStream(page.get_contents(), reader).operations:
        if operator == b"Tm":
            if current:
                yield current[0], current[1], "".join(current[2]), current[3]
            current = [float(operands[4]), float(operands[5]), [], []]
        elif operator == b"Tf":
            font_name = str(operands[0])
        elif operator == b"Tj" and current:
            font = fonts[font_name]
            if font_name not in maps:
                maps[font_name] = _to_unicode(font)
            raw = getattr(operands[0], "original_bytes", operands[0])
            current[2].append("".join(maps[font_name][code] for code in bytes(raw)))
            current[3].append(str(font["/BaseFont"]).split("+")[-1])
        elif operator == b"ET" and current:
            yield current[0], current[1], "".join(current[2]), current[3]
            current = []


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("scripts") / "names.pdf"
    _write(path, ALL_NAMES)
    return path


def _column_cells(path: pathlib.Path, left: float = NAME_X) -> list[tuple[str, list[str]]]:
    """(drawn text, fonts) of the body cells of the column whose text starts at `left`, on every page."""
    reader = PdfReader(path)
    cells = []
    for page_number in range(len(reader.pages)):
        cells += [
            (text, fonts)
            for x, _, text, fonts in drawn_cells(reader, page_number)
            if abs(x - left) < 0.02 and "DejaVuSansCondensed-Bold" not in fonts  # not the header label
        ]
    return cells


def test_every_seed_name_is_drawn_in_drawing_order_with_joined_arabic(report: pathlib.Path) -> None:
    cells = _column_cells(report)
    assert len(cells) == len(ALL_NAMES)
    for name, (drawn, fonts) in zip(ALL_NAMES, cells, strict=True):
        if not _RTL.search(name):
            assert drawn == name
            continue
        # Right to left: drawn right to left means the reading order reversed.
        reading = drawn[::-1]
        assert unicodedata.normalize("NFKC", reading) == name, (name, drawn)
        if _ARABIC_BASE.search(name):
            # Shaped: every Arabic letter is drawn as a presentation form, none as the bare letter.
            assert not _ARABIC_BASE.search(drawn), (name, drawn)
            assert _PRESENTATION.search(drawn), (name, drawn)
            assert set(fonts) == {"NotoSansArabic-Regular"}, (name, fonts)
        else:
            assert set(fonts) == {"NotoSansHebrew-Regular"}, (name, fonts)
    by_name = dict(zip(ALL_NAMES, (drawn for drawn, _ in cells), strict=True))
    # Written out by hand, independently of the shaper: محمد is meem (initial), hah (medial), meem
    # (medial), dal (final), drawn from the left: dal first. العلي: alef (isolated), lam (initial),
    # ain (medial), lam (medial), yeh (final).
    muhammad = "\ufeaa\ufee4\ufea4\ufee3"
    al_ali = "\ufef2\ufee0\ufecc\ufedf\ufe8d"
    assert by_name["محمد العلي"] == f"{al_ali} {muhammad}"
    # علاء: ain (initial), then lam followed by alef as one ligature glyph (final form), hamza (isolated).
    assert by_name["علاء"] == "\ufe80\ufefc\ufecb"


def test_text_extraction_reads_every_name_back(report: pathlib.Path) -> None:
    """What a reader copying from the file gets: pypdf puts right-to-left runs back in reading order
    itself, and NFKC folds the presentation forms back to the typed letters."""
    lines: list[str] = []
    for page in PdfReader(report).pages:
        lines += page.extract_text().splitlines()
    rows = {}
    for line in lines:
        found = re.fullmatch(r"(\d+) (.+)", unicodedata.normalize("NFKC", line).strip())
        if found:
            rows[int(found.group(1))] = found.group(2)
    for number, name in enumerate(ALL_NAMES):
        assert rows.get(number) == name, (number, name, rows.get(number))


def test_cjk_arabic_and_hebrew_fonts_are_embedded(report: pathlib.Path) -> None:
    embedded: set[str] = set()
    for page in PdfReader(report).pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            descriptor = font.get("/FontDescriptor")
            if descriptor is not None and "/FontFile2" in descriptor.get_object():
                embedded.add(str(font["/BaseFont"]).split("+")[-1])
    assert {
        "DejaVuSansCondensed",
        "DejaVuSansCondensed-Bold",
        "DroidSansFallback",
        "NotoSansArabic-Regular",
        "NotoSansHebrew-Regular",
    } <= embedded


def test_every_character_of_the_names_has_a_glyph() -> None:
    """No character of a name (shaped, as drawn) falls to a font's empty box."""
    chain = pdf_text.chain(pdf_text.REGULAR_FONT)
    for name in ALL_NAMES:
        for char in pdf_text.shaped(name):
            assert pdf_text.has_glyph(chain.font_of(char), ord(char)), (name, char, hex(ord(char)))


def test_title_block_and_footer_draw_other_scripts_too(report: pathlib.Path) -> None:
    text = unicodedata.normalize("NFKC", PdfReader(report).pages[0].extract_text())
    assert "Acme 株式会社 شركة" in text
    assert "Name: 欧阳 or محمد" in text


def test_long_right_to_left_text_is_cut_at_its_reading_end(tmp_path: pathlib.Path) -> None:
    """The "…" ends the text in reading order: on the left of right-to-left text."""
    path = tmp_path / "cut.pdf"
    long_arabic = "محمد العلي فاطمة حسن أحمد منصور " * 12
    long_chinese = "欧阳子涵王芳李静" * 30
    _write(path, ["a", "b"], [long_arabic, long_chinese])
    (arabic, _), (chinese, _) = _column_cells(path, NOTE_X)
    assert arabic.startswith("…") and 20 < len(arabic) < len(long_arabic)
    reading = unicodedata.normalize("NFKC", arabic[:0:-1])
    assert long_arabic.startswith(reading.rstrip()), reading
    assert chinese.endswith("…") and long_chinese.startswith(chinese[:-1]) and 10 < len(chinese) < 240


def test_only_right_to_left_cells_are_shaped(tmp_path: pathlib.Path) -> None:
    """Latin, Greek, Cyrillic and CJK cells never reach the shaper or the bidi algorithm."""
    left_to_right = [name for name in ALL_NAMES if not _RTL.search(name)]
    before = pdf_text.shaped.cache_info(), pdf_text.visual.cache_info()
    _write(tmp_path / "ltr.pdf", left_to_right, latin_title=True)
    after = pdf_text.shaped.cache_info(), pdf_text.visual.cache_info()
    assert [info.hits + info.misses for info in after] == [info.hits + info.misses for info in before]


def test_a_rendered_page_is_kept_for_people_to_look_at(report: pathlib.Path) -> None:
    """test-artifacts/pdf-scripts.png: page 1 as a viewer shows it (PDFium draws the embedded fonts),
    for a person to see that no name is a row of boxes and that Arabic is joined, right to left."""
    import pypdfium2

    document = pypdfium2.PdfDocument(str(report))
    try:
        image = document[0].render(scale=2).to_pil()
    finally:
        document.close()
    ARTIFACT.parent.mkdir(exist_ok=True)
    image.save(ARTIFACT)
    assert image.width > 1600
    assert ARTIFACT.stat().st_size > 50_000


def test_memory_stays_flat_with_every_script(tmp_path: pathlib.Path) -> None:
    """As for Latin-only reports (test_formats_pdf.py): after the first pages, 60 more pages of
    names in every script cost only their entries in the page list (every character's font code
    is known after the first pages)."""
    writer = PdfWriter(tmp_path / "out.pdf", COLUMNS, title="Employees")
    rows = [(n, name, ALL_NAMES[-1 - n % len(ALL_NAMES)]) for n, name in enumerate(ALL_NAMES * 2)]
    batch = rows[: writer.rows_per_page]  # one page a batch, every script on it
    for _ in range(12):
        writer.write_rows(batch)
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for index in range(60):
            start = index * 7 % len(ALL_NAMES)
            writer.write_rows(rows[start : start + writer.rows_per_page])
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    writer.close()
    assert after - before < 256 * 1024


def test_brackets_are_mirrored_in_right_to_left_text_and_direction_controls_not_drawn(tmp_path: pathlib.Path) -> None:
    """Drawn left to right, "עברית (ירושלים)" must read "(םילשורי) תירבע": the bracket that opens
    the parenthesis in reading order is drawn as ")" on its right. Direction controls (here an
    isolate and a right-to-left mark) order the text but are not drawn."""
    path = tmp_path / "brackets.pdf"
    names = ["עברית (ירושלים)", "Ahmed \u2067محمد\u2069 (Jr.)", "\u200fשרה"]
    _write(path, names, latin_title=True)
    drawn = [text for text, _ in _column_cells(path)]
    assert drawn[0] == "(םילשורי) תירבע"
    assert drawn[1] == "Ahmed \ufeaa\ufee4\ufea4\ufee3 (Jr.)"
    assert drawn[2] == "הרש"


def test_right_to_left_text_with_an_unassigned_code_point_is_drawn(tmp_path: pathlib.Path) -> None:
    """python-bidi's pure-Python algorithm fails on code points Unicode has not assigned (U+0378 here);
    such a text is reordered by its other implementation and drawn (the unassigned one as a box)."""
    path = tmp_path / "unassigned.pdf"
    _write(path, ["\u05d0\u0378\u05d1 x"], latin_title=True)
    text = PdfReader(path).pages[0].extract_text()
    assert "\u05d1" in text and "\u05d0" in text
