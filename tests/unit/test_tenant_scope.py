"""One mechanism scopes every account-facing statement on ExportHub's own tables: AccountScope.

The catalog's tables (the exported data) have theirs in exports/query.py (tests/unit/exports/test_query.py);
tests/integration/test_tenant_tables.py checks that these lists name every table with an account_id.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

BACKEND = Path(__file__).resolve().parents[2] / "backend" / "exporthub"

OWN_TENANT_TABLES = (
    "export_jobs",
    "webhook_secrets",
    "webhook_events",
    "webhook_attempts",
    "api_keys",
    "console_sessions",
    "schedules",
    "export_downloads",
    "account_active_exports",
)
HR_TENANT_TABLES = ("departments", "employees", "payroll", "timesheets", "compliance")

# Where a statement on those tables may be written, and why it is not a client's request for its rows.
UNSCOPED = {
    "exports/unscoped.py": "the worker and the sweeps act on every account's jobs",
    "webhooks/store.py": "delivery: the worker's outbox, attempts and signing secrets",
    "accounts.py": "authentication (a key found by its hash) and administration (the CLI)",
    "console_sessions.py": "a session found by its token",
    "db/seed.py": "demo data",
}
SCOPED = "exports/account_scope.py"

_STATEMENT = re.compile(r"\b(FROM|JOIN|UPDATE|INTO)\s+(" + "|".join(OWN_TENANT_TABLES) + r")\b", re.IGNORECASE)
_INSERT = re.compile(r"INSERT\s+INTO\s+\w+\s*\(([^)]*)\)\s*VALUES\s*\(([^)]*)\)", re.IGNORECASE | re.DOTALL)


def _sql_strings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and _STATEMENT.search(node.value)
    ]


def _modules() -> dict[str, Path]:
    return {str(p.relative_to(BACKEND)): p for p in BACKEND.rglob("*.py")}


def test_only_the_scope_and_the_named_unscoped_modules_touch_tenant_tables() -> None:
    touching = {name for name, path in _modules().items() if _sql_strings(path)}
    assert touching - set(UNSCOPED) - {SCOPED} == set()
    assert SCOPED in touching


def _binds_the_account(statement: str) -> bool:
    if re.search(r"\baccount_id\s*=\s*\$1\b", statement):
        return True
    insert = _INSERT.search(statement)
    if insert is None:
        return False
    columns = [c.strip() for c in insert.group(1).split(",")]
    values = [v.strip() for v in insert.group(2).split(",")]
    return "account_id" in columns and values[columns.index("account_id")] == "$1"


def test_every_statement_of_the_scope_binds_its_account_as_the_first_parameter() -> None:
    statements = _sql_strings(BACKEND / SCOPED)
    assert len(statements) >= 10
    unbound = [s for s in statements if not _binds_the_account(s)]
    assert unbound == []


def test_the_scope_takes_no_account_id_from_its_callers() -> None:
    """The account is fixed when the scope is made: no method of it has an account parameter."""
    tree = ast.parse((BACKEND / SCOPED).read_text())
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        for method in (n for n in cls.body if isinstance(n, ast.AsyncFunctionDef)):
            names = [a.arg for a in [*method.args.args, *method.args.kwonlyargs]]
            assert not any("account" in name for name in names), (cls.name, method.name, names)


def test_the_guard_catches_an_unscoped_statement() -> None:
    assert not _binds_the_account("SELECT * FROM export_jobs WHERE id = $1")
    assert not _binds_the_account("INSERT INTO export_jobs (id, account_id) VALUES ($1, $2)")
    assert _binds_the_account("INSERT INTO export_jobs (id, account_id) VALUES ($2, $1)")
    assert _binds_the_account("UPDATE export_jobs SET x = 1 WHERE account_id = $1 AND id = $2")
