"""WebSocket fan-out benchmark: one `exporthub serve`, N sockets on one account, events via Redis.

For each kind of socket and each N of the ramp it starts client processes (bench/ws_clients.py)
that open N sockets for the acme account between them, then publishes `--events` progress events
on the account's channel with `publish_event` (namespace settings.redis.queue_name, as the worker does).
Kinds: JSON sockets (`/api/v1/exports/ws`, API key), which forward each event as published, and
console sockets (`/console/ws`, signed in with a session cookie like a browser), which receive the
re-rendered card of a running export; event k sets that export's rows to BASE_ROWS + k, which the
card shows. Every socket records when each event arrived; delay = receipt minus publish time.

Reported per kind and N: sockets connected, sockets that received every event, delay median / p95 /
p99 / max over all (socket, event) pairs, the web process's resident memory with N sockets, and
where the time goes during the publish phase: CPU seconds of the web process and of the client
processes. A client process whose CPU time approaches the phase's wall time is saturated, and then
part of the delay is the client's own queue, not the server's.

Then, unless `--no-mixed`: 5,000 JSON sockets over 1,000 accounts (5 each, `bench-live-*` accounts
with a key each) while 200 of those accounts have an export sending progress (20 events each, one
every 0.2 s: 1,000 events a second in all); delay over every (socket, event) pair (`measure_mixed`).
`--web-workers N` runs `exporthub serve --workers N` (web CPU and memory then sum its processes).

    python bench/fanout_bench.py [--ramp 100,1000,5000] [--sockets json,console] [--events 10]
        [--interval 0.5] [--client-processes 2] [--no-mixed] [--web-workers 1] [--bench-database NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    ACME_KEY,
    BENCH_DB,
    RESULTS_DIR,
    Section,
    bench_accounts,
    bench_settings,
    loadavg,
    percentile,
    prepare_bench_database,
    raise_open_files_limit,
    run_meta,
    tree_cpu_seconds,
    tree_rss_mib,
    verdict,
    write_results,
)
from tests.harness import sign_in, web_server

from exporthub import embedded
from exporthub.accounts import account_by_slug
from exporthub.exports.account_scope import AccountScope
from exporthub.exports.models import ExportFormat, ExportRequest
from exporthub.progress import publish_event
from exporthub.settings import Settings, load_settings

FANOUT_TARGET = 5_000
FANOUT_P95_TARGET_MS = 100.0  # publish to receipt, at FANOUT_TARGET sockets
BASE_ROWS = 1_000_000  # as in ws_clients.py: event k sets the card's rows to BASE_ROWS + k
CLIENT_SCRIPT = Path(__file__).with_name("ws_clients.py")
CONNECT_TIMEOUT = 300.0
DELIVERY_TIMEOUT = 60.0


@dataclasses.dataclass(frozen=True)
class Target:
    """Which socket the clients open: the JSON socket (API key) or the console's (session cookie),
    and for the console the running export whose card the events move."""

    kind: str  # "json" | "console"
    path: str
    client_args: tuple[str, ...]
    export_id: str = "00000000-0000-0000-0000-00000000be4c"


class ClientProcess:
    def __init__(
        self, url: str, target: Target, count: int, events: int, out: Path, extra: tuple[str, ...] = ()
    ) -> None:
        self.out = out
        self.popen = subprocess.Popen(
            [sys.executable, str(CLIENT_SCRIPT), "--url", url, *target.client_args, *extra, "--count", str(count),
             "--events", str(events), "--out", str(out)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip

    async def line(self, timeout: float) -> dict[str, Any]:
        assert self.popen.stdout is not None
        raw = await asyncio.wait_for(asyncio.to_thread(self.popen.stdout.readline), timeout)
        if not raw:
            raise RuntimeError(f"ws client exited with {self.popen.wait()}")
        return json.loads(raw)

    def stop(self) -> dict[str, Any]:
        assert self.popen.stdin is not None
        try:
            self.popen.stdin.write("stop\n")
            self.popen.stdin.close()
        except BrokenPipeError:
            pass
        self.popen.wait(timeout=60)
        return json.loads(self.out.read_text())

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()
        for pipe in (self.popen.stdin, self.popen.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()


async def measure_fanout(
    settings: Settings,
    redis: Redis,
    account_id: uuid.UUID,
    web_pid: int,
    target: Target,
    sockets: int,
    processes: int,
    events: int,
    interval: float,
    work_dir: Path,
) -> dict[str, Any]:
    url = settings.web.public_url.replace("http", "ws", 1) + target.path
    work_dir.mkdir(parents=True, exist_ok=True)
    shares = [sockets // processes + (k < sockets % processes) for k in range(processes)]
    clients = [
        ClientProcess(url, target, n, events, work_dir / f"ws-clients-{target.kind}-{sockets}-{k}.json")
        for k, n in enumerate(shares)
    ]
    sent_at: dict[int, float] = {}
    try:
        started = time.perf_counter()
        ready = await asyncio.gather(*(c.line(CONNECT_TIMEOUT) for c in clients))
        connect_seconds = time.perf_counter() - started
        web_rss = tree_rss_mib(web_pid)
        load_before = loadavg()
        web_cpu = tree_cpu_seconds(web_pid)
        published_at = time.perf_counter()
        for seq in range(events):
            event = {
                "type": "export.progress",
                "exportId": target.export_id,
                "status": "processing",
                "progress": seq,
                "processedRows": BASE_ROWS + seq,  # what the console's card shows
                "totalRows": 2 * BASE_ROWS,
                "benchSeq": seq,
            }
            sent_at[seq] = time.time()
            await publish_event(redis, settings.redis.queue_name, account_id, event)
            if seq < events - 1:
                await asyncio.sleep(interval)
        last_publish = time.perf_counter()
        connected = sum(r["connected"] for r in ready)
        # Only clients with a connected socket will ever report completion.
        pending = [
            asyncio.ensure_future(c.line(DELIVERY_TIMEOUT))
            for c, r in zip(clients, ready, strict=True)
            if r["connected"]
        ]
        if pending:
            await asyncio.wait(pending, timeout=DELIVERY_TIMEOUT)
        for p in pending:
            p.cancel()
        delivered_at = time.perf_counter()
        web_cpu = tree_cpu_seconds(web_pid) - web_cpu
        summaries = [c.stop() for c in clients]
    finally:
        for c in clients:
            c.kill()
    delays = [at - sent_at[seq] for s in summaries for seq, at in s["receipts"]]
    complete = sum(1 for s in summaries for n in s["received"] if n == events)
    errors: dict[str, int] = {}
    for r in [*ready, *summaries]:
        for name, n in r["errors"].items():
            errors[name] = max(errors.get(name, 0), n)
    phase = delivered_at - published_at
    ms = [d * 1000 for d in delays] or [float("nan")]
    delivered = connected == sockets and complete == sockets
    met = delivered and percentile(ms, 95) < FANOUT_P95_TARGET_MS
    return {
        "socket": target.kind,
        "sockets": sockets,
        "client_processes": processes,
        "connected": connected,
        "received_all": complete,
        "events": events,
        "interval_s": interval,
        "delay_p50_ms": round(percentile(ms, 50), 1),
        "delay_p95_ms": round(percentile(ms, 95), 1),
        "delay_p99_ms": round(percentile(ms, 99), 1),
        "delay_max_ms": round(max(ms), 1),
        "connect_seconds": round(connect_seconds, 1),
        "web_rss_mib": round(web_rss, 1),
        "publish_phase_s": round(phase, 2),
        "drain_after_last_publish_s": round(delivered_at - last_publish, 2),
        "web_cpu_s": round(web_cpu, 2),
        "clients_cpu_s": " / ".join(f"{s['cpu_seconds_events']:.2f}" for s in summaries),
        "errors": errors,
        "target": f"{FANOUT_TARGET:,} sockets, every event, p95 < {FANOUT_P95_TARGET_MS:.0f} ms"
        if sockets >= FANOUT_TARGET
        else None,
        "verdict": verdict(met) if sockets >= FANOUT_TARGET else ("ok" if delivered else "lost sockets/events"),
        "loadavg": max(load_before, loadavg()),
    }


MIXED_ACCOUNTS, MIXED_SOCKETS, MIXED_RUNNING = 1_000, 5_000, 200
MIXED_P95_TARGET_MS = 50.0
MIXED_EVENTS_EACH, MIXED_INTERVAL = 20, 0.2  # a running export's 1 % steps, as a 20 s export sends them


async def measure_mixed(
    settings: Settings,
    redis: Redis,
    accounts: list[tuple[uuid.UUID, str]],
    web_pid: int,
    processes: int,
    work_dir: Path,
    sockets: int = MIXED_SOCKETS,
    running: int = MIXED_RUNNING,
    events_each: int = MIXED_EVENTS_EACH,
    interval: float = MIXED_INTERVAL,
) -> dict[str, Any]:
    """`sockets` JSON sockets spread evenly over the accounts (5 each for 1,000), while `running`
    exports of as many accounts (every fifth) send their progress: `events_each` events each, one
    every `interval` s, the exports' starts spread over one interval, so that `running / interval`
    events a second reach the web process from Redis, as the workers publish them (publish_event).
    Delay = receipt minus publish time, over every (socket, event) pair; the other accounts' sockets
    receive nothing and must stay connected."""
    url = settings.web.public_url.replace("http", "ws", 1) + "/api/v1/exports/ws"
    work_dir.mkdir(parents=True, exist_ok=True)
    step = max(1, len(accounts) // running)
    busy = {account_id: r for r, (account_id, _) in enumerate(accounts[::step][:running])}
    shares = [sockets // processes + (k < sockets % processes) for k in range(processes)]
    clients = []
    offset = wanted = 0  # wanted: deliveries, (socket, event) pairs
    for k, n in enumerate(shares):
        # Each client process goes round the accounts from where the previous one stopped: 5 sockets each.
        rotated = accounts[offset % len(accounts) :] + accounts[: offset % len(accounts)]
        keys = work_dir / f"ws-mixed-keys-{k}.txt"
        keys.write_text("".join(f"{key} {events_each if a in busy else 0}\n" for a, key in rotated))
        wanted += sum(events_each for i in range(n) if rotated[i % len(rotated)][0] in busy)
        out = work_dir / f"ws-clients-mixed-{sockets}-{k}.json"
        clients.append(ClientProcess(url, Target("json", "", ()), n, 0, out, ("--keys-file", str(keys))))
        offset += n
    sent_at: dict[int, float] = {}
    try:
        started = time.perf_counter()
        ready = await asyncio.gather(*(c.line(CONNECT_TIMEOUT) for c in clients))
        connect_seconds = time.perf_counter() - started
        web_rss = tree_rss_mib(web_pid)
        load_before = loadavg()
        web_cpu = tree_cpu_seconds(web_pid)
        schedule = sorted(
            (r * interval / running + j * interval, r, j, account_id)
            for account_id, r in busy.items()
            for j in range(events_each)
        )
        loop = asyncio.get_running_loop()
        published_at = loop.time()
        for due, r, j, account_id in schedule:
            if (wait := published_at + due - loop.time()) > 0:
                await asyncio.sleep(wait)
            seq = r * events_each + j
            event = {
                "type": "export.progress",
                "exportId": str(uuid.UUID(int=r + 1)),
                "status": "processing",
                "progress": 5 * (j + 1),
                "processedRows": j,
                "totalRows": events_each,
                "benchSeq": seq,
            }
            sent_at[seq] = time.time()
            await publish_event(redis, settings.redis.queue_name, account_id, event)
        publish_seconds = loop.time() - published_at
        connected = sum(r["connected"] for r in ready)
        pending = [asyncio.ensure_future(c.line(DELIVERY_TIMEOUT)) for c, r in zip(clients, ready, strict=True)]
        await asyncio.wait(pending, timeout=DELIVERY_TIMEOUT)
        for p in pending:
            p.cancel()
        web_cpu = tree_cpu_seconds(web_pid) - web_cpu
        summaries = [c.stop() for c in clients]
    finally:
        for c in clients:
            c.kill()
    delays = [at - sent_at[seq] for s in summaries for seq, at in s["receipts"]]
    deliveries = len(delays)
    errors: dict[str, int] = {}
    for r in [*ready, *summaries]:
        for name, n in r["errors"].items():
            errors[name] = max(errors.get(name, 0), n)
    ms = [d * 1000 for d in delays] or [float("nan")]
    met = connected == sockets and deliveries == wanted and percentile(ms, 95) < MIXED_P95_TARGET_MS
    return {
        "socket": "json, many accounts",
        "sockets": sockets,
        "accounts": len(accounts),
        "running_exports": running,
        "events_per_second": round(len(schedule) / publish_seconds, 1) if publish_seconds else None,
        "client_processes": processes,
        "connected": connected,
        "deliveries": f"{deliveries:,} of {wanted:,}",
        "delay_p50_ms": round(percentile(ms, 50), 1),
        "delay_p95_ms": round(percentile(ms, 95), 1),
        "delay_p99_ms": round(percentile(ms, 99), 1),
        "delay_max_ms": round(max(ms), 1),
        "connect_seconds": round(connect_seconds, 1),
        "web_rss_mib": round(web_rss, 1),
        "publish_phase_s": round(publish_seconds, 2),
        "web_cpu_s": round(web_cpu, 2),
        "clients_cpu_s": " / ".join(f"{s['cpu_seconds_events']:.2f}" for s in summaries),
        "errors": errors,
        "target": f"p95 < {MIXED_P95_TARGET_MS:.0f} ms, every event to every socket of its account",
        "verdict": verdict(met),
        "loadavg": max(load_before, loadavg()),
    }


async def console_target(settings: Settings, conn: asyncpg.Connection, account_id: uuid.UUID) -> Target:
    """Sign in to the console like a browser (form, CSRF token) and start a running export for its
    card: the consoles show it from their first frame, and the bench's events move its bar."""
    async with httpx.AsyncClient(base_url=settings.web.public_url, timeout=30) as client:
        signed_in = await sign_in(client, ACME_KEY)
        assert signed_in.status_code == 303, signed_in.text
        cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    request = ExportRequest(resource="payroll", format=ExportFormat.CSV, columns=("payrollId", "grossPay"))
    job = await AccountScope(conn, account_id).jobs.insert(request, idempotency_key=None)
    await conn.execute(
        "UPDATE export_jobs SET status = 'processing', started_at = now(), total_rows = $2 WHERE id = $1",
        job.id,
        2 * BASE_ROWS,
    )
    return Target(
        "console", "/console/ws", ("--console", "--cookie", cookie, "--origin", settings.web.public_url), str(job.id)
    )


