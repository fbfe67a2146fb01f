"""Files on local disk. Temporary files live beside the final ones so publishing is one rename."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import time
from pathlib import Path


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.temp_dir = root / ".tmp"
        self.temp_dir.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"storage key escapes the storage root: {key!r}")
        return path

    async def put(self, key: str, path: Path, *, sha256: str) -> int:
        # The checksum lives with the export's row: a rename does not change the bytes it was taken of.
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(_fsync, path)
        os.replace(path, target)  # atomic: readers see no file or the whole file
        return target.stat().st_size

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()

    async def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    async def download_url(self, key: str, *, filename: str, media_type: str, expires_at: dt.datetime) -> str | None:
        return None  # served by our signed link

    async def remove_stale_uploads(self, older_than: dt.timedelta) -> int:
        """Temporary files nobody has written to for `older_than` (their worker died)."""
        cutoff = time.time() - older_than.total_seconds()
        removed = 0
        for path in self.temp_dir.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
        return removed


def _fsync(path: Path) -> None:
    with path.open("rb") as f:
        os.fsync(f.fileno())
