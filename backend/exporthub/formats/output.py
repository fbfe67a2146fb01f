"""The file a writer writes into: buffered, and hashed (SHA-256) as its bytes go to disk, so that the
file's checksum is known when it is closed, without reading it again.

Not seekable, on purpose: a byte once hashed cannot change. `zipfile` (the XLSX writer) notices and
writes each entry's sizes and CRC in a data descriptor after the entry instead of going back to its
header; every zip reader, Excel's included, takes either form.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

BUFFER_BYTES = 1 << 20  # the hash and the disk see pieces of this size


class _HashingRaw(io.RawIOBase):
    def __init__(self, path: Path) -> None:
        self._file = open(path, "wb", buffering=0)  # noqa: SIM115 - closed by close()
        self._hash = hashlib.sha256()
        self._size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        written = self._file.write(view) or 0  # a regular file takes it all; a short write is allowed for
        self._hash.update(view[:written])
        self._size += written
        return written

    def tell(self) -> int:
        return self._size

    def close(self) -> None:
        if not self.closed:
            try:
                self._file.close()
            finally:
                super().close()

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class DigestFile(io.BufferedWriter):
    """`open(path, "wb")` that knows the SHA-256 of what it wrote: `sha256()` (hex), once closed."""

    def __init__(self, path: Path, buffer_size: int = BUFFER_BYTES) -> None:
        self._hashing = _HashingRaw(path)
        super().__init__(self._hashing, buffer_size)

    def sha256(self) -> str:
        if not self.closed:
            raise ValueError("the checksum is known once the file is closed")
        return self._hashing.hexdigest()

    @property
    def size(self) -> int:
        return self._hashing.tell()
