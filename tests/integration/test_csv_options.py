"""CSV for European Excel, end to end over HTTP: a semicolon or tab delimiter, gzip, opened with the
csv module (and gzip.open) and compared cell for cell with the database; cells holding the delimiter,
quotes and line breaks, and formula-like text still made inert. Bad values answer 422 naming the field."""

from __future__ import annotations

import csv
import gzip
import io
import re
from typing import Any

import asyncpg
import httpx
import pytest

from exporthub.catalog import load_catalog
from tests.integration.helpers import export_and_download
from tests.integration.test_export_files import csv_text, expected_rows

SPEC = load_catalog().resources["compliance"]
COLUMNS = [c.key for c in SPEC.columns]  # notes hold the seed's escape test values


@pytest.mark.parametrize("delimiter", [";", "\t"], ids=["semicolon", "tab"])
@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
async def test_the_file_opens_cell_for_cell_with_its_delimiter(
    api: httpx.AsyncClient, pool: asyncpg.Pool, delimiter: str, compressed: bool
) -> None:
    body = {"format": "csv", "resource": "compliance", "columns": COLUMNS, "csvDelimiter": delimiter}
    if compressed:
        body["csvGzip"] = True
    status, content = await export_and_download(api, body)
    response = await api.get(status["downloadUrl"])
    name = status["fileName"]
    if compressed:
        assert re.fullmatch(r"compliance-\d{8}-\d{6}\.csv\.gz", name)
        assert response.headers["content-type"] == "application/gzip"
        assert content[:2] == b"\x1f\x8b"
        with gzip.open(io.BytesIO(content), "rt", encoding="utf-8-sig", newline="") as f:
            lines = list(csv.reader(f, delimiter=delimiter))
        raw = gzip.decompress(content)
    else:
        assert re.fullmatch(r"compliance-\d{8}-\d{6}\.csv", name)
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        lines = list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline=""), delimiter=delimiter))
        raw = content
    assert response.headers["content-disposition"] == f'attachment; filename="{name}"'
    assert raw.startswith(b"\xef\xbb\xbf")
    header = raw[3 : raw.index(b"\r\n")].decode()
    labels = [c.label for c in SPEC.columns]
    assert header == delimiter.join(labels)  # no label holds a delimiter, so none is quoted

    rows = await expected_rows(pool, "compliance", {})
    assert lines[0] == labels
    assert len(lines) == len(rows) + 1 == status["totalRows"] + 1
    kinds = [c.type for c in SPEC.columns]
    for i, (line, row) in enumerate(zip(lines[1:], rows, strict=True)):
        assert line == [csv_text(row[k], kind) for k, kind in zip(COLUMNS, kinds, strict=True)], f"row {i + 1}"
    notes = [line[COLUMNS.index("notes")] for line in lines[1:]]
    # The hard cells came through: the delimiter itself, quotes with a line break, formulas made inert.
    assert any(delimiter in n for n in notes)
    assert 'Comma, "double quotes" and\na second line' in notes
    assert '\'=HYPERLINK("http://evil.example","click")' in notes
    assert "'\tTab-leading value" in notes
    assert not any(n.startswith(("=", "+", "@", "\t", "\r")) for n in notes)


async def test_a_plain_csv_is_unchanged_by_the_options(api: httpx.AsyncClient) -> None:
    body: dict[str, Any] = {"format": "csv", "resource": "compliance", "columns": ["recordId", "notes"]}
    _, default = await export_and_download(api, body)
    _, explicit = await export_and_download(api, {**body, "csvDelimiter": ",", "csvGzip": False})
    assert default == explicit and default.startswith(b"\xef\xbb\xbfRecord ID,Notes\r\n")


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"format": "csv", "csvDelimiter": "|"}, "csvDelimiter", "unknown csvDelimiter '|'"),
        ({"format": "csv", "csvDelimiter": 59}, "csvDelimiter", "got a number"),
        ({"format": "csv", "csvDelimiter": "tab"}, "csvDelimiter", "unknown csvDelimiter 'tab'"),
        ({"format": "csv", "csvDelimiter": ";" * 60_000}, "csvDelimiter", "unknown csvDelimiter"),
        ({"format": "csv", "csvGzip": "maybe"}, "csvGzip", "expected true or false"),
        ({"format": "csv", "csvGzip": [True]}, "csvGzip", "got a list"),
        ({"format": "xlsx", "csvDelimiter": ";"}, "csvDelimiter", "CSV only; leave it out for xlsx"),
        ({"format": "pdf", "csvGzip": True}, "csvGzip", "CSV only; leave it out for pdf"),
        ({"format": "xlsx", "csvGzip": False}, "csvGzip", "CSV only; leave it out for xlsx"),
    ],
)
async def test_a_bad_csv_option_answers_422_naming_the_field(
    api: httpx.AsyncClient, body: dict[str, Any], field: str, words: str
) -> None:
    response = await api.post("/api/v1/exports", json={"resource": "compliance", **body})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == [field]
    assert words in errors[0]["message"] and len(errors[0]["message"]) < 300


async def test_a_schedule_keeps_the_csv_options_and_refuses_them_for_other_formats(api: httpx.AsyncClient) -> None:
    base = {"resource": "compliance", "cron": "0 6 * * 1", "timeZone": "Europe/Berlin"}
    created = await api.post("/api/v1/schedules", json={**base, "format": "csv", "csvDelimiter": ";", "csvGzip": True})
    assert created.status_code == 201, created.text
    assert (created.json()["csvDelimiter"], created.json()["csvGzip"]) == (";", True)
    refused = await api.post("/api/v1/schedules", json={**base, "format": "xlsx", "csvDelimiter": ";"})
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["csvDelimiter"]
    await api.delete(f"/api/v1/schedules/{created.json()['id']}")
