"""A CSV file from PostgreSQL's COPY output (exports/copy_csv.py runs the COPY): the bytes of
`COPY (...) TO STDOUT (FORMAT csv)`, whose cells the SQL already formatted, become exactly the file
the reference `CsvWriter` (formats/csv.py) writes. Only the line endings differ: COPY ends records
with LF, the reference with CRLF. Optionally gzip-compressed as it is written (`gzip=True`: ISA-L's
gzip, several times faster than zlib's, a standard .gz all the same); the file's SHA-256, of the bytes
stored, is computed as they are written (formats/output.py).
"""

from __future__ import annotations

import gzip as zlib_gzip
import io
import pathlib
import re
from collections.abc import Iterator, Sequence

from exporthub.catalog import Column
from exporthub.formats.csv import header_line
from exporthub.formats.output import DigestFile

try:
    from isal import igzip
except ImportError:  # pragma: no cover - isal is a dependency; zlib then does the same job slower
    igzip = None  # type: ignore[assignment]

# COPY output is handed on in pieces of at most this size, so that progress (one call of
# `on_records` per piece) moves in steps of well under 1 % even for narrow rows.
PIECE_BYTES = 16 * 1024

_BUFFER_BYTES = 1 << 20
GZIP_LEVEL = 1  # ISA-L's fastest, about zlib's level 6 in size on CSV

# In a single-column export, COPY quotes a cell that is exactly `\.` (so that it cannot be read as
# the end-of-data marker); the reference does not. Such a record is `"\."` on a line of its own, and
# that line cannot occur inside a quoted cell (a quote there is doubled or ends the cell).
_QUOTED_END_MARKER = re.compile(rb'(?m)^"\\\."$')


class CrlfRecords:
    """COPY's LF-terminated CSV records -> the reference's CRLF-terminated ones, counting records.

    Feed the output in order, cut anywhere. An LF ends a record unless an odd number of `"` came
    before it (then it is inside a quoted cell). A piece is converted by one `bytes.replace` unless
    a quoted cell in it holds an LF; then its stretches between quotes are, one by one (all in C
    but a list comprehension). The records are counted from the growth (each LF gains a CR).
    """

    def __init__(self, *, only_column: bool = False) -> None:
        self._in_quotes = False
        self._only_column = only_column
        self._held = b""  # only column: the unfinished last record, kept until its LF arrives
        self.records = 0

    def feed(self, data: bytes) -> tuple[bytes, int]:
        """The converted bytes and the number of records they end."""
        if self._only_column:
            data = self._held + data
            end = data.rfind(b"\n") + 1
            data, self._held = data[:end], data[end:]
            if b'"\\."' in data:
                data = _QUOTED_END_MARKER.sub(rb"\\.", data)
        # Each LF outside quotes becomes CRLF, one byte more: the growth is the number of records.
        if b'"' not in data:  # the common case
            out = data if self._in_quotes else data.replace(b"\n", b"\r\n")
        else:
            # Between the quotes: parts alternately outside and inside a quoted cell. Only cells with
            # LF inside (rare) need the parts converted one by one.
            parts = data.split(b'"')
            first_outside = 1 if self._in_quotes else 0
            self._in_quotes ^= len(parts) % 2 == 0  # an odd number of quotes
            if b"\n" not in b"".join(parts[1 - first_outside :: 2]):
                out = data.replace(b"\n", b"\r\n")
            else:
                parts[first_outside::2] = [p.replace(b"\n", b"\r\n") for p in parts[first_outside::2]]
                out = b'"'.join(parts)
        count = len(out) - len(data)
        self.records += count
        return out, count

    def finish(self) -> bytes:
        """What is left over (nothing, for complete COPY output); ValueError inside a quoted cell."""
        if self._in_quotes or self._held:
            raise ValueError("the CSV ended inside a record")
        return b""


class CsvFromCopy:
    """BOM and header as `CsvWriter` writes them, then COPY's output, converted piece by piece."""

    def __init__(
        self, path: pathlib.Path, columns: Sequence[Column], *, bom: bool, delimiter: str = ",", gzip: bool = False
    ) -> None:
        self._records = CrlfRecords(only_column=len(columns) == 1)
        self._output = DigestFile(path, _BUFFER_BYTES)
        self._file: io.BufferedIOBase = self._output
        try:
            if gzip:  # no file name in the header (it would be the temporary one); mtime 0: no time given
                self._file = _gzip_file(self._output)
            self._file.write(header_line(columns, bom=bom, delimiter=delimiter))
        except BaseException:
            self.abort()
            raise

    @property
    def records(self) -> int:
        return self._records.records

    def sha256(self) -> str:
        """The SHA-256 (hex) of the file as stored (compressed, with gzip), once closed."""
        return self._output.sha256()

    def write(self, chunk: bytes) -> Iterator[int]:
        """Write `chunk` in pieces of PIECE_BYTES, yielding the records each piece completed."""
        for start in range(0, len(chunk), PIECE_BYTES):
            text, count = self._records.feed(chunk[start : start + PIECE_BYTES])
            self._file.write(text)
            yield count

    def close(self) -> None:
        """Finish the file; ValueError if the output ended inside a record."""
        if not self._output.closed:
            self._file.write(self._records.finish())
            self._file.close()  # the gzip trailer, then the file
            self._output.close()

    def abort(self) -> None:
        try:
            if self._file is not self._output:
                self._file.close()
        finally:
            self._output.close()


def _gzip_file(output: io.BufferedIOBase) -> io.BufferedIOBase:
    if igzip is not None:
        return igzip.IGzipFile(filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=output, mtime=0)
    return zlib_gzip.GzipFile(filename="", mode="wb", compresslevel=6, fileobj=output, mtime=0)
