"""EXPORTHUB_SECRET_KEY: parsed as a newest-first list, refused when missing, short or a placeholder."""

from __future__ import annotations

import secrets
import stat
from pathlib import Path

import pytest

from exporthub.errors import ConfigError
from exporthub.settings import check_secret_keys, load_settings, with_dev_secret

GOOD, OLDER = secrets.token_urlsafe(48), secrets.token_urlsafe(32)


def test_the_variable_is_a_comma_separated_list_newest_first() -> None:
    assert load_settings({"EXPORTHUB_SECRET_KEY": f" {GOOD} , {OLDER},"}).secret_keys == (GOOD, OLDER)
    assert load_settings({}).secret_keys == ()
    check_secret_keys((GOOD, OLDER))


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ((), "not set"),
        (("short",), "shorter than 32 bytes"),
        (("dev-only-secret-change-me",), "placeholder"),
        (("change-me-to-a-long-random-string",), "placeholder"),  # 33 bytes: long enough, but published
        (("CHANGEME" + "x" * 40,), "placeholder"),
        (("ab" * 30,), "not random"),
        ((GOOD, "secret"), "placeholder (secret 2 of 2)"),  # an old secret still verifies: it counts too
    ],
)
def test_weak_secrets_are_refused_with_a_fix(keys: tuple[str, ...], problem: str) -> None:
    with pytest.raises(ConfigError, match="EXPORTHUB_SECRET_KEY") as raised:
        check_secret_keys(keys)
    assert problem in str(raised.value)
    assert "secrets.token_urlsafe(48)" in str(raised.value)


def test_nothing_makes_up_a_secret_but_dev(tmp_path: Path) -> None:
    settings = load_settings({"EXPORTHUB_DATA_DIR": str(tmp_path)})
    assert settings.secret_keys == ()
    assert not (tmp_path / "secret_key").exists()

    dev = with_dev_secret(settings)
    check_secret_keys(dev.secret_keys)
    path = tmp_path / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert with_dev_secret(settings).secret_keys == dev.secret_keys  # kept across restarts
    given = load_settings({"EXPORTHUB_DATA_DIR": str(tmp_path), "EXPORTHUB_SECRET_KEY": GOOD})
    assert with_dev_secret(given).secret_keys == (GOOD,)
