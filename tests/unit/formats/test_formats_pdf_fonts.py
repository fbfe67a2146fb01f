"""The PDF writer's own font encoding and object writing (formats/pdf_fonts.py, formats/pdf_file.py):
codes fixed for the whole file, subsets embedded once, nothing a literal string would change."""

import io
import pathlib
import re

import pytest
from pypdf import PdfReader

from exporthub.catalog import Column, ColumnType
from exporthub.formats import pdf_text
from exporthub.formats.pdf import PdfWriter
from exporthub.formats.pdf_file import PdfObjects
from exporthub.formats.pdf_fonts import EmbeddedFont

COLUMNS = (
    Column("number", "No.", ColumnType.INTEGER, "r.n", 5),
    Column("name", "Name", ColumnType.TEXT, "r.name", 60),
)
# 300 Cyrillic and Greek letters and 300 CJK ideographs: more than one subset of 256 codes each.
MANY_LETTERS = [chr(code) for code in [*range(0x0410, 0x0450), *range(0x0391, 0x03A2), *range(0x03B1, 0x03C9)]]
MANY_LETTERS += [chr(code) for code in range(0x1E00, 0x1E00 + 300 - len(MANY_LETTERS))]  # Latin Extended Additional
IDEOGRAPHS = [chr(0x4E00 + index) for index in range(300)]


def _font() -> EmbeddedFont:
    pdf_text.register_fonts()
    numbers = iter(range(1, 1000))
    return EmbeddedFont(pdf_text.REGULAR_FONT, "F0_", lambda: next(numbers))


def test_a_text_is_encoded_the_same_wherever_it_is_drawn() -> None:
    font = _font()
    first = font.show("Zoë Ж", 7.5)
    for letter in MANY_LETTERS:
        font.show(letter, 7.5)
    assert font.show("Zoë Ж", 7.5) == first
    assert font.show("plain (ASCII) \\ text", 7.5) == r"/F0_0 7.5 Tf (plain \(ASCII\) \\ text) Tj"


def test_codes_never_need_escaping_and_spill_into_further_subsets() -> None:
    font = _font()
    shown = font.show("".join(MANY_LETTERS), 7.5)
    chunks = re.findall(r"/F0_(\d+) 7.5 Tf \((.*?)\) Tj", shown, flags=re.S)
    assert {subset for subset, _ in chunks} == {"0", "1"}  # subset 0 has 157 free codes
    assert sum(len(chunk) for _, chunk in chunks) == len(MANY_LETTERS)
    for _, chunk in chunks:
        assert not set(chunk) & set("()\\\r\n"), chunk
        assert all(ord(char) < 256 for char in chunk)
    assert len(font.numbers) == 2


def test_many_letters_read_back_and_each_subset_is_embedded_once(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "many.pdf"
    writer = PdfWriter(path, COLUMNS, title="Letters")
    rows = [(n, "".join(MANY_LETTERS[n * 20 : n * 20 + 20])) for n in range(15)]
    rows += [(100 + n, "".join(IDEOGRAPHS[n * 20 : n * 20 + 20])) for n in range(15)]
    writer.write_rows(rows * 3)  # three pages' worth: the same codes on every page
    writer.close()
    reader = PdfReader(path)
    assert len(reader.pages) > 1
    text = "".join(page.extract_text() for page in reader.pages)
    for letter in [*MANY_LETTERS, *IDEOGRAPHS]:
        assert letter in text, hex(ord(letter))
    fonts = reader.pages[0]["/Resources"]["/Font"]
    assert all(page["/Resources"]["/Font"] == fonts for page in reader.pages)  # one shared dictionary
    programs = [font.get_object()["/FontDescriptor"].raw_get("/FontFile2").idnum for font in fonts.values()]
    assert len(programs) == len(set(programs)) == path.read_bytes().count(b"/FontFile2")
    cjk = [name for name, font in fonts.items() if "DroidSansFallback" in str(font.get_object()["/BaseFont"])]
    assert len(cjk) == 2  # 300 ideographs: subsets 0 and 1


def test_an_object_reserved_but_never_written_is_an_error() -> None:
    objects = PdfObjects(io.BytesIO())
    written, missing = objects.reserve(), objects.reserve()
    objects.write_object(written, b"<< >>")
    with pytest.raises(ValueError, match=str(missing)):
        objects.finish(written, written)
