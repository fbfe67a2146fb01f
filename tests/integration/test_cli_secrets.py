"""`exporthub serve | worker | scheduler` start only with a real EXPORTHUB_SECRET_KEY."""

from __future__ import annotations

import datetime as dt
import secrets
import subprocess
import sys
import uuid

import httpx
import pytest

from exporthub.exports.links import sign_download_link
from exporthub.settings import Settings
from tests.harness import ROOT, free_port, running, settings_env, start_process, wait_for, wait_http

COMMANDS = ["serve", "worker", "scheduler"]
WEAK = {
    "unset": None,
    "empty": "",
    "short": "not-32-bytes-long",
    "old default": "dev-only-secret-change-me",
    "compose placeholder": "change-me-to-a-long-random-string",
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("secret", WEAK.values(), ids=WEAK.keys())
def test_refuses_to_start_without_a_good_secret(settings: Settings, command: str, secret: str | None) -> None:
    env = settings_env(settings)
    del env["EXPORTHUB_SECRET_KEY"]
    if secret is not None:
        env["EXPORTHUB_SECRET_KEY"] = secret
    result = subprocess.run(
        [sys.executable, "-m", "exporthub", command], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"exporthub {command}: setting EXPORTHUB_SECRET_KEY: ")
    assert result.stderr.count("\n") == 1, result.stderr  # one line, no traceback
    assert "secrets.token_urlsafe(48)" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(("command", "ready"), [("worker", "worker ready"), ("scheduler", "scheduler ready")])
def test_worker_and_scheduler_start_with_a_good_secret(settings: Settings, command: str, ready: str) -> None:
    own_queue = settings.replace(redis={"queue_name": f"{settings.redis.queue_name}-{command}-{uuid.uuid4().hex[:6]}"})
    proc = start_process(f"{command}-secret", [command], settings_env(own_queue), ROOT / "test-artifacts" / "logs")
    with running(proc):

        def started() -> bool:
            assert proc.popen.poll() is None, proc.log()
            return ready in proc.log()

        wait_for(started, 30, f"{command} to log {ready!r}")


def test_serve_with_rotated_secrets_verifies_links_of_the_old_one(settings: Settings) -> None:
    """The new secret in front, the old one second: links signed before the rotation still work."""
    old, new, retired = settings.secret_keys[0], secrets.token_urlsafe(48), secrets.token_urlsafe(48)
    port = free_port()
    rotated = settings.replace(web={"port": port, "public_url": f"http://127.0.0.1:{port}"}, secret_keys=(new, old))
    web = start_process("web-secret", ["serve"], settings_env(rotated), ROOT / "test-artifacts" / "logs")
    with running(web):
        wait_http(f"{rotated.web.public_url}/healthz", 30, web)
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        export_id = uuid.uuid4()  # no such export: a valid signature gets as far as 404, a bad one 403
        for secret, status in ((old, 404), (new, 404), (retired, 403)):
            link = sign_download_link(rotated.web.public_url, (secret,), export_id, expires)
            assert httpx.get(link, timeout=10).status_code == status, secret
