"""The console's list over HTTP: filters in the address, keyset pages, Run again, and what a hand-made
request gets (bad filter values, bad cursors, another account's export). In Chromium:
tests/browser/test_console_history.py."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from exporthub.accounts import create_account, create_api_key
from exporthub.exports.models import ExportFormat
from exporthub.settings import Rate
from tests.conftest import Hub
from tests.factories import create_export, create_request
from tests.integration.helpers import new_key, submit, wait_status
from tests.integration.test_console import CARD_ID, console

HX = {"HX-Request": "true"}
OLDER = re.compile(r'hx-get="(/console/history\?[^"]+)"')


async def acme_id(pool: asyncpg.Pool) -> uuid.UUID:
    return await pool.fetchval("SELECT id FROM accounts WHERE slug = 'acme'")


async def finished_exports(pool: asyncpg.Pool, count: int, **columns: object) -> list[uuid.UUID]:
    """`count` completed-and-gone (expired) acme exports, a minute apart, newest first."""
    account = await acme_id(pool)
    now = dt.datetime.now(dt.UTC)
    ids = []
    async with pool.acquire() as conn:
        for i in range(count):
            fields = {"status": "expired", "created_at": now - dt.timedelta(minutes=i + 1), **columns}
            ids.append((await create_export(conn, account, **fields)).id)
    return ids


def card_ids(html: str) -> list[str]:
    return CARD_ID.findall(html)


def older_link(html: str) -> str | None:
    match = OLDER.search(html)
    return match.group(1).replace("&amp;", "&") if match else None


# --- the list and its pages ----------------------------------------------------------------------------


async def test_pages_go_back_twenty_at_a_time_with_none_twice(hub: Hub, clean_jobs: None, pool: asyncpg.Pool) -> None:
    ids = [str(i) for i in await finished_exports(pool, 45)]
    async with console(hub) as (client, _):
        page = await client.get("/console")
        first = card_ids(page.text)
        assert first == ids[:20]
        link = older_link(page.text)
        assert link is not None and "before=" in link
        # An export started now is newer than every page: it never shifts one.
        async with hub.client("acme") as api:
            await submit(api, {"resource": "employees", "format": "csv"})
        second = await client.get(link, headers=HX)
        assert second.status_code == 200, second.text
        assert card_ids(second.text) == ids[20:40]
        assert '<div id="exports-more" class="exports-more" hx-swap-oob="true">' in second.text
        assert "20 older exports shown." in second.text
        focus = json.loads(second.headers["HX-Trigger-After-Settle"])
        assert focus == {"exportsPaged": {"card": f"export-{ids[20]}"}}
        assert "HX-Push-Url" not in second.headers  # paging keeps the address
        third = await client.get(older_link(second.text) or "", headers=HX)
        assert card_ids(third.text) == ids[40:]
        assert older_link(third.text) is None and "These are the oldest." in third.text


async def test_a_filter_swaps_the_list_and_names_itself_in_the_address(
    hub: Hub, clean_jobs: None, pool: asyncpg.Pool
) -> None:
    failed = [str(i) for i in await finished_exports(pool, 23, status="failed")]
    account = await acme_id(pool)
    async with pool.acquire() as conn:
        xlsx = await create_export(conn, account, create_request(format=ExportFormat.XLSX), status="cancelled")
        people = await create_export(
            conn, account, create_request(resource="employees", columns=("employeeNumber",)), status="expired"
        )
    async with console(hub) as (client, _):
        response = await client.get("/console/history?status=failed", headers=HX)
        assert response.status_code == 200
        assert response.headers["HX-Push-Url"] == "/console?status=failed"
        assert response.text.lstrip().startswith('<div id="exports-history"')
        assert card_ids(response.text) == failed[:20]
        link = older_link(response.text)
        assert link is not None and "status=failed" in link  # the next page keeps the filter
        assert card_ids((await client.get(link, headers=HX)).text) == failed[20:]

        by_format = await client.get("/console/history?format=xlsx", headers=HX)
        assert card_ids(by_format.text) == [str(xlsx.id)] and older_link(by_format.text) is None
        by_resource = await client.get("/console/history?resource=employees", headers=HX)
        assert card_ids(by_resource.text) == [str(people.id)]
        assert by_resource.headers["HX-Push-Url"] == "/console?resource=employees"
        none = await client.get("/console/history?status=processing&format=pdf", headers=HX)
        assert card_ids(none.text) == [] and "No exports match these filters." in none.text
        everything = await client.get("/console/history", headers=HX)
        assert everything.headers["HX-Push-Url"] == "/console"

        # The address the filter pushed opens the page filtered, the filter's choices selected.
        page = await client.get("/console?status=failed&format=csv")
        assert card_ids(page.text) == failed[:20]
        assert '<option value="failed" selected>' in page.text and '<option value="csv" selected>' in page.text
        assert 'data-filter-status="failed"' in page.text and 'data-filter-format="csv"' in page.text


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=done", "status"),
        ("status=Failed", "status"),
        ("format=docx", "format"),
        ("resource=salaries", "resource"),
        ("resource=" + "x" * 5000, "resource"),
        ("before=yesterday", "before"),
        ("before=1767268800000000_not-a-uuid", "before"),
        ("before=" + "9" * 40 + "_00000000-0000-0000-0000-000000000001", "before"),
        ("before=-5_00000000-0000-0000-0000-000000000001", "before"),
        ("before=" + "1" * 4000, "before"),
    ],
)
async def test_the_list_refuses_what_no_console_link_says(hub: Hub, query: str, field: str) -> None:
    async with console(hub) as (client, _):
        response = await client.get(f"/console/history?{query}", headers=HX)
        assert response.status_code == 400, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        body = response.json()
        assert [e["field"] for e in body["errors"]] == [field]
        assert field in body["detail"] and len(body["detail"]) < 300


async def test_every_bad_value_is_named_at_once(hub: Hub) -> None:
    async with console(hub) as (client, _):
        response = await client.get("/console/history?status=x&format=y&before=z", headers=HX)
        assert response.status_code == 400
        assert [e["field"] for e in response.json()["errors"]] == ["status", "format", "before"]


async def test_the_page_ignores_a_bad_filter_value_and_says_so(hub: Hub, clean_jobs: None, pool: asyncpg.Pool) -> None:
    ids = [str(i) for i in await finished_exports(pool, 2)]
    async with console(hub) as (client, _):
        page = await client.get("/console?status=bogus&format=csv&resource=<script>")
        assert page.status_code == 200
        assert card_ids(page.text) == ids  # every status, csv only (both are)
        assert "Unknown status &#39;bogus&#39;; one of queued" in page.text
        assert ": showing any status." in page.text and ": showing any resource." in page.text
        assert "<script>" not in page.text
        assert '<option value="csv" selected>' in page.text


async def test_the_list_needs_a_session(hub: Hub) -> None:
    async with httpx.AsyncClient(base_url=hub.base_url, follow_redirects=False) as client:
        response = await client.get("/console/history?status=failed", headers=HX)
        assert response.status_code == 204 and response.headers["HX-Redirect"] == "/console/sign-in"
        again = await client.post(f"/console/exports/{uuid.uuid4()}/run-again")
        assert again.status_code in (303, 403)  # no session (and no CSRF token): never run


# --- Run again -----------------------------------------------------------------------------------------


async def test_run_again_submits_the_same_request_as_a_new_export(
    hub: Hub, clean_jobs: None, pool: asyncpg.Pool
) -> None:
    body = {
        "resource": "payroll",
        "format": "csv",
        "columns": ["employeeNumber", "netPay"],
        "filters": {"dateFrom": "2024-01-01", "status": "paid"},
        "csvBom": False,
        "csvDelimiter": ";",
        "timezone": "Asia/Tokyo",
    }
    async with hub.client("acme") as api:
        first = await submit(api, body)
        done = await wait_status(api, first["exportId"])
        async with console(hub) as (client, token):
            response = await client.post(
                f"/console/exports/{first['exportId']}/run-again", headers={"X-CSRFToken": token, **HX}
            )
            assert response.status_code == 200, response.text
            assert response.text.startswith('<div hx-swap-oob="afterbegin:#exports">')  # nothing in the note
            (new_id,) = card_ids(response.text)
            assert new_id != first["exportId"] and 'data-origin="submit"' in response.text
            assert json.loads(response.headers["HX-Trigger-After-Settle"]) == {
                "exportStarted": {"card": f"export-{new_id}"}
            }
        again = await wait_status(api, new_id)
    assert again["status"] == "completed"
    for key in ("resource", "format", "columns", "filters", "timezone"):
        assert again[key] == done[key], key
    assert again["timezone"] == "Asia/Tokyo"
    assert again["processedRows"] == done["processedRows"] > 0
    options = await pool.fetchval("SELECT options FROM export_jobs WHERE id = $1", uuid.UUID(new_id))
    assert json.loads(options) == {"csvBom": False, "csvDelimiter": ";", "csvGzip": False}


async def test_run_again_of_another_accounts_export_is_not_found(hub: Hub, clean_jobs: None) -> None:
    async with hub.client("globex") as globex:
        theirs = await submit(globex, {"resource": "employees", "format": "csv"})
        await wait_status(globex, theirs["exportId"])
    async with console(hub, "acme") as (client, token):
        for export_id in (theirs["exportId"], str(uuid.uuid4())):
            response = await client.post(
                f"/console/exports/{export_id}/run-again", headers={"X-CSRFToken": token, **HX}
            )
            assert response.status_code == 404
        bad = await client.post("/console/exports/not-a-uuid/run-again", headers={"X-CSRFToken": token, **HX})
        assert bad.status_code in (400, 404)
    async with hub.client("globex") as globex:
        listed = (await globex.get("/api/v1/exports")).json()
    assert [e["id"] for e in listed["items"]] == [theirs["exportId"]]  # nothing ran for either


async def test_run_again_refuses_while_the_export_is_active(hub: Hub, clean_jobs: None, pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        account = await acme_id(pool)
        running = await create_export(conn, account, status="processing", started_at=dt.datetime.now(dt.UTC))
    async with console(hub) as (client, token):
        response = await client.post(f"/console/exports/{running.id}/run-again", headers={"X-CSRFToken": token, **HX})
        assert response.status_code == 409
        assert "still processing" in response.text
        csrf = await client.post(f"/console/exports/{running.id}/run-again", headers=HX)
        assert csrf.status_code == 403
    await pool.execute("DELETE FROM export_jobs")  # no worker is to pick up rows made by hand


async def test_run_again_says_why_the_account_may_not_start_one(hub: Hub, clean_jobs: None, pool: asyncpg.Pool) -> None:
    (finished,) = await finished_exports(pool, 1)
    async with pool.acquire() as conn:
        for _ in range(5):  # the active-export cap
            await create_export(conn, await acme_id(pool), status="processing")
    async with console(hub) as (client, token):
        response = await client.post(f"/console/exports/{finished}/run-again", headers={"X-CSRFToken": token, **HX})
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "30"
        assert response.text.startswith("This account already has 5 exports queued or running")
        assert 'id="announcer"' in response.text
    await pool.execute("DELETE FROM export_jobs")


@pytest.fixture
async def one_a_minute(hub: Hub, pool: asyncpg.Pool) -> AsyncIterator[tuple[Hub, uuid.UUID]]:
    """An account that may start one export a minute, its hub, and one finished export of it."""
    slug = f"again-{uuid.uuid4().hex[:8]}"
    account = await create_account(pool, slug, "Run again test", start_rate=Rate(1, 60))
    rated = Hub(**{**hub.__dict__, "keys": {**hub.keys, slug: await create_api_key(pool, account.id, label="t")}})
    async with pool.acquire() as conn:
        job = await create_export(conn, account.id, status="failed", error_message="boom")
    yield rated, job.id
    await pool.execute("DELETE FROM export_jobs WHERE account_id = $1", account.id)


async def test_run_again_counts_against_the_start_rate(one_a_minute: tuple[Hub, uuid.UUID]) -> None:
    hub, failed = one_a_minute
    slug = next(k for k in hub.keys if k.startswith("again-"))
    async with console(hub, slug) as (client, token):
        ok = await client.post(f"/console/exports/{failed}/run-again", headers={"X-CSRFToken": token, **HX})
        assert ok.status_code == 200, ok.text
        refused = await client.post(f"/console/exports/{failed}/run-again", headers={"X-CSRFToken": token, **HX})
        assert refused.status_code == 429
        assert re.match(r"This account may start at most 1 export per minute; try again in \d+ s\.", refused.text)
        assert int(refused.headers["Retry-After"]) > 0


async def test_run_again_with_a_key_limited_to_other_resources(hub: Hub, clean_jobs: None, pool: asyncpg.Pool) -> None:
    (payroll,) = await finished_exports(pool, 1)  # a payroll export of acme's
    key = await new_key(pool, "acme", resources=["employees"])
    limited = Hub(**{**hub.__dict__, "keys": {**hub.keys, "acme-limited": key}})
    async with console(limited, "acme-limited") as (client, token):
        response = await client.post(f"/console/exports/{payroll}/run-again", headers={"X-CSRFToken": token, **HX})
        assert response.status_code == 422
        assert response.text.startswith("The key you signed in with may not export &#39;payroll&#39;.")
