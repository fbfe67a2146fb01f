"""Fixtures: real PostgreSQL and Redis (DATABASE_URL / REDIS_URL, else embedded), a real web server
and a real worker process. Each test session gets its own database and Redis queue."""

from __future__ import annotations

import dataclasses
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from exporthub import embedded
from exporthub.db.migrate import migrate
from exporthub.db.seed import issue_demo_keys, seed
from exporthub.settings import Rate, Settings, load_settings
from tests.harness import (
    LOG_DIR,
    Pauses,
    Process,
    drop_database,
    recreate_database,
    scratch_database,
    start_scheduler,
    start_worker,
    web_server,
    with_database,
    with_new_port,
)
from tests.own_data import OwnHub, own_data_hub

TEST_DB = f"exporthub_test_{os.getpid()}"  # concurrent sessions never share a database
SEED_EMPLOYEES = 3_000
SEED_PAYROLL = 200_000  # enough for a browser test to watch a bar move
TEST_START_RATE = Rate(100_000, 60)


def with_redis_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        query = dict(parse_qsl(parts.query))
        query["db"] = str(db)
        return urlunsplit(parts._replace(query=urlencode(query)))
    return urlunsplit(parts._replace(path=f"/{db}"))


@pytest.fixture(scope="session")
def server_settings() -> Iterator[Settings]:
    """Settings pointing at the real servers (started embedded when the variables are unset)."""
    with embedded.servers(load_settings(os.environ)) as resolved:
        yield resolved


@pytest.fixture(scope="session")
async def settings(server_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Settings]:
    await recreate_database(server_settings.db.url, TEST_DB)
    data_dir = tmp_path_factory.mktemp("exporthub-data")
    test = with_new_port(server_settings).replace(
        db={"url": with_database(server_settings.db.url, TEST_DB)},
        redis={
            "url": with_redis_db(server_settings.redis.url, 13),
            "queue_name": f"exporthub-test:{uuid.uuid4().hex[:8]}",
        },
        storage={"data_dir": data_dir},
        recovery={"lease_seconds": 4, "sweep_interval_seconds": 1.0, "requeue_after_seconds": 5},
        # Tests submit far faster than 10 a minute; tests/integration/test_start_rate.py has hubs at the real rate.
        exports={"max_rows_per_sheet": 1_048_575, "start_rate": TEST_START_RATE},
        webhooks={"allow_private": True, "allow_http": True, "retry_base_seconds": 0.2, "poll_seconds": 0.1},
        secret_keys=(secrets.token_urlsafe(48),),
        web={"workers": 1},  # one web process, whose socket counts the tests read; test_serve_workers runs more
    )
    conn = await asyncpg.connect(test.db.url)
    try:
        await migrate(conn)
        await seed(conn, employees=SEED_EMPLOYEES, payroll=SEED_PAYROLL)
    finally:
        await conn.close()
    yield test
    await drop_database(server_settings.db.url, TEST_DB)


@pytest.fixture(scope="session")
async def demo_keys(settings: Settings) -> dict[str, str]:
    """An API key per demo account (slug -> key): made like `exporthub dev` makes its keys."""
    conn = await asyncpg.connect(settings.db.url)
    try:
        return await issue_demo_keys(conn, label="tests")
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(settings.db.url, min_size=1, max_size=5)
    yield pool
    await pool.close()


@pytest.fixture
async def db_conn(server_settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a freshly migrated, empty scratch database."""
    async with scratch_database(server_settings.db.url, "exporthub_scratch") as url:
        conn = await asyncpg.connect(url)
        try:
            yield conn
        finally:
            await conn.close()


@dataclasses.dataclass
class Hub:
    settings: Settings
    web: Process
    worker: Process
    scheduler: Process | None  # None: no periodic tasks (recovery, expiry) are sent for its queue
    log_dir: Path
    keys: dict[str, str]  # demo account slug -> API key
    pauses: Pauses | None = None  # set when its worker holds exports (paused_hub)

    @property
    def base_url(self) -> str:
        return self.settings.web.public_url

    def client(self, account: str = "acme", **kwargs: object) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url, headers={"Authorization": f"Bearer {self.keys[account]}"}, timeout=30, **kwargs
        )


@pytest.fixture(scope="session")
def hub(settings: Settings, demo_keys: dict[str, str]) -> Iterator[Hub]:
    """A real web server, worker and scheduler, as `exporthub serve`, `exporthub worker` and `exporthub scheduler`."""
    worker = start_worker(settings, LOG_DIR)
    scheduler = start_scheduler(settings, LOG_DIR)
    try:
        with web_server(settings, LOG_DIR) as web:
            yield Hub(settings, web, worker, scheduler, LOG_DIR, demo_keys)
    finally:
        worker.stop()
        scheduler.stop()


@pytest.fixture(scope="session")
def paused_hub(
    settings: Settings, demo_keys: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Hub]:
    """Another web server and worker, on a queue of their own, whose worker holds every export after its
    first batch of rows until the test releases it (`hub.pauses`: the pipeline's test-only pause hook).
    A test cancels, or kills a worker, at a known point of a running export, however fast the machine.
    Hold PDF or XLSX exports (rows read through a cursor), not small CSVs: see the xfail test in
    test_csv_copy.py for a CSV whose COPY is cancelled in its last buffer."""
    pauses = Pauses(tmp_path_factory.mktemp("pauses"))
    paused = with_new_port(settings).replace(
        redis={"queue_name": f"{settings.redis.queue_name}-paused"}, exports={"test_pause_dir": pauses.path}
    )
    worker = start_worker(paused, LOG_DIR, "paused-worker")
    try:
        with web_server(paused, LOG_DIR, "paused-web") as web:
            yield Hub(paused, web, worker, None, LOG_DIR, demo_keys, pauses)
    finally:
        pauses.release_all()  # nothing still held keeps the worker from shutting down
        worker.stop()


@pytest.fixture
async def clean_jobs(pool: asyncpg.Pool) -> AsyncIterator[None]:
    """Each test starts with no exports; running ones lose their lease and stop."""
    await pool.execute("DELETE FROM export_jobs")
    yield


@pytest.fixture
async def api(hub: Hub, clean_jobs: None) -> AsyncIterator[httpx.AsyncClient]:
    async with hub.client("acme") as client:
        yield client


@pytest.fixture
async def paused_api(paused_hub: Hub, clean_jobs: None) -> AsyncIterator[httpx.AsyncClient]:
    """acme's client of the paused hub: its exports stop after their first batch until released."""
    async with paused_hub.client("acme") as client:
        yield client


@pytest.fixture(scope="session")
async def own_hub(server_settings: Settings, settings: Settings) -> AsyncIterator[OwnHub]:
    """A hub over an organisation's own schema and catalog (tests/own_data), its source database apart."""
    async with own_data_hub(server_settings.db.url, settings, LOG_DIR) as hub:
        yield hub
