"""`exporthub migrate | accounts ... | apikey ...` against real servers, as an operator runs them."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError

from exporthub.accounts import account_for_key
from exporthub.db.migrate import migrate, migration_files
from exporthub.exports.account_scope import AccountScope
from exporthub.exports.models import ExportFormat, ExportRequest, ExportStatus
from tests.harness import exporthub_command as run_cli
from tests.harness import scratch_database, sign_in


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def refused(result: subprocess.CompletedProcess[str], message: str) -> None:
    """Exit status 1 and one clear line, never a traceback."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert message in result.stderr, result.stderr


def unique_slug(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:8]}"


def keys_json(settings, *args: str) -> list[dict[str, Any]]:
    return json.loads(ok(run_cli(settings, "apikey", "list", "--json", *args)))


# --- accounts ------------------------------------------------------------------------------------------


def test_accounts_lists_the_demo_accounts(settings) -> None:
    listed = json.loads(ok(run_cli(settings, "accounts", "list", "--json")))
    demo = [a for a in listed if a["slug"] in {"acme", "globex", "initech"}]
    assert [a["slug"] for a in demo] == ["acme", "globex", "initech"]
    assert all(a["tenantKey"] == a["id"] and a["disabledAt"] is None for a in demo)
    # Plain `accounts` still lists them, as a table.
    lines = ok(run_cli(settings, "accounts")).splitlines()
    assert lines[0].split() == ["SLUG", "NAME", "TENANT", "KEY", "START", "RATE", "TIME", "ZONE", "DISABLED", "ID"]
    acme = next(line for line in lines if line.startswith("acme "))
    assert "Acme Corporation" in acme and demo[0]["id"] in acme and " default " in acme
    assert all(a["startRate"] is None for a in demo)  # EXPORTHUB_START_RATE applies


def test_accounts_create_and_its_refusals(settings) -> None:
    slug = unique_slug("ops")
    out = ok(run_cli(settings, "accounts", "create", "--slug", slug, "--name", "Ops Team", "--tenant-key", "T-42"))
    assert f"created account {slug} (Ops Team), tenant key T-42" in out
    plain = unique_slug("plain")
    ok(run_cli(settings, "accounts", "create", "--slug", plain, "--name", "Plain"))
    listed = {a["slug"]: a for a in json.loads(ok(run_cli(settings, "accounts", "list", "--json")))}
    assert listed[slug]["name"] == "Ops Team" and listed[slug]["tenantKey"] == "T-42"
    assert listed[plain]["tenantKey"] == listed[plain]["id"]  # defaults to the id

    refused(run_cli(settings, "accounts", "create", "--slug", slug, "--name", "Again"), f"'{slug}' already exists")
    for bad in ("Ops", "-ops", "o", "ops team", "x" * 64):
        refused(run_cli(settings, "accounts", "create", f"--slug={bad}", "--name", "N"), "is not a valid slug")
    refused(run_cli(settings, "accounts", "create", "--slug", unique_slug("blank"), "--name", " "), "name")
    refused(run_cli(settings, "accounts", "disable", "umbrella"), "account 'umbrella' not found")


# --- keys ----------------------------------------------------------------------------------------------


async def test_apikey_create_prints_a_working_key(settings, pool: asyncpg.Pool) -> None:
    result = run_cli(settings, "apikey", "create", "--account", "globex", "--label", "ci")
    key = ok(result).strip()
    assert key.startswith("ehk_") and len(key) > 40
    assert "shown once" in result.stderr and key not in result.stderr
    account = await account_for_key(pool, key)
    assert account is not None and account.slug == "globex" and account.resources is None
    stored = await pool.fetchval("SELECT count(*) FROM api_keys WHERE key_hash = sha256($1::text::bytea)", key)
    assert stored == 1
    (listed,) = [k for k in keys_json(settings, "--account", "globex") if k["prefix"] == key[:12]]
    assert listed["name"] == "ci" and listed["account"] == "globex" and listed["resources"] is None
    assert listed["createdAt"] and listed["lastUsedAt"] is not None and listed["revokedAt"] is None


async def test_apikey_limited_to_resources_and_listed_with_them(settings, pool: asyncpg.Pool) -> None:
    result = run_cli(
        settings, "apikey", "create", "--account", "acme", "--name", "payroll feed", "--resources", "payroll,timesheets"
    )
    key = ok(result).strip()
    account = await account_for_key(pool, key)
    assert account is not None and account.resources == frozenset({"payroll", "timesheets"})
    (listed,) = [k for k in keys_json(settings) if k["prefix"] == key[:12]]
    assert listed["name"] == "payroll feed" and listed["resources"] == ["payroll", "timesheets"]
    table = ok(run_cli(settings, "apikey", "list", "--account", "acme")).splitlines()
    assert table[0].split()[:4] == ["PREFIX", "NAME", "ACCOUNT", "RESOURCES"]
    row = next(line for line in table if line.startswith(key[:12]))
    assert "payroll,timesheets" in row
    assert any(" acme " in line and " all " in line for line in table)  # the demo key, not limited


