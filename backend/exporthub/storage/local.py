"""Files on local disk. Temporary files live beside the final ones so publishing is one rename."""

from __future__ import annotations

import asyncio
import contextlib
import os
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

    async def put(self, key: str, path: Path) -> int:
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


def _fsync(path: Path) -> None:
    with path.open("rb") as f:
        os.fsync(f.fileno())
