"""ISA-L's deflate for zip entries swaps a private attribute of CPython's zipfile
(`_ZipWriteFile._compressor`, see exporthub/formats/xlsx/deflate.py). These tests fail loudly when a
Python release changes zipfile so that the swap no longer happens, or no longer makes a good entry;
and they check that the writer falls back to zlib when it cannot swap."""

import io
import struct
import zipfile
import zlib
from typing import Any

import openpyxl
import pytest
from isal import isal_zlib

from exporthub.catalog import Column, ColumnType
from exporthub.formats.xlsx import compressor, deflate
from exporthub.formats.xlsx.writer import StreamingXlsxWriter

CHANGED = (
    "CPython's zipfile changed: {what}. exporthub/formats/xlsx/deflate.py swaps the private "
    "zipfile._ZipWriteFile._compressor for ISA-L's compressor; XLSX exports now fall back to zlib "
    "(slower, larger). Find the new way to give an entry ISA-L's deflate, or drop the swap."
)
ROW = b'<row r="%d"><c r="A%d" t="inlineStr"><is><t>name %d</t></is></c></row>'
DATA = b"".join(ROW % (n, n, n % 97) for n in range(20_000))
COLUMNS = (Column("name", "Name", ColumnType.TEXT, "r.name"), Column("n", "N", ColumnType.INTEGER, "r.n"))


def raw_entry(archive_bytes: bytes, name: str) -> bytes:
    """An entry's bytes as stored, still compressed (after its local header)."""
    with zipfile.ZipFile(io.BytesIO(archive_bytes)) as archive:
        info = archive.getinfo(name)
    start = info.header_offset
    signature, *_, name_length, extra_length = struct.unpack_from("<4s5H3L2H", archive_bytes, start)
    assert signature == b"PK\x03\x04"
    start += 30 + name_length + extra_length
    return archive_bytes[start : start + info.compress_size]


def deflate_with(compressobj: Any, data: bytes) -> bytes:
    return compressobj.compress(data) + compressobj.flush()


def test_an_entry_being_written_still_has_the_zlib_compressor_we_replace() -> None:
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("sheet.xml", "w", force_zip64=True) as entry,
    ):
        found = type(getattr(entry, "_compressor", None))
        assert found is type(zlib.compressobj()), CHANGED.format(what=f"an entry's _compressor is {found}")
        assert deflate.use_isal_deflate(entry, 1), CHANGED.format(what="use_isal_deflate did not swap")


@pytest.mark.parametrize("level", [1, 2, 3])
def test_the_swapped_entry_is_isal_deflate_and_reads_back(level: int) -> None:
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as archive,
        archive.open("sheet.xml", "w", force_zip64=True) as entry,
    ):
        assert deflate.use_isal_deflate(entry, level), CHANGED.format(what="use_isal_deflate did not swap")
        entry.write(DATA)
    stored = raw_entry(buffer.getvalue(), "sheet.xml")
    isal = deflate_with(isal_zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS), DATA)
    assert stored == isal, CHANGED.format(what="the entry is not the ISA-L deflate stream of what was written")
    assert stored != deflate_with(zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS), DATA)
    with zipfile.ZipFile(buffer) as archive:
        assert archive.testzip() is None, CHANGED.format(what="the CRC or sizes of a swapped entry are wrong")
        assert archive.read("sheet.xml") == DATA


def test_nothing_is_swapped_where_there_is_no_zlib_compressor() -> None:
    class Entry:  # as if zipfile had renamed the attribute
        compressor = zlib.compressobj()

    entry: Any = Entry()
    assert not deflate.use_isal_deflate(entry, 1)
    assert not hasattr(entry, "_compressor")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive, archive.open("a", "w") as stored:
        assert not deflate.use_isal_deflate(stored, 1)  # its _compressor is None


def test_isal_levels() -> None:
    assert [deflate.isal_level(level) for level in range(10)] == [None, 1, 2, 3, None, None, None, None, None, None]


def write_xlsx(path: Any, **options: Any) -> None:
    writer = StreamingXlsxWriter(path, COLUMNS, max_rows_per_sheet=300, **options)
    writer.write_rows([(f"name {n}", n) for n in range(700)])
    writer.close()


def test_the_writer_swaps_every_sheet_entry(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    swapped: list[bool] = []

    def recording(entry: Any, level: int) -> bool:
        swapped.append(deflate.use_isal_deflate(entry, level))
        return swapped[-1]

    monkeypatch.setattr(compressor, "use_isal_deflate", recording)
    write_xlsx(tmp_path / "out.xlsx")
    assert swapped == [True, True, True], CHANGED.format(what="the writer's sheet entries were not swapped")


@pytest.mark.parametrize("broken", ["zipfile changed", "isal missing"])
def test_the_writer_falls_back_to_zlib(tmp_path: Any, monkeypatch: pytest.MonkeyPatch, broken: str) -> None:
    if broken == "zipfile changed":  # the entry's compressor is no longer the type we replace
        monkeypatch.setattr(deflate, "_ZLIB_COMPRESS", type(None))
    else:
        monkeypatch.setattr(deflate, "isal_zlib", None)
    write_xlsx(tmp_path / "zlib.xlsx")
    monkeypatch.undo()
    write_xlsx(tmp_path / "isal.xlsx")
    sheet = "xl/worksheets/sheet1.xml"
    fallback, isal = (raw_entry((tmp_path / name).read_bytes(), sheet) for name in ("zlib.xlsx", "isal.xlsx"))
    assert fallback != isal  # the same XML (but for docProps' time, not in the sheet), deflated by zlib
    with zipfile.ZipFile(tmp_path / "zlib.xlsx") as archive:
        assert archive.testzip() is None
        assert zlib.decompress(fallback, -zlib.MAX_WBITS) == archive.read(sheet)
    workbook = openpyxl.load_workbook(tmp_path / "zlib.xlsx")
    assert [sheet.max_row for sheet in workbook.worksheets] == [301, 301, 101]
