"""Many WebSocket clients in one asyncio process, for the fan-out benchmark (bench/fanout_bench.py).

    python bench/ws_clients.py --url ws://127.0.0.1:8000/api/v1/exports/ws --key KEY --count 2500 \\
        --events 10 --out clients-1.json
    python bench/ws_clients.py --console --url ws://127.0.0.1:8000/console/ws --cookie 'session=...' \\
        --origin http://127.0.0.1:8000 --count 2500 --events 10 --out clients-1.json
    python bench/ws_clients.py --url ws://127.0.0.1:8000/api/v1/exports/ws --keys-file keys.txt \\
        --count 2500 --out clients-1.json

With `--keys-file` (lines "KEY EVENTS": many accounts), socket i uses line i mod the number of lines:
that account's key, and the number of bench events its account will get (in place of `--events`).

Opens `--count` sockets (at most `--connect-concurrency` handshakes at a time); a socket counts as
connected once the server's snapshot frame arrived (it is sent after subscribing, so every later
event reaches it). Then it prints one JSON line `{"connected": n, "failed": n, ...}` and records,
for every bench event, its number and the receipt time (time.time(), same machine as the
publisher): on the JSON socket the event's `benchSeq`; on the console socket (`--console`, signed
in with the session `--cookie`) the card's "N of M rows", where the bench publishes N = BASE_ROWS +
the event's number. It prints `{"complete": true}` once every connected socket received all
`--events` events, and writes the summary to `--out` when it reads `stop` on stdin (or stdin
closes). The driver reads this process's own CPU time from the summary: a client process that is
busy 100 % of the publish phase is a bottleneck of the measurement, not of the server.

The client side is RFC 6455 by hand on an asyncio Protocol (handshake with Sec-WebSocket-Accept
checked, unmasked server frames parsed in `data_received`, pings answered with masked pongs, no
extensions), because the measuring must cost far less than what is measured: the `websockets`
library's client spent about 40 µs of CPU per received message here (a task wake-up per socket
and message), as much as the server spent sending it, and its two processes' queues then made up
half of the delay reported. This one spends a few µs per message.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import re
import resource
import struct
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
BASE_ROWS = 1_000_000  # console mode: the bench's event k shows "1,000,00k of ... rows"
_CARD_ROWS = re.compile(rb"([\d,]+) of [\d,]+ rows")
_TEXT, _CONTINUATION, _CLOSE, _PING = 0x1, 0x0, 0x8, 0x9


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """A client frame (clients must mask), for short control payloads (< 126 bytes)."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload)) + mask + body


class Clients:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.connected = 0
        self.failed = 0
        self.errors: dict[str, int] = {}
        self.receipts: list[tuple[int, float]] = []  # (event number, time.time() of receipt)
        self.received: list[int] = []  # per connected socket: how many bench events arrived
        self.expected: list[int] = []  # per connected socket: how many it should get
        self.keys: list[tuple[str, int]] = [(args.key or "", args.events)]
        if args.keys_file:
            lines = Path(args.keys_file).read_text().splitlines()
            self.keys = [(key, int(events)) for key, events in (line.split() for line in lines)]
        self.opened = 0
        self.opening = True  # complete only once every socket is open
        self.transports: list[asyncio.Transport] = []
        self.all_received = asyncio.Event()
        self.complete_sockets = 0
        self.first_event_cpu: float | None = None

    def error(self, name: str) -> None:
        self.errors[name] = self.errors.get(name, 0) + 1

    def on_event(self, index: int, payload: bytes, now: float) -> None:
        if self.args.console:
            match = _CARD_ROWS.search(payload)
            if match is None:
                return
            seq = int(match.group(1).replace(b",", b"")) - BASE_ROWS
        elif b'"benchSeq"' in payload:
            seq = json.loads(payload)["benchSeq"]
        else:
            return
        if self.first_event_cpu is None:
            self.first_event_cpu = cpu_seconds()
        self.receipts.append((seq, now))
        self.received[index] += 1
        if self.received[index] == self.expected[index]:
            self._completed()

    def _completed(self) -> None:
        self.complete_sockets += 1
        self.check_complete()

    def check_complete(self) -> None:
        if not self.opening and self.complete_sockets == self.connected:
            self.all_received.set()

    async def open(self, gate: asyncio.Semaphore) -> None:
        url = urlsplit(self.args.url)
        key, expected = self.keys[self.opened % len(self.keys)]
        self.opened += 1
        async with gate:
            loop = asyncio.get_running_loop()
            try:
                transport, protocol = await asyncio.wait_for(
                    loop.create_connection(lambda: ClientSocket(self, url, key), url.hostname, url.port or 80), 120
                )
                await asyncio.wait_for(protocol.ready, 120)
            except Exception as exc:
                self.failed += 1
                self.error(type(exc).__name__ + (f": {exc}"[:80] if str(exc) else ""))
                return
        self.connected += 1
        self.transports.append(transport)
        protocol.index = len(self.received)
        self.received.append(0)
        self.expected.append(expected)
        if expected == 0:
            self._completed()


