"""Plain helpers shared by the tests: start the hub's processes, wait for exports, query the database."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from exporthub.settings import Settings, to_environ

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settings_env(settings: Settings, **overrides: str) -> dict[str, str]:
    """The environment that makes a child process load the same settings."""
    return {**os.environ, **to_environ(settings), **overrides}


@dataclasses.dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def kill(self) -> None:
        self.popen.kill()
        self.popen.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def start_process(name: str, args: list[str], env: Mapping[str, str], log_dir: Path) -> Process:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as out:  # the child keeps its own copy of the handle
        popen = subprocess.Popen(
            [sys.executable, "-m", "exporthub", *args], env=dict(env), stdout=out, stderr=subprocess.STDOUT
        )
    return Process(name, popen, log_path)


def exporthub_command(settings: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """`exporthub ARGS...` as an operator runs it, with these settings; its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "exporthub", *args],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def wait_http(url: str, timeout: float, proc: Process) -> None:
    def up() -> bool:
        if proc.popen.poll() is not None:
            raise AssertionError(f"{proc.name} exited:\n{proc.log()}")
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(url, timeout=1).status_code < 500
        return False

    wait_for(up, timeout, f"{url} to answer")


@contextlib.contextmanager
def extra_web(settings: Any, name: str, log_dir: Path, **env: str) -> Iterator[str]:
    """One more `exporthub serve` on the same database and Redis, with `env` on top: its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"EXPORTHUB_PORT": str(port), "EXPORTHUB_PUBLIC_URL": base, **env}
    web = start_process(name, ["serve"], settings_env(settings, **env), log_dir)
    try:
        wait_http(f"{base}/healthz", 30, web)
        yield base
    finally:
        web.stop()


@contextlib.contextmanager
def running(*procs: Process) -> Iterator[None]:
    try:
        yield
    finally:
        for p in procs:
            p.stop()


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def recreate_database(admin_url: str, name: str) -> None:
    await drop_database(admin_url, name)
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def scratch_database(admin_url: str, prefix: str, *, migrated: bool = True) -> AsyncIterator[str]:
    """A new database (migrated unless told otherwise) for one test, dropped afterwards; yields its URL."""
    from exporthub.db.migrate import migrate

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    await recreate_database(admin_url, name)
    url = with_database(admin_url, name)
    try:
        if migrated:
            conn = await asyncpg.connect(url)
            try:
                await migrate(conn)
            finally:
                await conn.close()
        yield url
    finally:
        await drop_database(admin_url, name)


def hidden_token(page: str) -> str:
    """The CSRF token of a console form."""
    match = re.search(r'name="_csrf_token" value="([^"]+)"', page)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def sign_in(client: httpx.AsyncClient, key: str) -> httpx.Response:
    """Sign a cookie-keeping client (base_url: the hub) in to the console with an API key, as the form does."""
    page = await client.get("/console/sign-in")
    assert page.status_code == 200, page.text
    return await client.post("/console/sign-in", data={"api_key": key, "_csrf_token": hidden_token(page.text)})
