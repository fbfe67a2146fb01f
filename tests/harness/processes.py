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

from exporthub.settings import Settings, to_environ
from tests.harness.waiting import wait_http

ROOT = Path(__file__).resolve().parents[2]
LOG_DIR = ROOT / "test-artifacts" / "logs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_new_port(settings: Settings) -> Settings:
    """The same settings on a free port, with the public URL that goes with it."""
    port = free_port()
    return settings.replace(web={"port": port, "public_url": f"http://127.0.0.1:{port}"})


def settings_env(settings: Settings, **overrides: str) -> dict[str, str]:
    """The environment that makes a child process load the same settings."""
    return {**os.environ, **to_environ(settings), **overrides}


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


def start_worker(settings: Settings, log_dir: Path, name: str = "worker", **env: str) -> Process:
    """`exporthub worker` with these settings (and `env` on top)."""
    return start_process(name, ["worker"], settings_env(settings, **env), log_dir)


def start_scheduler(settings: Settings, log_dir: Path, name: str = "scheduler", **env: str) -> Process:
    """`exporthub scheduler` with these settings (and `env` on top)."""
    return start_process(name, ["scheduler"], settings_env(settings, **env), log_dir)


@contextlib.contextmanager
def web_server(
    settings: Settings, log_dir: Path, name: str = "web", *, timeout: float = 60, **env: str
) -> Iterator[Process]:
    """`exporthub serve` on settings.web.port, up and answering /healthz; stopped on exit.

    A web process that dies while starting is started once more (on a shared machine something else
    may have taken the port meanwhile), with its exit code in the log."""
    for attempt in (1, 2):
        web = start_process(name, ["serve"], settings_env(settings, **env), log_dir)
        try:
            wait_http(f"{settings.web.public_url}/healthz", timeout, web)
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
def extra_web(settings: Settings, name: str, log_dir: Path, **env: str) -> Iterator[str]:
    """One more `exporthub serve` on the same database and Redis, on a port of its own, with `env` on
    top: its base URL."""
    other = with_new_port(settings)
    with web_server(other, log_dir, name, **env):
        yield other.web.public_url


@contextlib.contextmanager
def running(*procs: Process) -> Iterator[None]:
    """Stop these processes on the way out, however the block ends."""
    try:
        yield
    finally:
        for p in procs:
            p.stop()


def exporthub_command(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`exporthub ARGS...` as an operator runs it, with these settings; its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "exporthub", *args],
        env=settings_env(settings, **env),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
