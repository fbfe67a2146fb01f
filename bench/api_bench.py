"""API under load: submit and status at 100 concurrent connections against one `exporthub serve`.

Three runs, each `--duration` seconds with `--connections` keep-alive connections (acme's API key):

- submit, cap raised: POST /api/v1/exports (CSV, 5,000 payroll rows) with EXPORTHUB_MAX_ACTIVE_EXPORTS
  raised (and, as in every benchmark, EXPORTHUB_START_RATE: bench_settings), so every submit is
  accepted (202: a transaction under the account's row lock, the start-rate script in Redis, an
  insert, an enqueue). No worker reads the bench's queue (a queue name of its own), and the queued jobs and
  the stream are deleted afterwards, so the queue never runs away.
- submit, default cap: the same POST with the default cap of 5 active exports: after 5 accepted
  submits the rest are refused with 429, so this measures mostly the refusal path.
- status: GET /api/v1/exports/{id} of one queued export.

Status and the raised-cap submit also run paced: each connection pauses a random 0..2 s between
requests (100 clients polling about once a second), which shows latency below saturation; the
closed-loop runs show throughput.

Then the open loop (`run_open_loop`): 300 submits a second for 30 s over 50 accounts, on a fixed
schedule whatever the answers (latency counted from each request's due time), against `exporthub
serve --workers N` for N = 1 and 2, with the default cap of 5 and a stand-in worker in the bench
that ends each export 1 s after its submit (so answers are 202 or 429) and checks the cap at every
look.

The load generator is wrk (Debian package `wrk`; bench/wrk/report.lua reports percentiles and the
count per status), else a small asyncio generator in this process (bench/http_load.py), which
saturates long before wrk does and is only good for checking that the API answers. The web server
is a single process (`exporthub serve --workers 1`, access log on) for these runs.

    python bench/api_bench.py [--duration 10] [--connections 100] [--tool wrk|python]
        [--open-loop-workers 1,2] [--open-loop-rate 300] [--open-loop-seconds 30] [--open-loop-only]
        [--bench-database exporthub_bench]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import http_load
from bench.common import (
    ACME_KEY,
    BENCH_DB,
    RESULTS_DIR,
    Section,
    bench_accounts,
    bench_settings,
    loadavg,
    prepare_bench_database,
    proc_cpu_seconds,
    run_meta,
    tree_cpu_seconds,
    verdict,
    write_results,
)
from tests.harness import web_server, with_new_port

from exporthub import embedded
from exporthub.settings import Settings, load_settings

SUBMIT_P99_TARGET_MS = 50.0
WRK_SCRIPT = Path(__file__).parent / "wrk" / "report.lua"
PACED_PAUSE = 1.0  # seconds between one paced client's requests, on average
OPEN_LOOP_RATE, OPEN_LOOP_ACCOUNTS, OPEN_LOOP_SECONDS = 300, 50, 30.0
MAX_ACTIVE = 5  # EXPORTHUB_MAX_ACTIVE_EXPORTS's default, which the open loop runs with
FINISH_AFTER = 1.0  # seconds: the open loop's stand-in worker ends each export this long after its submit
SUBMIT_BODY = {"format": "csv", "resource": "payroll", "filters": {"dateTo": "2025-10-31"}}


def default_tool() -> str:
    return "wrk" if shutil.which("wrk") else "python"


async def run_load(
    tool: str, url: str, method: str, body: dict | None, connections: int, duration: float, pause: float = 0.0
) -> dict[str, Any]:
    """One load run; `pause` > 0 paces each connection (a random 0..2x pause between its requests).

    Paced runs always use the asyncio generator: wrk sends every connection's first request at once,
    and that burst of 100 would dominate the tail of a paced run; 100 req/s is well within its reach.
    """
    raw_body = json.dumps(body) if body is not None else None
    if tool == "python" or pause:
        return await http_load.load(
            url, method, {"Authorization": f"Bearer {ACME_KEY}"}, raw_body.encode() if raw_body else None,
            connections, duration, pause,
        )  # fmt: skip
    env = {**os.environ, "BENCH_METHOD": method, "BENCH_AUTH": f"Bearer {ACME_KEY}"}
    if raw_body is not None:
        env["BENCH_BODY"] = raw_body
    threads = min(os.cpu_count() or 1, connections)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "10s",
               "-s", str(WRK_SCRIPT), url]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(*command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    for line in text.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line.removeprefix("BENCH_JSON "))
    raise RuntimeError(f"wrk printed no result:\n{text}")


@dataclasses.dataclass
class Run:
    endpoint: str
    load: str  # "closed loop" or "paced ..."
    target_ms: float | None


async def measure(
    run: Run, tool: str, web_pid: int, url: str, method: str, body: dict | None, connections: int, duration: float,
    pause: float,
) -> dict[str, Any]:  # fmt: skip
    load, cpu = loadavg(), proc_cpu_seconds(web_pid)
    result = await run_load(tool, url, method, body, connections, duration, pause)
    web_cpu = proc_cpu_seconds(web_pid) - cpu
    seconds = result["duration_us"] / 1e6
    lat = result["latency_us"]
    p99_ms = lat["p99"] / 1000
    row = {
        "endpoint": run.endpoint,
        "load": run.load,
        "tool": "python" if pause else tool,
        "connections": connections,
        "requests": result["requests"],
        "rps": round(result["requests"] / seconds, 1) if seconds else 0.0,
        "p50_ms": round(lat["p50"] / 1000, 1),
        "p90_ms": round(lat["p90"] / 1000, 1),
        "p99_ms": round(p99_ms, 1),
        "max_ms": round(lat["max"] / 1000, 1),
        "statuses": ", ".join(f"{k}: {v:,}" for k, v in sorted(result["statuses"].items())),
        "socket_errors": result["socket_errors"],
        "web_cpu_s": round(web_cpu, 1),
        "web_cpu_ms_per_request": round(web_cpu * 1000 / result["requests"], 2) if result["requests"] else None,
        "target": f"p99 < {run.target_ms:.0f} ms" if run.target_ms is not None else None,
        "verdict": verdict(None if run.target_ms is None else p99_ms < run.target_ms),
        "loadavg": max(load, loadavg()),
    }
    print(f"api {run.endpoint} {run.load}: {row['rps']} req/s, p99 {row['p99_ms']} ms", file=sys.stderr)
    return row


async def _clean(pool: asyncpg.Pool, redis: Redis, queue_name: str) -> None:
    """Drop the submitted jobs and their messages. VACUUM too: the next run would otherwise meet
    thousands of dead rows in export_jobs' indexes (and autovacuum working on them) in every
    submit's cap check, an artefact of the bench deleting a closed loop's 5,000 jobs at once."""
    await pool.execute("DELETE FROM export_jobs")
    await pool.execute("VACUUM (ANALYZE) export_jobs")
    await redis.delete(queue_name)


async def run_api(
    settings: Settings,
    pool: asyncpg.Pool,
    connections: int,
    duration: float,
    tool: str,
    log_dir: Path,
    pause: float = PACED_PAUSE,
    *,
    closed_loop: bool = True,
    open_loop_workers: tuple[int, ...] = (1, 2),
    open_loop_rate: float = OPEN_LOOP_RATE,
    open_loop_seconds: float = OPEN_LOOP_SECONDS,
    open_loop_accounts: int = OPEN_LOOP_ACCOUNTS,
) -> Section:
    rows: list[dict[str, Any]] = []
    redis = Redis.from_url(settings.redis.url)
    try:
        if closed_loop:
            rows.extend(await _closed_loop(settings, pool, redis, connections, duration, tool, log_dir, pause))
        if open_loop_workers:
            rows.extend(
                await run_open_loop(
                    settings, pool, log_dir, open_loop_workers, open_loop_rate, open_loop_accounts, open_loop_seconds
                )
            )
    finally:
        await redis.aclose()
    notes = _notes(tool, connections, duration, pause)
    if open_loop_workers:
        notes.append(
            f"Open loop: http_load.open_loop sends {open_loop_rate:g} POSTs a second on a fixed schedule for "
            f"{open_loop_seconds:g} s, the accounts' keys in turn ({open_loop_accounts} accounts `bench-submit-*`), "
            "on as many keep-alive connections as it needs; latency runs from each request's due time. The cap "
            f"is the default {MAX_ACTIVE}; a stand-in worker in the bench ends each export {FINISH_AFTER:g} s "
            "after its submit and every 0.1 s records the most active exports any account has "
            "(`max active seen`); the cap is exact when that never passes 5 and every 202 made one job (a request "
            "the generator gave up on may have made one too). "
            "`late send p99` is how late the generator itself sent (it shares the CPUs)."
        )
    return Section(
        "api",
        f"API under load ({connections} concurrent connections, one web process; open loop over N web processes)",
        rows,
        [
            ("endpoint", "endpoint"),
            ("load", "load"),
            ("tool", "generator"),
            ("web_workers", "web procs"),
            ("requests", "requests"),
            ("rps", "req/s"),
            ("p50_ms", "p50 (ms)"),
            ("p90_ms", "p90 (ms)"),
            ("p99_ms", "p99 (ms)"),
            ("max_ms", "max (ms)"),
            ("statuses", "statuses"),
            ("socket_errors", "socket errors"),
            ("late_send_p99_ms", "late send p99 (ms)"),
            ("max_active_seen", "max active seen"),
            ("web_cpu_ms_per_request", "web CPU per request (ms)"),
            ("target", "target"),
            ("verdict", "verdict"),
            ("loadavg", "load (1 min)"),
        ],
        notes,
    )


async def _closed_loop(
    settings: Settings,
    pool: asyncpg.Pool,
    redis: Redis,
    connections: int,
    duration: float,
    tool: str,
    log_dir: Path,
    pause: float,
) -> list[dict[str, Any]]:
    # A queue of its own that no worker reads: accepted submits stay queued until we delete them.
    api_settings = with_new_port(settings).replace(redis={"queue_name": settings.redis.queue_name + "-api"})
    submit = f"{api_settings.web.public_url}/api/v1/exports"
    paced = f"paced, ~{connections / pause:.0f} req/s offered" if pause else ""
    closed = "closed loop"
    rows = []
    try:
        await _clean(pool, redis, api_settings.redis.queue_name)
        with web_server(api_settings, log_dir, "bench-web-api", EXPORTHUB_MAX_ACTIVE_EXPORTS="100000000") as web:
            async with httpx.AsyncClient(headers={"Authorization": f"Bearer {ACME_KEY}"}) as client:
                response = await client.post(submit, json=SUBMIT_BODY)
                response.raise_for_status()
                status = f"{submit}/{response.json()['exportId']}"
            pid = web.popen.pid
            get_run, post_run = "GET /api/v1/exports/{id}", "POST /api/v1/exports (cap raised: 202)"
            rows.append(
                await measure(Run(get_run, closed, None), tool, pid, status, "GET", None, connections, duration, 0)
            )
            if pause:
                rows.append(
                    await measure(
                        Run(get_run, paced, None), tool, pid, status, "GET", None, connections, duration, pause
                    )
                )
            rows.append(
                await measure(
                    Run(post_run, closed, SUBMIT_P99_TARGET_MS),
                    tool,
                    pid,
                    submit,
                    "POST",
                    SUBMIT_BODY,
                    connections,
                    duration,
                    0,
                )
            )
            rows[-1]["jobs_created"] = await pool.fetchval("SELECT count(*) FROM export_jobs")
            await _clean(pool, redis, api_settings.redis.queue_name)
            if pause:
                rows.append(
                    await measure(
                        Run(post_run, paced, SUBMIT_P99_TARGET_MS),
                        tool,
                        pid,
                        submit,
                        "POST",
                        SUBMIT_BODY,
                        connections,
                        duration,
                        pause,
                    )
                )
        await _clean(pool, redis, api_settings.redis.queue_name)
        api_settings = with_new_port(api_settings)
        submit = f"{api_settings.web.public_url}/api/v1/exports"
        with web_server(api_settings, log_dir, "bench-web-api-capped") as web:
            rows.append(
                await measure(
                    Run("POST /api/v1/exports (default cap 5: 429)", closed, SUBMIT_P99_TARGET_MS),
                    tool,
                    web.popen.pid,
                    submit,
                    "POST",
                    SUBMIT_BODY,
                    connections,
                    duration,
                    0,
                )
            )
    finally:
        await _clean(pool, redis, api_settings.redis.queue_name)
    return rows


def _notes(tool: str, connections: int, duration: float, pause: float) -> list[str]:
    notes = [
        f"{tool} with {connections} keep-alive connections for {duration:g} s per run, on the same 2-CPU "
        "machine as the server (the load generator competes with it for CPU). Web server: "
        "`exporthub serve --workers 1` (access log on); web CPU is its CPU time during the run.",
        "Closed loop: each connection sends its next request as soon as the answer arrives, so latency ≈ "
        "connections ÷ throughput (Little's law): p99 < 50 ms at 100 such clients needs well over 2,000 req/s. "
        + (f"Paced: each connection pauses a random 0-{2 * pause:g} s between requests (~{connections / pause:.0f} "
           "req/s offered: 100 clients polling about once a second), driven by the asyncio generator, which "
           "starts each client after a random pause too (wrk would send the first 100 requests as one burst)."
           if pause else ""),
        "Every submit's insert locks the account's row of account_active_exports (the cap check, migration "
        "0014) until it commits: submits of one account are serialised, and all closed-loop load here is one "
        "account.",
    ]  # fmt: skip
    if tool == "python":
        notes.append("wrk was not found: the asyncio load generator in the bench process itself was used.")
    return notes


async def _finish_exports(pool: asyncpg.Pool, peaks: list[int], stop: asyncio.Event) -> None:
    """A stand-in for the workers: every 0.1 s, note the most active exports any account has (the cap
    must hold at every look), then end the exports submitted more than FINISH_AFTER s ago, as a worker
    ends them (status, completed_at), which frees their slots."""
    while not stop.is_set():
        peaks.append(
            await pool.fetchval(
                "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM export_jobs"
                " WHERE status IN ('queued', 'processing') GROUP BY account_id) AS a"
            )
        )
        await pool.execute(
            "UPDATE export_jobs SET status = 'completed', progress = 100, completed_at = now()"
            " WHERE status = 'queued' AND created_at < now() - make_interval(secs => $1)",
            FINISH_AFTER,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)


async def run_open_loop(
    settings: Settings,
    pool: asyncpg.Pool,
    log_dir: Path,
    workers: tuple[int, ...] = (1, 2),
    rate: float = OPEN_LOOP_RATE,
    accounts: int = OPEN_LOOP_ACCOUNTS,
    seconds: float = OPEN_LOOP_SECONDS,
) -> list[dict[str, Any]]:
    """POST /api/v1/exports at a fixed `rate` over `accounts` accounts (one API key each, in turn) for
    `seconds`, against `exporthub serve --workers N` for each N, with the default cap of 5 active
    exports and a stand-in worker ending every export FINISH_AFTER s after its submit: answers are
    202 (a slot was free) or 429 (the account had 5 active), and never more than 5 may be active."""
    api_settings = with_new_port(settings).replace(redis={"queue_name": settings.redis.queue_name + "-open"})
    conn = await pool.acquire()
    try:
        keys = [key for _, key in await bench_accounts(conn, accounts, "bench-submit")]
    finally:
        await pool.release(conn)
    redis = Redis.from_url(settings.redis.url)
    rows = []
    try:
        for n in workers:
            api_settings = with_new_port(api_settings)
            url = f"{api_settings.web.public_url}/api/v1/exports"
            body = json.dumps(SUBMIT_BODY).encode()
            requests = [http_load.http_request(url, "POST", {"Authorization": f"Bearer {k}"}, body) for k in keys]
            await _clean(pool, redis, api_settings.redis.queue_name)
            with web_server(api_settings, log_dir, f"bench-web-open-loop-{n}", EXPORTHUB_WEB_WORKERS=str(n)) as web:
                peaks: list[int] = []
                stop = asyncio.Event()
                finisher = asyncio.create_task(_finish_exports(pool, peaks, stop))
                load, cpu = loadavg(), tree_cpu_seconds(web.popen.pid)
                result = await http_load.open_loop(url, requests, rate, seconds)
                web_cpu = tree_cpu_seconds(web.popen.pid) - cpu
                stop.set()
                await finisher
                peaks.append(
                    await pool.fetchval(
                        "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM export_jobs"
                        " WHERE status IN ('queued', 'processing') GROUP BY account_id) AS a"
                    )
                )
                created = await pool.fetchval("SELECT count(*) FROM export_jobs")
            lat = result["latency_us"]
            statuses = result["statuses"]
            errors = result["socket_errors"] + sum(v for k, v in statuses.items() if k not in ("202", "429"))
            p99_ms = lat["p99"] / 1000
            # Requests the generator gave up on (timeouts) may still have made their job: with errors,
            # more jobs than 202s is expected, fewer never is.
            accepted = statuses.get("202", 0)
            cap_exact = max(peaks) <= MAX_ACTIVE and accepted <= created <= accepted + result["socket_errors"]
            row = {
                "endpoint": "POST /api/v1/exports (cap 5: 202 or 429)",
                "load": f"open loop {rate:g}/s, {accounts} accounts, {seconds:g} s",
                "tool": "python open loop",
                "web_workers": n,
                "connections": result["connections_opened"],
                "requests": result["requests"],
                "rps": round(result["answered"] / (result["duration_us"] / 1e6), 1),
                "p50_ms": round(lat["p50"] / 1000, 1),
                "p90_ms": round(lat["p90"] / 1000, 1),
                "p99_ms": round(p99_ms, 1),
                "max_ms": round(lat["max"] / 1000, 1),
                "statuses": ", ".join(f"{k}: {v:,}" for k, v in sorted(statuses.items())),
                "socket_errors": result["socket_errors"],
                "errors": errors,
                "error_kinds": result["errors"],
                "p99_by_second_ms": result["p99_by_second_ms"],
                "late_send_p99_ms": result["late_sends_ms"]["p99"],
                "max_active_seen": max(peaks),
                "jobs_created": created,
                "cap_exact": cap_exact,
                "web_cpu_s": round(web_cpu, 1),
                "web_cpu_ms_per_request": round(web_cpu * 1000 / result["requests"], 2),
                "target": f"p99 < {SUBMIT_P99_TARGET_MS:.0f} ms, 0 errors, cap exact",
                "verdict": verdict(p99_ms < SUBMIT_P99_TARGET_MS and errors == 0 and cap_exact),
                "loadavg": max(load, loadavg()),
            }
            print(
                f"api open loop, {n} web worker(s): p99 {row['p99_ms']} ms, {row['statuses']}, errors {errors}, "
                f"max active {row['max_active_seen']} {result['errors']} worst seconds "
                f"{sorted(result['p99_by_second_ms'])[-5:]} by second {result['p99_by_second_ms']}",
                file=sys.stderr,
            )
            rows.append(row)
    finally:
        await _clean(pool, redis, api_settings.redis.queue_name)
        await redis.aclose()
    return rows


async def main(args: argparse.Namespace) -> None:
    started = time.time()
    out = Path(args.out)
    with embedded.servers(load_settings(os.environ)) as server:
        url = await prepare_bench_database(server, args.bench_database)
        settings = bench_settings(server, url, out)
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        meta = {"loadavg_start": loadavg()}
        try:
            section = await run_api(
                settings,
                pool,
                args.connections,
                args.duration,
                args.tool,
                out / "logs",
                args.pause,
                closed_loop=not args.open_loop_only,
                open_loop_workers=tuple(int(n) for n in args.open_loop_workers.split(",") if n),
                open_loop_rate=args.open_loop_rate,
                open_loop_seconds=args.open_loop_seconds,
            )
        finally:
            await pool.close()
    meta.update(run_meta(started), loadavg_end=loadavg())
    _, md = write_results(out, "api", [section], meta)
    print(md.read_text())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--tool", choices=["wrk", "python"], default=default_tool())
    parser.add_argument("--pause", type=float, default=PACED_PAUSE, help="paced runs' mean pause (0: none)")
    parser.add_argument("--open-loop-workers", default="1,2", help="web processes per open-loop run ('' : none)")
    parser.add_argument("--open-loop-rate", type=float, default=OPEN_LOOP_RATE)
    parser.add_argument("--open-loop-seconds", type=float, default=OPEN_LOOP_SECONDS)
    parser.add_argument("--open-loop-only", action="store_true", help="skip the closed-loop and paced runs")
    parser.add_argument("--bench-database", default=BENCH_DB)
    parser.add_argument("--out", default=str(RESULTS_DIR))
    asyncio.run(main(parser.parse_args()))
