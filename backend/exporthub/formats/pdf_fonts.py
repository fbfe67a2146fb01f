"""TrueType fonts embedded in one PDF file: characters numbered into one-byte codes, text encoded as
PDF text operators, and the font subsets written once, at the end of the file.

Each font's characters are numbered for the whole file (not per page): a character's
code never changes, so a text's operators can be made once and reused, and each subset of 256
codes is embedded once, when the file is finished. The layout is reportlab's (whose TrueType
subsetter makes the font programs): in subset 0 the printable ASCII characters are their own codes,
so ASCII text needs no table at all, and other characters take the free codes in the order they
are first drawn; subsets 1, 2, ... follow. Codes that a PDF literal string would have to escape or
would change (parentheses, backslash, CR, LF) are never handed out, so only ASCII text is escaped.
A character the font lacks is drawn as its .notdef box (code 0), as reportlab does.

The font objects are written into object numbers reserved when a subset is first used, so every
page can name them before they exist.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reportlab.pdfbase.ttfonts import SUBSETN

from exporthub.formats import pdf_text

# Codes 1..255 that a literal string carries as they are: not ( ) \ CR LF; 32 stays a space.
_UNSAFE = {10, 13, 32, 40, 41, 92}
_SUBSET0_CODES = [code for code in [*range(128, 256), *range(1, 32)] if code not in _UNSAFE]
_OTHER_CODES = [code for code in range(1, 256) if code not in _UNSAFE]
_ESCAPES = str.maketrans({"(": "\\(", ")": "\\)", "\\": "\\\\"})

Reserve = Callable[[], int]
WriteObject = Callable[[int, bytes], None]
WriteStream = Callable[[int, bytes, bytes], None]


def escape_ascii(text: str) -> str:
    """An ASCII text as the inside of a PDF literal string."""
    if "(" in text or ")" in text or "\\" in text:
        return text.translate(_ESCAPES)
    return text


class EmbeddedFont:
    """One TrueType font's subsets in one file: `show` encodes text, `write` embeds what was used."""

    def __init__(self, font_name: str, resource_prefix: str, reserve: Reserve) -> None:
        self.face = pdf_text.face(font_name)
        self._prefix = resource_prefix  # subset n is the font resource /<prefix><n>
        self._reserve = reserve
        self._subsets: list[list[int]] = []  # by subset: the code point of each code (0: .notdef)
        self.numbers: list[int] = []  # by subset: the font dictionary's object number
        self._codes: dict[str, tuple[int, str]] = {}  # character -> (subset, its code as a character)
        self._free: list[int] = []  # codes left in the last subset, in the order they are handed out
        self._new_subset()
        has = self.face.charToGlyph.__contains__
        self._subsets[0][32:127] = [code if has(code) else 0 for code in range(32, 127)]
        self._free = list(_SUBSET0_CODES)
        self.ascii_resource = f"/{resource_prefix}0"

    def _new_subset(self) -> None:
        subset = [0] * 256
        subset[32] = 32
        self._subsets.append(subset)
        self.numbers.append(self._reserve())
        self._free = list(_OTHER_CODES)

    def show(self, text: str, size: float) -> str:
        """Operators that draw `text` (one run of this font) at the current text position."""
        if text.isascii():
            return f"{self.ascii_resource} {size} Tf ({escape_ascii(text)}) Tj"
        parts: list[str] = []
        subset, chunk = -1, list[str]()
        codes = self._codes
        for char in text:
            found = codes.get(char) or self._assign(char)
            if found[0] != subset:
                if chunk:
                    parts.append(f"/{self._prefix}{subset} {size} Tf ({''.join(chunk)}) Tj")
                subset, chunk = found[0], []
            chunk.append(found[1])
        parts.append(f"/{self._prefix}{subset} {size} Tf ({''.join(chunk)}) Tj")
        return " ".join(parts)

    def _assign(self, char: str) -> tuple[int, str]:
        code = ord(char)
        if code < 127 and code >= 32:  # ASCII inside a non-ASCII text: subset 0, as itself
            found = (0, escape_ascii(char))
        elif code == 0xA0:  # no-break space: drawn as a space, as reportlab does
            found = (0, " ")
        elif code not in self.face.charToGlyph:
            found = (0, "\x00")  # .notdef
        else:
            if not self._free:
                self._new_subset()
            byte = self._free.pop(0)
            self._subsets[-1][byte] = code
            found = (len(self._subsets) - 1, chr(byte))
        self._codes[char] = found
        return found

    def resources(self) -> list[tuple[str, int]]:
        """(resource name, object number) of every subset."""
        return [(f"/{self._prefix}{index}", number) for index, number in enumerate(self.numbers)]

    def write(self, reserve: Reserve, write_object: WriteObject, write_stream: WriteStream) -> None:
        """Embed every subset: font program, descriptor, widths and ToUnicode map (so text can be
        copied and searched)."""
        face: Any = self.face
        flags = (face.flags & ~(1 << 5)) | (1 << 2)  # symbolic: the codes are our own, not a standard encoding
        for index, (subset, number) in enumerate(zip(self._subsets, self.numbers, strict=True)):
            used = max((code for code, point in enumerate(subset) if point), default=32) + 1
            subset = subset[:used]
            base = (SUBSETN(index) + b"+" + face.name + face.subfontNameX).decode("latin-1")
            program = face.makeSubset(subset)
            program_number, cmap_number, descriptor_number = reserve(), reserve(), reserve()
            write_stream(program_number, program, b"/Length1 %d" % len(program))
            write_stream(cmap_number, _to_unicode_cmap(base, subset).encode(), b"")
            bbox = " ".join(_number(value) for value in face.bbox)
            write_object(
                descriptor_number,
                (
                    f"<< /Type /FontDescriptor /FontName /{base} /Flags {flags} /FontBBox [{bbox}] "
                    f"/Ascent {_number(face.ascent)} /Descent {_number(face.descent)} "
                    f"/CapHeight {_number(face.capHeight)} /ItalicAngle {_number(face.italicAngle)} "
                    f"/StemV {_number(face.stemV)} /MissingWidth {_number(face.defaultWidth)} "
                    f"/FontFile2 {program_number} 0 R >>"
                ).encode(),
            )
            widths = " ".join(_number(face.getCharWidth(point)) for point in subset)
            write_object(
                number,
                (
                    f"<< /Type /Font /Subtype /TrueType /BaseFont /{base} /FirstChar 0 /LastChar {used - 1} "
                    f"/Widths [{widths}] /FontDescriptor {descriptor_number} 0 R /ToUnicode {cmap_number} 0 R >>"
                ).encode(),
            )


def _number(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def _to_unicode_cmap(name: str, subset: list[int]) -> str:
    """The code -> Unicode map of one subset (codes that draw nothing are left out)."""
    entries = [
        f"<{code:02X}> <{chr(point).encode('utf-16-be').hex().upper()}>" for code, point in enumerate(subset) if point
    ]
    return "\n".join(
        [
            "/CIDInit /ProcSet findresource begin",
            "12 dict begin",
            "begincmap",
            f"/CIDSystemInfo << /Registry ({name}) /Ordering ({name}) /Supplement 0 >> def",
            f"/CMapName /{name} def",
            "/CMapType 2 def",
            "1 begincodespacerange",
            f"<00> <{len(subset) - 1:02X}>",
            "endcodespacerange",
            f"{len(entries)} beginbfchar",
            *entries,
            "endbfchar",
            "endcmap",
            "CMapName currentdict /CMap defineresource pop",
            "end",
            "end",
        ]
    )
