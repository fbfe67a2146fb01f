"""The REST API's contract: auth, validation, tenant isolation, idempotency, the active-export cap."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx
import pytest

from exporthub.accounts import hash_api_key
from exporthub.db.seed import DEMO_ACCOUNTS
from tests.integration.helpers import new_key, submit, wait_status


async def job_count(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM export_jobs")


async def test_health_reports_both_servers(hub, api: httpx.AsyncClient) -> None:
    response = await api.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "postgres": "ok", "redis": "ok"}


def followed(schema: dict, node: dict) -> dict:
    """The node with its $ref followed (also through a one-element allOf)."""
    while True:
        if "$ref" in node:
            node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
        elif len(node.get("allOf", [])) == 1:
            node = node["allOf"][0]
        else:
            return node


async def test_openapi_documents_the_export_request(api: httpx.AsyncClient) -> None:
    schema = (await api.get("/schema/openapi.json")).json()
    post = schema["paths"]["/api/v1/exports"]["post"]
    body = followed(schema, post["requestBody"]["content"]["application/json"]["schema"])
    # The resources are the deployment's catalog, and a key may see only some: the schema points at them.
    assert "GET /api/v1/resources" in body["properties"]["resource"]["description"]
    assert "apiKey" in schema["components"]["securitySchemes"]
    assert "/api/v1/exports/{export_id}/cancel" in schema["paths"]


async def test_openapi_lists_every_field_of_the_export_request_with_its_type(api: httpx.AsyncClient) -> None:
    schema = (await api.get("/schema/openapi.json")).json()
    post = schema["paths"]["/api/v1/exports"]["post"]
    assert post["requestBody"]["required"] is True
    body = followed(schema, post["requestBody"]["content"]["application/json"]["schema"])

    def types(node: dict) -> list[str]:
        return sorted(followed(schema, n)["type"] for n in node.get("oneOf", [node]))

    fields = body["properties"]
    assert body["type"] == "object" and body["required"] == ["format", "resource"]
    assert {name: types(node) for name, node in fields.items()} == {
        "format": ["string"],
        "resource": ["string"],
        "columns": ["array", "null"],
        "filters": ["null", "object"],
        "webhookUrl": ["null", "string"],
        "csvBom": ["boolean", "null"],
        "timezone": ["null", "string"],
        "csvDelimiter": [["null", "string"]],  # one schema: an enum that admits null
        "csvGzip": ["boolean", "null"],
    }
    assert fields["timezone"]["maxLength"] == 64 and fields["timezone"]["examples"] == ["Asia/Tokyo"]
    assert followed(schema, fields["format"])["enum"] == ["csv", "xlsx", "pdf"]
    assert fields["csvDelimiter"]["enum"] == [",", ";", "\t", None]
    assert fields["columns"]["oneOf"][0]["items"] == {"type": "string"}
    assert fields["columns"]["minItems"] == 1 and fields["columns"]["uniqueItems"] is True
    assert fields["resource"]["maxLength"] == 200 and fields["webhookUrl"]["maxLength"] == 2048
    assert fields["webhookUrl"]["format"] == "uri"
    assert all(node.get("description") for node in fields.values())
    filters = followed(schema, next(n for n in fields["filters"]["oneOf"] if "$ref" in n))
    assert {name: types(node) for name, node in filters["properties"].items()} == {
        "dateFrom": ["null", "string"],
        "dateTo": ["null", "string"],
        "departmentIds": ["array", "null"],
        "status": ["null", "string"],
    }
    for name in ("dateFrom", "dateTo"):  # a day, or a moment with its offset
        assert filters["properties"][name]["anyOf"] == [{"format": "date"}, {"format": "date-time"}]
    assert filters["properties"]["departmentIds"]["maxItems"] == 500
    example = post["requestBody"]["content"]["application/json"]["schema"]["examples"][0]
    assert (await api.post("/api/v1/exports", json=example)).status_code == 202  # the example is a valid request
    [idempotency_key] = [p for p in post["parameters"] if p["in"] == "header"]
    assert idempotency_key["name"] == "Idempotency-Key" and idempotency_key["required"] is False


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer ehk_not_a_key", "Basic abc", "ehk_demo_acme"])
async def test_requests_without_a_valid_key_are_refused(hub, clean_jobs, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    async with httpx.AsyncClient(base_url=hub.base_url, headers=headers) as client:
        for method, path in [
            ("GET", "/api/v1/resources"),
            ("GET", "/api/v1/exports"),
            ("POST", "/api/v1/exports"),
            ("GET", f"/api/v1/exports/{uuid.uuid4()}"),
        ]:
            response = await client.request(method, path, json={"format": "csv", "resource": "payroll"})
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert "API key" in response.json()["detail"]


async def test_resources_describe_columns_filters_and_statuses(api: httpx.AsyncClient) -> None:
    items = {r["key"]: r for r in (await api.get("/api/v1/resources")).json()["items"]}
    assert set(items) == {"employees", "payroll", "timesheets", "compliance"}
    payroll = items["payroll"]
    columns = {c["key"]: c for c in payroll["columns"]}
    assert columns["grossPay"]["type"] == "money" and columns["grossPay"]["default"] is True
    assert columns["employeeName"]["type"] == "text"
    assert payroll["dateFilter"] == "payDate"
    assert payroll["statuses"] == ["draft", "approved", "paid", "void"]


async def test_a_limited_key_sees_and_exports_only_its_resources(hub, pool: asyncpg.Pool, clean_jobs) -> None:
    key = await new_key(pool, "acme", resources=["payroll", "timesheets"])
    async with httpx.AsyncClient(base_url=hub.base_url, headers={"Authorization": f"Bearer {key}"}) as client:
        listed = (await client.get("/api/v1/resources")).json()["items"]
        assert [r["key"] for r in listed] == ["payroll", "timesheets"]
        for resource in ("employees", "compliance", "no-such-thing"):
            refused = await client.post("/api/v1/exports", json={"format": "csv", "resource": resource})
            assert refused.status_code == 403, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert f"may not export '{resource}'" in refused.json()["detail"]
        assert await job_count(pool) == 0
        await submit(client, {"format": "csv", "resource": "payroll"})


async def test_key_use_is_recorded_at_most_once_a_minute(hub, pool: asyncpg.Pool) -> None:
    key = await new_key(pool, "globex")

    async def last_used() -> object:
        return await pool.fetchval("SELECT last_used_at FROM api_keys WHERE key_hash = $1", hash_api_key(key))

    assert await last_used() is None
    async with httpx.AsyncClient(base_url=hub.base_url, headers={"Authorization": f"Bearer {key}"}) as client:
        assert (await client.get("/api/v1/resources")).status_code == 200
        first = await last_used()
        assert first is not None
        assert (await client.get("/api/v1/resources")).status_code == 200
        assert await last_used() == first  # within the minute: not written again
        await pool.execute(
            "UPDATE api_keys SET last_used_at = now() - interval '2 minutes' WHERE key_hash = $1", hash_api_key(key)
        )
        assert (await client.get("/api/v1/resources")).status_code == 200
        assert await last_used() > first  # type: ignore[operator]


async def test_submit_answers_at_once_with_an_id(api: httpx.AsyncClient, hub) -> None:
    created = await submit(api, {"format": "csv", "resource": "employees"})
    assert created["status"] == "queued"
    assert created["pollUrl"] == f"{hub.base_url}/api/v1/exports/{created['exportId']}"
    status = await wait_status(api, created["exportId"])
    assert status["status"] == "completed"
    assert status["progress"] == 100 and status["processedRows"] == status["totalRows"] > 0
    for key in ("createdAt", "startedAt", "completedAt", "expiresAt", "downloadUrl", "fileSize"):
        assert status[key], key


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        # A fault of shape (a type, a missing or unknown field) is named alone: msgspec stops at the first.
        ({}, {"format"}),
        ({"format": "docx", "resource": "salaries"}, {"format"}),
        ({"format": ["csv"], "resource": 7, "columns": "all", "filters": {"status": 1}}, {"format"}),
        # The catalog's checks name every field at fault.
        ({"format": "csv", "resource": "salaries", "webhookUrl": "javascript:alert(1)"}, {"resource", "webhookUrl"}),
        ({"format": "csv", "resource": "payroll", "columns": ["grossPay", "nope"]}, {"columns"}),
        ({"format": "csv", "resource": "employees", "filters": {"status": "paid"}}, {"filters.status"}),
        (
            {
                "format": "csv",
                "resource": "payroll",
                "filters": {"dateFrom": "2025-02-01", "dateTo": "2025-01-01"},
            },
            {"filters.dateFrom"},
        ),
        (
            {"format": "csv", "resource": "payroll", "filters": {"departmentIds": ["123"]}},
            {"filters.departmentIds[0]"},
        ),
        ({"format": "csv", "resource": "payroll", "webhookUrl": "javascript:alert(1)"}, {"webhookUrl"}),
        ({"format": "pdf", "resource": "payroll"}, {"format"}),
    ],
)
async def test_bad_requests_name_the_fields_at_fault_and_store_nothing(
    api: httpx.AsyncClient, pool: asyncpg.Pool, body: dict, fields: set[str]
) -> None:
    response = await api.post("/api/v1/exports", json=body)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert {e["field"] for e in problem["errors"]} == fields
    assert all(e["message"] for e in problem["errors"])
    assert await job_count(pool) == 0


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"format": 3, "resource": "payroll"}, "format", "expected one of csv, xlsx, pdf, got a number"),
        ({"format": "docx", "resource": "payroll"}, "format", "unknown format 'docx'; one of csv, xlsx, pdf"),
        ({"format": None, "resource": "payroll"}, "format", "required; one of csv, xlsx, pdf"),
        ({"format": "csv"}, "resource", "required"),
        ({"format": "csv", "resource": {"key": "payroll"}}, "resource", "expected a string, got an object"),
        (
            {"format": "csv", "resource": "payroll", "columns": "grossPay"},
            "columns",
            "expected a list of strings, got a string",
        ),
        (
            {"format": "csv", "resource": "payroll", "columns": ["tax", None]},
            "columns[1]",
            "expected a string, got null",
        ),
        ({"format": "csv", "resource": "payroll", "filters": ["status"]}, "filters", "expected an object, got a list"),
        (
            {"format": "csv", "resource": "payroll", "filters": {"dateFrom": "01/02/2025"}},
            "filters.dateFrom",
            "expected a date as YYYY-MM-DD or a date and time with its offset, such as 2024-01-01T09:00:00+09:00",
        ),
        (
            {"format": "csv", "resource": "payroll", "filters": {"dateTo": 20250101}},
            "filters.dateTo",
            "expected a date as YYYY-MM-DD or a date and time with its offset, such as 2024-01-01T09:00:00+09:00,"
            " got a number",
        ),
        (
            {"format": "csv", "resource": "payroll", "filters": {"departmentIds": "d1"}},
            "filters.departmentIds",
            "expected a list of strings, got a string",
        ),
        (
            {"format": "csv", "resource": "payroll", "filters": {"departmentIds": ["d1", 2]}},
            "filters.departmentIds[1]",
            "expected a string, got a number",
        ),
        (
            {"format": "csv", "resource": "payroll", "filters": {"status": ["paid"]}},
            "filters.status",
            "expected a string, got a list",
        ),
        (
            {"format": "csv", "resource": "payroll", "filters": {"region": "EU"}},
            "filters.region",
            "unknown field; allowed: dateFrom, dateTo, departmentIds, status",
        ),
        (
            {"format": "csv", "resource": "payroll", "webhookUrl": ["https://hooks.example.com"]},
            "webhookUrl",
            "expected a string, got a list",
        ),
        ({"format": "csv", "resource": "payroll", "csvBom": "no"}, "csvBom", "expected true or false, got a string"),
        (
            {"format": "csv", "resource": "payroll", "colour": "red"},
            "colour",
            "unknown field; allowed: columns, csvBom, csvDelimiter, csvGzip, filters, format, resource, timezone, "
            "webhookUrl",
        ),
        ([{"format": "csv", "resource": "payroll"}], "body", "expected a JSON object, got a list"),
    ],
)
async def test_a_field_of_the_wrong_type_is_named_in_words(
    api: httpx.AsyncClient, pool: asyncpg.Pool, body: object, field: str, message: str
) -> None:
    response = await api.post("/api/v1/exports", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["title"] == "The request has invalid fields"
    assert problem["errors"] == [{"field": field, "message": message}]
    assert problem["detail"] == f"{field}: {message}"
    assert await job_count(pool) == 0


async def test_no_body_or_null_is_named_as_the_body(api: httpx.AsyncClient) -> None:
    for content in (b"", b"null"):
        response = await api.post("/api/v1/exports", content=content, headers={"content-type": "application/json"})
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == ["body"]
        assert response.json()["errors"][0]["message"].startswith("expected a JSON object")


async def test_a_bad_header_beside_a_bad_body_is_named_too(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/exports", json={"format": 1}, headers={"Idempotency-Key": "k" * 300})
    assert response.status_code == 422, response.text
    fields = [e["field"] for e in response.json()["errors"]]
    assert "format" in fields and len(fields) == 2, fields  # the header as Litestar names it, as in a 400
    alone = await api.post(
        "/api/v1/exports", json={"format": "csv", "resource": "payroll"}, headers={"Idempotency-Key": "k" * 300}
    )
    assert alone.status_code == 400, alone.text  # a header is not the body: as before


async def test_without_a_key_a_bad_body_is_still_a_401(hub) -> None:
    async with httpx.AsyncClient(base_url=hub.base_url) as client:
        response = await client.post("/api/v1/exports", json={"format": 1, "colour": "red"})
    assert response.status_code == 401, response.text


async def test_other_accounts_departments_are_refused(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    theirs = await pool.fetchval(
        "SELECT d.id FROM departments d JOIN accounts a ON a.id = d.account_id WHERE a.slug = 'globex' LIMIT 1"
    )
    response = await api.post(
        "/api/v1/exports",
        json={"format": "csv", "resource": "payroll", "filters": {"departmentIds": [str(theirs)]}},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "filters.departmentIds[0]"
    assert await job_count(pool) == 0


async def test_malformed_and_oversized_bodies_get_4xx(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    bad_json = await api.post(
        "/api/v1/exports", content=b'{"format": "csv",', headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 400
    huge = await api.post(
        "/api/v1/exports", json={"format": "csv", "resource": "payroll", "columns": ["x" * 100] * 1000}
    )
    assert huge.status_code == 413
    not_object = await api.post("/api/v1/exports", json=[1, 2])
    assert not_object.status_code == 422 and not_object.json()["errors"][0]["field"] == "body"
    assert await job_count(pool) == 0


async def test_list_parameters_are_validated(api: httpx.AsyncClient) -> None:
    for query in ("limit=0", "limit=101", "limit=ten", "status=finished"):
        response = await api.get(f"/api/v1/exports?{query}")
        assert response.status_code == 400, query
        assert response.json()["errors"], query


async def test_list_is_newest_first_and_filters_by_status(api: httpx.AsyncClient) -> None:
    ids = []
    for _ in range(3):
        created = await submit(api, {"format": "csv", "resource": "compliance", "columns": ["recordId"]})
        ids.append(created["exportId"])
        await wait_status(api, created["exportId"])
    listed = (await api.get("/api/v1/exports?limit=2")).json()["items"]
    assert [e["id"] for e in listed] == ids[::-1][:2]
    completed = (await api.get("/api/v1/exports?status=completed")).json()["items"]
    assert {e["id"] for e in completed} == set(ids)
    assert (await api.get("/api/v1/exports?status=failed")).json()["items"] == []


async def test_other_accounts_exports_look_exactly_unknown(hub, api: httpx.AsyncClient) -> None:
    created = await submit(api, {"format": "csv", "resource": "compliance"})
    mine = await wait_status(api, created["exportId"])
    unknown = str(uuid.uuid4())
    async with hub.client("globex") as theirs:
        for path, method in [("", "GET"), ("/cancel", "POST")]:
            other = await theirs.request(method, f"/api/v1/exports/{created['exportId']}{path}")
            missing = await theirs.request(method, f"/api/v1/exports/{unknown}{path}")
            assert other.status_code == missing.status_code == 404
            assert other.json()["detail"].replace(created["exportId"], "ID") == missing.json()["detail"].replace(
                unknown, "ID"
            )
        listed = (await theirs.get("/api/v1/exports")).json()["items"]
        assert created["exportId"] not in {e["id"] for e in listed}
    # the owner still sees it, untouched
    assert (await api.get(f"/api/v1/exports/{created['exportId']}")).json()["status"] == mine["status"]


async def test_idempotency_key_returns_the_same_export(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    body = {"format": "csv", "resource": "timesheets", "filters": {"status": "approved"}}
    first = await submit(api, body, **{"Idempotency-Key": "run-42"})
    again = await submit(api, body, **{"Idempotency-Key": "run-42"})
    assert again["exportId"] == first["exportId"]
    conflict = await api.post("/api/v1/exports", json={**body, "format": "xlsx"}, headers={"Idempotency-Key": "run-42"})
    assert conflict.status_code == 409
    assert "Idempotency-Key" in conflict.json()["detail"]
    other = await submit(api, body, **{"Idempotency-Key": "run-43"})
    assert other["exportId"] != first["exportId"]
    assert await job_count(pool) == 2


async def test_same_key_after_24h_starts_a_new_export(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    body = {"format": "csv", "resource": "compliance", "columns": ["recordId"]}
    first = await submit(api, body, **{"Idempotency-Key": "nightly"})
    await pool.execute(
        "UPDATE export_jobs SET created_at = now() - interval '25 hours' WHERE id = $1",
        uuid.UUID(first["exportId"]),
    )
    second = await submit(api, body, **{"Idempotency-Key": "nightly"})
    assert second["exportId"] != first["exportId"]


async def test_fifty_simultaneous_submits_respect_the_cap(paused_api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    # The paused hub holds every export it runs: none of the accepted ones can end while the others count.
    body = {"format": "pdf", "resource": "employees"}
    responses = await asyncio.gather(*(paused_api.post("/api/v1/exports", json=body) for _ in range(50)))
    codes = sorted(r.status_code for r in responses)
    assert codes.count(202) == 5, codes
    assert codes.count(429) == 45, codes
    refused = next(r for r in responses if r.status_code == 429)
    assert int(refused.headers["Retry-After"]) > 0
    assert "5 exports" in refused.json()["detail"]
    assert await job_count(pool) == 5
    await pool.execute("UPDATE export_jobs SET cancel_requested = true")


async def test_demo_keys_map_to_their_own_accounts(hub) -> None:
    for demo in DEMO_ACCOUNTS:
        async with hub.client(demo.slug) as client:
            assert (await client.get("/api/v1/exports")).status_code == 200


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [("csv", "text/csv; charset=utf-8"), ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")],
)
async def test_downloads_are_not_cached_and_name_one_charset(
    api: httpx.AsyncClient, fmt: str, content_type: str
) -> None:
    created = await submit(api, {"format": fmt, "resource": "compliance", "columns": ["recordId"]})
    status = await wait_status(api, created["exportId"])
    response = await api.get(status["downloadUrl"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == content_type
    assert response.headers["cache-control"] == "no-store"
