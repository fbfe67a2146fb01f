"""Settings are typed declarations: every variable is read, checked and named in its error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from exporthub.errors import ConfigError
from exporthub.settings import Rate, Settings, load_settings, parse_rate, to_environ, variables

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_variable_is_documented_in_the_readme() -> None:
    assert [f.env for f in variables() if f"`{f.env}`" not in README] == []


def test_values_are_converted_into_their_groups() -> None:
    settings = load_settings(
        {
            "EXPORTHUB_BATCH_SIZE": "200",
            "EXPORTHUB_CSV_BOM": "off",
            "EXPORTHUB_WEBHOOK_ALLOW_HTTP": "yes",
            "EXPORTHUB_SOURCE_STATEMENT_TIMEOUT": "10min",
            "EXPORTHUB_PORT": "9000",
            "EXPORTHUB_WEBHOOK_ALLOWED_CIDRS": "10.1.2.3/8, fd00::/8",
            "S3_ENDPOINT_URL": "http://minio:9000/",
            "EXPORTHUB_CATALOG": "/etc/exporthub/catalog.toml",
        }
    )
    assert settings.exports.batch_size == 200 and settings.exports.csv_bom is False
    assert settings.webhooks.allow_http is True
    assert settings.db.source_statement_timeout_seconds == 600.0
    assert settings.web.port == 9000 and settings.web.public_url == "http://127.0.0.1:9000"
    assert settings.webhooks.allowed_cidrs == ("10.0.0.0/8", "fd00::/8")
    assert settings.storage.s3_endpoint_url == "http://minio:9000"
    assert settings.exports.catalog_path == Path("/etc/exporthub/catalog.toml")


def test_to_environ_gives_the_same_settings_back() -> None:
    settings = Settings().replace(
        exports={"batch_size": 7, "csv_bom": False, "start_rate": Rate(3, 5)},
        redis={"queue_name": "q:1"},
        webhooks={"allowed_cidrs": ("10.0.0.0/8",)},
        secret_keys=("new", "old"),
    )
    assert load_settings(to_environ(settings)) == settings


@pytest.mark.parametrize(
    ("environ", "variable", "words"),
    [
        ({"EXPORTHUB_BATCH_SIZE": "many"}, "EXPORTHUB_BATCH_SIZE", "expected an integer, got 'many'"),
        ({"EXPORTHUB_BATCH_SIZE": "0"}, "EXPORTHUB_BATCH_SIZE", "expected an integer >= 1, got '0'"),
        ({"EXPORTHUB_CSV_BOM": "maybe"}, "EXPORTHUB_CSV_BOM", "expected true or false, got 'maybe'"),
        ({"EXPORTHUB_WEBHOOK_TIMEOUT_SECONDS": "soon"}, "EXPORTHUB_WEBHOOK_TIMEOUT_SECONDS", "expected a number"),
        ({"STORAGE_URL": "ftp://files"}, "STORAGE_URL", "expected file:///path or s3://bucket/prefix"),
        ({"STORAGE_URL": "s3://"}, "STORAGE_URL", "expected file:///path or s3://bucket/prefix"),
        ({"EXPORTHUB_S3_PART_SIZE_MIB": "4"}, "EXPORTHUB_S3_PART_SIZE_MIB", "at least 5"),
        ({"EXPORTHUB_PORT": "70000"}, "EXPORTHUB_PORT", "<= 65535"),
        ({"S3_ACCESS_KEY_ID": "key"}, "S3_ACCESS_KEY_ID", "set S3_SECRET_ACCESS_KEY with it"),
        ({"EXPORTHUB_START_RATE": "lots"}, "EXPORTHUB_START_RATE", "expected a rate such as 10/min, 30/h or 3/5s"),
        ({"EXPORTHUB_START_RATE": "0/min"}, "EXPORTHUB_START_RATE", "must be from 1 to 100,000"),
        ({"EXPORTHUB_START_RATE": "5/2d"}, "EXPORTHUB_START_RATE", "from 1 second to 1 day"),
    ],
)
def test_a_bad_value_names_its_variable(environ: dict[str, str], variable: str, words: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(environ)
    assert raised.value.name == variable
    assert words in raised.value.reason


def test_replace_refuses_a_field_its_group_does_not_have() -> None:
    with pytest.raises(TypeError):
        Settings().replace(exports={"batch_sise": 5})


# --- rates (EXPORTHUB_START_RATE, `exporthub accounts set-rate`) ----------------------------------------


def test_the_start_rate_is_ten_a_minute_unless_set() -> None:
    assert Settings().exports.start_rate == Rate(10, 60)
    assert load_settings({"EXPORTHUB_START_RATE": "30/h"}).exports.start_rate == Rate(30, 3600)


@pytest.mark.parametrize(
    ("text", "rate", "written", "window"),
    [
        ("10/min", Rate(10, 60), "10/min", "minute"),
        ("10/minute", Rate(10, 60), "10/min", "minute"),
        (" 30 / h ", Rate(30, 3600), "30/h", "hour"),
        ("3/5s", Rate(3, 5), "3/5s", "5 seconds"),
        ("3/5", Rate(3, 5), "3/5s", "5 seconds"),
        ("1/s", Rate(1, 1), "1/s", "second"),
        ("5/90s", Rate(5, 90), "5/90s", "90 seconds"),
        ("2/10min", Rate(2, 600), "2/10min", "10 minutes"),
        ("100/day", Rate(100, 86400), "100/d", "day"),
        ("100000/1s", Rate(100_000, 1), "100000/s", "second"),
    ],
)
def test_a_rate_is_read_and_written_as_people_write_it(text: str, rate: Rate, written: str, window: str) -> None:
    assert parse_rate(text) == rate
    assert str(rate) == written and parse_rate(written) == rate
    assert rate.window_words() == window


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("10", "expected a rate such as 10/min"),
        ("10/", "expected a rate such as 10/min"),
        ("ten/min", "expected a rate such as 10/min"),
        ("-1/min", "expected a rate such as 10/min"),
        ("0/min", "the count in '0/min' must be from 1 to 100,000"),
        ("100001/min", "must be from 1 to 100,000"),
        ("5/0s", "the window in '5/0s' must be from 1 second to 1 day"),
        ("5/25h", "from 1 second to 1 day"),
        ("5/week", "unknown unit 'week'"),
    ],
)
def test_a_rate_that_makes_no_sense_is_refused_in_words(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        parse_rate(text)
