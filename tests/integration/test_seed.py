"""The demo seed against a real PostgreSQL: sizes, idempotency, realism and escape-test values.

`db_conn` (tests/conftest.py) is a connection to a freshly migrated, empty database; each test seeds
it with the same small sizes (about 0.3 s).
"""

from __future__ import annotations

import hashlib

import asyncpg

from exporthub.accounts import account_for_key, hash_api_key
from exporthub.db.migrate import migrate, migration_files
from exporthub.db.seed import DEMO_ACCOUNTS, ESCAPE_TEST_VALUES, TABLES, Seeded, is_seeded, issue_demo_keys, seed
from tests.harness import scratch_database

EMPLOYEES = 300
PAYROLL = 2_000

# acme gets exactly what was asked; the others 2% with floors; timesheets ~ payroll / 2 and
# compliance ~ employees / 2, with floors of 500 and 200.
EXPECTED = {
    "acme": {"departments": 12, "employees": 300, "payroll": 2_000, "timesheets": 1_000, "compliance": 200},
    "globex": {"departments": 10, "employees": 200, "payroll": 1_000, "timesheets": 500, "compliance": 200},
    "initech": {"departments": 8, "employees": 200, "payroll": 1_000, "timesheets": 500, "compliance": 200},
}

FREE_TEXT = {"employees": "notes", "payroll": "memo", "timesheets": "notes", "compliance": "notes"}


async def _seed(conn: asyncpg.Connection) -> Seeded:
    return await seed(conn, employees=EMPLOYEES, payroll=PAYROLL)


async def _counts(conn: asyncpg.Connection) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for demo in DEMO_ACCOUNTS:
        counts[demo.slug] = {}
        for table in TABLES:
            counts[demo.slug][table] = await conn.fetchval(
                f"SELECT count(*) FROM {table} t JOIN accounts a ON a.id = t.account_id WHERE a.slug = $1",
                demo.slug,
            )
    return counts


async def test_seed_creates_the_demo_accounts_with_the_requested_sizes(db_conn: asyncpg.Connection) -> None:
    assert not await is_seeded(db_conn)

    inserted = await _seed(db_conn)

    assert inserted.rows == EXPECTED
    assert await _counts(db_conn) == EXPECTED
    assert await is_seeded(db_conn)
    names = dict(await db_conn.fetch("SELECT slug, name FROM accounts"))
    assert names["acme"] == "Acme Corporation"
    assert names["globex"] == "Globex GmbH"
    assert names["initech"] == "Initech Ltd"
    assert await db_conn.fetchval("SELECT bool_and(is_demo) FROM accounts")


async def test_seeding_twice_does_not_duplicate(db_conn: asyncpg.Connection) -> None:
    await _seed(db_conn)
    before = await _counts(db_conn)
    keys_before = await db_conn.fetchval("SELECT count(*) FROM api_keys")

    again = await _seed(db_conn)

    assert again.rows == {d.slug: dict.fromkeys(TABLES, 0) for d in DEMO_ACCOUNTS}
    assert again.api_keys == {}
    assert await _counts(db_conn) == before == EXPECTED
    assert await db_conn.fetchval("SELECT count(*) FROM api_keys") == keys_before
    assert await db_conn.fetchval("SELECT count(*) FROM accounts WHERE slug IN ('acme', 'globex', 'initech')") == 3


async def test_demo_api_keys_are_random_and_resolve_to_their_accounts(db_conn: asyncpg.Connection) -> None:
    seeded = await _seed(db_conn)
    assert seeded.api_keys.keys() == {d.slug for d in DEMO_ACCOUNTS}
    for demo in DEMO_ACCOUNTS:
        key = seeded.api_keys[demo.slug]
        assert key.startswith("ehk_") and len(key) > 40
        account = await account_for_key(db_conn, key)
        assert account is not None, demo.slug
        assert (account.slug, account.name) == (demo.slug, demo.name)
    # Only the hash is stored.
    assert await db_conn.fetchval("SELECT count(*) FROM api_keys WHERE key_hash = $1", hash_api_key(key)) == 1
    assert await db_conn.fetchval("SELECT count(*) FROM api_keys WHERE position($1 in label || prefix) > 0", key) == 0
    assert await account_for_key(db_conn, key[:-1] + ("A" if key[-1] != "A" else "B")) is None


