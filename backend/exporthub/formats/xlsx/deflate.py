"""ISA-L's deflate for a zip entry being written: the one private API the formats use.

Why ISA-L: at level 1 it deflates about 3.7x faster than zlib's level 1 and makes smaller files, and
deflating is, after formatting the rows, most of what an XLSX export costs.

Why a private API: `zipfile` has no public way to give an entry another compressor
(`ZipFile.open(name, "w")` always makes zlib's), nor to add an entry that is deflated already. The
public ways round it are writing the zip container ourselves (local headers, data descriptors,
Zip64 records, the central directory) or a third-party zip library: more code to trust than one
attribute. So `use_isal_deflate` swaps the entry's `_compressor` (`zipfile._ZipWriteFile`, the same
in CPython 3.6 to 3.14) for ISA-L's compressobj, which makes the same raw deflate stream; zipfile
still counts the sizes and the CRC, and any unzip reads the entry. Where the attribute is gone or is
not a zlib compressor, or isal is not installed, nothing is swapped and zlib does the same job,
slower. `tests/unit/formats/test_formats_xlsx_deflate.py` fails loudly when a CPython release
changes any of that.
"""

from __future__ import annotations

import zlib
from typing import IO

try:
    from isal import isal_zlib
except ImportError:  # pragma: no cover - isal is a dependency; zlib then does the same job slower
    isal_zlib = None  # type: ignore[assignment]

ISAL_LEVELS = range(1, 4)  # zipfile's level 0 means stored blocks, ISA-L's level 0 still compresses

_ZLIB_COMPRESS = type(zlib.compressobj())


def isal_level(compresslevel: int) -> int | None:
    """The ISA-L level for a zipfile `compresslevel`, or None where zlib should do it."""
    return compresslevel if isal_zlib is not None and compresslevel in ISAL_LEVELS else None


def use_isal_deflate(entry: IO[bytes], level: int) -> bool:
    """Deflate the zip entry `entry` (from `ZipFile.open(name, "w")`, nothing written yet) with ISA-L
    at `level` rather than zlib. True if it will; False if zlib stays (see the module docstring)."""
    # Private API: zipfile._ZipWriteFile._compressor, a zlib compressobj(level, DEFLATED, -15).
    if isal_zlib is None or type(getattr(entry, "_compressor", None)) is not _ZLIB_COMPRESS:
        return False
    entry._compressor = isal_zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)  # type: ignore[attr-defined]
    return True
