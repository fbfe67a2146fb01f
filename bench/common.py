"""What every benchmark shares: the bench database, measurements and result files.

Each benchmark module (export_bench, fanout_bench, api_bench) exposes an async `run_*` function that
takes a `Settings` pointing at a seeded database and returns a `Section`; `bench/run.py` runs them
all against the bench database and writes one report (`--smoke`: all of them tiny, against a
database given with `--database`, as the smoke test does). The hub's processes are started with
the tests' harness (`tests.harness`), so that both start them the same way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import resource
import secrets
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/x.py` as well as `python -m bench.x`
    sys.path.insert(0, str(ROOT))

from tests.harness import with_database, with_new_port  # noqa: E402

from exporthub.accounts import PREFIX_LENGTH, create_api_key, generate_api_key, hash_api_key  # noqa: E402
from exporthub.db.migrate import migrate  # noqa: E402
from exporthub.db.seed import seed  # noqa: E402
from exporthub.settings import Rate, Settings  # noqa: E402

BENCH_DB = "exporthub_bench"
BENCH_EMPLOYEES = 50_000
BENCH_PAYROLL = 500_000
# Random per run, registered for acme by `register_bench_key`: demo keys are never fixed strings.
ACME_KEY = generate_api_key()
RESULTS_DIR = ROOT / "bench" / "results"


def loadavg() -> float:
    """The 1-minute load average: other engineers run tests on this machine, so every number carries it."""
    return round(os.getloadavg()[0], 2)


def proc_status_mib(pid: int, field: str = "VmHWM") -> float:
    """VmHWM (peak resident memory) or VmRSS of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for {pid}")


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU time the whole machine has spent busy (every process, all CPUs) since boot: /proc/stat's
    user, nice, system, irq, softirq and steal."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def child_pids(pid: int) -> list[int]:
    """The process's children (the web processes under `exporthub serve --workers N`)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its children."""
    total = proc_cpu_seconds(pid)
    for child in child_pids(pid):
        with contextlib.suppress(OSError):
            total += proc_cpu_seconds(child)
    return total


def tree_rss_mib(pid: int) -> float:
    """Resident memory of a process and its children, in MiB."""
    total = proc_status_mib(pid, "VmRSS")
    for child in child_pids(pid):
        with contextlib.suppress(OSError, RuntimeError):
            total += proc_status_mib(child, "VmRSS")
    return total


def raise_open_files_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit (children inherit it); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = 1_048_576 if hard == resource.RLIM_INFINITY else hard
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        soft = wanted
    return soft


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def verdict(met: bool | None) -> str:
    return "—" if met is None else ("met" if met else "NOT met")


