"""The compact font faces (pdf_face.py) read every shipped font exactly as reportlab's own parser does:
the same glyph for every character, the same widths and header fields, byte-identical subsets; and
they cost a fraction of its memory."""

from __future__ import annotations

import gc
import pathlib
import random
import struct
import tracemalloc

import pytest
from reportlab.pdfbase.ttfonts import TTFError, TTFontFace

from exporthub.formats import pdf_face
from exporthub.formats.pdf_face import AdvanceWidths, Face
from exporthub.formats.pdf_text import CJK_FONT, FONT_DIR, FONT_FILES, HEBREW_FONT

FONT_PATHS = {name: str(FONT_DIR / file) for name, file in FONT_FILES.items()}
HEADER_FIELDS = ("name", "subfontNameX", "flags", "bbox", "ascent", "descent", "capHeight", "italicAngle", "stemV")


@pytest.fixture(scope="module", params=sorted(FONT_PATHS))
def faces(request: pytest.FixtureRequest) -> tuple[Face, TTFontFace]:
    path = FONT_PATHS[request.param]
    return Face(path), TTFontFace(path)


def test_every_character_maps_to_reportlabs_glyph_and_width(faces: tuple[Face, TTFontFace]) -> None:
    face, reference = faces
    assert dict(face.charToGlyph) == reference.charToGlyph  # every code point, the no-break space too
    assert face.defaultWidth == reference.defaultWidth
    for code in [*reference.charToGlyph, *range(0, 0x3_0000, 97)]:
        assert face.getCharWidth(code) == reference.getCharWidth(code), hex(code)
        assert face.widths[code] == reference.getCharWidth(code), hex(code)
    assert [getattr(face, field) for field in HEADER_FIELDS] == [getattr(reference, field) for field in HEADER_FIELDS]


def test_subsets_are_byte_for_byte_reportlabs(faces: tuple[Face, TTFontFace]) -> None:
    """reportlab's subsetter reads the compact tables (glyph offsets, metrics, character map) and makes
    the same font program: codes as the PDF writer lays them out (0: .notdef, 32: space)."""
    face, reference = faces
    chosen = random.Random(14).sample(sorted(reference.charToGlyph), min(250, len(reference.charToGlyph)))
    for codes in (chosen[:1], chosen):
        subset = [0] * 32 + [32, *codes]
        assert face.makeSubset(subset) == reference.makeSubset(subset)


def test_the_cjk_font_costs_a_fraction_of_reportlabs_tables() -> None:
    """Droid Sans Fallback: reportlab's parse holds ~17.5 MiB (its file, dicts by character, tuples by
    glyph); the compact face ~0.8 MiB of arrays (its file is mapped, not read), and a subset is cut
    glyph by glyph out of the mapped file, without a copy of its 2.9 MiB glyph table."""
    subset = [0] * 32 + [32] + [0x4E00 + 37 * n for n in range(200)]

    def traced(load: type) -> tuple[int, int, int]:
        gc.collect()
        tracemalloc.start()
        try:
            font = load(FONT_PATHS[CJK_FONT])
            gc.collect()
            kept, peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            font.makeSubset(subset)
            subsetting = tracemalloc.get_traced_memory()[1] - kept
        finally:
            tracemalloc.stop()
        return kept, peak, subsetting

    kept, peak, subsetting = traced(Face)
    reference_kept, _, reference_subsetting = traced(TTFontFace)
    assert kept < 1.5 * 2**20 and peak < 2 * 2**20
    assert subsetting < 1.5 * 2**20
    assert reference_kept > 10 * kept and reference_subsetting > 2 * subsetting


def test_widths_are_looked_up_once_and_kept_up_to_a_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[int] = []
    widths = AdvanceWidths(lambda code: asked.append(code) or code / 2)
    assert [widths[7], widths[7], widths[8]] == [3.5, 3.5, 4.0]
    assert asked == [7, 8]
    monkeypatch.setattr(pdf_face, "_WIDTHS_LIMIT", 3)
    for code in range(10):
        assert widths[code] == code / 2
    assert len(widths) <= 3


def test_the_character_map_answers_like_a_mapping() -> None:
    face = Face(FONT_PATHS[HEBREW_FONT])
    alef = face.charToGlyph[0x05D0]
    assert alef and 0x05D0 in face.charToGlyph
    assert face.charToGlyph.get(0x4E00) is None and 0x4E00 not in face.charToGlyph
    assert "a" not in face.charToGlyph
    with pytest.raises(KeyError):
        face.charToGlyph[0x4E00]
    assert face.charToGlyph[0xA0] == face.charToGlyph[0x20]  # a no-break space draws as a space
    assert list(face.charToGlyph) == sorted(face.charToGlyph) and len(face.charToGlyph) == len(list(face.charToGlyph))


def test_a_character_map_format_it_does_not_read_is_refused(tmp_path: pathlib.Path) -> None:
    """Only formats 4 and 12 are read: a font whose chosen subtable is another format fails loudly."""
    data = bytearray(pathlib.Path(FONT_PATHS[HEBREW_FONT]).read_bytes())
    tables = struct.unpack_from(">H", data, 4)[0]
    records = {bytes(data[12 + 16 * n : 16 + 16 * n]): 12 + 16 * n for n in range(tables)}
    cmap = struct.unpack_from(">L", data, records[b"cmap"] + 8)[0]
    for record in range(struct.unpack_from(">H", data, cmap + 2)[0]):
        subtable = cmap + struct.unpack_from(">L", data, cmap + 4 + 8 * record + 4)[0]
        struct.pack_into(">H", data, subtable, 6)
    path = tmp_path / "format6.ttf"
    path.write_bytes(bytes(data))
    with pytest.raises(TTFError, match="format 6"):
        Face(str(path))
