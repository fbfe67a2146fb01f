"""A small closed-loop HTTP/1.1 load generator on asyncio, for when `wrk` is not installed (CI).

Each of `connections` keep-alive connections sends its next request as soon as the previous answer
arrived (or after a random pause, for paced clients), for `duration` seconds. The result has the
shape of bench/wrk/report.lua's output. It runs
in the bench's own (single) Python process, so it saturates far earlier than wrk: use its numbers
for "does it work", and wrk's for throughput.
"""

from __future__ import annotations

import asyncio
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
    lines = [
        f"{method} {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1",
        f"Host: {parts.netloc}",
    ]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")
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