@dataclasses.dataclass
class Section:
    """One benchmark's results: rows (plain dicts, for JSON) and the same as a markdown table."""

    key: str
    title: str
    rows: list[dict[str, Any]]
    columns: list[tuple[str, str]]  # (row key, column heading)
    notes: list[str] = dataclasses.field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"### {self.title}", ""]
        if not self.columns:
            return "\n".join(lines + [f"- {n}" for n in self.notes]) + "\n"
        lines.append("| " + " | ".join(h for _, h in self.columns) + " |")
        lines.append("| " + " | ".join("---" for _ in self.columns) + " |")
        for row in self.rows:
            lines.append("| " + " | ".join(_cell(row.get(k)) for k, _ in self.columns) + " |")
        if self.notes:
            lines.append("")
            lines.extend(f"- {n}" for n in self.notes)
        return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def write_results(out: Path, name: str, sections: list[Section], meta: dict[str, Any]) -> tuple[Path, Path]:
    """`<name>.json` (meta + every section's rows) and `<name>.md` (the tables) in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    data = {"meta": meta, **{s.key: {"title": s.title, "rows": s.rows, "notes": s.notes} for s in sections}}
    json_path = out / f"{name}.json"
    json_path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    md = [f"## ExportHub benchmarks ({meta.get('finished_at', '')})", "", _meta_line(meta), ""]
    md.extend(s.markdown() for s in sections)
    md_path = out / f"{name}.md"
    md_path.write_text("\n".join(md))
    return json_path, md_path


def _meta_line(meta: dict[str, Any]) -> str:
    during = meta.get("loadavg_during")
    sampled = f" (sampled during the run: mean {during['mean']}, max {during['max']})" if during else ""
    return (
        f"Machine: {meta.get('cpus')} CPUs; load average (1 min) {meta.get('loadavg_start')} at the start, "
        f"{meta.get('loadavg_end')} at the end{sampled} (other engineers' tests share the machine)."
    )


def run_meta(started: float) -> dict[str, Any]:
    return {
        "started_at": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
        "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
    }


async def prepare_bench_database(server: Settings, name: str = BENCH_DB) -> str:
    """Create, migrate and (once) seed the bench database; returns its URL. Idempotent.

    Every run deletes the database's export jobs and revokes its earlier bench keys: two runs at once
    need a database each (`bench.run --bench-database NAME`)."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"bench database name {name!r}: letters, digits and _ only")
    admin = await asyncpg.connect(server.db.url)
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = with_database(server.db.url, name)
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        if not await conn.fetchval("SELECT 1 FROM accounts WHERE slug = 'acme'"):
            print(f"seeding the bench database ({BENCH_PAYROLL:,} payroll rows, once)...", file=sys.stderr)
        await seed(conn, employees=BENCH_EMPLOYEES, payroll=BENCH_PAYROLL)
        await conn.execute("DELETE FROM export_jobs")
        await register_bench_key(conn)
    finally:
        await conn.close()
    return url


async def register_bench_key(conn: asyncpg.Connection | asyncpg.Pool) -> None:
    """Make ACME_KEY a key of acme; earlier runs' bench keys are revoked."""
    await conn.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE label = 'bench' AND revoked_at IS NULL"
        " AND account_id = (SELECT id FROM accounts WHERE slug = 'acme')"
    )
    acme = await conn.fetchval("SELECT id FROM accounts WHERE slug = 'acme'")
    await create_api_key(conn, acme, label="bench", key=ACME_KEY)


async def bench_accounts(conn: asyncpg.Connection, count: int, prefix: str = "bench") -> list[tuple[uuid.UUID, str]]:
    """`count` accounts `<prefix>-0001`..., created on first use (no HR data of their own: their tenant
    key is their id), each with one fresh API key (their earlier bench keys revoked): (id, key) pairs."""
    slugs = [f"{prefix}-{i:04d}" for i in range(1, count + 1)]
    await conn.execute(
        "INSERT INTO accounts (slug, name) SELECT s, s FROM unnest($1::text[]) AS s ON CONFLICT (slug) DO NOTHING",
        slugs,
    )
    rows = await conn.fetch("SELECT id, slug FROM accounts WHERE slug = ANY($1::text[]) ORDER BY slug", slugs)
    ids = [r["id"] for r in rows]
    await conn.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE label = 'bench' AND revoked_at IS NULL AND account_id = ANY($1)",
        ids,
    )
    keys = [generate_api_key() for _ in ids]
    await conn.executemany(
        "INSERT INTO api_keys (account_id, key_hash, prefix, label) VALUES ($1, $2, $3, 'bench')",
        [(account_id, hash_api_key(key), key[:PREFIX_LENGTH]) for account_id, key in zip(ids, keys, strict=True)],
    )
    return list(zip(ids, keys, strict=True))


def bench_settings(server: Settings, database_url: str, out: Path) -> Settings:
    return with_new_port(server).replace(
        db={"url": database_url},
        storage={"data_dir": out / "data"},
        redis={"queue_name": f"exporthub-bench:{uuid.uuid4().hex[:8]}"},  # no other run's workers read it
        secret_keys=(secrets.token_urlsafe(48),),  # the processes refuse to start without a real one
        exports={"start_rate": Rate(100_000, 1)},  # measure exports and the submit path, not the start rate
        web={"workers": 1},  # a benchmark that measures more web processes says so (EXPORTHUB_WEB_WORKERS)
    )
