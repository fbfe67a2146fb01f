"""An organisation's own data: a staffing schema unlike the demo's, its catalog, and a hub over it.

`schema.sql` makes the source database (tenants are companies keyed by text codes), `catalog.toml`
describes it. `own_data_hub` runs `exporthub serve` and `exporthub worker` with their own database,
the source database apart (SOURCE_DATABASE_URL), the catalog file (EXPORTHUB_CATALOG), and accounts
and keys made with the admin CLI, as an operator would.
"""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg

from tests.support import free_port, scratch_database, settings_env, start_process, wait_http

HERE = Path(__file__).resolve().parent
SCHEMA = HERE / "schema.sql"
CATALOG = HERE / "catalog.toml"
COMPANIES = {"northwind": ("Northwind Staffing", "nw-001"), "contoso": ("Contoso Crews", "cw-002")}


def cli(settings: Any, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporthub", *args],
        env=settings_env(settings, **env),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


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
    web: Any
    worker: Any
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
        port = free_port()
        settings = base.replace(
            db={"url": hub_url, "source_database_url": source_url},
            exports={"catalog_path": CATALOG},
            redis={"queue_name": f"exporthub-own:{uuid.uuid4().hex[:8]}"},
            storage={"data_dir": base.storage.data_dir / "own-data"},
            web={"port": port, "public_url": f"http://127.0.0.1:{port}"},
        )
        keys = {}
        for slug, (name, tenant_key) in COMPANIES.items():
            made = cli(settings, "accounts", "create", "--slug", slug, "--name", name, "--tenant-key", tenant_key)
            assert made.returncode == 0, made.stderr
            key = cli(settings, "apikey", "create", "--account", slug, "--name", "tests")
            assert key.returncode == 0, key.stderr
            keys[slug] = key.stdout.strip()
        env = settings_env(settings)
        web = start_process("own-web", ["serve"], env, log_dir)
        worker = start_process("own-worker", ["worker"], env, log_dir)
        try:
            wait_http(f"{settings.web.public_url}/healthz", 30, web)
            yield OwnHub(settings, source_url, web, worker, log_dir, keys)
        finally:
            web.stop()
            worker.stop()
