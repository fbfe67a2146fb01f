"""docker-compose.yml carries no secret: every one must come from the environment, or compose stops."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.harness import ROOT

COMPOSE = ROOT / "docker-compose.yml"
SECRET_NAMES = re.compile(r"SECRET|PASSWORD")
REFERENCE = re.compile(r"\$\{([A-Z0-9_]+)([^}]*)\}")


def environments(compose: dict[str, Any]) -> dict[str, dict[str, str]]:
    found = {"x-app": compose["x-app"]["environment"]}
    for name, service in compose["services"].items():
        found[name] = service.get("environment") or {}
    return found


def test_every_secret_is_required_from_the_environment() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    checked = 0
    for service, env in environments(compose).items():
        for name, value in env.items():
            references = REFERENCE.findall(str(value))
            if SECRET_NAMES.search(name) or name == "DATABASE_URL":
                assert references, f"{service}.{name} holds a value of its own: {value!r}"
            for variable, rest in references:
                if SECRET_NAMES.search(variable):
                    checked += 1
                    assert rest.startswith(":?") and len(rest) > 2, f"{service}.{name}: ${{{variable}{rest}}}"
    assert checked >= 6  # the app's secret, the database password (x2, +postgres), MinIO's (x3)
    assert "exporthub-minio-secret" not in COMPOSE.read_text() and "change-me" not in COMPOSE.read_text()


def test_the_minio_console_is_not_published() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    ports = [str(p) for service in compose["services"].values() for p in service.get("ports", [])]
    assert not any("9001" in p for p in ports), ports


def _compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return None


def test_compose_config_without_the_secrets_fails_and_says_which() -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("neither docker-compose nor the docker compose plugin is installed")
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(ROOT)}
    result = subprocess.run(
        [*command, "-f", str(COMPOSE), "config"], env=env, cwd="/", capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "see the README" in result.stderr
