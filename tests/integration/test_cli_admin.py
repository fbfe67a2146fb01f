"""`exporthub migrate | seed | accounts | apikey create` against real servers, as an operator runs them."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import subprocess
import sys

import asyncpg

from exporthub.accounts import account_for_key
from exporthub.db.migrate import migrate, migration_files
from tests.support import scratch_database, settings_env


def run_cli(settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporthub", *args],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_accounts_lists_the_demo_accounts(settings) -> None:
    result = run_cli(settings, "accounts")
    assert result.returncode == 0, result.stderr
    slugs = [line.split()[0] for line in result.stdout.splitlines()]
    assert slugs == ["acme", "globex", "initech"]


async def test_apikey_create_prints_a_working_key(settings, pool: asyncpg.Pool) -> None:
    result = run_cli(settings, "apikey", "create", "--account", "globex", "--label", "ci")
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    assert key.startswith("ehk_") and len(key) > 40
    account = await account_for_key(pool, key)
    assert account is not None and account.slug == "globex"
    stored = await pool.fetchval("SELECT count(*) FROM api_keys WHERE key_hash = sha256($1::text::bytea)", key)
    assert stored == 1
    assert await pool.fetchval("SELECT count(*) FROM api_keys WHERE prefix = $1 AND label = 'ci'", key[:12]) == 1


def test_apikey_for_an_unknown_account_fails_clearly(settings) -> None:
    result = run_cli(settings, "apikey", "create", "--account", "umbrella")
    assert result.returncode == 1
    assert "no account with slug 'umbrella'" in result.stderr


def test_migrate_again_applies_nothing(settings) -> None:
    result = run_cli(settings, "migrate")
    assert result.returncode == 0, result.stderr
    assert "applied 0 migration(s)" in result.stdout


async def test_concurrent_migrations_apply_each_file_once(server_settings) -> None:
    async with scratch_database(server_settings.database_url, "exporthub_migrate_race", migrated=False) as url:
        conns = [await asyncpg.connect(url) for _ in range(3)]
        try:
            results = await asyncio.gather(*(migrate(c) for c in conns))
            applied = sorted(name for names in results for name in names)
            assert applied == [name for name, _ in migration_files()]
            assert await conns[0].fetchval("SELECT count(*) FROM schema_migrations") == len(applied)
        finally:
            for c in conns:
                await c.close()


async def test_seed_refuses_a_database_with_real_accounts_unless_forced(settings, server_settings) -> None:
    async with scratch_database(server_settings.database_url, "exporthub_seed_cli") as url:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("INSERT INTO accounts (slug, name) VALUES ('customer', 'Customer Ltd')")
            scratch = dataclasses.replace(settings, database_url=url)
            small = ("--employees", "200", "--payroll", "1000")

            refused = run_cli(scratch, "seed", *small)
            assert refused.returncode == 2, refused.stderr
            assert "holds 1 other account(s)" in refused.stderr and "--force" in refused.stderr
            assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
            assert await conn.fetchval("SELECT count(*) FROM accounts") == 1

            forced = run_cli(scratch, "seed", "--force", *small)
            assert forced.returncode == 0, forced.stderr
            printed = dict(re.findall(r"^\s+(acme|globex|initech)\s+(ehk_\S+)$", forced.stdout, re.MULTILINE))
            assert printed.keys() == {"acme", "globex", "initech"}
            for slug, key in printed.items():
                account = await account_for_key(conn, key)
                assert account is not None and account.slug == slug
        finally:
            await conn.close()