class ClientSocket(asyncio.Protocol):
    """One socket: handshake, then frames; `ready` resolves when the snapshot frame arrived."""

    def __init__(self, clients: Clients, url: Any, api_key: str) -> None:
        self.clients = clients
        self.url = url
        self.api_key = api_key
        self.key = base64.b64encode(os.urandom(16))
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.index = -1  # set once connected; events before that are the snapshot
        self.buffer = bytearray()
        self.upgraded = False
        self.message = bytearray()  # a fragmented message being assembled
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        path = self.url.path + (f"?{self.url.query}" if self.url.query else "")
        transport.write(
            f"GET {path} HTTP/1.1\r\nHost: {self.url.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {self.key.decode()}\r\nSec-WebSocket-Version: 13\r\n{self._credentials()}\r\n".encode()
        )

    def _credentials(self) -> str:
        args = self.clients.args
        if args.console:  # as a browser: the session cookie, and the Origin it always sends
            return f"Cookie: {args.cookie}\r\nOrigin: {args.origin}\r\n"
        return f"Authorization: Bearer {self.api_key}\r\n"

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed during the handshake"))
        elif self.index >= 0 and self.clients.received[self.index] < self.clients.expected[self.index]:
            self.clients.error("dropped")

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.buffer += data
        if not self.upgraded and not self._handshake():
            return
        buffer = self.buffer
        while len(buffer) >= 2:
            first, second = buffer[0], buffer[1]
            length, start = second & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length, start = struct.unpack_from("!H", buffer, 2)[0], 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length, start = struct.unpack_from("!Q", buffer, 2)[0], 10
            if second & 0x80:
                raise ValueError("the server masked a frame")
            end = start + length
            if len(buffer) < end:
                return
            payload = bytes(buffer[start:end])
            del buffer[:end]
            self._frame(first & 0x0F, bool(first & 0x80), payload, now)

    def _handshake(self) -> bool:
        head, sep, rest = bytes(self.buffer).partition(b"\r\n\r\n")
        if not sep:
            return False
        lines = head.split(b"\r\n")
        accept = base64.b64encode(hashlib.sha1(self.key + _GUID).digest())  # noqa: S324 - RFC 6455 says SHA-1
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines[1:])}
        if not lines[0].startswith(b"HTTP/1.1 101") or headers.get(b"sec-websocket-accept") != accept:
            self.ready.set_exception(ConnectionError(lines[0].decode(errors="replace")))
            assert self.transport is not None
            self.transport.abort()
            return False
        self.upgraded = True
        self.buffer = bytearray(rest)
        return True

    def _frame(self, opcode: int, final: bool, payload: bytes, now: float) -> None:
        assert self.transport is not None
        if opcode == _PING:
            self.transport.write(masked_frame(0xA, payload))
            return
        if opcode == _CLOSE:
            self.transport.abort()
            return
        if opcode not in (_TEXT, _CONTINUATION):
            return
        if not final or self.message:
            self.message += payload
            if not final:
                return
            payload, self.message = bytes(self.message), bytearray()
        if not self.ready.done():
            if self.clients.args.console or json.loads(payload).get("type") == "snapshot":
                self.ready.set_result(None)  # the console's first frame is its card list
            else:
                self.ready.set_exception(ConnectionError(f"first frame was {payload[:80]!r}"))
        elif self.index >= 0:
            self.clients.on_event(self.index, payload, now)


async def main(args: argparse.Namespace) -> None:
    clients = Clients(args)
    gate = asyncio.Semaphore(args.connect_concurrency)
    started = time.perf_counter()
    await asyncio.gather(*(clients.open(gate) for _ in range(args.count)))
    clients.opening = False
    clients.check_complete()
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
                "receipts": clients.receipts,
                "cpu_seconds_events": round(end_cpu - (clients.first_event_cpu or end_cpu), 3),
            }
        )
    )
    for transport in clients.transports:
        transport.abort()  # no closing handshakes: thousands of them would only slow the exit


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", help="API key (JSON socket)")
    parser.add_argument("--console", action="store_true", help="console socket: --cookie and --origin")
    parser.add_argument("--cookie", default="")
    parser.add_argument("--origin", default="")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--events", type=int, default=0)
    parser.add_argument("--keys-file", help="lines 'KEY EVENTS': one account per line, sockets spread over them")
    parser.add_argument("--connect-concurrency", type=int, default=100)
    parser.add_argument("--out", required=True)
    asyncio.run(main(parser.parse_args()))
