"""Run again asks for the very request an export was recorded from: every field of it."""

from __future__ import annotations

import dataclasses

import asyncpg

from exporthub.accounts import Account
from exporthub.catalog import load_catalog
from exporthub.exports.history import request_of
from exporthub.exports.models import ExportRequest
from exporthub.exports.validation import parse_export_request
from tests.factories import create_export

EVERY_FIELD = {
    "resource": "payroll",
    "format": "csv",
    "columns": ["netPay", "grossPay"],
    "filters": {"dateFrom": "2024-01-01", "dateTo": "2024-03-31", "status": "paid"},
    "webhookUrl": "https://hooks.example.com/done",
    "csvBom": False,
    "csvDelimiter": ";",
    "csvGzip": True,
    "timezone": "Asia/Tokyo",
}


async def test_a_recorded_export_asks_again_for_every_field_of_its_request(
    conn: asyncpg.Connection, acme: Account
) -> None:
    catalog = load_catalog()
    request = parse_export_request(EVERY_FIELD, catalog)
    # Every field is off its default here: a field added to requests fails this until EVERY_FIELD sets
    # it, and then until request_of carries it.
    for field in dataclasses.fields(ExportRequest):
        if field.default is not dataclasses.MISSING:
            assert getattr(request, field.name) != field.default, f"EVERY_FIELD leaves {field.name} at its default"
    job = await create_export(conn, acme.id, request)
    assert parse_export_request(request_of(job), catalog) == request
