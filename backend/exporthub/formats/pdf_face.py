"""TrueType faces for the PDF writer, with their character map and metrics kept in arrays.

reportlab's TTFontFace reads the whole font file into memory and parses its character map and
metrics into Python objects (dicts of code point -> glyph, glyph -> code points and code point ->
width; lists of (advance, bearing) tuples and of glyph offsets): about 0.5 KiB per character.
Droid Sans Fallback (33,000 characters, 49,775 glyphs) so cost 18.6 MiB, which made the PDF
worker's peak. `Face` keeps reportlab's parser for the font's header (name, flags, bounding box,
ascent, ...) and its subsetter (`makeSubset`), but maps the file instead of reading it (only the
pages touched take memory) and reads the character map, the advance widths and the glyph offsets
into arrays (about 14 bytes per glyph and 8 per character: ~0.8 MiB for Droid Sans Fallback).
Widths are looked up when first asked for; a subset's glyphs are copied out one by one.

Only character map formats 4 and 12 are read (every font shipped here uses one); the subtable is the
one reportlab would choose, and tests compare every mapping, width and subset with reportlab's own"""

from __future__ import annotations

import itertools
import mmap
import struct
import sys
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from reportlab.pdfbase.ttfonts import TTFError, TTFontFile

_WIDTHS_LIMIT = 20_000  # code points whose width is remembered (a name pool uses a few thousand)


def _big_endian(typecode: str, data: bytes) -> array:
    values = array(typecode, data)
    if sys.byteorder == "little":
        values.byteswap()
    return values


class CharMap(Mapping[int, int]):
    """Code point -> glyph id, as two parallel arrays sorted by code point (6 bytes a character)."""

    __slots__ = ("_codes", "_glyphs")

    def __init__(self, codes: array, glyphs: array) -> None:
        if any(a >= b for a, b in itertools.pairwise(codes)):
            raise TTFError("the character map's code points are not in order")
        self._codes = codes
        self._glyphs = glyphs

    def get(self, code: int, default: int | None = None) -> int | None:  # type: ignore[override]
        codes = self._codes
        index = bisect_left(codes, code)
        if index < len(codes) and codes[index] == code:
            return self._glyphs[index]
        return default

    def __getitem__(self, code: int) -> int:
        glyph = self.get(code)
        if glyph is None:
            raise KeyError(code)
        return glyph

    def __contains__(self, code: object) -> bool:
        return isinstance(code, int) and self.get(code) is not None

    def __iter__(self) -> Iterator[int]:
        return iter(self._codes)

    def __len__(self) -> int:
        return len(self._codes)

    def alias(self, code: int, same_as: int) -> None:
        """Map `code` to the glyph of `same_as` (reportlab draws a no-break space as a space)."""
        glyph = self[same_as]
        index = bisect_left(self._codes, code)
        if index < len(self._codes) and self._codes[index] == code:
            self._glyphs[index] = glyph
        else:
            self._codes.insert(index, code)
            self._glyphs.insert(index, glyph)


class _HorizontalMetrics:
    """(advance, left side bearing) by glyph, as reportlab's subsetter reads them from `hmetrics`."""

    __slots__ = ("_advances", "_bearings", "_count", "_trailing")

    def __init__(self, advances: array, bearings: array, count: int, trailing: float) -> None:
        self._advances, self._bearings, self._count = advances, bearings, count
        # reportlab's parser gives the glyphs past the table's last full entry its advance already
        # scaled to 1/1000 em, and its subsetter writes that into the subset's hmtx. PDF readers take
        # widths from the font dictionary's /Widths, so this changes nothing drawn; it is kept so
        # that subsets stay byte for byte reportlab's.
        self._trailing = trailing

    def __getitem__(self, glyph: int) -> tuple[float, int]:
        advance = self._advances[glyph] if glyph < self._count else self._trailing
        return advance, self._bearings[glyph]

    def __len__(self) -> int:
        return len(self._bearings)


