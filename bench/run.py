"""The whole benchmark suite (`make bench`): exports, two concurrent exports, WebSocket fan-out, API load.

    python -m bench.run [--only exports,concurrency,fanout,api] [--out bench/results]
        [--pairs 3] [--formats csv,xlsx,pdf] [--sizes 5000,50000,500000] [--bench-database exporthub_bench]
    python -m bench.run --smoke --database URL --out DIR    # tiny, on a seeded database (the smoke test)

`exports` runs ExportHub and the seed's Node exporter pair by pair on the same SQL at 500,000 rows
(bench/paired_bench.py; `--pairs`, 0 to skip; Node's packages: `make bench-node`), the COPY floor of
that SQL, then every format at every size (bench/export_bench.py; the 500,000-row CSV and XLSX rows are
the pairs' median runs).

Seeds the bench database `exporthub_bench` on first use (500,000 payroll rows for acme), then runs
each benchmark through the real API, queue and worker processes and writes to `--out`:

    results.md    the issue 14 targets, each met or not, then every benchmark's table
    results.json  the same numbers, plus the run's metadata (CPUs, load average during the run)
    chart.png     time and worker peak memory against exported rows, per format, with Node's (matplotlib)
    payroll-<rows>.sql, payroll-<rows>-csv-text.sql   the SQL Node and the COPY floor ran
    logs/         every process's log

Servers come from DATABASE_URL / REDIS_URL, else embedded ones. Each benchmark also runs on its
own: bench/export_bench.py, bench/fanout_bench.py, bench/api_bench.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import statistics
import sys
import time
import traceback
from collections.abc import Awaitable
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api_bench import default_tool, run_api
from bench.common import (
    BENCH_DB,
    RESULTS_DIR,
    Section,
    bench_settings,
    loadavg,
    prepare_bench_database,
    register_bench_key,
    run_meta,
    write_results,
)
from bench.export_bench import run_concurrency, run_exports
from bench.fanout_bench import run_fanout
from bench.paired_bench import NODE_RATIO_TARGET, run_paired
from bench.targets import targets_section

from exporthub import embedded
from exporthub.settings import Settings, load_settings

BENCHMARKS = ("exports", "concurrency", "fanout", "api")


@dataclasses.dataclass
class Plan:
    only: tuple[str, ...] = BENCHMARKS
    formats: tuple[str, ...] = ("csv", "xlsx", "pdf")
    sizes: tuple[int, ...] = (5_000, 50_000, 500_000)
    pairs: int = 3  # ExportHub / Node pairs per format (CSV, XLSX), at paired_rows
    paired_rows: int = 500_000
    concurrency_formats: tuple[str, ...] = ("csv", "xlsx")
    concurrency_rows: int = 500_000
    fanout_ramp: tuple[int, ...] = (100, 1_000, 5_000)
    fanout_events: int = 10
    fanout_interval: float = 0.5
    fanout_client_processes: int = 2
    fanout_mixed: tuple[int, int, int] = (1_000, 5_000, 200)  # accounts, sockets, exports sending progress
    api_connections: int = 100
    api_duration: float = 10.0
    api_pause: float = 1.0
    api_open_loop_workers: tuple[int, ...] = (1, 2)
    api_open_loop_rate: float = 300.0
    api_open_loop_seconds: float = 30.0
    api_open_loop_accounts: int = 50
    api_tool: str = dataclasses.field(default_factory=default_tool)


# Each benchmark once, small (well under a minute): proves they run and write their results; no timing.
SMOKE = Plan(
    only=("exports", "fanout", "api"),
    formats=("csv", "xlsx"),
    sizes=(2_000,),
    pairs=1,
    paired_rows=2_000,
    fanout_ramp=(20,),
    fanout_mixed=(2, 4, 1),
    fanout_events=3,
    fanout_interval=0.2,
    api_connections=20,
    api_duration=2.0,
    api_pause=0.0,
    api_open_loop_workers=(2,),  # also starts `serve --workers 2`
    api_open_loop_rate=20.0,
    api_open_loop_seconds=2.0,
    api_open_loop_accounts=2,
)


async def run_suite(settings: Settings, pool: asyncpg.Pool, plan: Plan, out: Path) -> tuple[Path, Path]:
    """Run the planned benchmarks against a seeded database; write results.{md,json} and chart.png."""
    started = time.time()
    meta: dict = {"loadavg_start": loadavg(), "plan": dataclasses.asdict(plan)}
    log_dir = out / "logs"
    sections: list[Section] = []

    async def section(key: str, title: str, run: Awaitable[Section]) -> None:
        """Run one benchmark; a failure is reported in its section and the others still run."""
        try:
            sections.append(await run)
        except Exception as exc:
            traceback.print_exc()
            sections.append(Section(key, f"{title}: FAILED", [], [], [f"{type(exc).__name__}: {exc}"[:2000]]))

    load_samples: list[float] = []
    sampler = asyncio.create_task(sample_loadavg(load_samples))
    if "exports" in plan.only:
        measured: dict[tuple[str, int], dict] = {}
        paired_formats = [f for f in plan.formats if f in NODE_RATIO_TARGET]
        if plan.pairs > 0 and paired_formats:
            try:
                paired = await run_paired(settings, pool, paired_formats, plan.paired_rows, plan.pairs, log_dir, out)
                sections.extend(paired.sections)
                measured = paired.medians
            except Exception as exc:
                traceback.print_exc()
                failure = f"{type(exc).__name__}: {exc}"[:2000]
                sections.append(Section("node_paired", "Against the Node reference: FAILED", [], [], [failure]))
        await section(
            "exports",
            "Exports",
            run_exports(settings, pool, list(plan.formats), list(plan.sizes), log_dir, measured),
        )
    if "concurrency" in plan.only:
        await section(
            "concurrency",
            "Concurrency",
            run_concurrency(settings, pool, list(plan.concurrency_formats), plan.concurrency_rows, log_dir),
        )
    if "fanout" in plan.only:
        await section(
            "fanout",
            "WebSocket fan-out",
            run_fanout(
                settings,
                list(plan.fanout_ramp),
                plan.fanout_events,
                plan.fanout_interval,
                plan.fanout_client_processes,
                log_dir,
                mixed_size=plan.fanout_mixed,
            ),
        )
    if "api" in plan.only:
        await section(
            "api",
            "API under load",
            run_api(
                settings,
                pool,
                plan.api_connections,
                plan.api_duration,
                plan.api_tool,
                log_dir,
                plan.api_pause,
                open_loop_workers=plan.api_open_loop_workers,
                open_loop_rate=plan.api_open_loop_rate,
                open_loop_seconds=plan.api_open_loop_seconds,
                open_loop_accounts=plan.api_open_loop_accounts,
            ),
        )
    sampler.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sampler
    load_samples.append(loadavg())
    meta.update(run_meta(started), loadavg_end=loadavg())
    meta["loadavg_during"] = {
        "min": min(load_samples),
        "mean": round(statistics.fmean(load_samples), 2),
        "max": max(load_samples),
        "samples": len(load_samples),
        "every_seconds": LOAD_SAMPLE_SECONDS,
        "cpus": os.cpu_count(),
    }
    sections.insert(0, targets_section(sections, settings.exports.pdf_max_rows, meta["loadavg_during"]))
    exports = next((s for s in sections if s.key == "exports"), None)
    node = next((s for s in sections if s.key == "node_paired"), None)
    if exports is not None and exports.rows:
        chart = draw_chart(exports.rows, node.rows if node else [], out / "chart.png")
        meta["chart"] = str(chart) if chart else "not drawn: matplotlib is not installed (pip install -e '.[bench]')"
    return write_results(out, "results", sections, meta)


LOAD_SAMPLE_SECONDS = 5.0


async def sample_loadavg(samples: list[float]) -> None:
    """Append the 1-minute load average every LOAD_SAMPLE_SECONDS until cancelled."""
    while True:
        samples.append(loadavg())
        await asyncio.sleep(LOAD_SAMPLE_SECONDS)


def draw_chart(rows: list[dict], node_rows: list[dict], path: Path) -> Path | None:
    """Time and worker peak memory against exported rows, one line per format; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, (ax_time, ax_mem) = plt.subplots(1, 2, figsize=(12, 4.8))
    colors = {}
    for fmt in dict.fromkeys(r["format"] for r in rows):
        mine = sorted((r for r in rows if r["format"] == fmt), key=lambda r: r["rows"])
        xs = [r["rows"] for r in mine]
        (line,) = ax_time.plot(xs, [r["seconds"] for r in mine], marker="o", label=fmt)
        ax_mem.plot(xs, [r["worker_peak_mib"] for r in mine], marker="o", label=fmt, color=line.get_color())
        colors[fmt] = line.get_color()
    for node in node_rows:
        if node["node_seconds"] is None:
            continue
        fmt = node["format"]
        style = {"marker": "x", "s": 80, "color": colors.get(fmt, "black"), "label": f"Node {fmt} (same SQL)"}
        ax_time.scatter([node["node_rows"]], [node["node_seconds"]], **style)
        ax_mem.scatter([node["node_rows"]], [node["node_peak_mib"]], **style)
    for ax, label in ((ax_time, "submit → completed (s)"), (ax_mem, "worker peak RSS, VmHWM (MiB)")):
        ax.set_xscale("log")
        ax.set_xlabel("rows exported (payroll, 16 columns)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    ax_time.set_title("Export time")
    ax_mem.set_title("Worker peak memory")
    fig.suptitle(f"ExportHub exports, {os.cpu_count()} CPUs, load average {loadavg()}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


async def main(args: argparse.Namespace) -> None:
    out = Path(args.out)
    plan = SMOKE if args.smoke else Plan()
    if args.only:
        plan = dataclasses.replace(plan, only=tuple(args.only.split(",")))
    if args.formats:
        plan = dataclasses.replace(plan, formats=tuple(args.formats.split(",")))
    if args.sizes:
        plan = dataclasses.replace(plan, sizes=tuple(int(n) for n in args.sizes.split(",")))
    if args.pairs is not None:
        plan = dataclasses.replace(plan, pairs=args.pairs)
    unknown = set(plan.only) - set(BENCHMARKS)
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {sorted(unknown)}; choose from {', '.join(BENCHMARKS)}")
    with embedded.servers(load_settings(os.environ)) as server:
        url = args.database or await prepare_bench_database(server, args.bench_database)
        settings = bench_settings(server, url, out)
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        try:
            if args.database:
                await register_bench_key(pool)
            json_path, md_path = await run_suite(settings, pool, plan, out)
        finally:
            await pool.close()
    print(md_path.read_text())
    print(f"results: {md_path}, {json_path}" + (f", {out / 'chart.png'}" if (out / "chart.png").exists() else ""))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated, of " + ", ".join(BENCHMARKS) + " (default: all)")
    parser.add_argument("--out", default=str(RESULTS_DIR))
    parser.add_argument(
        "--bench-database",
        default=BENCH_DB,
        help=f"the bench database's name (default {BENCH_DB}; created and seeded on first use): "
        "a run deletes its export jobs, so two runs at once need one each",
    )
    parser.add_argument("--formats", help="comma-separated export formats (default csv,xlsx,pdf)")
    parser.add_argument("--sizes", help="comma-separated export sizes in rows (default 5000,50000,500000)")
    parser.add_argument("--pairs", type=int, help="ExportHub / Node pairs per format at 500,000 rows (default 3)")
    parser.add_argument("--smoke", action="store_true", help="each benchmark once, tiny: checks that they run")
    parser.add_argument(
        "--database",
        help="a migrated database with the demo accounts and data, used as it is (only a bench key is added)"
        " instead of the bench database",
    )
    asyncio.run(main(parser.parse_args()))
