"""The assembler copies every stream of a piece as read, still compressed, through pypdf's public
`StreamObject.write_to_stream` (pypdf has no public getter for a stream's encoded bytes: `get_data()`
decodes). These fail loudly if a pypdf release decodes or encodes a stream on the way (time spent
for nothing), changes or drops its data, or writes its dictionary with the wrong references."""

import io
import pathlib
import re
import zlib

import pytest
from pypdf import PdfReader
from pypdf.filters import FlateDecode
from pypdf.generic import EncodedStreamObject

from exporthub.catalog import Column, ColumnType
from exporthub.formats.pdf import PdfWriter
from exporthub.formats.pdf_assembly import PdfAssembler, _write_stream

COLUMNS = (Column("n", "N", ColumnType.INTEGER, "r.n", 8), Column("name", "Name", ColumnType.TEXT, "r.name", 30))
PLACEHOLDER_FORMS = 2  # page count and row count, written by the assembler itself

STREAM_RE = re.compile(rb">>\s*stream\r?\n")
LENGTH_RE = re.compile(rb"/Length (\d+)(?=[\s/>])")  # not /Length1


def stored_streams(pdf: bytes) -> list[bytes]:
    """Every stream's data as stored in the file (still encoded), by the /Length of its dictionary."""
    found = []
    for match in STREAM_RE.finditer(pdf):
        length = int(LENGTH_RE.findall(pdf, max(0, match.start() - 200), match.start())[-1])
        found.append(pdf[match.end() : match.end() + length])
    return found


@pytest.fixture
def assembled(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> tuple[bytes, list[bytes]]:
    """A PDF of several pieces, and the pieces the assembler was given."""
    pieces: list[bytes] = []
    add_piece = PdfAssembler.add_piece

    def recording(self: PdfAssembler, data: bytes) -> None:
        pieces.append(data)
        add_piece(self, data)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the assembler decoded or encoded a stream")

    path = tmp_path / "out.pdf"
    with monkeypatch.context() as patches:
        patches.setattr(PdfAssembler, "add_piece", recording)
        for name in ("get_data", "set_data"):
            patches.setattr(EncodedStreamObject, name, refuse)
        for name in ("decode", "encode"):
            patches.setattr(FlateDecode, name, staticmethod(refuse))
        writer = PdfWriter(path, COLUMNS, title="Pieces", pages_per_piece=2)
        writer.write_rows([(n, f"name {n} é Ж") for n in range(300)])
        writer.close()
    assert len(pieces) > 2
    return path.read_bytes(), pieces


def test_streams_are_the_pieces_bytes_as_stored(assembled: tuple[bytes, list[bytes]]) -> None:
    pdf, pieces = assembled
    from_pieces = {data for piece in pieces for data in stored_streams(piece)}
    written = stored_streams(pdf)
    own = [data for data in written if data not in from_pieces]
    assert len(own) == PLACEHOLDER_FORMS, "streams of the file that no piece has: re-encoded or changed?"
    assert all(data.startswith(b"BT ") for data in own)
    assert len(written) > PLACEHOLDER_FORMS + len(pieces)  # page contents and font files


def test_pages_read_back_as_in_their_pieces(assembled: tuple[bytes, list[bytes]]) -> None:
    pdf, pieces = assembled
    reader = PdfReader(io.BytesIO(pdf), strict=True)
    originals = [page for piece in pieces for page in PdfReader(io.BytesIO(piece)).pages]
    assert len(reader.pages) == len(originals)
    for page, original in zip(reader.pages, originals, strict=True):
        contents, expected = page["/Contents"], original["/Contents"]
        assert contents.get("/Filter") == expected.get("/Filter") == ["/FlateDecode"]
        assert contents.get_data() == expected.get_data()
        fonts, original_fonts = page["/Resources"]["/Font"], original["/Resources"]["/Font"]
        assert sorted(fonts) == sorted(original_fonts)
        for name in fonts:  # the font programs (streams referenced from streams' dictionaries) came along
            descriptor = fonts[name].get("/FontDescriptor")
            if descriptor is not None:
                font_file = descriptor["/FontFile2"]
                assert font_file.get_data() == original_fonts[name]["/FontDescriptor"]["/FontFile2"].get_data()
    assert "name 299" in reader.pages[-1].extract_text()


def tiny_pdf(objects: list[bytes]) -> bytes:
    """A PDF of these objects (numbered from 1, the first the catalogue) with a correct xref table."""
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_a_streams_references_are_renumbered_and_its_bytes_kept() -> None:
    data = zlib.compress(b"q 1 0 0 1 0 0 cm /Im0 Do Q", 9)
    pdf = tiny_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [] /Count 0 >>",
            b"<< /Type /XObject /Subtype /Form /BBox [0 0 1 1] /Filter /FlateDecode"
            b" /Resources << /XObject << /Im0 4 0 R >> /Font 5 0 R >> /Length %d >>\nstream\n%s\nendstream"
            % (len(data), data),
            b"<< /Type /XObject >>",
            b"<< /F1 6 0 R >>",
            b"<< /Type /Font >>",
        ]
    )
    reader = PdfReader(io.BytesIO(pdf), strict=True)
    stream = reader.get_object(3)
    assert isinstance(stream, EncodedStreamObject)
    before = repr(dict.items(stream))
    out = io.BytesIO()
    _write_stream(stream, out, lambda reference: {4: 40, 5: 50}[reference.idnum])
    written = out.getvalue()
    assert b"/Im0 40 0 R" in written
    assert b"/Font 50 0 R" in written
    assert written.endswith(b"\nstream\n" + data + b"\nendstream")
    assert b"/Length %d" % len(data) in written
    assert repr(dict.items(stream)) == before  # the piece's object is as it was