def test_apikey_refusals(settings) -> None:
    refused(run_cli(settings, "apikey", "create", "--account", "umbrella"), "account 'umbrella' not found")
    refused(
        run_cli(settings, "apikey", "create", "--account", "acme", "--resources", "payroll,salaries"),
        "unknown resource(s) salaries",
    )
    refused(run_cli(settings, "apikey", "create", "--account", "acme", "--resources", ","), "at least one resource")
    refused(run_cli(settings, "apikey", "list", "--account", "umbrella"), "account 'umbrella' not found")
    refused(run_cli(settings, "apikey", "revoke", "ehk_nothing"), "API key starting with 'ehk_nothing' not found")
    refused(run_cli(settings, "apikey", "revoke", "ehk_"), "matches")  # every key starts so: ambiguous
    refused(run_cli(settings, "apikey", "revoke", " "), "prefix")


async def test_revoked_key_is_refused_at_once(hub, pool: asyncpg.Pool) -> None:
    key = ok(run_cli(hub.settings, "apikey", "create", "--account", "acme")).strip()
    async with httpx.AsyncClient(base_url=hub.base_url, headers={"Authorization": f"Bearer {key}"}) as client:
        assert (await client.get("/api/v1/exports")).status_code == 200
        out = ok(run_cli(hub.settings, "apikey", "revoke", key[:10]))  # a unique start of the prefix is enough
        assert f"revoked API key {key[:12]} of acme" in out
        response = await client.get("/api/v1/exports")
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
    (listed,) = [k for k in keys_json(hub.settings, "--account", "acme") if k["prefix"] == key[:12]]
    assert listed["revokedAt"] is not None
    refused(run_cli(hub.settings, "apikey", "revoke", key[:12]), "already revoked")
    async with hub.client("acme") as demo:  # the account's other keys keep working
        assert (await demo.get("/api/v1/exports")).status_code == 200


async def test_disabling_an_account_stops_its_keys_sessions_and_exports(hub, pool: asyncpg.Pool) -> None:
    slug = unique_slug("leaving")
    ok(run_cli(hub.settings, "accounts", "create", "--slug", slug, "--name", "Leaving Ltd"))
    key = ok(run_cli(hub.settings, "apikey", "create", "--account", slug)).strip()
    account = await account_for_key(pool, key)
    assert account is not None
    request = ExportRequest(resource="employees", format=ExportFormat.CSV, columns=("employeeNumber",))
    # never enqueued: stays queued
    queued = await AccountScope(pool, account.id).jobs.insert(request, idempotency_key=None)
    ws_url = hub.base_url.replace("http://", "ws://", 1) + "/api/v1/exports/ws"
    async with (
        httpx.AsyncClient(base_url=hub.base_url, follow_redirects=False) as browser,
        httpx.AsyncClient(base_url=hub.base_url, headers={"Authorization": f"Bearer {key}"}) as api,
        connect(ws_url, additional_headers={"Authorization": f"Bearer {key}"}, open_timeout=10) as ws,
    ):
        await asyncio.wait_for(ws.recv(), 10)  # the snapshot
        assert (await sign_in(browser, key)).status_code == 303
        assert (await browser.get("/console")).status_code == 200

        out = ok(run_cli(hub.settings, "accounts", "disable", slug))
        assert f"disabled account {slug}: 1 export(s) cancelled, 1 console session(s) ended" in out

        assert (await api.get("/api/v1/exports")).status_code == 401
        assert (await browser.get("/console")).status_code == 303
        with pytest.raises(ConnectionClosedError) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    job = await AccountScope(pool, account.id).jobs.get(queued.id)
    assert job is not None and job.status is ExportStatus.CANCELLED and job.cancel_requested
    (listed,) = [a for a in json.loads(ok(run_cli(hub.settings, "accounts", "list", "--json"))) if a["slug"] == slug]
    assert listed["disabledAt"] is not None
    refused(run_cli(hub.settings, "apikey", "create", "--account", slug), "is disabled")


# --- migrations ----------------------------------------------------------------------------------------


def test_migrate_again_applies_nothing(settings) -> None:
    result = run_cli(settings, "migrate")
    assert result.returncode == 0, result.stderr
    assert "applied 0 migration(s)" in result.stdout


async def test_concurrent_migrations_apply_each_file_once(server_settings) -> None:
    async with scratch_database(server_settings.db.url, "exporthub_migrate_race", migrated=False) as url:
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
    async with scratch_database(server_settings.db.url, "exporthub_seed_cli") as url:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("INSERT INTO accounts (slug, name) VALUES ('customer', 'Customer Ltd')")
            scratch = settings.replace(db={"url": url})
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
