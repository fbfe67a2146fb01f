"""The count behind progress and `totalRows` is the number of rows the export writes, for every
resource and filter, including the counts that leave the joins out."""

from __future__ import annotations

import datetime as dt

import asyncpg
import pytest

from exporthub.accounts import account_by_slug
from exporthub.catalog import load_catalog
from exporthub.exports.models import Filters
from exporthub.exports.query import build_export_query

RESOURCES = load_catalog().resources  # the HR catalog shipped in the package


@pytest.mark.parametrize("resource", sorted(RESOURCES))
async def test_count_equals_the_rows_exported(pool: asyncpg.Pool, resource: str) -> None:
    spec = RESOURCES[resource]
    acme = await account_by_slug(pool, "acme")
    assert acme is not None
    departments = [str(r["id"]) for r in await pool.fetch("SELECT id FROM departments WHERE account_id = $1", acme.id)]
    cases = [
        Filters(),
        Filters(date_from=dt.date(2025, 1, 1)),
        Filters(status=spec.statuses[0]),
        Filters(department_ids=tuple(departments[:2])),
        Filters(dt.date(2024, 1, 1), dt.date(2026, 6, 30), tuple(departments[1:4]), spec.statuses[-1]),
    ]
    counts = []
    for filters in cases:
        query = build_export_query(spec, spec.default_columns, filters, acme.tenant_key)
        rows = await pool.fetchval(f"SELECT count(*) FROM ({query.select_sql}) s", *query.args)
        assert await pool.fetchval(query.count_sql, *query.args) == rows, filters
        counts.append(rows)
    assert counts[0] > 0 and len(set(counts)) > 2  # the filters really filter
