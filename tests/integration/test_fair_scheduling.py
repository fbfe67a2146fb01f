"""Fair scheduling across accounts, end to end: real web servers, workers, queue and PostgreSQL.

Each test runs its own web server and workers on a queue of their own. The timelines (who started
when) are written to test-artifacts/ for reading.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import statistics
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx

from exporthub.settings import Settings
from tests.harness import LOG_DIR, ROOT, Process, start_worker, web_server, with_new_port
from tests.integration.helpers import submit, wait_status

ARTIFACTS = ROOT / "test-artifacts"


class FairHub:
    """A web server on a queue of its own, and its workers, started when the test says."""

    def __init__(self, settings: Settings, name: str, slots: int) -> None:
        self.name = name
        self.settings = settings
        self.workers: list[Process] = []

    def start_workers(self, count: int) -> None:
        self.workers += [start_worker(self.settings, LOG_DIR, f"{self.name}-worker-{i}") for i in range(count)]


@contextlib.contextmanager
def fair_hub(settings: Settings, name: str, *, workers: int, slots: int, max_active: int = 5) -> Iterator[FairHub]:
    """`workers` started at once (more with `start_workers`), `slots` exports each."""
    hub = FairHub(
        with_new_port(settings).replace(
            redis={"queue_name": f"{settings.redis.queue_name}-{name}-{uuid.uuid4().hex[:6]}"},
            exports={"worker_concurrency": slots, "account_concurrency": 2, "max_active_exports": max_active},
        ),
        name,
        slots,
    )
    hub.start_workers(workers)
    try:
        with web_server(hub.settings, LOG_DIR, f"{name}-web"):
            yield hub
    finally:
        for process in hub.workers:
            process.stop()


Row = tuple[str, dt.datetime, dt.datetime | None, dt.datetime | None]  # label, submitted, started, completed


async def timeline(pool: asyncpg.Pool, ids: dict[str, str]) -> list[Row]:
    rows = await pool.fetch(
        "SELECT id, created_at, started_at, completed_at FROM export_jobs WHERE id = ANY($1::uuid[])", list(ids)
    )
    found = [(ids[str(r["id"])], r["created_at"], r["started_at"], r["completed_at"]) for r in rows]
    return sorted(found, key=lambda row: row[1])


def write_timeline(path: Path, rows: list[Row]) -> None:
    origin = min(r[1] for r in rows)

    def at(value: dt.datetime | None) -> str:
        return f"{(value - origin).total_seconds():6.2f}" if value else "     -"

    lines = ["export        submitted  started  completed  (seconds from the first submit)"]
    lines += [
        f"{label:12}  {at(created)}     {at(started)}   {at(completed)}" for label, created, started, completed in rows
    ]
    ARTIFACTS.mkdir(exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


async def test_a_small_export_starts_before_a_big_accounts_next_one(
    settings: Settings, demo_keys: dict[str, str], pool: asyncpg.Pool, clean_jobs: None
) -> None:
    """Account A submits 5 XLSX exports of its whole payroll (200,000 rows in the test data, seconds
    each) to one worker with 2 slots; account B then submits a small one. B's starts as soon as a slot
    frees, before A's third, and completes within 10 s."""
    with fair_hub(settings, "fair-ab", workers=1, slots=2) as fair:
        hub = fair.settings
        headers = {"Authorization": f"Bearer {demo_keys['acme']}"}
        async with (
            httpx.AsyncClient(base_url=hub.web.public_url, headers=headers, timeout=30) as a,
            httpx.AsyncClient(
                base_url=hub.web.public_url, headers={"Authorization": f"Bearer {demo_keys['globex']}"}, timeout=30
            ) as b,
        ):
            big = {"format": "xlsx", "resource": "payroll"}  # acme's whole payroll: seconds each
            a_ids = [(await submit(a, big))["exportId"] for _ in range(5)]
            for export_id in a_ids[:2]:
                await wait_status(a, export_id, {"processing"})
            small = await submit(b, {"format": "csv", "resource": "employees", "columns": ["employeeNumber"]})
            queued = (await b.get(f"/api/v1/exports/{small['exportId']}")).json()
            done = await wait_status(b, small["exportId"], timeout=30)
            labels = {export_id: f"A{i + 1}" for i, export_id in enumerate(a_ids)} | {small["exportId"]: "B"}
            rows = await timeline(pool, labels)
            write_timeline(ARTIFACTS / "fairness-two-accounts.txt", rows)
            for export_id in a_ids:  # the rest of A's work is not this test's
                await a.post(f"/api/v1/exports/{export_id}/cancel")
    assert done["status"] == "completed", done
    assert queued["status"] != "queued" or queued["queuePosition"] == 1  # next in line, ahead of A's 3 waiting
    started = {label: s for label, _, s, _ in rows}
    b_created, b_completed = next((c, e) for label, c, _, e in rows if label == "B")
    assert b_completed is not None and (b_completed - b_created).total_seconds() < 10
    for later in ("A3", "A4", "A5"):
        assert started[later] is None or started["B"] < started[later], rows