async def test_issuing_demo_keys_revokes_the_previous_ones_of_that_label(db_conn: asyncpg.Connection) -> None:
    seeded = await _seed(db_conn)
    await db_conn.execute("INSERT INTO accounts (slug, name) VALUES ('customer', 'Customer Ltd')")
    first = await issue_demo_keys(db_conn, label="dev")
    second = await issue_demo_keys(db_conn, label="dev")
    assert first.keys() == second.keys() == {d.slug for d in DEMO_ACCOUNTS}  # not the customer
    for slug in first:
        assert await account_for_key(db_conn, first[slug]) is None
        assert (await account_for_key(db_conn, second[slug])).slug == slug  # type: ignore[union-attr]
        assert (await account_for_key(db_conn, seeded.api_keys[slug])).slug == slug  # type: ignore[union-attr]


async def test_migration_flags_seeded_accounts_and_revokes_the_published_demo_keys(server_settings) -> None:
    """Databases seeded before 0005 hold keys that were printed in the README: they stop working."""
    published = "ehk_demo_" + "acme_" + "0" * 22  # built up, so that no key is written out in the source
    async with scratch_database(server_settings.db.url, "exporthub_0005", migrated=False) as url:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("CREATE TABLE schema_migrations (name text PRIMARY KEY, applied_at timestamptz)")
            for name, sql in migration_files():
                if name < "0005":
                    await conn.execute(sql)
                    await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
            acme = await conn.fetchval(
                "INSERT INTO accounts (id, slug, name) VALUES (md5('exporthub-demo/acme')::uuid, 'acme', 'Acme')"
                " RETURNING id"
            )
            await conn.execute("INSERT INTO accounts (slug, name) VALUES ('customer', 'Customer Ltd')")
            await conn.execute(
                "INSERT INTO api_keys (account_id, key_hash, prefix) VALUES ($1, $2, $3)",
                acme,
                hashlib.sha256(published.encode()).digest(),
                published[:12],
            )
            assert (await account_for_key(conn, published)) is not None

            assert "0005_demo_accounts.sql" in await migrate(conn)

            assert await account_for_key(conn, published) is None
            flags = dict(await conn.fetch("SELECT slug, is_demo FROM accounts"))
            assert flags == {"acme": True, "customer": False}
        finally:
            await conn.close()


SCRIPTS = {
    "accented Latin": "[À-ÖØ-öø-žŁłŃńŚśŹźŻż]",
    "Greek": "[\u0370-\u03ff]",
    "Cyrillic": "[\u0400-\u04ff]",
    "CJK": "[\u4e00-\u9fff]",
    "Arabic": "[\u0600-\u06ff]",
}


async def test_names_include_non_ascii_scripts(db_conn: asyncpg.Connection) -> None:
    await _seed(db_conn)
    for script, pattern in SCRIPTS.items():
        found = await db_conn.fetchval(
            "SELECT count(*) FROM employees WHERE first_name ~ $1 OR last_name ~ $1", pattern
        )
        assert found > 0, f"no {script} names"


async def test_specific_international_names_are_present(db_conn: asyncpg.Connection) -> None:
    await _seed(db_conn)
    names = {
        r["n"]
        for r in await db_conn.fetch("SELECT first_name AS n FROM employees UNION SELECT last_name FROM employees")
    }
    # At these sizes every name in the lists appears at least once (the seed is deterministic).
    for name in ("José", "Zoë", "François", "Jürgen", "Øyvind", "Łukasz", "Ñúñez", "Δημήτρης",
                 "Παπαδόπουλος", "Светлана", "Иванов", "李", "王芳", "محمد"):  # fmt: skip
        assert name in names, name
    # Emails stay ASCII whatever the name.
    assert await db_conn.fetchval("SELECT count(*) FROM employees WHERE email !~ '^[a-z0-9.@-]+$'") == 0


