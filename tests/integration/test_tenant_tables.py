"""Every table with an account_id is guarded, and its references stay inside one account."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from tests.unit.test_tenant_scope import HR_TENANT_TABLES, OWN_TENANT_TABLES


async def test_the_guards_name_every_table_with_an_account_id(pool: asyncpg.Pool) -> None:
    tables = {
        r["table_name"]
        for r in await pool.fetch(
            "SELECT table_name FROM information_schema.columns"
            " WHERE table_schema = 'public' AND column_name = 'account_id'"
        )
    }
    assert tables == set(OWN_TENANT_TABLES) | set(HR_TENANT_TABLES)


async def test_a_row_cannot_point_at_another_accounts_row(pool: asyncpg.Pool) -> None:
    """Composite foreign keys over (account_id, id): a payroll row naming another account's employee,
    or a webhook event naming another account's export, is refused by PostgreSQL itself."""
    acme_id = await pool.fetchval("SELECT id FROM accounts WHERE slug = 'acme'")
    globex_id = await pool.fetchval("SELECT id FROM accounts WHERE slug = 'globex'")
    employee = await pool.fetchval("SELECT id FROM employees WHERE account_id = $1 LIMIT 1", globex_id)
    async with pool.acquire() as conn, conn.transaction():
        with pytest.raises(asyncpg.ForeignKeyViolationError, match="payroll_employee_same_account"):
            await conn.execute(
                "INSERT INTO payroll (account_id, employee_id, period_start, period_end, pay_date, hours_worked,"
                " gross_pay, tax, deductions, net_pay, currency, status) SELECT $1, $2, period_start, period_end,"
                " pay_date, hours_worked, gross_pay, tax, deductions, net_pay, currency, status FROM payroll LIMIT 1",
                acme_id,
                employee,
            )
    export_id = uuid.uuid4()
    await pool.execute(
        "INSERT INTO export_jobs (id, account_id, resource, format, columns) VALUES ($1, $2, 'payroll', 'csv', '{}')",
        export_id,
        globex_id,
    )
    try:
        with pytest.raises(asyncpg.ForeignKeyViolationError, match="webhook_events_export_same_account"):
            await pool.execute(
                "INSERT INTO webhook_events (id, account_id, export_id, event, url, body, give_up_at)"
                " VALUES ($1, $2, $3, 'export.completed', 'https://x.example/', '{}', now())",
                uuid.uuid4(),
                acme_id,
                export_id,
            )
    finally:
        await pool.execute("DELETE FROM export_jobs WHERE id = $1", export_id)


async def test_a_schedule_cannot_name_another_accounts_export_as_its_last_run(pool: asyncpg.Pool) -> None:
    acme_id = await pool.fetchval("SELECT id FROM accounts WHERE slug = 'acme'")
    globex_id = await pool.fetchval("SELECT id FROM accounts WHERE slug = 'globex'")
    export_id = uuid.uuid4()
    schedule = (
        "INSERT INTO schedules (id, account_id, export, cron, time_zone, next_run_at, last_export_id)"
        " VALUES ($1, $2, '{}', '@daily', 'UTC', now(), $3)"
    )
    async with pool.acquire() as conn:
        outer = conn.transaction()  # rolled back: nothing of this test stays
        await outer.start()
        try:
            await conn.execute(
                "INSERT INTO export_jobs (id, account_id, resource, format, columns)"
                " VALUES ($1, $2, 'payroll', 'csv', '{}')",
                export_id,
                globex_id,
            )
            await conn.execute(schedule, uuid.uuid4(), globex_id, export_id)  # its own account's export: fine
            with pytest.raises(asyncpg.ForeignKeyViolationError, match="schedules_last_export_same_account"):
                async with conn.transaction():
                    await conn.execute(schedule, uuid.uuid4(), acme_id, export_id)
            # Deleting the export forgets it; the schedule stays.
            await conn.execute("DELETE FROM export_jobs WHERE id = $1", export_id)
            assert await conn.fetchval("SELECT count(*) FROM schedules WHERE account_id = $1", globex_id) >= 1
            assert await conn.fetchval("SELECT count(*) FROM schedules WHERE last_export_id = $1", export_id) == 0
        finally:
            await outer.rollback()


async def test_a_download_record_cannot_name_another_accounts_export_key_or_session(
    pool: asyncpg.Pool, demo_keys: dict[str, str]
) -> None:
    """export_downloads references its export, key and console session over (account_id, id)."""
    acme_id = await pool.fetchval("SELECT id FROM accounts WHERE slug = 'acme'")
    globex_id = await pool.fetchval("SELECT id FROM accounts WHERE slug = 'globex'")
    record = (
        "INSERT INTO export_downloads (account_id, export_id, via, api_key_id, console_session_id, redirected)"
        " VALUES ($1, $2, $3, $4, $5, false)"
    )
    async with pool.acquire() as conn:
        outer = conn.transaction()  # rolled back: nothing of this test stays
        await outer.start()
        try:
            acme_export, globex_export = uuid.uuid4(), uuid.uuid4()
            for export_id, account_id in ((acme_export, acme_id), (globex_export, globex_id)):
                await conn.execute(
                    "INSERT INTO export_jobs (id, account_id, resource, format, columns)"
                    " VALUES ($1, $2, 'payroll', 'csv', '{}')",
                    export_id,
                    account_id,
                )
            globex_key = await conn.fetchval("SELECT id FROM api_keys WHERE account_id = $1 LIMIT 1", globex_id)
            globex_session = await conn.fetchval(
                "INSERT INTO console_sessions (account_id, expires_at) VALUES ($1, now()) RETURNING id", globex_id
            )
            await conn.execute(record, acme_id, acme_export, "signed_link", None, None)  # its own: fine
            refused = [
                ("export_downloads_export_same_account", (acme_id, globex_export, "signed_link", None, None)),
                ("export_downloads_key_same_account", (acme_id, acme_export, "api_key", globex_key, None)),
                ("export_downloads_session_same_account", (acme_id, acme_export, "console", None, globex_session)),
            ]
            for constraint, args in refused:
                with pytest.raises(asyncpg.ForeignKeyViolationError, match=constraint):
                    async with conn.transaction():
                        await conn.execute(record, *args)
        finally:
            await outer.rollback()
