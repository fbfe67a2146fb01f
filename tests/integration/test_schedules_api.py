"""/api/v1/schedules over HTTP against the real web server: create, read, list, change, pause, delete;
the export part validated exactly as a submit is, the cron expression and the zone in words; another
account's schedule unknown (404), as its exports are."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import Hub
from tests.integration.helpers import new_key

MONTHLY = {
    "resource": "payroll",
    "format": "xlsx",
    "cron": "0 6 1 * *",
    "timeZone": "Europe/Berlin",
    "window": {"kind": "previous_month"},
    "webhookUrl": "http://127.0.0.1:9/exports",  # the tests' hub allows http and loopback; nothing is sent
    "name": "Payroll, monthly",
}


@pytest.fixture
async def schedules_api(hub: Hub, pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    """acme's client; every test starts with no schedules."""
    await pool.execute("DELETE FROM schedules")
    async with hub.client("acme") as client:
        yield client


async def create(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/api/v1/schedules", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def problems(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {e["field"]: e["message"] for e in response.json()["errors"]}


async def test_a_schedule_is_created_with_its_next_run_in_its_zone(schedules_api: httpx.AsyncClient) -> None:
    before = dt.datetime.now(dt.UTC)
    created = await create(schedules_api, MONTHLY)
    assert created["resource"] == "payroll" and created["format"] == "xlsx"
    assert created["cron"] == "0 6 1 * *" and created["timeZone"] == "Europe/Berlin"
    assert created["window"] == {"kind": "previous_month"}
    assert created["webhookUrl"] == "http://127.0.0.1:9/exports"
    assert created["enabled"] is True and created["name"] == "Payroll, monthly"
    assert created["description"] == "At 06:00 on the first day of every month (Europe/Berlin)"
    assert created["lastRun"] is None and created["retryAt"] is None
    next_run = dt.datetime.fromisoformat(created["nextRunAt"])
    local = next_run.astimezone(zoneinfo.ZoneInfo("Europe/Berlin"))
    assert (local.day, local.hour, local.minute) == (1, 6, 0)
    assert before < next_run <= before + dt.timedelta(days=32)

    found = await schedules_api.get(f"/api/v1/schedules/{created['id']}")
    assert found.status_code == 200 and found.json() == created
    listed = await schedules_api.get("/api/v1/schedules")
    assert [s["id"] for s in listed.json()["items"]] == [created["id"]]


async def test_patch_pauses_resumes_and_changes_only_what_it_names(schedules_api: httpx.AsyncClient) -> None:
    created = await create(schedules_api, MONTHLY)
    url = f"/api/v1/schedules/{created['id']}"

    paused = (await schedules_api.patch(url, json={"enabled": False})).json()
    assert paused["enabled"] is False and paused["nextRunAt"] is None
    assert {k: v for k, v in paused.items() if k not in ("enabled", "nextRunAt", "updatedAt")} == {
        k: v for k, v in created.items() if k not in ("enabled", "nextRunAt", "updatedAt")
    }

    resumed = (await schedules_api.patch(url, json={"enabled": True})).json()
    assert resumed["nextRunAt"] == created["nextRunAt"]  # the same next due time, computed from now again

    # Not a timing change: the due time stays; null clears an optional field.
    changed = (await schedules_api.patch(url, json={"format": "csv", "webhookUrl": None, "window": None})).json()
    assert changed["format"] == "csv" and changed["webhookUrl"] is None and changed["window"] is None
    assert changed["nextRunAt"] == created["nextRunAt"]

    retimed = (await schedules_api.patch(url, json={"cron": "30 7 * * *", "timeZone": "America/New_York"})).json()
    local = dt.datetime.fromisoformat(retimed["nextRunAt"]).astimezone(zoneinfo.ZoneInfo("America/New_York"))
    assert (local.hour, local.minute) == (7, 30)
    assert dt.datetime.fromisoformat(retimed["nextRunAt"]) - dt.datetime.now(dt.UTC) <= dt.timedelta(days=1)


async def test_delete_removes_it(schedules_api: httpx.AsyncClient) -> None:
    created = await create(schedules_api, MONTHLY)
    url = f"/api/v1/schedules/{created['id']}"
    assert (await schedules_api.delete(url)).status_code == 204
    assert (await schedules_api.get(url)).status_code == 404
    assert (await schedules_api.delete(url)).status_code == 404


async def test_another_accounts_schedule_is_unknown(hub: Hub, schedules_api: httpx.AsyncClient) -> None:
    created = await create(schedules_api, MONTHLY)
    url = f"/api/v1/schedules/{created['id']}"
    async with hub.client("globex") as globex:
        for response in (
            await globex.get(url),
            await globex.patch(url, json={"enabled": False}),
            await globex.delete(url),
        ):
            assert response.status_code == 404, response.text
        unknown_id = uuid.uuid4()
        unknown = (await globex.get(f"/api/v1/schedules/{unknown_id}")).json()
        theirs = (await globex.get(url)).json()
        assert theirs["detail"].replace(created["id"], "?") == unknown["detail"].replace(str(unknown_id), "?")
        assert (await globex.get("/api/v1/schedules")).json() == {"items": []}
    still = await schedules_api.get(url)
    assert still.status_code == 200 and still.json()["enabled"] is True


async def test_the_export_part_is_validated_as_a_submit_is(schedules_api: httpx.AsyncClient) -> None:
    body = {**MONTHLY, "columns": ["grossPay", "nope"], "filters": {"status": "lost"}, "format": "xlsx"}
    found = problems(await schedules_api.post("/api/v1/schedules", json=body))
    assert set(found) == {"columns", "filters.status"}
    assert "unknown column(s) nope" in found["columns"]
    assert found["filters.status"].startswith("'lost' is not a status of payroll")

    # The shape, as Litestar reads the Struct: the first field of the wrong type, in our words.
    found = problems(await schedules_api.post("/api/v1/schedules", json={**MONTHLY, "format": "docx"}))
    assert found == {"format": "unknown format 'docx'; one of csv, xlsx, pdf"}
    found = problems(await schedules_api.post("/api/v1/schedules", json={**MONTHLY, "every": "day"}))
    assert list(found) == ["every"] and found["every"].startswith("unknown field")
    body = {k: v for k, v in MONTHLY.items() if k != "cron"}
    assert problems(await schedules_api.post("/api/v1/schedules", json=body)) == {"cron": "required"}


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"cron": "0 6 1 *"}, "cron", "expected five fields (minute hour day-of-month month day-of-week)"),
        ({"cron": "61 6 * * *"}, "cron", "bad minute in '61 6 * * *'"),
        ({"cron": "0 6 * * MONDAY"}, "cron", "bad day-of-week"),
        ({"cron": "0 0 30 2 *"}, "cron", "bad day-of-month"),
        ({"timeZone": "Europe/Berln"}, "timeZone", "unknown time zone 'Europe/Berln'"),
        ({"timeZone": "Europe/Berln"}, "timeZone", "did you mean Europe/Berlin?"),
        ({"timeZone": "CEST"}, "timeZone", "expected an IANA name such as Europe/Berlin"),
        ({"window": {"kind": "last_days"}}, "window.days", "required for last_days"),
        ({"window": {"kind": "previous_week", "days": 3}}, "window.days", "only last_days takes days"),
        ({"window": {"kind": "last_days", "days": 0}}, "window.days", "expected a whole number >= 1"),
        ({"window": {"kind": "fortnight"}}, "window.kind", "unknown kind 'fortnight'; one of previous_day"),
        ({"filters": {"dateFrom": "2026-01-01"}}, "window", "either a window or filters.dateFrom / dateTo"),
    ],
)
async def test_cron_zone_and_window_faults_are_named(
    schedules_api: httpx.AsyncClient, changes: dict[str, Any], field: str, words: str
) -> None:
    found = problems(await schedules_api.post("/api/v1/schedules", json={**MONTHLY, **changes}))
    assert field in found, found
    assert words in found[field], found


