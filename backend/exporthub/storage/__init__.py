"""Where finished export files live, behind one small protocol (local disk now, S3 later)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from exporthub.storage.local import LocalStorage


@runtime_checkable
class Storage(Protocol):
    temp_dir: Path

    async def put(self, key: str, path: Path) -> int:
        """Publish a complete temporary file under `key`; return its size. The key is visible only when done."""

    async def delete(self, key: str) -> None: ...

    async def exists(self, key: str) -> bool: ...

    def local_path(self, key: str) -> Path | None:
        """The file on local disk, for backends that serve downloads themselves."""


def create_storage(storage_url: str, default_dir: Path) -> Storage:
    if storage_url in ("", None) or storage_url.startswith("file://"):
        return LocalStorage(Path(storage_url.removeprefix("file://")) if storage_url else default_dir)
    raise ValueError(f"unsupported STORAGE_URL {storage_url!r}: use file:///path (S3 support comes later)")


__all__ = ["LocalStorage", "Storage", "create_storage"]
