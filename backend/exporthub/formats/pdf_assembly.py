"""Stream one PDF file out of a series of small PDFs ("pieces"), keeping memory flat.

A plain pypdf merge holds every page until the end; here each piece's objects are renumbered and
written out as soon as the piece arrives (see formats/pdf.py for why reports come in pieces).
"""

from __future__ import annotations

import array
import io
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO

from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, PdfObject, StreamObject


class PdfAssembler:
    """Writes one PDF file from a series of small PDFs ("pieces"), piece by piece.

    Each piece's pages, and the objects they use, are renumbered and written out as soon as the
    piece arrives; only each object's offset and each page's number stay in memory. Placeholder form
    XObjects (named in `forms`) are not copied: every piece's reference to one goes to a single
    object, reserved up front and written by `finish` with the text that was unknown until then.
    """

    _CATALOG, _PAGES, _INFO = 1, 2, 3

    def __init__(self, file: BinaryIO, *, title: str, forms: Sequence[str]) -> None:
        self._file = file
        self._title = title
        self._position = 0
        self._offsets = array.array("q", [0, 0, 0, 0])  # by object number (0 is unused)
        self._kids = array.array("q")  # page object numbers
        self._forms = {name: self._allocate() for name in forms}
        self._form_font: tuple[str, int] | None = None  # resource name and object number
        self._write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")

    @property
    def pages(self) -> int:
        return len(self._kids)

    def add_piece(self, data: bytes) -> None:
        reader = PdfReader(io.BytesIO(data))
        numbers: dict[int, int] = {}  # the piece's object number -> ours
        pending: list[tuple[int, Any]] = []  # (our number, the piece's object) still to write

        def number_of(reference: IndirectObject) -> int:
            number = numbers.get(reference.idnum)
            if number is None:
                number = numbers[reference.idnum] = self._allocate()
                pending.append((number, reference.get_object()))
            return number

        for page in reader.pages:
            resources: Any = page["/Resources"]
            xobjects = resources.get("/XObject")
            for name, reference in dict.items(xobjects.get_object() if xobjects is not None else {}):
                number = self._forms.get(name.removeprefix("/FormXob."))
                if number is not None and isinstance(reference, IndirectObject):
                    if self._form_font is None:  # the placeholder's font: it has every ASCII glyph
                        form: Any = reference.get_object()
                        fonts = form["/Resources"]["/Font"]
                        font_name, font = next(iter(dict.items(fonts)))
                        self._form_font = (str(font_name), number_of(font))
                    numbers[reference.idnum] = number
            assert page.indirect_reference is not None
            page_number = number_of(page.indirect_reference)
            self._kids.append(page_number)
            while pending:
                number, obj = pending.pop()
                out = io.BytesIO()
                _serialize(obj, out, number_of, parent=self._PAGES if number == page_number else None)
                self._write_object(number, out.getvalue())

    def finish(self, texts: dict[str, str], sizes: dict[str, float]) -> None:
        """Write the forms with their final text, the page tree, the catalogue and the trailer."""
        if self._form_font is None:
            raise ValueError("a PDF needs at least one page")
        font_name, font_number = self._form_font
        for name, number in self._forms.items():
            # Digits and commas only: in reportlab's first subset of a TrueType font, ASCII codes
            # are the characters themselves.
            content = b"BT %s %s Tf 0 0 Td (%s) Tj ET" % (
                font_name.encode(),
                str(sizes[name]).encode(),
                texts[name].encode("ascii"),
            )
            self._write_object(
                number,
                b"<< /Type /XObject /Subtype /Form /BBox [0 -4 400 20] "
                b"/Resources << /Font << %s %d 0 R >> >> /Length %d >>\nstream\n%s\nendstream"
                % (font_name.encode(), font_number, len(content), content),
            )
        kids = b" ".join(b"%d 0 R" % kid for kid in self._kids)
        self._write_object(self._PAGES, b"<< /Type /Pages /Count %d /Kids [%s] >>" % (len(self._kids), kids))
        self._write_object(self._CATALOG, b"<< /Type /Catalog /Pages %d 0 R >>" % self._PAGES)
        title = self._title.encode("utf-16-be").hex().encode()
        self._write_object(self._INFO, b"<< /Title <feff%s> /Producer (ExportHub) >>" % title)
        xref = self._position
        self._write(b"xref\n0 %d\n0000000000 65535 f \n" % len(self._offsets))
        self._write(b"".join(b"%010d 00000 n \n" % offset for offset in self._offsets[1:]))
        self._write(
            b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
            % (len(self._offsets), self._CATALOG, self._INFO, xref)
        )

    def _allocate(self) -> int:
        self._offsets.append(0)
        return len(self._offsets) - 1

    def _write_object(self, number: int, body: bytes) -> None:
        self._offsets[number] = self._position
        self._write(b"%d 0 obj\n" % number + body + b"\nendobj\n")

    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self._position += len(data)


def _serialize(
    obj: PdfObject, out: io.BytesIO, number_of: Callable[[IndirectObject], int], parent: int | None = None
) -> None:
    """Write `obj` as PDF syntax with every indirect reference renumbered by `number_of` (and a
    page's /Parent set to `parent`)."""
    if isinstance(obj, IndirectObject):
        out.write(b"%d 0 R" % number_of(obj))
    elif isinstance(obj, StreamObject):
        _write_stream(obj, out, number_of)
    elif isinstance(obj, DictionaryObject):
        out.write(b"<<")
        for key, value in dict.items(obj):  # values unresolved: references stay references
            out.write(b" ")
            key.write_to_stream(out)
            if parent is not None and key == "/Parent":
                out.write(b" %d 0 R" % parent)
                continue
            out.write(b" ")
            _serialize(value, out, number_of)
        out.write(b" >>")
    elif isinstance(obj, ArrayObject):
        out.write(b"[")
        for index, item in enumerate(obj):
            if index:
                out.write(b" ")
            _serialize(item, out, number_of)
        out.write(b"]")
    else:
        obj.write_to_stream(out)


def _write_stream(stream: StreamObject, out: io.BytesIO, number_of: Callable[[IndirectObject], int]) -> None:
    """Write a stream object with its data as read, still encoded (never decoded and compressed again).

    pypdf has no public getter for a stream's encoded bytes (`get_data()` decodes them; they sit in
    the private `_data`), but its public `write_to_stream` writes a stream as read, with /Length. So
    the stream's dictionary takes renumbered copies of its values for the write, and gets its own
    values back after it (the piece's reader may still resolve this object)."""
    original = list(dict.items(stream))
    try:
        for key, value in original:
            stream[key] = _renumbered(value, number_of)
        stream.write_to_stream(out)
    finally:
        for key, value in original:
            stream[key] = value


def _renumbered(obj: PdfObject, number_of: Callable[[IndirectObject], int]) -> PdfObject:
    """A copy of a direct object whose indirect references are renumbered by `number_of`."""
    if isinstance(obj, IndirectObject):
        return IndirectObject(number_of(obj), 0, None)
    if isinstance(obj, ArrayObject):
        return ArrayObject(_renumbered(item, number_of) for item in obj)
    if isinstance(obj, DictionaryObject):  # direct: streams are always indirect
        return DictionaryObject({key: _renumbered(value, number_of) for key, value in dict.items(obj)})
    return obj
