"""The whole benchmark suite (`make bench`): exports, two concurrent exports, WebSocket fan-out, API load.

    python -m bench.run [--only exports,concurrency,fanout,api] [--out bench/results]
    python -m bench.run --smoke --database URL --out DIR    # tiny, on a seeded database (the smoke test)

Seeds the bench database `exporthub_bench` on first use (500,000 payroll rows for acme), then runs
each benchmark through the real API, queue and worker processes and writes to `--out`:

    results.md    the tables (target column, met / NOT met, ratios to the Node reference)
    results.json  the same numbers, plus the run's metadata (CPUs, load average)
    chart.png     time and worker peak memory against exported rows, per format (matplotlib)
    logs/         every process's log

Servers come from DATABASE_URL / REDIS_URL, else embedded ones. Each benchmark also runs on its
own: bench/export_bench.py, bench/fanout_bench.py, bench/api_bench.py.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
import time
import traceback
from collections.abc import Awaitable
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api_bench import default_tool, run_api
from bench.common import (
    RESULTS_DIR,
    Section,
    bench_settings,
    loadavg,
    prepare_bench_database,
    register_bench_key,
    run_meta,
    write_results,
)
from bench.export_bench import NODE_REFERENCE, run_concurrency, run_exports
from bench.fanout_bench import run_fanout

from exporthub import embedded
from exporthub.settings import Settings, load_settings

BENCHMARKS = ("exports", "concurrency", "fanout", "api")


@dataclasses.dataclass
class Plan:
    only: tuple[str, ...] = BENCHMARKS
    formats: tuple[str, ...] = ("csv", "xlsx", "pdf")
    sizes: tuple[int, ...] = (5_000, 50_000, 500_000)
    concurrency_formats: tuple[str, ...] = ("csv", "xlsx")
    concurrency_rows: int = 500_000
    fanout_ramp: tuple[int, ...] = (100, 1_000, 5_000)
    fanout_events: int = 10
    fanout_interval: float = 0.5
    fanout_client_processes: int = 2
    api_connections: int = 100
    api_duration: float = 10.0
    api_pause: float = 1.0
    api_tool: str = dataclasses.field(default_factory=default_tool)


# Each benchmark once, small (well under a minute): proves they run and write their results; no timing.
SMOKE = Plan(
    only=("exports", "fanout", "api"),
    formats=("csv",),
    sizes=(2_000,),
    fanout_ramp=(20,),
    fanout_events=3,
    fanout_interval=0.2,
    api_connections=20,
    api_duration=2.0,
    api_pause=0.0,
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

    if "exports" in plan.only:
        await section("exports", "Exports", run_exports(settings, pool, list(plan.formats), list(plan.sizes), log_dir))
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
            ),
        )
    if "api" in plan.only:
        await section(
            "api",
            "API under load",
            run_api(settings, pool, plan.api_connections, plan.api_duration, plan.api_tool, log_dir, plan.api_pause),
        )
    meta.update(run_meta(started), loadavg_end=loadavg())
    exports = next((s for s in sections if s.key == "exports"), None)
    if exports is not None and exports.rows:
        chart = draw_chart(exports.rows, out / "chart.png")
        meta["chart"] = str(chart) if chart else "not drawn: matplotlib is not installed (pip install -e '.[bench]')"
    return write_results(out, "results", sections, meta)


def draw_chart(rows: list[dict], path: Path) -> Path | None:
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
    for fmt, (seconds, mb) in NODE_REFERENCE.items():
        style = {"marker": "x", "s": 80, "color": colors.get(fmt, "black"), "label": f"Node {fmt} (employees, 17 cols)"}
        ax_time.scatter([500_000], [seconds], **style)
        ax_mem.scatter([500_000], [mb * 1e6 / 2**20], **style)
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
    unknown = set(plan.only) - set(BENCHMARKS)
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {sorted(unknown)}; choose from {', '.join(BENCHMARKS)}")
    with embedded.servers(load_settings(os.environ)) as server:
        url = args.database or await prepare_bench_database(server)
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
    parser.add_argument("--smoke", action="store_true", help="each benchmark once, tiny: checks that they run")
    parser.add_argument(
        "--database",
        help="a migrated database with the demo accounts and data, used as it is (only a bench key is added)"
        " instead of the bench database",
    )
    asyncio.run(main(parser.parse_args()))
