"""`exporthub dev` keeps its children running: a crashed one is restarted, and said so on stderr."""

from __future__ import annotations

import asyncio
import secrets
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import psutil

from exporthub.settings import Settings
from tests.conftest import with_redis_db
from tests.harness import free_port, scratch_database, settings_env, wait_for


def _child(dev: psutil.Process, command: str) -> psutil.Process | None:
    for child in dev.children():
        try:
            if command in child.cmdline()[3:]:  # python -m exporthub <command> ...
                return child
        except psutil.NoSuchProcess:
            continue
    return None


async def test_a_killed_worker_is_restarted(server_settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    async with scratch_database(server_settings.db.url, "exporthub_dev", migrated=False) as url:
        settings = server_settings.replace(
            db={"url": url},
            redis={
                "url": with_redis_db(server_settings.redis.url, 12),
                "queue_name": f"exporthub-dev-test:{uuid.uuid4().hex[:8]}",
            },
            storage={"data_dir": tmp_path},
            web={"port": port, "public_url": f"http://127.0.0.1:{port}"},
            secret_keys=(secrets.token_urlsafe(48),),
        )
        env = settings_env(settings)
        seeded = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "exporthub", "seed", "--employees", "200", "--payroll", "1000"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert seeded.returncode == 0, seeded.stderr  # so that dev does not seed its 500,000 rows
        stderr = tmp_path / "dev.stderr"
        with stderr.open("wb") as err:
            dev = subprocess.Popen(  # noqa: ASYNC220 - starting it does not wait for it
                [sys.executable, "-m", "exporthub", "dev"], env=env, stdout=subprocess.DEVNULL, stderr=err
            )
        try:
            proc = psutil.Process(dev.pid)
            worker = wait_for(lambda: _child(proc, "worker"), 30, "the worker child")
            wait_for(lambda: _child(proc, "serve"), 30, "the web child")
            worker.send_signal(signal.SIGKILL)
            restarted = wait_for(
                lambda: (c := _child(proc, "worker")) is not None and c.pid != worker.pid and c, 30, "a new worker"
            )
            assert dev.poll() is None  # dev itself carries on
            text = stderr.read_text()
            assert f"worker (pid {worker.pid}) exited with code -9; restarting it in 1s" in text, text
            assert f"worker restarted (pid {restarted.pid})" in text
            # The rest kept running throughout.
            web = _child(proc, "serve")
            assert web is not None and web.is_running()
            wait_for(lambda: _answers(f"{settings.web.public_url}/healthz"), 30, "the web child to answer")
        finally:
            dev.send_signal(signal.SIGTERM)
            code = dev.wait(timeout=30)
        assert code == 0
        assert not psutil.pid_exists(restarted.pid) or psutil.Process(restarted.pid).status() == psutil.STATUS_ZOMBIE


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