async def test_every_escape_test_value_is_in_every_resource(db_conn: asyncpg.Connection) -> None:
    await _seed(db_conn)
    for table, column in FREE_TEXT.items():
        for demo in DEMO_ACCOUNTS:
            rows = await db_conn.fetch(
                f"SELECT t.{column} AS v, count(*) AS n FROM {table} t JOIN accounts a ON a.id = t.account_id"
                " WHERE a.slug = $1 GROUP BY 1",
                demo.slug,
            )
            counts = {r["v"]: r["n"] for r in rows}
            where = (demo.slug, table)
            for value in ESCAPE_TEST_VALUES:
                assert counts.get(value, 0) > 0, (*where, value)
            assert counts.get(None, 0) > 0, (*where, "some NULLs")
            escaped = sum(counts.get(v, 0) for v in ESCAPE_TEST_VALUES)
            assert 0.02 <= escaped / sum(counts.values()) <= 0.10, (*where, escaped)


async def test_formula_like_prefixes_are_all_represented(db_conn: asyncpg.Connection) -> None:
    await _seed(db_conn)
    for table, column in FREE_TEXT.items():
        for prefix in ("=", "+", "-", "@", "\t", "\r"):
            found = await db_conn.fetchval(f"SELECT count(*) FROM {table} WHERE left({column}, 1) = $1", prefix)
            assert found > 0, (table, repr(prefix))
        for needle in (",", '"', "\n", "\x07"):
            found = await db_conn.fetchval(f"SELECT count(*) FROM {table} WHERE strpos({column}, $1) > 0", needle)
            assert found > 0, (table, repr(needle))


async def test_rows_are_consistent(db_conn: asyncpg.Connection) -> None:
    await _seed(db_conn)
    checks = {
        "net pay != gross - tax - deductions": (
            "SELECT count(*) FROM payroll WHERE net_pay <> gross_pay - tax - deductions"
        ),
        "processed_at iff approved/paid": (
            "SELECT count(*) FROM payroll WHERE (status IN ('approved', 'paid')) <> (processed_at IS NOT NULL)"
        ),
        "payroll outside employment": (
            "SELECT count(*) FROM payroll p JOIN employees e ON e.id = p.employee_id"
            " WHERE e.account_id <> p.account_id OR e.hire_date > p.period_end"
            " OR e.termination_date < p.period_start OR p.period_end < p.period_start"
        ),
        "termination_date iff terminated": (
            "SELECT count(*) FROM employees WHERE (status = 'terminated') <> (termination_date IS NOT NULL)"
            " OR termination_date <= hire_date"
        ),
        "fte out of range": "SELECT count(*) FROM employees WHERE fte NOT IN (1.00, 0.80, 0.60, 0.50, 0.40)",
        "employment type": (
            "SELECT count(*) FROM employees WHERE employment_type NOT IN ('full_time', 'part_time', 'contractor')"
        ),
        "approved_at iff approved": (
            "SELECT count(*) FROM timesheets WHERE (status = 'approved') <> (approved_at IS NOT NULL)"
        ),
        "completed_at iff completed": (
            "SELECT count(*) FROM compliance WHERE (status = 'completed') <> (completed_at IS NOT NULL)"
        ),
        "record type": (
            "SELECT count(*) FROM compliance WHERE record_type NOT IN"
            " ('training', 'certification', 'background_check', 'right_to_work', 'policy_ack')"
        ),
        "cross-account references": (
            "SELECT (SELECT count(*) FROM timesheets t JOIN employees e ON e.id = t.employee_id"
            "        WHERE e.account_id <> t.account_id)"
            " + (SELECT count(*) FROM compliance c JOIN employees e ON e.id = c.employee_id"
            "        WHERE e.account_id <> c.account_id)"
            " + (SELECT count(*) FROM employees e JOIN departments d ON d.id = e.department_id"
            "        WHERE d.account_id <> e.account_id)"
        ),
    }
    for label, sql in checks.items():
        assert await db_conn.fetchval(sql) == 0, label
    managers = await db_conn.fetchval("SELECT avg(is_manager::int) FROM employees")
    assert 0.04 < managers < 0.18
    statuses = {r["status"] for r in await db_conn.fetch("SELECT DISTINCT status FROM employees")}
    assert statuses == {"active", "on_leave", "terminated"}