async def run_fanout(
    settings: Settings,
    ramp: list[int],
    events: int,
    interval: float,
    client_processes: int,
    log_dir: Path,
    kinds: tuple[str, ...] = ("json", "console"),
    *,
    mixed: bool = True,
    mixed_size: tuple[int, int, int] = (MIXED_ACCOUNTS, MIXED_SOCKETS, MIXED_RUNNING),
    web_workers: int = 1,
) -> Section:
    """`mixed_size`: accounts, sockets and running exports of the many-accounts scenario."""
    limit = raise_open_files_limit()
    rows: list[dict[str, Any]] = []
    redis = Redis.from_url(settings.redis.url)
    conn = await asyncpg.connect(settings.db.url)
    try:
        acme = await account_by_slug(conn, "acme")
        assert acme is not None, "the acme demo account is missing"
        # Thousands of sockets of one account: lift the per-account cap (50 by default).
        accounts, mixed_sockets, running = mixed_size
        bench_live = await bench_accounts(conn, accounts, "bench-live") if mixed else []
        with web_server(
            settings,
            log_dir,
            "bench-web-fanout",
            EXPORTHUB_WS_MAX_SOCKETS_PER_ACCOUNT="100000",
            EXPORTHUB_WEB_WORKERS=str(web_workers),
        ) as web:
            for kind in kinds:
                if kind == "console":
                    target = await console_target(settings, conn, acme.id)
                else:
                    target = Target("json", "/api/v1/exports/ws", ("--key", ACME_KEY))
                for n in ramp:
                    processes = 1 if n <= 100 else client_processes
                    row = await measure_fanout(
                        settings, redis, acme.id, web.popen.pid, target, n, processes, events, interval, log_dir
                    )
                    print(
                        f"fan-out {kind} {n}: {row['connected']} connected, {row['received_all']} got all, "
                        f"p95 {row['delay_p95_ms']} ms",
                        file=sys.stderr,
                    )
                    rows.append(row)
                    await asyncio.sleep(2)  # let the server drop the aborted sockets
                if kind == "console":
                    await conn.execute("DELETE FROM export_jobs WHERE id = $1", uuid.UUID(target.export_id))
            if mixed:
                row = await measure_mixed(
                    settings, redis, bench_live, web.popen.pid, client_processes, log_dir, mixed_sockets, running
                )
                print(
                    f"fan-out mixed: {row['connected']} connected, {row['deliveries']} delivered, "
                    f"p95 {row['delay_p95_ms']} ms",
                    file=sys.stderr,
                )
                rows.append(row)
            for row in rows:
                row["web_workers"] = web_workers
    finally:
        await conn.close()
        await redis.aclose()
    return Section(
        "fanout",
        f"WebSocket fan-out: {web_workers} web process(es), N sockets on one account (JSON sockets, then console "
        f"sockets); then {MIXED_SOCKETS:,} JSON sockets over {MIXED_ACCOUNTS:,} accounts while {MIXED_RUNNING} "
        "exports send progress",
        rows,
        [
            ("socket", "socket"),
            ("web_workers", "web procs"),
            ("sockets", "sockets"),
            ("client_processes", "client procs"),
            ("connected", "connected"),
            ("received_all", "received every event"),
            ("deliveries", "deliveries"),
            ("events_per_second", "events/s"),
            ("delay_p50_ms", "delay p50 (ms)"),
            ("delay_p95_ms", "p95 (ms)"),
            ("delay_p99_ms", "p99 (ms)"),
            ("delay_max_ms", "max (ms)"),
            ("web_rss_mib", "web RSS (MiB)"),
            ("publish_phase_s", "publish phase (s)"),
            ("web_cpu_s", "web CPU (s)"),
            ("clients_cpu_s", "client CPU (s)"),
            ("target", "target"),
            ("verdict", "verdict"),
            ("loadavg", "load (1 min)"),
        ],
        [
            f"{events} events per run, one every {interval} s, published with publish_event on the account's "
            "channel; delay = receipt time in the client minus the publish time (time.time(), same machine). "
            "JSON sockets (`/api/v1/exports/ws`, API key) receive the event as published; console sockets "
            "(`/console/ws`, signed in like a browser) receive the running export's card, re-rendered.",
            "Clients: bench/ws_clients.py, RFC 6455 on an asyncio Protocol (a few µs per message; the "
            "`websockets` library's client cost ~40 µs per message, as much as the server).",
            "The publish phase runs from the first publish until every socket has every event (or a "
            f"{DELIVERY_TIMEOUT:.0f} s timeout); web and client CPU seconds over that phase show who was busy. "
            "A client process's CPU seconds near the phase's length means the client, not the server, "
            "was saturated. All processes share 2 CPUs with Redis and PostgreSQL.",
            f"Open-file limit of the bench and its children: {limit:,}.",
            f"Many accounts: {MIXED_SOCKETS:,} JSON sockets, {MIXED_SOCKETS // MIXED_ACCOUNTS} on each of "
            f"{MIXED_ACCOUNTS:,} accounts (`bench-live-*`, a key each); {MIXED_RUNNING} of those accounts each have "
            f"an export sending progress: {MIXED_EVENTS_EACH} events, one every {MIXED_INTERVAL:g} s (a 20 s "
            "export's 1 % steps), published with publish_event as the worker does, the exports' starts spread "
            "over one interval. The events stand in for the exports: no worker runs, so the CPU the exports "
            "themselves would take from the machine is not part of this figure. Deliveries: (socket, event) "
            "pairs received of those due; every socket of an account gets its account's events only.",
        ],
    )


async def main(args: argparse.Namespace) -> None:
    started = time.time()
    out = Path(args.out)
    with embedded.servers(load_settings(os.environ)) as server:
        url = await prepare_bench_database(server, args.bench_database)
        settings = bench_settings(server, url, out)
        meta = {"loadavg_start": loadavg()}
        section = await run_fanout(
            settings,
            [int(n) for n in args.ramp.split(",")],
            args.events,
            args.interval,
            args.client_processes,
            out / "logs",
            tuple(k for k in args.sockets.split(",") if k),
            mixed=not args.no_mixed,
            web_workers=args.web_workers,
        )
    meta.update(run_meta(started), loadavg_end=loadavg())
    _, md = write_results(out, "fanout", [section], meta)
    print(md.read_text())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ramp", default="100,1000,5000")
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--sockets", default="json,console", help="which sockets: json, console or both")
    parser.add_argument("--no-mixed", action="store_true", help="skip the many-accounts scenario")
    parser.add_argument("--web-workers", type=int, default=1, help="exporthub serve --workers")
    parser.add_argument("--bench-database", default=BENCH_DB)
    parser.add_argument("--out", default=str(RESULTS_DIR))
    asyncio.run(main(parser.parse_args()))
