"""WebSocket fan-out benchmark: one `exporthub serve`, N sockets on one account, events via Redis.

For each N of the ramp it starts client processes (bench/ws_clients.py, asyncio + `websockets`)
that open N JSON sockets (`/api/v1/exports/ws`) for the acme account between them, then publishes
`--events` progress events on the account's channel with `publish_event` (namespace
settings.queue_name, as the worker does), each carrying `benchSeq` and `sentAt` (the JSON socket
forwards an event's fields unchanged). Every socket records publish-to-receipt delay per event.

Reported per N: sockets connected, sockets that received every event, delay median / p95 / p99 /
max over all (socket, event) pairs, the web process's resident memory with N sockets, and where the
time goes during the publish phase: CPU seconds of the web process and of the client processes. A
client process whose CPU time approaches the phase's wall time is saturated, and then part of the
delay is the client's own queue, not the server's.

    python bench/fanout_bench.py [--ramp 100,1000,5000] [--events 10] [--interval 0.5] [--client-processes 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    ACME_KEY,
    RESULTS_DIR,
    Section,
    bench_settings,
    loadavg,
    percentile,
    prepare_bench_database,
    proc_cpu_seconds,
    proc_status_mib,
    raise_open_files_limit,
    run_meta,
    verdict,
    web_process,
    write_results,
)

from exporthub import embedded
from exporthub.accounts import account_by_slug
from exporthub.progress import publish_event
from exporthub.settings import Settings, load_settings

FANOUT_TARGET = 5_000
CLIENT_SCRIPT = Path(__file__).with_name("ws_clients.py")
CONNECT_TIMEOUT = 300.0
DELIVERY_TIMEOUT = 60.0


class ClientProcess:
    def __init__(self, url: str, count: int, events: int, out: Path) -> None:
        self.out = out
        self.popen = subprocess.Popen(
            [sys.executable, str(CLIENT_SCRIPT), "--url", url, "--key", ACME_KEY, "--count", str(count),
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
    sockets: int,
    processes: int,
    events: int,
    interval: float,
    work_dir: Path,
) -> dict[str, Any]:
    url = settings.public_url.replace("http", "ws", 1) + "/api/v1/exports/ws"
    work_dir.mkdir(parents=True, exist_ok=True)
    shares = [sockets // processes + (k < sockets % processes) for k in range(processes)]
    clients = [ClientProcess(url, n, events, work_dir / f"ws-clients-{sockets}-{k}.json") for k, n in enumerate(shares)]
    try:
        started = time.perf_counter()
        ready = await asyncio.gather(*(c.line(CONNECT_TIMEOUT) for c in clients))
        connect_seconds = time.perf_counter() - started
        web_rss = proc_status_mib(web_pid, "VmRSS")
        load_before = loadavg()
        web_cpu = proc_cpu_seconds(web_pid)
        published_at = time.perf_counter()
        for seq in range(events):
            event = {
                "type": "export.progress",
                "exportId": "00000000-0000-0000-0000-00000000be4c",
                "status": "processing",
                "progress": seq,
                "benchSeq": seq,
                "sentAt": time.time(),
            }
            await publish_event(redis, settings.queue_name, account_id, event)
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
        web_cpu = proc_cpu_seconds(web_pid) - web_cpu
        summaries = [c.stop() for c in clients]
    finally:
        for c in clients:
            c.kill()
    delays = [d for s in summaries for d in s["delays"]]
    complete = sum(1 for s in summaries for n in s["received"] if n == events)
    errors: dict[str, int] = {}
    for r in [*ready, *summaries]:
        for name, n in r["errors"].items():
            errors[name] = max(errors.get(name, 0), n)
    phase = delivered_at - published_at
    ms = [d * 1000 for d in delays] or [float("nan")]
    met = connected == sockets and complete == sockets
    return {
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
        "target": f"{FANOUT_TARGET:,} sockets, every event" if sockets >= FANOUT_TARGET else None,
        "verdict": verdict(met) if sockets >= FANOUT_TARGET else ("ok" if met else "lost sockets/events"),
        "loadavg": max(load_before, loadavg()),
    }


async def run_fanout(
    settings: Settings,
    ramp: list[int],
    events: int,
    interval: float,
    client_processes: int,
    log_dir: Path,
) -> Section:
    limit = raise_open_files_limit()
    rows = []
    redis = Redis.from_url(settings.redis_url)
    try:
        with web_process(settings, log_dir, "bench-web-fanout") as web:
            conn = await asyncpg.connect(settings.database_url)
            try:
                acme = await account_by_slug(conn, "acme")
            finally:
                await conn.close()
            assert acme is not None, "the acme demo account is missing"
            for n in ramp:
                processes = 1 if n <= 100 else client_processes
                row = await measure_fanout(
                    settings, redis, acme.id, web.popen.pid, n, processes, events, interval, log_dir
                )
                print(
                    f"fan-out {n}: {row['connected']} connected, {row['received_all']} got all, "
                    f"p99 {row['delay_p99_ms']} ms",
                    file=sys.stderr,
                )
                rows.append(row)
                await asyncio.sleep(2)  # let the server drop the aborted sockets
    finally:
        await redis.aclose()
    return Section(
        "fanout",
        "WebSocket fan-out: one web process, N JSON sockets on one account",
        rows,
        [
            ("sockets", "sockets"),
            ("client_processes", "client procs"),
            ("connected", "connected"),
            ("received_all", "received every event"),
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
            "channel; delay = receipt time in the client minus `sentAt` (time.time() of the publisher).",
            "The publish phase runs from the first publish until every socket has every event (or a "
            f"{DELIVERY_TIMEOUT:.0f} s timeout); web and client CPU seconds over that phase show who was busy. "
            "A client process's CPU seconds near the phase's length means the client, not the server, "
            "was saturated. All processes share 2 CPUs with Redis and PostgreSQL.",
            f"Open-file limit of the bench and its children: {limit:,}.",
        ],
    )


async def main(args: argparse.Namespace) -> None:
    started = time.time()
    out = Path(args.out)
    with embedded.servers(load_settings(os.environ)) as server:
        url = await prepare_bench_database(server)
        settings = bench_settings(server, url, out)
        meta = {"loadavg_start": loadavg()}
        section = await run_fanout(
            settings,
            [int(n) for n in args.ramp.split(",")],
            args.events,
            args.interval,
            args.client_processes,
            out / "logs",
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
    parser.add_argument("--out", default=str(RESULTS_DIR))
    asyncio.run(main(parser.parse_args()))
