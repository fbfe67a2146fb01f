"""Where finished export files live, behind one small protocol: local disk (local.py) or S3 (s3.py).

S3 storage needs clients, so it is opened (and closed) by `connections.open_storage`; local disk is
made here."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Protocol, runtime_checkable

from exporthub.storage.local import LocalStorage


@runtime_checkable
class Storage(Protocol):
    temp_dir: Path

    async def put(self, key: str, path: Path, *, sha256: str) -> int:
        """Publish a complete temporary file under `key`; return its size. The key is visible only when done.
        `sha256`: the file's checksum (hex), hashed as it was written; S3 stores it with the object."""

    async def delete(self, key: str) -> None: ...

    async def exists(self, key: str) -> bool: ...

    def local_path(self, key: str) -> Path | None:
        """The file on local disk, for backends that serve downloads themselves."""

    async def download_url(self, key: str, *, filename: str, media_type: str, expires_at: dt.datetime) -> str | None:
        """A link straight to the file, valid until `expires_at` (S3: presigned GET); None: serve it
        through our own signed link."""

    async def remove_stale_uploads(self, older_than: dt.timedelta) -> int:
        """Clear uploads that never finished (a killed worker's) and started before `older_than` ago."""


def create_storage(storage_url: str, default_dir: Path) -> Storage:
    if storage_url in ("", None) or storage_url.startswith("file://"):
        return LocalStorage(Path(storage_url.removeprefix("file://")) if storage_url else default_dir)
    if storage_url.startswith("s3://"):
        raise ValueError("S3 storage needs clients: open it with exporthub.connections.open_storage(settings)")
    raise ValueError(f"unsupported STORAGE_URL {storage_url!r}: use file:///path or s3://bucket/prefix")


__all__ = ["LocalStorage", "Storage", "create_storage"]
