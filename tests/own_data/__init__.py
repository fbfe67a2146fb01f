"""An organisation's own data: a staffing schema unlike the demo's, its catalog, and a hub over it.

`schema.sql` makes the source database (tenants are companies keyed by text codes), `catalog.toml`
describes it. `own_data_hub` runs `exporthub serve` and `exporthub worker` with their own database,
the source database apart (SOURCE_DATABASE_URL), the catalog file (EXPORTHUB_CATALOG), and accounts
and keys made with the admin CLI, as an operator would.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg

from tests.harness import Process, exporthub_command, scratch_database, start_worker, web_server, with_new_port

HERE = Path(__file__).resolve().parent
SCHEMA = HERE / "schema.sql"
CATALOG = HERE / "catalog.toml"
COMPANIES = {"northwind": ("Northwind Staffing", "nw-001"), "contoso": ("Contoso Crews", "cw-002")}


@contextlib.asynccontextmanager
async def source_database(admin_url: str) -> AsyncIterator[str]:
    """A scratch database holding the staffing schema and its rows; yields its URL."""
    async with scratch_database(admin_url, "staffing_source", migrated=False) as url:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(SCHEMA.read_text())
        finally:
            await conn.close()
        yield url


@dataclasses.dataclass
class OwnHub:
    settings: Any
    source_url: str
    web: Process
    worker: Process
    log_dir: Path
    keys: dict[str, str]  # account slug -> API key

    @property
    def base_url(self) -> str:
        return self.settings.web.public_url


@contextlib.asynccontextmanager
async def own_data_hub(admin_url: str, base: Any, log_dir: Path) -> AsyncIterator[OwnHub]:
    async with (
        scratch_database(admin_url, "exporthub_own") as hub_url,
        source_database(admin_url) as source_url,
    ):
        settings = with_new_port(base).replace(
            db={"url": hub_url, "source_database_url": source_url},
            exports={"catalog_path": CATALOG},
            redis={"queue_name": f"exporthub-own:{uuid.uuid4().hex[:8]}"},
            storage={"data_dir": base.storage.data_dir / "own-data"},
        )
        keys = {}
        for slug, (name, tenant_key) in COMPANIES.items():
            made = exporthub_command(
                settings, "accounts", "create", "--slug", slug, "--name", name, "--tenant-key", tenant_key
            )
            assert made.returncode == 0, made.stderr
            key = exporthub_command(settings, "apikey", "create", "--account", slug, "--name", "tests")
            assert key.returncode == 0, key.stderr
            keys[slug] = key.stdout.strip()
        worker = start_worker(settings, log_dir, "own-worker")
        try:
            with web_server(settings, log_dir, "own-web") as web:
                yield OwnHub(settings, source_url, web, worker, log_dir, keys)
        finally:
            worker.stop()