async def test_three_accounts_share_three_workers_in_turns(
    settings: Settings, demo_keys: dict[str, str], pool: asyncpg.Pool, clean_jobs: None
) -> None:
    """30 PDF exports of the same size (under a second each), all queued before the 3 workers start:
    acme submitted its 10 first, then globex, then initech. The first three starts go one to each
    account; no account waits, on average, more than one export's duration longer than another, even
    when one worker process runs slower than the others; and none gets twice as far along as another
    (first come, first served, globex and initech would start nothing until acme's 10 were done)."""
    acme_id = await pool.fetchval("SELECT id FROM accounts WHERE slug = 'acme'")
    others = await pool.fetchval(
        "SELECT count(*) FROM payroll WHERE account_id = (SELECT id FROM accounts WHERE slug = 'globex')"
    )
    # acme's payroll over a date range of as many rows as the others' whole payroll
    day = await pool.fetchval(
        "SELECT pay_date FROM payroll WHERE account_id = $1 ORDER BY pay_date OFFSET $2 LIMIT 1", acme_id, others
    )
    bodies = {
        "acme": {"format": "pdf", "resource": "payroll", "filters": {"dateTo": str(day)}},
        "globex": {"format": "pdf", "resource": "payroll"},
        "initech": {"format": "pdf", "resource": "payroll"},
    }
    with fair_hub(settings, "fair-abc", workers=0, slots=1, max_active=10) as fair:
        hub = fair.settings
        labels: dict[str, str] = {}
        clients = {
            slug: httpx.AsyncClient(
                base_url=hub.web.public_url, headers={"Authorization": f"Bearer {demo_keys[slug]}"}, timeout=30
            )
            for slug in bodies
        }
        try:
            for slug, client in clients.items():
                for i in range(10):
                    labels[(await submit(client, bodies[slug]))["exportId"]] = f"{slug}-{i + 1}"
            fair.start_workers(3)
            for export_id, label in labels.items():
                done = await wait_status(clients[label.split("-")[0]], export_id, timeout=120)
                assert done["status"] == "completed", done
        finally:
            for client in clients.values():
                await client.aclose()
    rows = await timeline(pool, labels)
    write_timeline(ARTIFACTS / "fairness-three-accounts.txt", rows)
    starts = sorted((started, label.split("-")[0]) for label, _, started, _ in rows if started is not None)
    assert len(starts) == 30
    # Every account's first export starts before any account's third.
    seen: dict[str, int] = {}
    for _, slug in starts:
        seen[slug] = seen.get(slug, 0) + 1
        if seen[slug] == 3:
            assert set(seen) == set(bodies), seen
            break
    # No account waits, on average, more than one export's duration longer than another.
    workers_began = starts[0][0]
    waits = {slug: [(s - workers_began).total_seconds() for s, owner in starts if owner == slug] for slug in bodies}
    mean_waits = {slug: statistics.mean(w) for slug, w in waits.items()}
    one_export = statistics.mean((done - began).total_seconds() for _, _, began, done in rows if began and done)
    assert max(mean_waits.values()) - min(mean_waits.values()) <= one_export, (mean_waits, one_export)
    # And none gets ahead: when any account starts its 6th export, each has started at least 3.
    seen = {}
    for _, slug in starts:
        seen[slug] = seen.get(slug, 0) + 1
        if seen[slug] == 6:
            assert all(seen.get(other, 0) >= 3 for other in bodies), seen
            break
