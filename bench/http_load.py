"""A small closed-loop HTTP/1.1 load generator on asyncio, for when `wrk` is not installed (CI).

Each of `connections` keep-alive connections sends its next request as soon as the previous answer
arrived (or after a random pause, for paced clients), for `duration` seconds. The result has the
shape of bench/wrk/report.lua's output. It runs
in the bench's own (single) Python process, so it saturates far earlier than wrk: use its numbers
for "does it work", and wrk's for throughput.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from typing import Any
from urllib.parse import urlsplit

from bench.common import percentile


async def _one_connection(
    host: str,
    port: int,
    request: bytes,
    deadline: float,
    latencies: list[float],
    statuses: dict[int, int],
    pause: float,
) -> int:
    errors = 0
    if pause:  # paced clients start spread out too, not as one burst
        await asyncio.sleep(random.uniform(0, 2 * pause))
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            if "content-length" in headers:
                await reader.readexactly(int(headers["content-length"]))
            elif headers.get("transfer-encoding") == "chunked":
                while True:
                    size = int((await reader.readline()).strip(), 16)
                    await reader.readexactly(size + 2)
                    if size == 0:
                        break
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
            if pause:
                await asyncio.sleep(random.uniform(0, 2 * pause))
    except (OSError, asyncio.IncompleteReadError):
        errors += 1
    finally:
        writer.close()
    return errors


async def load(
    url: str,
    method: str,
    headers: dict[str, str],
    body: bytes | None,
    connections: int,
    duration: float,
    pause: float = 0.0,
) -> dict[str, Any]:
    """`pause`: seconds each connection waits (uniformly 0..2x) between requests; 0 for a closed loop."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = http_request(url, method, headers, body)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    started = time.perf_counter()
    deadline = started + duration
    errors = await asyncio.gather(
        *(_one_connection(host, port, request, deadline, latencies, statuses, pause) for _ in range(connections)),
        return_exceptions=True,
    )
    elapsed = time.perf_counter() - started
    us = [x * 1e6 for x in latencies] or [0.0]
    return {
        "requests": len(latencies),
        "duration_us": round(elapsed * 1e6),
        "latency_us": {
            "p50": round(percentile(us, 50)),
            "p90": round(percentile(us, 90)),
            "p99": round(percentile(us, 99)),
            "max": round(max(us)),
        },
        "socket_errors": sum(e if isinstance(e, int) else 1 for e in errors),
        "statuses": {str(k): v for k, v in statuses.items()},
    }


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """Send one request on a keep-alive connection and read its whole answer: the status."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    await reader.readexactly(int(headers.get("content-length", "0")))
    return int(lines[0].split()[1])


async def open_loop(
    url: str,
    requests: list[bytes],
    rate: float,
    duration: float,
    *,
    warm_connections: int = 64,
    max_connections: int = 2000,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """Send `rate` requests a second for `duration` seconds on a fixed schedule, whatever the answers:
    request i (`requests[i % len(requests)]`, whole HTTP/1.1 requests) is due at start + i / rate.
    Its latency runs from that due time to the end of its answer, so a stalled server or a late
    generator counts in full (no coordinated omission). Each request takes an idle keep-alive
    connection, or opens one (up to `max_connections`; `warm_connections` are opened first).

    Returns wrk-report-shaped totals plus `late_sends_ms` (how late the generator itself sent: if it
    nears the latencies, the generator and not the server was the bottleneck) and `statuses`;
    `errors` counts requests that got no answer (connection failure or `timeout`)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    # Oldest idle first: every connection stays in use, none outlives the server's keep-alive timeout.
    idle: collections.deque[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = collections.deque()
    opened = 0
    for _ in range(warm_connections):
        idle.append(await asyncio.open_connection(host, port))
        opened += 1
    latencies: list[float] = []
    by_second: dict[int, list[float]] = collections.defaultdict(list)
    late: list[float] = []
    statuses: dict[int, int] = {}
    errors: dict[str, int] = {}
    loop = asyncio.get_running_loop()

    async def one(due: float, request: bytes) -> None:
        nonlocal opened
        late.append(loop.time() - due)
        while idle and idle[0][0].at_eof():  # closed by the server meanwhile
            idle.popleft()[1].close()
            opened -= 1
        try:
            async with asyncio.timeout(timeout):
                if idle:
                    reader, writer = idle.popleft()
                elif opened < max_connections:
                    opened += 1
                    reader, writer = await asyncio.open_connection(host, port)
                else:
                    raise ConnectionError("all connections busy")
                try:
                    status = await _exchange(reader, writer, request)
                except BaseException:
                    writer.close()
                    opened -= 1
                    raise
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            return
        latencies.append(loop.time() - due)
        by_second[int(due - started)].append(latencies[-1])
        statuses[status] = statuses.get(status, 0) + 1
        idle.append((reader, writer))

    tasks: list[asyncio.Task[None]] = []
    total = round(rate * duration)
    started = loop.time() + 0.1
    for i in range(total):
        due = started + i / rate
        if (wait := due - loop.time()) > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.ensure_future(one(due, requests[i % len(requests)])))
    await asyncio.gather(*tasks)
    elapsed = loop.time() - started
    for _, writer in idle:
        writer.close()
    us = [x * 1e6 for x in latencies] or [0.0]
    late_ms = [x * 1e3 for x in late] or [0.0]
    return {
        "requests": total,
        "answered": len(latencies),
        "duration_us": round(elapsed * 1e6),
        "latency_us": {p: round(percentile(us, q)) for p, q in (("p50", 50), ("p90", 90), ("p99", 99))}
        | {"max": round(max(us))},
        "late_sends_ms": {"p99": round(percentile(late_ms, 99), 1), "max": round(max(late_ms), 1)},
        # p99 of each second's requests, by due second: a burst shows here, a steady tail does not
        "p99_by_second_ms": [round(percentile(by_second[s], 99) * 1e3, 1) for s in sorted(by_second)],
        "connections_opened": opened,
        "errors": errors,
        "socket_errors": sum(errors.values()),
        "statuses": {str(k): v for k, v in statuses.items()},
    }


def http_request(url: str, method: str, headers: dict[str, str], body: bytes | None) -> bytes:
    """One whole HTTP/1.1 request, keep-alive."""
    parts = urlsplit(url)
    lines = [
        f"{method} {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1",
        f"Host: {parts.netloc}",
    ]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")
