"""The domain (`exports.Exports`) built over real connections, for tests that call it in-process."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

from exporthub.catalog import Catalog, load_catalog
from exporthub.connections import open_connections
from exporthub.exports.service import Enqueue, Exports
from exporthub.settings import Settings


class NoQueue:
    """An Enqueue that must never be called: the export should have been refused."""

    async def __call__(self, export_id: uuid.UUID) -> None:
        raise AssertionError(f"export {export_id} should not have been enqueued")


@contextlib.asynccontextmanager
async def exports_domain(
    settings: Settings, *, enqueue: Enqueue | None = None, catalog: Catalog | None = None
) -> AsyncIterator[Exports]:
    async with open_connections(settings, pool_size=4) as conns:
        yield Exports.over(
            conns,
            catalog=catalog or load_catalog(settings.exports.catalog_path),
            settings=settings,
            enqueue=enqueue or NoQueue(),
        )
