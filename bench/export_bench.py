"""End-to-end export benchmark: submit over HTTP, wait for the completed event, measure.

For each format and size it starts a fresh worker process (so its peak RSS, VmHWM, belongs to that
export alone), submits one payroll export through the real API and queue, and records the time from
submit to the `export.completed` event, rows per second, the worker's peak memory and the file size.

    python bench/export_bench.py [--sizes 5000,50000,500000] [--formats csv,xlsx] [--out bench/results]

Servers come from DATABASE_URL / REDIS_URL, else embedded ones; the data goes to a database
`exporthub_bench` (seeded once at 500,000 payroll rows).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from exporthub import embedded  # noqa: E402
from exporthub.accounts import account_by_slug  # noqa: E402
from exporthub.db.migrate import migrate  # noqa: E402
from exporthub.db.seed import DEMO_ACCOUNTS, seed  # noqa: E402
from exporthub.progress import channel_for  # noqa: E402
from exporthub.settings import Settings, load_settings  # noqa: E402
from tests.support import Process, free_port, settings_env, start_process, wait_http  # noqa: E402

BENCH_DB = "exporthub_bench"
ACME_KEY = next(d.api_key for d in DEMO_ACCOUNTS if d.slug == "acme")


@dataclasses.dataclass
class Result:
    format: str
    rows: int
    seconds: float
    rows_per_second: float
    worker_peak_mib: float
    worker_idle_mib: float
    file_mib: float


def peak_rss_mib(pid: int, field: str = "VmHWM") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for {pid}")


async def prepare_database(server: Settings) -> str:
    admin = await asyncpg.connect(server.database_url)
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", BENCH_DB):
            await admin.execute(f'CREATE DATABASE "{BENCH_DB}"')
    finally:
        await admin.close()
    url = urlunsplit(urlsplit(server.database_url)._replace(path=f"/{BENCH_DB}"))
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        print("seeding (once)...", file=sys.stderr)
        await seed(conn, employees=50_000, payroll=500_000)
        await conn.execute("DELETE FROM export_jobs")
    finally:
        await conn.close()
    return url


async def filters_for(pool: asyncpg.Pool, account_id, rows: int) -> dict:
    """Filters that select close to `rows` payroll rows: the newest pay dates, then whole departments."""
    day = await pool.fetchval(
        "SELECT pay_date FROM payroll WHERE account_id = $1 ORDER BY pay_date DESC, id DESC OFFSET $2 LIMIT 1",
        account_id,
        rows - 1,
    )
    per_department = await pool.fetch(
        "SELECT e.department_id, count(*) AS n FROM payroll p JOIN employees e ON e.id = p.employee_id"
        " WHERE p.account_id = $1 AND p.pay_date >= $2 GROUP BY 1 ORDER BY 2 DESC",
        account_id,
        day,
    )
    chosen, total = [], 0
    for r in per_department:
        if total >= rows:
            break
        chosen.append(str(r["department_id"]))
        total += r["n"]
    filters = {"dateFrom": day.isoformat()}
    if len(chosen) < len(per_department):
        filters["departmentIds"] = chosen
    return filters


async def measure(
    settings: Settings, pool: asyncpg.Pool, fmt: str, rows: int, log_dir: Path
) -> Result:
    env = settings_env(settings, EXPORTHUB_WORKER_CONCURRENCY="1")
    worker = start_process(f"bench-worker-{fmt}-{rows}", ["worker"], env, log_dir)
    acme = await account_by_slug(pool, "acme")
    body = {"format": fmt, "resource": "payroll"}
    if rows < 500_000:
        body["filters"] = await filters_for(pool, acme.id, rows)
    redis = Redis.from_url(settings.redis_url)
    pubsub = redis.pubsub()
    await pubsub.subscribe(channel_for(acme.id))
    try:
        await asyncio.sleep(2)  # worker start-up
        idle = peak_rss_mib(worker.popen.pid, "VmRSS")
        async with httpx.AsyncClient(base_url=settings.public_url, headers={"Authorization": f"Bearer {ACME_KEY}"}) as c:
            started = time.perf_counter()
            response = await c.post("/api/v1/exports", json=body)
            response.raise_for_status()
            export_id = response.json()["exportId"]
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is None:
                    continue
                event = json.loads(message["data"])
                if event["exportId"] == export_id and event["type"] != "export.progress":
                    break
            elapsed = time.perf_counter() - started
        if event["type"] != "export.completed":
            raise RuntimeError(f"export ended {event}")
        peak = peak_rss_mib(worker.popen.pid)
    finally:
        await pubsub.aclose()
        await redis.aclose()
        worker.stop()
    return Result(
        format=fmt,
        rows=event["totalRows"],
        seconds=round(elapsed, 2),
        rows_per_second=round(event["totalRows"] / elapsed),
        worker_peak_mib=round(peak, 1),
        worker_idle_mib=round(idle, 1),
        file_mib=round(event["fileSize"] / 2**20, 1),
    )


def table(results: list[Result]) -> str:
    lines = [
        "| format | rows | submit → completed (s) | rows/s | worker peak RSS (MiB) | worker idle RSS (MiB) | file (MiB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.format} | {r.rows:,} | {r.seconds:.2f} | {r.rows_per_second:,} | {r.worker_peak_mib:.1f} "
            f"| {r.worker_idle_mib:.1f} | {r.file_mib:.1f} |"
        )
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> list[Result]:
    with embedded.servers(load_settings(os.environ)) as server:
        url = await prepare_database(server)
        port = free_port()
        settings = dataclasses.replace(
            server,
            database_url=url,
            port=port,
            public_url=f"http://127.0.0.1:{port}",
            data_dir=Path(args.out) / "data",
            queue_name="exporthub-bench",
            secret_key="bench",
        )
        log_dir = Path(args.out) / "logs"
        web: Process = start_process("bench-web", ["serve"], settings_env(settings), log_dir)
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        results = []
        try:
            wait_http(f"{settings.public_url}/healthz", 30, web)
            for fmt in args.formats.split(","):
                for rows in (int(n) for n in args.sizes.split(",")):
                    result = await measure(settings, pool, fmt, rows, log_dir)
                    print(result, file=sys.stderr)
                    results.append(result)
                    await pool.execute("DELETE FROM export_jobs")
        finally:
            await pool.close()
            web.stop()
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="5000,50000,500000")
    parser.add_argument("--formats", default="csv,xlsx")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    results = asyncio.run(main(args))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "exports.json").write_text(json.dumps([dataclasses.asdict(r) for r in results], indent=2))
    (out / "exports.md").write_text(table(results) + "\n")
    print(table(results))