class Face(TTFontFile):
    """A TrueType font as the PDF writer uses it: reportlab's header fields (name, subfontNameX,
    flags, bbox, ascent, descent, capHeight, italicAngle, stemV), `charToGlyph`, `defaultWidth`,
    `getCharWidth`, `widths` (code point -> width, filled on first use) and `makeSubset`."""

    def __init__(self, path: str) -> None:
        # The file is mapped, not read: only the pages touched (header tables, character map,
        # metrics, and the glyphs of a subset) take memory. reportlab's parser slices it as bytes.
        with open(path, "rb") as file:
            self._ttf_data = data = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        self.filename = path
        super().__init__(path, charInfo=0)  # reportlab reads the header tables only
        scale: Callable[[float], float] = self._pdfScale
        glyphs = self.numGlyphs
        full = struct.unpack_from(">H", data, self.get_table_pos("hhea")[0] + 34)[0]  # numberOfHMetrics
        if not full:
            raise TTFError("the font has no horizontal metrics")
        self.charToGlyph = _read_cmap(data, self.get_table_pos("cmap")[0])

        start = self.get_table_pos("hmtx")[0]
        pairs = _big_endian("H", data[start : start + 4 * full])
        advances = pairs[0::2]
        bearings = pairs[1::2]
        trailing = max(glyphs - full, 0)
        bearings += _big_endian("H", data[start + 4 * full : start + 4 * full + 2 * trailing])
        self._advances = advances + array("H", [advances[-1]]) * trailing  # by glyph, in font units
        self.hmetrics = _HorizontalMetrics(advances, bearings, full, scale(advances[-1]))
        self.defaultWidth = scale(advances[0])

        start = self.get_table_pos("loca")[0]
        long_offsets = struct.unpack_from(">h", data, self.get_table_pos("head")[0] + 50)[0]  # indexToLocFormat
        if long_offsets:
            self.glyphPos = _big_endian("I", data[start : start + 4 * (glyphs + 1)])
        else:  # offsets / 2
            self.glyphPos = array("I", map((2).__mul__, _big_endian("H", data[start : start + 2 * (glyphs + 1)])))

        if 0x20 in self.charToGlyph:
            self.charToGlyph.alias(0xA0, 0x20)
        elif 0xA0 in self.charToGlyph:
            self.charToGlyph.alias(0x20, 0xA0)
        self.widths = AdvanceWidths(self.getCharWidth)

    def get_table(self, tag: str) -> Any:
        if tag == "glyf":  # the subsetter slices one glyph at a time out of it: no copy of the whole table
            return _Slices(self._ttf_data, *self.get_table_pos(tag))
        return super().get_table(tag)

    def getCharWidth(self, code: int) -> float:
        """The advance of the code point's glyph in 1/1000 em (`defaultWidth` if the font lacks it)."""
        glyph = self.charToGlyph.get(code)
        if glyph is None or glyph >= len(self._advances):
            return self.defaultWidth
        return self._pdfScale(self._advances[glyph])


class _Slices:
    """Slices of one table of the file, each copied out only when taken."""

    __slots__ = ("_data", "_length", "_start")

    def __init__(self, data: mmap.mmap, start: int, length: int) -> None:
        self._data, self._start, self._length = data, start, length

    def __getitem__(self, part: slice) -> bytes:
        start, stop, _ = part.indices(self._length)
        return self._data[self._start + start : self._start + max(start, stop)]


class AdvanceWidths(dict[int, float]):
    """Advance widths by code point, each looked up on first use and then kept (up to a limit)."""

    def __init__(self, width: Callable[[int], float]) -> None:
        super().__init__()
        self._width = width

    def __missing__(self, code: int) -> float:
        if len(self) >= _WIDTHS_LIMIT:
            self.clear()
        width = self[code] = self._width(code)
        return width


def _read_cmap(data: mmap.mmap, cmap: int) -> CharMap:
    """The character map subtable reportlab chooses (the last Windows one, else a Unicode or Mac
    Roman one), formats 4 and 12, as a CharMap that maps the same code points to the same glyphs."""
    count = struct.unpack_from(">H", data, cmap + 2)[0]
    chosen, kind = None, 0
    for record in range(count):
        platform, encoding, offset = struct.unpack_from(">HHL", data, cmap + 4 + 8 * record)
        if platform == 3 or (platform == 1 and encoding == 1) or (platform == 0 and encoding != 5):
            chosen, kind = offset, 1
        elif platform == 1 and encoding == 0 and kind != 1:
            chosen, kind = offset, 2
    if chosen is None:
        raise TTFError("could not find a suitable cmap encoding")
    table = cmap + chosen
    form = struct.unpack_from(">H", data, table)[0]
    codes, glyphs = array("I"), array("I")
    if form == 4:
        length, _, doubled = struct.unpack_from(">3H", data, table + 2)
        segments = doubled // 2
        ends = struct.unpack_from(f">{segments}H", data, table + 14)
        starts = struct.unpack_from(f">{segments}H", data, table + 16 + 2 * segments)
        deltas = struct.unpack_from(f">{segments}h", data, table + 16 + 4 * segments)
        ranges_at = table + 16 + 6 * segments
        ranges = struct.unpack_from(f">{segments}H", data, ranges_at)
        limit = table + length
        for segment, (start, end, delta, range_offset) in enumerate(zip(starts, ends, deltas, ranges, strict=True)):
            codes.extend(range(start, end + 1))
            if not range_offset:
                glyphs.extend([(code + delta) & 0xFFFF for code in range(start, end + 1)])
                continue
            first = ranges_at + 2 * segment + range_offset  # glyphIdArray entry of `start`
            for position in range(first, first + 2 * (end - start + 1), 2):
                glyph = struct.unpack_from(">H", data, position)[0] if position < limit else 0
                glyphs.append((glyph + delta) & 0xFFFF if glyph else 0)
    elif form == 12:
        groups = struct.unpack_from(">L", data, table + 12)[0]
        for start, end, first_glyph in struct.iter_unpack(">3L", data[table + 16 : table + 16 + 12 * groups]):
            codes.extend(range(start, end + 1))
            glyphs.extend(range(first_glyph, first_glyph + end - start + 1))
    else:
        raise TTFError(f"character map format {form} is not read (only 4 and 12)")
    return CharMap(codes, glyphs)
