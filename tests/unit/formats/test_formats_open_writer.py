import pathlib
import tracemalloc
from decimal import Decimal

import pytest

from exporthub.catalog import Column, ColumnType, load_catalog
from exporthub.formats import FORMATS, Writer, open_writer

RESOURCES = load_catalog().resources  # the HR catalog shipped in the package

COLUMNS = (Column("name", "Name", ColumnType.TEXT, "r.name"),)


@pytest.mark.parametrize("format", ["docx", "xls", "CSV", ""])
def test_unknown_format_raises_value_error(tmp_path: pathlib.Path, format: str) -> None:
    with pytest.raises(ValueError, match="unknown export format"):
        open_writer(format, tmp_path / "out", COLUMNS)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("format", FORMATS)
def test_no_columns_raises_value_error(tmp_path: pathlib.Path, format: str) -> None:
    with pytest.raises(ValueError, match="at least one column"):
        open_writer(format, tmp_path / "out", ())


@pytest.mark.parametrize("format", FORMATS)
def test_every_writer_follows_the_protocol(tmp_path: pathlib.Path, format: str) -> None:
    writer = open_writer(format, tmp_path / f"out.{format}", COLUMNS, title="T")
    assert isinstance(writer, Writer)
    writer.close()


@pytest.mark.parametrize("format", FORMATS)
def test_an_unwritable_path_fails_on_open(tmp_path: pathlib.Path, format: str) -> None:
    with pytest.raises(FileNotFoundError):
        open_writer(format, tmp_path / "missing" / f"out.{format}", COLUMNS)


@pytest.mark.parametrize("format", FORMATS)
def test_every_catalog_resource_writes(tmp_path: pathlib.Path, format: str) -> None:
    for resource in RESOURCES.values():
        writer = open_writer(format, tmp_path / f"{resource.key}.{format}", resource.columns, title=resource.label)
        writer.write_rows([[None] * len(resource.columns)])
        writer.close()


# PDF renders in pieces of 100 pages, so its memory is flat only across pieces: test_formats_pdf covers it.
@pytest.mark.parametrize("format", [f for f in FORMATS if f != "pdf"])
def test_memory_does_not_grow_with_rows(tmp_path: pathlib.Path, format: str) -> None:
    """Python-side memory after 500 rows and after 2,500 more rows is the same, give or take."""
    columns = (
        Column("name", "Name", ColumnType.TEXT, "r.name"),
        Column("n", "N", ColumnType.INTEGER, "r.n"),
        Column("pay", "Pay", ColumnType.MONEY, "r.pay"),
    )
    writer = open_writer(format, tmp_path / f"out.{format}", columns, max_rows_per_sheet=1_000)
    batch = [(f"name {n}", n, Decimal(n) / 4) for n in range(100)]
    tracemalloc.start()
    try:
        for _ in range(5):
            writer.write_rows(batch)
        after_500 = tracemalloc.get_traced_memory()[0]
        for _ in range(25):
            writer.write_rows(batch)
        after_3000 = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    writer.close()
    # Two sheet rollovers cost a few KiB each; a leak of even 20 bytes a row would show as 50 KiB.
    assert after_3000 - after_500 < 48 * 1024
