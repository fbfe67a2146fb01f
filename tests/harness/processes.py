"""The hub's processes, started as an operator starts them (`python -m exporthub serve | worker | ...`)
with the environment that makes them load given Settings; each logs to a file of its own."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tests.harness.waiting import wait_http

ROOT = Path(__file__).resolve().parents[2]
LOG_DIR = ROOT / "test-artifacts" / "logs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_new_port(settings: Any) -> Any:
    """The same settings on a free port, with the public URL that goes with it."""
    port = free_port()
    return dataclasses.replace(settings, port=port, public_url=f"http://127.0.0.1:{port}")


def settings_env(settings: Any, **overrides: str) -> dict[str, str]:
    """The environment that makes a child process load the same settings."""
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "SOURCE_DATABASE_URL": settings.source_database_url,
        "EXPORTHUB_CATALOG": str(settings.catalog_path or ""),
        "EXPORTHUB_SOURCE_STATEMENT_TIMEOUT": str(settings.source_statement_timeout_seconds),
        "EXPORTHUB_DATA_DIR": str(settings.data_dir),
        "EXPORTHUB_SECRET_KEY": ",".join(settings.secret_keys),
        "EXPORTHUB_LEASE_SECONDS": str(settings.lease_seconds),
        "EXPORTHUB_SWEEP_INTERVAL_SECONDS": str(int(settings.sweep_interval_seconds)),
        "EXPORTHUB_REQUEUE_AFTER_SECONDS": str(settings.requeue_after_seconds),
        "EXPORTHUB_QUEUE_NAME": settings.queue_name,
        "EXPORTHUB_MAX_ROWS_PER_SHEET": str(settings.max_rows_per_sheet),
        "EXPORTHUB_BATCH_SIZE": str(settings.batch_size),
        "EXPORTHUB_HOST": settings.host,
        "EXPORTHUB_PORT": str(settings.port),
        "EXPORTHUB_PUBLIC_URL": settings.public_url,
        "STORAGE_URL": settings.storage_url,
        "S3_ENDPOINT_URL": settings.s3_endpoint_url,
        "S3_PUBLIC_ENDPOINT_URL": settings.s3_public_endpoint_url,
        "S3_REGION": settings.s3_region,
        "S3_ACCESS_KEY_ID": settings.s3_access_key_id,
        "S3_SECRET_ACCESS_KEY": settings.s3_secret_access_key,
        "EXPORTHUB_S3_PART_SIZE_MIB": str(settings.s3_part_size // (1024 * 1024)),
        "EXPORTHUB_EXPIRY_SWEEP_SECONDS": str(settings.expiry_sweep_seconds),
        "EXPORTHUB_WEBHOOK_ALLOW_PRIVATE": str(settings.webhook_allow_private).lower(),
        "EXPORTHUB_WEBHOOK_ALLOW_HTTP": str(settings.webhook_allow_http).lower(),
        "EXPORTHUB_WEBHOOK_RETRY_BASE_SECONDS": str(settings.webhook_retry_base_seconds),
        "EXPORTHUB_WEBHOOK_POLL_SECONDS": str(settings.webhook_poll_seconds),
        "EXPORTHUB_TEST_PAUSE_DIR": str(settings.test_pause_dir or ""),
    }
    env.update(overrides)
    return env


@dataclasses.dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        """Ask it to stop (SIGTERM: a graceful shutdown); killed if it has not exited within `timeout` s."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as when the machine or the OOM killer takes it."""
        self.popen.kill()
        self.popen.wait()

    def log(self, tail: int | None = 4000) -> str:
        """Its log (the last `tail` characters; None: all of it)."""
        text = self.log_path.read_text(errors="replace")
        return text if tail is None else text[-tail:]


def start_process(name: str, args: list[str], env: Mapping[str, str], log_dir: Path) -> Process:
    """`python -m exporthub ARGS...`, its output appended to `log_dir/<name>.log`."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as out:  # the child keeps its own copy of the handle
        popen = subprocess.Popen(
            [sys.executable, "-m", "exporthub", *args], env=dict(env), stdout=out, stderr=subprocess.STDOUT
        )
    return Process(name, popen, log_path)


def start_worker(settings: Any, log_dir: Path, name: str = "worker", **env: str) -> Process:
    """`exporthub worker` with these settings (and `env` on top)."""
    return start_process(name, ["worker"], settings_env(settings, **env), log_dir)


def start_scheduler(settings: Any, log_dir: Path, name: str = "scheduler", **env: str) -> Process:
    """`exporthub scheduler` with these settings (and `env` on top)."""
    return start_process(name, ["scheduler"], settings_env(settings, **env), log_dir)


@contextlib.contextmanager
def web_server(
    settings: Any, log_dir: Path, name: str = "web", *, timeout: float = 60, **env: str
) -> Iterator[Process]:
    """`exporthub serve` on settings.port, up and answering /healthz; stopped on exit.

    A web process that dies while starting is started once more (on a shared machine something else
    may have taken the port meanwhile), with its exit code in the log."""
    for attempt in (1, 2):
        web = start_process(name, ["serve"], settings_env(settings, **env), log_dir)
        try:
            wait_http(f"{settings.public_url}/healthz", timeout, web)
            break
        except AssertionError:
            web.stop()
            with web.log_path.open("a") as log:
                log.write(f"\n[harness] start attempt {attempt} failed, exit code {web.popen.returncode}\n")
            if attempt == 2:
                raise
    try:
        yield web
    finally:
        web.stop()


@contextlib.contextmanager
def extra_web(settings: Any, name: str, log_dir: Path, **env: str) -> Iterator[str]:
    """One more `exporthub serve` on the same database and Redis, on a port of its own, with `env` on
    top: its base URL."""
    other = with_new_port(settings)
    with web_server(other, log_dir, name, **env):
        yield other.public_url


@contextlib.contextmanager
def running(*procs: Process) -> Iterator[None]:
    """Stop these processes on the way out, however the block ends."""
    try:
        yield
    finally:
        for p in procs:
            p.stop()


def exporthub_command(settings: Any, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`exporthub ARGS...` as an operator runs it, with these settings; its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "exporthub", *args],
        env=settings_env(settings, **env),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