async def test_every_fault_is_named_at_once(schedules_api: httpx.AsyncClient) -> None:
    body = {**MONTHLY, "cron": "every day", "timeZone": "Mars/Olympus", "columns": ["nope"]}
    assert set(problems(await schedules_api.post("/api/v1/schedules", json=body))) == {"columns", "cron", "timeZone"}


async def test_a_patch_is_checked_as_the_whole_schedule(schedules_api: httpx.AsyncClient) -> None:
    created = await create(schedules_api, MONTHLY)
    url = f"/api/v1/schedules/{created['id']}"
    found = problems(await schedules_api.patch(url, json={"filters": {"dateTo": "2026-01-31"}}))
    assert list(found) == ["window"]
    found = problems(await schedules_api.patch(url, json={"cron": "soon"}))
    assert list(found) == ["cron"]
    assert (await schedules_api.get(url)).json() == created


async def test_a_key_limited_to_some_resources_schedules_only_those(
    hub: Hub, pool: asyncpg.Pool, schedules_api: httpx.AsyncClient
) -> None:
    key = await new_key(pool, "acme", resources=["timesheets"])
    async with httpx.AsyncClient(base_url=hub.base_url, headers={"Authorization": f"Bearer {key}"}) as limited:
        response = await limited.post("/api/v1/schedules", json=MONTHLY)
        assert response.status_code == 403, response.text
        timesheets = {**MONTHLY, "resource": "timesheets", "window": {"kind": "last_days", "days": 7}}
        assert (await limited.post("/api/v1/schedules", json=timesheets)).status_code == 201


async def test_openapi_documents_the_schedules(schedules_api: httpx.AsyncClient) -> None:
    schema = (await schedules_api.get("/schema/openapi.json")).json()
    assert {"post", "get"} <= set(schema["paths"]["/api/v1/schedules"])
    assert {"get", "patch", "delete"} <= set(schema["paths"]["/api/v1/schedules/{schedule_id}"])
    body = schema["components"]["schemas"]["ScheduleIn"]
    assert {"cron", "timeZone", "window", "resource", "format", "columns", "filters", "webhookUrl"} <= set(
        body["properties"]
    )
    assert {"format", "resource", "cron", "timeZone"} <= set(body["required"])
    kinds = schema["components"]["schemas"]["WindowKind"]["enum"]
    assert kinds == [
        "previous_day",
        "last_days",
        "previous_week",
        "previous_month",
        "previous_quarter",
        "previous_year",
        "month_to_date",
    ]
    assert not schema["components"]["schemas"]["ScheduleChangesIn"].get("required")
