"""A PDF file written object by object as the report is drawn: only each object's offset stays in
memory (8 bytes), and the page tree, written last, lists the pages by number."""

from __future__ import annotations

import array
import zlib
from typing import BinaryIO

try:
    from isal import isal_zlib
except ImportError:  # pragma: no cover - isal is a dependency; zlib then does the same job slower
    isal_zlib = None  # type: ignore[assignment]

# ISA-L's level 1 deflates page streams several times faster than zlib's default (level 6), for
# files some 10 % larger; deflating was a tenth of a report's time.
ISAL_LEVEL = 1
ZLIB_LEVEL = 1


def deflate(data: bytes) -> bytes:
    if isal_zlib is not None:
        return isal_zlib.compress(data, ISAL_LEVEL)
    return zlib.compress(data, ZLIB_LEVEL)  # pragma: no cover


class PdfObjects:
    """Numbered objects written to `file` in any order; `finish` writes the cross-reference table.
    Object numbers are handed out by `reserve`, so an object can be referred to before it is written."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._position = 0
        self._offsets = array.array("q", [0])  # by object number (0 is unused); 0: not written yet
        self._write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")

    def reserve(self) -> int:
        self._offsets.append(0)
        return len(self._offsets) - 1

    def write_object(self, number: int, body: bytes) -> None:
        self._offsets[number] = self._position
        self._write(b"%d 0 obj\n%s\nendobj\n" % (number, body))

    def write_stream(self, number: int, data: bytes, extra: bytes = b"") -> None:
        """A Flate-compressed stream; `extra` goes into its dictionary."""
        packed = deflate(data)
        self._offsets[number] = self._position
        self._write(
            b"%d 0 obj\n<< /Filter /FlateDecode /Length %d %s>>\nstream\n%s\nendstream\nendobj\n"
            % (number, len(packed), extra + b" " if extra else b"", packed)
        )

    def finish(self, root: int, info: int) -> None:
        missing = [number for number, offset in enumerate(self._offsets) if number and not offset]
        if missing:
            raise ValueError(f"PDF objects {missing[:5]} were reserved but never written")
        xref = self._position
        self._write(b"xref\n0 %d\n0000000000 65535 f \n" % len(self._offsets))
        self._write(b"".join(b"%010d 00000 n \n" % offset for offset in self._offsets[1:]))
        self._write(
            b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
            % (len(self._offsets), root, info, xref)
        )

    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self._position += len(data)
