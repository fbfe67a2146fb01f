"""Streaming file writers behind one small protocol: `open_writer(format, path, columns)` -> `Writer`.

A writer writes the header row when it is opened, then takes batches of rows (values in column
order, as asyncpg returns them) and keeps nothing proportional to the row count in memory.
`close()` finishes the file, whose SHA-256 is then `sha256()` (hashed as written: formats/output.py);
`abort()` only releases handles and temporary files (the caller deletes the partial file). Both
are idempotent; `write_rows` after either raises ValueError.

Formats are looked up in `_OPENERS`; each module is imported on first use, so the web process never
loads a writer. A new format (PDF) is one more module and one more entry. No writer imports
openpyxl, the reference the tests hold the XLSX writer to: see `xlsx/excel.py`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import pathlib
import zoneinfo
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from exporthub.catalog import Column


@runtime_checkable
class Writer(Protocol):
    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None: ...  # values in column order

    def close(self) -> None: ...  # finish and flush the file; after close the file is complete

    def abort(self) -> None: ...  # close handles without finishing (the caller deletes the file)

    def sha256(self) -> str: ...  # after close: the file's SHA-256 (hex), hashed as it was written


@dataclasses.dataclass(frozen=True, slots=True)
class ReportInfo:
    """What a report's title block says besides the title (PDF only; other formats ignore it)."""

    account_name: str = ""
    filters: tuple[str, ...] = ()  # one line each, in words, e.g. "Status: paid, approved"
    generated_at: dt.datetime | None = None  # shown in UTC; None: when the writer is opened


@dataclasses.dataclass(frozen=True, slots=True)
class WriterOptions:
    title: str = ""
    csv_bom: bool = True
    max_rows_per_sheet: int = 1_048_575
    report: ReportInfo | None = None
    # An IANA zone. CSV: datetimes in it, with its offset. XLSX: aware datetimes as its wall time, its
    # name in the datetime columns' headers. PDF: named in the title block. XLSX and PDF write a naive
    # datetime as it is: the export's query already gives wall times in the zone. None: UTC, unnamed.
    time_zone: str | None = None
    # XLSX only: rows as the export's XLSX query selects them (exports/query.py): numerics as text,
    # datetimes as Excel serials, which costs the worker far less (formats/xlsx/row_code.py).
    prepared: bool = False


def _zone(options: WriterOptions) -> zoneinfo.ZoneInfo | None:
    return zoneinfo.ZoneInfo(options.time_zone) if options.time_zone is not None else None


def _open_csv(path: pathlib.Path, columns: Sequence[Column], options: WriterOptions) -> Writer:
    from exporthub.formats.csv import CsvWriter

    return CsvWriter(path, columns, bom=options.csv_bom, zone=_zone(options))


def _open_xlsx(path: pathlib.Path, columns: Sequence[Column], options: WriterOptions) -> Writer:
    from exporthub.formats.xlsx.writer import StreamingXlsxWriter

    return StreamingXlsxWriter(
        path,
        columns,
        title=options.title,
        max_rows_per_sheet=options.max_rows_per_sheet,
        time_zone=_zone(options),
        prepared=options.prepared,
    )


def _open_pdf(path: pathlib.Path, columns: Sequence[Column], options: WriterOptions) -> Writer:
    from exporthub.formats.pdf import PdfWriter

    report = options.report or ReportInfo()
    return PdfWriter(
        path,
        columns,
        title=options.title,
        account_name=report.account_name,
        filter_lines=report.filters,
        generated_at=report.generated_at,
        time_zone=options.time_zone,
    )


_OPENERS: dict[str, Callable[[pathlib.Path, Sequence[Column], WriterOptions], Writer]] = {
    "csv": _open_csv,
    "xlsx": _open_xlsx,
    "pdf": _open_pdf,
}

FORMATS = tuple(_OPENERS)


def open_writer(
    format: str,
    path: pathlib.Path,
    columns: Sequence[Column],
    *,
    title: str = "",
    csv_bom: bool = True,
    max_rows_per_sheet: int = 1_048_575,
    report: ReportInfo | None = None,
    time_zone: str | None = None,
    prepared: bool = False,
) -> Writer:
    """Create `path` and write the header row; ValueError for an unknown format or no columns."""
    opener = _OPENERS.get(format)
    if opener is None:
        raise ValueError(f"unknown export format {format!r} (known: {', '.join(_OPENERS)})")
    if not columns:
        raise ValueError("an export needs at least one column")
    if prepared and format != "xlsx":
        raise ValueError("prepared cells are for XLSX only")
    options = WriterOptions(
        title=title,
        csv_bom=csv_bom,
        max_rows_per_sheet=max_rows_per_sheet,
        report=report,
        time_zone=time_zone,
        prepared=prepared,
    )
    return opener(pathlib.Path(path), columns, options)


def load_writers() -> None:
    """Import the CSV and XLSX writers now (a few milliseconds), for a worker to call
    when it starts, so that no export waits for them; the web process never calls this. The PDF
    writer is left to its first export: ReportLab and the fonts take ~40 MiB, and a PDF takes
    seconds anyway."""
    import exporthub.formats.csv_copy
    import exporthub.formats.xlsx.writer  # noqa: F401


__all__ = ["FORMATS", "ReportInfo", "Writer", "WriterOptions", "load_writers", "open_writer"]
