"""Many WebSocket clients in one asyncio process, for the fan-out benchmark (bench/fanout_bench.py).

    python bench/ws_clients.py --url ws://127.0.0.1:8000/api/v1/exports/ws --key KEY --count 2500 \
        --events 10 --out clients-1.json

Opens `--count` sockets (at most `--connect-concurrency` handshakes at a time); a socket counts as
connected once the server's snapshot frame arrived (it is sent after subscribing, so every later
event reaches it). Then it prints one JSON line `{"connected": n, "failed": n, ...}` and, for every
frame carrying `benchSeq` and `sentAt` (time.time() of the publisher, same machine), records the
delay from publish to receipt. It prints `{"complete": true}` once every connected socket received
all `--events` events, and writes the summary to `--out` when it reads `stop` on stdin (or stdin
closes). The driver reads this process's own CPU time from the summary: a client process that is
busy 100 % of the publish phase is a bottleneck of the measurement, not of the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


class Clients:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.connected = 0
        self.failed = 0
        self.errors: dict[str, int] = {}
        self.delays: list[float] = []
        self.received: list[int] = []  # per connected socket: how many bench events arrived
        self.sockets: list[ClientConnection] = []
        self.all_received = asyncio.Event()
        self.complete_sockets = 0
        self.first_event_cpu: float | None = None

    async def open(self, gate: asyncio.Semaphore) -> None:
        async with gate:
            try:
                ws = await connect(
                    self.args.url,
                    additional_headers={"Authorization": f"Bearer {self.args.key}"},
                    open_timeout=120,
                    ping_interval=None,  # the server pings; answering is enough
                    max_size=None,
                    compression=None,
                )
                first = json.loads(await asyncio.wait_for(ws.recv(), 120))
                if first.get("type") != "snapshot":
                    raise RuntimeError(f"first frame was {first.get('type')!r}")
            except Exception as exc:
                self.failed += 1
                name = type(exc).__name__ + (f": {exc}"[:80] if str(exc) else "")
                self.errors[name] = self.errors.get(name, 0) + 1
                return
        self.connected += 1
        self.sockets.append(ws)
        index = len(self.received)
        self.received.append(0)
        asyncio.get_running_loop().create_task(self.listen(ws, index))

    async def listen(self, ws: ClientConnection, index: int) -> None:
        try:
            async for raw in ws:
                now = time.time()
                event = json.loads(raw)
                if "benchSeq" not in event:
                    continue
                if self.first_event_cpu is None:
                    self.first_event_cpu = cpu_seconds()
                self.delays.append(now - float(event["sentAt"]))
                self.received[index] += 1
                if self.received[index] == self.args.events:
                    self.complete_sockets += 1
                    if self.complete_sockets == self.connected:
                        self.all_received.set()
        except Exception as exc:  # the socket dropped: it simply misses later events
            name = "dropped " + type(exc).__name__
            self.errors[name] = self.errors.get(name, 0) + 1


async def main(args: argparse.Namespace) -> None:
    clients = Clients(args)
    gate = asyncio.Semaphore(args.connect_concurrency)
    started = time.perf_counter()
    await asyncio.gather(*(clients.open(gate) for _ in range(args.count)))
    emit(
        {
            "connected": clients.connected,
            "failed": clients.failed,
            "errors": clients.errors,
            "connect_seconds": round(time.perf_counter() - started, 2),
        }
    )
    stop = asyncio.ensure_future(asyncio.to_thread(sys.stdin.readline))
    complete = asyncio.ensure_future(clients.all_received.wait())
    done, _ = await asyncio.wait({stop, complete}, return_when=asyncio.FIRST_COMPLETED)
    if complete in done:
        emit({"complete": True})
        await stop
    end_cpu = cpu_seconds()
    Path(args.out).write_text(
        json.dumps(
            {
                "connected": clients.connected,
                "failed": clients.failed,
                "errors": clients.errors,
                "received": clients.received,
                "delays": clients.delays,
                "cpu_seconds_events": round(end_cpu - (clients.first_event_cpu or end_cpu), 3),
            }
        )
    )
    for ws in clients.sockets:
        ws.transport.abort()  # no closing handshakes: thousands of them would only slow the exit


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--connect-concurrency", type=int, default=100)
    parser.add_argument("--out", required=True)
    asyncio.run(main(parser.parse_args()))
