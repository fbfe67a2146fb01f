"""The export console over HTTP and its WebSocket, against the real web server and worker."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from exporthub import accounts
from exporthub.db.seed import DEMO_ACCOUNTS
from exporthub.exports.account_scope import AccountScope
from exporthub.exports.models import ExportFormat, ExportRequest
from exporthub.progress import publish_event
from tests.conftest import Hub
from tests.harness import (
    Process,
    exporthub_command,
    extra_web,
    free_port,
    hidden_token,
    running,
    settings_env,
    sign_in,
    start_process,
    wait_for_async,
    wait_http,
)
from tests.integration.helpers import new_key, submit, wait_status

SMALL = {"format": "csv", "resource": "employees"}
CARD_ID = re.compile(r'id="export-([0-9a-f-]{36})"')


def header_token(page: str) -> str:
    match = re.search(r'"X-CSRFToken": "([^"]+)"', page)
    assert match, "no X-CSRFToken in hx-headers"
    return match.group(1)


@contextlib.asynccontextmanager
async def browser(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A cookie-keeping client that behaves like a browser: no API key, no automatic redirects."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30, follow_redirects=False) as client:
        yield client


@contextlib.asynccontextmanager
async def console(hub: Hub, account: str = "acme") -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A signed-in console client and the CSRF token its page carries."""
    async with browser(hub.base_url) as client:
        response = await sign_in(client, hub.keys[account])
        assert response.status_code == 303, response.text
        page = await client.get("/console")
        assert page.status_code == 200, page.text
        yield client, header_token(page.text)


def ws_url(hub: Hub) -> str:
    return hub.base_url.replace("http://", "ws://", 1) + "/console/ws"


def cookie_header(client: httpx.AsyncClient) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in client.cookies.jar)


@contextlib.asynccontextmanager
async def console_socket(
    hub: Hub, client: httpx.AsyncClient | None, origin: str | None = None
) -> AsyncIterator[ClientConnection]:
    headers = {"Cookie": cookie_header(client)} if client is not None else {}
    async with connect(ws_url(hub), origin=origin or hub.base_url, additional_headers=headers, open_timeout=10) as ws:  # type: ignore[arg-type]
        yield ws


async def receive_until(ws: ClientConnection, predicate: Any, timeout: float = 60) -> list[str]:
    frames: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no matching frame within {timeout}s; got {len(frames)}: {frames[-3:]}")
        frame = await asyncio.wait_for(ws.recv(), remaining)
        assert isinstance(frame, str)
        frames.append(frame)
        if predicate(frame):
            return frames


async def close_code(ws: ClientConnection) -> int | None:
    with contextlib.suppress(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 10)
    await asyncio.wait_for(ws.wait_closed(), 10)
    return ws.close_code


# --- sign-in and session -------------------------------------------------------------------------------


async def test_console_redirects_to_sign_in_until_signed_in(hub: Hub) -> None:
    async with browser(hub.base_url) as client:
        response = await client.get("/console")
        assert response.status_code == 303
        assert response.headers["location"] == "/console/sign-in"
        assert (await client.get("/")).headers["location"] == "/console"
        # An htmx request gets HX-Redirect instead of a redirect htmx would follow into the swap.
        partial = await client.get("/console/form/fields?resource=payroll", headers={"HX-Request": "true"})
        assert partial.headers.get("hx-redirect") == "/console/sign-in"


async def test_sign_in_with_an_api_key_sets_a_protected_session_cookie(hub: Hub) -> None:
    async with browser(hub.base_url) as client:
        response = await sign_in(client, hub.keys["acme"])
        assert response.status_code == 303 and response.headers["location"] == "/console"
        set_cookie = next(v for v in response.headers.get_list("set-cookie") if v.startswith("exporthub_session="))
        assert "httponly" in set_cookie.lower() and "samesite=lax" in set_cookie.lower()
        acme_id = await _account_id(hub, "acme")
        assert str(acme_id) not in set_cookie and "acme" not in set_cookie.lower()  # encrypted
        page = await client.get("/console")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "Acme Corporation" in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert 'ws-connect="/console/ws"' in page.text
        assert "//cdn" not in page.text and "unpkg" not in page.text
        # Sign-out is a POST with the token; afterwards the console asks to sign in again.
        out = await client.post("/console/sign-out", data={"_csrf_token": hidden_token(page.text)})
        assert out.status_code == 303 and out.headers["location"] == "/console/sign-in"
        assert (await client.get("/console")).status_code == 303


async def test_a_bad_key_is_refused_with_a_message(hub: Hub) -> None:
    async with browser(hub.base_url) as client:
        response = await sign_in(client, "ehk_not_a_real_key")
        assert response.status_code == 401
        assert "unknown or has been revoked" in response.text
        assert 'aria-invalid="true"' in response.text
        assert not any(v.startswith("exporthub_session=") for v in response.headers.get_list("set-cookie"))
        assert (await client.get("/console")).status_code == 303
        empty = await sign_in(client, "  ")
        assert empty.status_code == 401 and "Paste an API key" in empty.text


def start_web(hub: Hub, name: str, *args: str, **env: str) -> tuple[Process, str]:
    """Another web server on the hub's database and Redis, answering /healthz."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    web = start_process(
        name,
        ["serve", *args],
        settings_env(hub.settings, EXPORTHUB_PORT=str(port), EXPORTHUB_PUBLIC_URL=url, **env),
        hub.log_dir,
    )
    try:
        wait_http(f"{url}/healthz", 30, web)
    except BaseException:
        web.stop()
        raise
    return web, url


async def test_no_demo_sign_in_under_serve_even_with_the_old_variable(hub: Hub) -> None:
    """EXPORTHUB_DEMO_SIGN_IN once turned demo sign-in on; a production `serve` now ignores it."""
    web, url = start_web(hub, "web-demo-variable", EXPORTHUB_DEMO_SIGN_IN="1")
    with running(web):
        async with browser(url) as client:
            page = await client.get("/console/sign-in")
            assert page.status_code == 200
            assert "/console/sign-in/demo" not in page.text
            for demo in DEMO_ACCOUNTS:
                assert demo.name not in page.text
            refused = await client.post(
                "/console/sign-in/demo", data={"account": "acme", "_csrf_token": hidden_token(page.text)}
            )
            assert refused.status_code == 404
            assert (await client.get("/console")).status_code == 303


@pytest.fixture(scope="module")
def demo_hub(hub: Hub) -> Iterator[str]:
    """A second web server on the same database, as `exporthub dev` starts it (`serve --demo-sign-in`)."""
    web, url = start_web(hub, "web-demo", "--demo-sign-in")
    with running(web):
        yield url


@pytest.fixture
async def customer(pool: asyncpg.Pool) -> AsyncIterator[str]:
    """A real (non-demo) account's slug, removed afterwards."""
    slug = f"customer-{uuid.uuid4().hex[:6]}"
    await pool.execute("INSERT INTO accounts (slug, name) VALUES ($1, 'Customer Ltd')", slug)
    yield slug
    await pool.execute("DELETE FROM accounts WHERE slug = $1", slug)


async def test_demo_sign_in_under_dev_for_demo_accounts_only(demo_hub: str, customer: str) -> None:
    async with browser(demo_hub) as client:
        page = await client.get("/console/sign-in")
        for demo in DEMO_ACCOUNTS:
            assert f'value="{demo.slug}"' in page.text and demo.name in page.text
        assert customer not in page.text and "Customer Ltd" not in page.text
        token = hidden_token(page.text)
        unknown = await client.post("/console/sign-in/demo", data={"account": "nobody", "_csrf_token": token})
        assert unknown.status_code == 400
        # A real account exists under that slug, but it is not a demo account: no sign-in without its key.
        real = await client.post("/console/sign-in/demo", data={"account": customer, "_csrf_token": token})
        assert real.status_code == 400 and "does not exist here" in real.text
        assert (await client.get("/console")).status_code == 303
        response = await client.post("/console/sign-in/demo", data={"account": "globex", "_csrf_token": token})
        assert response.status_code == 303
        assert "Globex GmbH" in (await client.get("/console")).text


# --- sessions that end ------------------------------------------------------------------------------------


def session_cookie(response: httpx.Response) -> str:
    return next(v for v in response.headers.get_list("set-cookie") if v.startswith("exporthub_session=")).split(";")[0]


async def console_with(hub_url: str, cookie: str) -> int:
    """The status /console answers a client that sends only this cookie (no jar that could drop it)."""
    async with browser(hub_url) as client:
        return (await client.get("/console", headers={"Cookie": cookie})).status_code


async def test_after_sign_out_the_old_cookie_no_longer_opens_the_console(hub: Hub) -> None:
    async with browser(hub.base_url) as client:
        cookie = session_cookie(await sign_in(client, hub.keys["acme"]))
        page = await client.get("/console")
        assert await console_with(hub.base_url, cookie) == 200
        out = await client.post("/console/sign-out", data={"_csrf_token": hidden_token(page.text)})
        assert out.status_code == 303
        assert (await client.get("/console")).status_code == 303  # the browser's copy is cleared
    # A copy of the cookie taken before signing out (another tab, a stolen copy) opens nothing.
    assert await console_with(hub.base_url, cookie) == 303


async def test_a_session_made_with_a_revoked_key_ends_at_its_next_request(hub: Hub, pool: asyncpg.Pool) -> None:
    key = await new_key(pool, "acme")
    async with browser(hub.base_url) as client:
        await sign_in(client, key)
        assert (await client.get("/console")).status_code == 200
        async with pool.acquire() as conn:
            await accounts.revoke_api_key(conn, key)
        assert (await client.get("/console")).status_code == 303
        partial = await client.get("/console/form/fields", headers={"HX-Request": "true"})
        assert partial.headers.get("hx-redirect") == "/console/sign-in"


@pytest.fixture(scope="module")
def short_hub(hub: Hub) -> Iterator[str]:
    """A web server whose console sessions last 3 s and whose sockets re-check access every 0.5 s."""
    with extra_web(
        hub.settings,
        "web-short-sessions",
        hub.log_dir,
        EXPORTHUB_SESSION_MAX_AGE_SECONDS="3",
        EXPORTHUB_ACCESS_RECHECK_SECONDS="0.5",
    ) as url:
        yield url


async def test_the_session_lifetime_does_not_slide(hub: Hub, short_hub: str) -> None:
    async with browser(short_hub) as client:
        response = await sign_in(client, hub.keys["acme"])
        started = time.monotonic()
        cookie = session_cookie(response)
        assert (
            "max-age=3"
            in next(v for v in response.headers.get_list("set-cookie") if v.startswith("exporthub_session=")).lower()
        )
    while time.monotonic() - started < 2:  # in use all along
        assert await console_with(short_hub, cookie) == 200
        await asyncio.sleep(0.3)  # the scenario: a request every 0.3 s

    async def ended() -> bool:
        return await console_with(short_hub, cookie) == 303

    # Still in use (a request every 0.1 s): it ends at its 3 s all the same; a sliding one never would.
    await wait_for_async(ended, max(1.0, started + 5 - time.monotonic()), "the session to end 3 s after sign-in", 0.1)


async def test_the_console_socket_closes_once_signed_out(hub: Hub, short_hub: str) -> None:
    async with browser(short_hub) as client:
        await sign_in(client, hub.keys["acme"])
        page = await client.get("/console")
        url = short_hub.replace("http://", "ws://", 1) + "/console/ws"
        headers = {"Cookie": cookie_header(client)}
        async with connect(url, origin=short_hub, additional_headers=headers, open_timeout=10) as ws:  # type: ignore[arg-type]
            await asyncio.wait_for(ws.recv(), 10)  # the snapshot
            await client.post("/console/sign-out", data={"_csrf_token": hidden_token(page.text)})
            # No announcement for a sign-out: the periodic re-check (0.5 s here) closes it.
            assert await close_code(ws) == 4401


async def test_the_console_socket_closes_at_once_when_its_key_is_revoked(hub: Hub, pool: asyncpg.Pool) -> None:
    key = await new_key(pool, "acme")
    async with browser(hub.base_url) as client:
        await sign_in(client, key)
        async with console_socket(hub, client) as ws:
            await asyncio.wait_for(ws.recv(), 10)  # the snapshot
            revoked = exporthub_command(hub.settings, "apikey", "revoke", key[:12])
            assert revoked.returncode == 0, revoked.stderr
            started = time.monotonic()
            assert await close_code(ws) == 4401
            assert time.monotonic() - started < 5  # the announcement, not the 60 s re-check


@pytest.mark.parametrize(
    "cookie",
    [
        "garbage",
        ".",
        "a.b.c",
        "{}",
        '"quoted"',
        str(uuid.UUID(int=1)),
        f"{uuid.uuid4().hex}.forged",
        f"{uuid.uuid4().hex}." + "A" * 43,
        "\xc3\xa9t\xc3\xa9",
        "x" * 4000,
    ],
)
async def test_a_malformed_session_cookie_is_just_signed_out(hub: Hub, cookie: str) -> None:
    header = f"exporthub_session={cookie}".encode("latin-1")  # as a browser may send it: bytes, not text
    async with browser(hub.base_url) as client:
        for path in ("/console", "/console/sign-in", "/console/form/fields"):
            response = await client.get(path, headers={"Cookie": header})  # type: ignore[dict-item]
            assert response.status_code < 500, (path, response.text)
        assert (await client.get("/console", headers={"Cookie": header})).status_code == 303  # type: ignore[dict-item]
    ws_headers = {"Cookie": header.decode("latin-1")}
    async with connect(ws_url(hub), origin=hub.base_url, additional_headers=ws_headers, open_timeout=10) as ws:  # type: ignore[arg-type]
        assert await close_code(ws) == 4401


# --- the resources a key may export ------------------------------------------------------------------------


async def test_a_limited_keys_console_offers_only_its_resources(hub: Hub, pool: asyncpg.Pool, clean_jobs: None) -> None:
    key = await new_key(pool, "acme", resources=["payroll"])
    async with browser(hub.base_url) as client:
        await sign_in(client, key)
        page = await client.get("/console")
        assert page.status_code == 200
        assert '<option value="payroll"' in page.text
        assert '<option value="employees"' not in page.text and '<option value="timesheets"' not in page.text
        assert 'name="columns" value="grossPay" checked' in page.text  # the first allowed resource is chosen
        fields = await client.get("/console/form/fields", params={"resource": "employees"})
        assert 'value="grossPay"' in fields.text and 'value="hireDate"' not in fields.text  # payroll's, not employees'
        refused = await client.post(
            "/console/exports",
            data={"resource": "employees", "format": "csv", "columns": ["employeeNumber"]},
            headers={"X-CSRFToken": header_token(page.text), "HX-Request": "true"},
        )
        assert refused.status_code == 403
        assert "may not export &#39;employees&#39;" in refused.text
        assert await pool.fetchval("SELECT count(*) FROM export_jobs") == 0


# --- CSRF ------------------------------------------------------------------------------------------------


async def test_console_posts_without_the_csrf_token_are_refused(hub: Hub, clean_jobs: None, pool) -> None:
    async with browser(hub.base_url) as client:
        await client.get("/console/sign-in")
        assert (await client.post("/console/sign-in", data={"api_key": hub.keys["acme"]})).status_code == 403
    async with console(hub) as (client, token):
        form = {"resource": "employees", "format": "csv", "columns": ["employeeNumber"]}
        refused = await client.post("/console/exports", data=form, headers={"HX-Request": "true"})
        assert refused.status_code == 403
        forged = await client.post("/console/exports", data=form, headers={"X-CSRFToken": "forged"})
        assert forged.status_code == 403
        assert await pool.fetchval("SELECT count(*) FROM export_jobs") == 0
        accepted = await client.post("/console/exports", data=form, headers={"X-CSRFToken": token})
        assert accepted.status_code == 200, accepted.text
        assert await pool.fetchval("SELECT count(*) FROM export_jobs") == 1
    async with hub.client("acme") as api:  # the API (bearer keys, no cookies) needs no token
        await submit(api, SMALL)


# --- the form ----------------------------------------------------------------------------------------------


async def test_form_is_built_from_the_catalog_and_swaps_resource_fields(hub: Hub, pool: asyncpg.Pool) -> None:
    async with console(hub) as (client, _):
        page = (await client.get("/console")).text
        assert 'name="columns" value="employeeNumber" checked' in page  # employees' defaults ticked
        assert 'name="columns" value="notes">' in page  # a non-default column is offered unticked
        assert 'value="csv"' in page and 'value="xlsx"' in page
        acme_departments = await pool.fetch(
            "SELECT d.id, d.name FROM departments d JOIN accounts a ON a.id = d.account_id WHERE a.slug = 'acme'"
        )
        for row in acme_departments:
            assert f'value="{row["id"]}"' in page
        globex_department = await pool.fetchval(
            "SELECT d.id FROM departments d JOIN accounts a ON a.id = d.account_id WHERE a.slug = 'globex' LIMIT 1"
        )
        assert str(globex_department) not in page

        fields = await client.get(
            "/console/form/fields",
            params={"resource": "payroll", "date_from": "2026-01-01"},
            headers={"HX-Request": "true"},
        )
        assert fields.status_code == 200
        assert fields.text.lstrip().startswith('<div id="resource-fields"')
        assert "Pay date" in fields.text and 'value="2026-01-01"' in fields.text
        assert 'name="columns" value="grossPay" checked' in fields.text
        assert 'name="columns" value="memo">' in fields.text
        for status in ("draft", "approved", "paid", "void"):
            assert f'<option value="{status}"' in fields.text


async def test_invalid_form_shows_each_problem_next_to_its_field(hub: Hub, clean_jobs: None) -> None:
    async with console(hub) as (client, token):
        response = await client.post(
            "/console/exports",
            data={
                "resource": "payroll",
                "format": "csv",
                "date_from": "2026-05-01",
                "date_to": "2026-01-01",
            },
            headers={"X-CSRFToken": token, "HX-Request": "true"},
        )
        assert response.status_code == 422
        body = response.text
        assert '<p class="field-error" id="err-columns">Tick at least one column.</p>' in body
        assert 'id="f-date-from" name="date_from" value="2026-05-01"' in body  # kept
        # The shape first (no columns), then the catalog's checks, every field at fault at once.
        response = await client.post(
            "/console/exports",
            data={
                "resource": "payroll",
                "format": "csv",
                "columns": ["netPay", "bogus"],
                "date_from": "2026-05-01",
                "date_to": "2026-01-01",
            },
            headers={"X-CSRFToken": token, "HX-Request": "true"},
        )
        assert response.status_code == 422
        body = response.text
        assert 'id="err-columns">Unknown column(s) bogus for payroll' in body
        assert 'id="err-date-from">Must not be after the end date.</p>' in body
        assert 'id="f-date-from" name="date_from" value="2026-05-01" aria-invalid="true"' in body  # kept
        # Departments are checked against the account once the rest is valid (filters.departmentIds[0]).
        unknown = str(uuid.uuid4())
        response = await client.post(
            "/console/exports",
            data={"resource": "payroll", "format": "csv", "columns": ["netPay"], "department_ids": [unknown]},
            headers={"X-CSRFToken": token, "HX-Request": "true"},
        )
        assert response.status_code == 422
        assert f'id="err-departments">No department {unknown} in this account.</p>' in response.text
        assert f'value="{unknown}"' not in response.text  # only the account's departments are offered
        # A separator the form does not offer (a forged post) is named beside the CSV options.
        response = await client.post(
            "/console/exports",
            data={"resource": "payroll", "format": "csv", "columns": ["netPay"], "csv_delimiter": "pipe"},
            headers={"X-CSRFToken": token, "HX-Request": "true"},
        )
        assert response.status_code == 422
        assert 'id="err-csv-options">' in response.text and "csvDelimiter" in response.text


async def test_too_many_active_exports_shows_the_message(hub: Hub, clean_jobs: None, pool: asyncpg.Pool) -> None:
    acme_id = await _account_id(hub, "acme")
    request = ExportRequest(resource="employees", format=ExportFormat.CSV, columns=("employeeNumber",))
    for _ in range(hub.settings.exports.max_active_exports):  # recorded, never enqueued: they stay queued
        await AccountScope(pool, acme_id).jobs.insert(request, idempotency_key=None)
    async with console(hub) as (client, token):
        response = await client.post(
            "/console/exports",
            data={"resource": "employees", "format": "csv", "columns": ["employeeNumber"]},
            headers={"X-CSRFToken": token, "HX-Request": "true"},
        )
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "30"
        assert '<p class="form-error start-error" role="alert" id="start-error">' in response.text  # by the button
        assert "already has 5 exports queued or running" in response.text
    await pool.execute("DELETE FROM export_jobs")


async def test_submit_prepends_the_card_and_cancel_replaces_it(hub: Hub, clean_jobs: None) -> None:
    async with console(hub) as (client, token):
        response = await client.post(
            "/console/exports",
            data={"resource": "payroll", "format": "xlsx", "columns": ["employeeNumber", "grossPay"]},
            headers={"X-CSRFToken": token, "HX-Request": "true"},
        )
        assert response.status_code == 200, response.text
        assert response.text.lstrip().startswith('<form id="export-form"')
        assert '<div hx-swap-oob="afterbegin:#exports">' in response.text
        assert 'data-origin="submit"' in response.text
        export_id = CARD_ID.search(response.text).group(1)  # type: ignore[union-attr]
        cancelled = await client.post(
            f"/console/exports/{export_id}/cancel", headers={"X-CSRFToken": token, "HX-Request": "true"}
        )
        assert cancelled.status_code == 200
        assert f'id="export-{export_id}"' in cancelled.text
        async with hub.client("acme") as api:
            final = await wait_status(api, export_id)
        assert final["status"] == "cancelled"
        polled = await client.get(f"/console/exports/{export_id}/card", headers={"HX-Request": "true"})
        assert polled.status_code == 286  # htmx stops polling a finished card
        assert "Cancelled" in polled.text and "data-active" not in polled.text


async def test_another_accounts_card_is_not_found(hub: Hub, clean_jobs: None) -> None:
    async with hub.client("globex") as api:
        theirs = await submit(api, SMALL)
    async with console(hub, "acme") as (client, token):
        response = await client.get(f"/console/exports/{theirs['exportId']}/card")
        assert response.status_code == 404
        cancel = await client.post(f"/console/exports/{theirs['exportId']}/cancel", headers={"X-CSRFToken": token})
        assert cancel.status_code == 404


# --- the console's WebSocket ------------------------------------------------------------------------------


async def test_socket_refused_without_a_session(hub: Hub) -> None:
    async with console_socket(hub, None) as ws:
        assert await close_code(ws) == 4401


async def test_socket_refused_from_another_site(hub: Hub) -> None:
    async with console(hub) as (client, _), console_socket(hub, client, origin="http://evil.example") as ws:
        assert await close_code(ws) == 4403


async def test_socket_snapshot_holds_the_accounts_cards_only(hub: Hub, clean_jobs: None) -> None:
    async with hub.client("acme") as acme, hub.client("globex") as globex:
        ours = [(await submit(acme, SMALL))["exportId"] for _ in range(2)]
        theirs = (await submit(globex, SMALL))["exportId"]
        for export_id in ours:
            await wait_status(acme, export_id)
        await wait_status(globex, theirs)
    async with console(hub, "acme") as (client, _), console_socket(hub, client) as ws:
        snapshot = await asyncio.wait_for(ws.recv(), 10)
        assert isinstance(snapshot, str)
        # Card by card, each to its place in the list: the page may hold older pages and filters, so
        # the snapshot clears nothing.
        assert snapshot.count('<div hx-swap-oob="afterbegin:#exports"><li ') == 2
        assert 'id="exports"' not in snapshot and 'hx-swap-oob="innerHTML"' not in snapshot
        assert set(CARD_ID.findall(snapshot)) == set(ours)
        assert theirs not in snapshot
        assert snapshot.count("/download?") == 2  # completed cards carry their signed links


async def test_a_submitted_exports_card_arrives_over_the_socket(hub: Hub, clean_jobs: None) -> None:
    async with console(hub, "acme") as (client, token), console_socket(hub, client) as ws:
        snapshot = await asyncio.wait_for(ws.recv(), 10)
        assert "export-card" not in snapshot
        async with console(hub, "globex") as (other, _), console_socket(hub, other) as other_ws:
            await asyncio.wait_for(other_ws.recv(), 10)
            response = await client.post(
                "/console/exports",
                data={"resource": "payroll", "format": "csv", "columns": ["employeeNumber", "netPay"]},
                headers={"X-CSRFToken": token, "HX-Request": "true"},
            )
            assert response.status_code == 200, response.text
            export_id = CARD_ID.search(response.text).group(1)  # type: ignore[union-attr]
            frames = await receive_until(ws, lambda f: export_id in f and 'data-status="completed"' in f)
            # Globex's socket heard nothing of it.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(other_ws.recv(), 0.5)
    first = frames[0]
    assert f'<div hx-swap-oob="afterbegin:#exports"><li id="export-{export_id}"' in first
    later = [f for f in frames[1:] if export_id in f]
    assert later and all(f'id="export-{export_id}" ' in f and 'hx-swap-oob="true"' in f for f in later)
    assert any("<progress" in f for f in frames) or "completed" in frames[-1]
    assert "/download?" in frames[-1] and 'id="announcer"' in frames[-1]


async def _account_id(hub: Hub, slug: str) -> uuid.UUID:
    conn = await asyncpg.connect(hub.settings.db.url)
    try:
        return await conn.fetchval("SELECT id FROM accounts WHERE slug = $1", slug)
    finally:
        await conn.close()


async def test_a_running_exports_progress_reaches_every_console_as_one_shared_card(
    hub: Hub, clean_jobs: None, pool: asyncpg.Pool
) -> None:
    """Two pages of the account get the same card for a progress event (rendered once per process,
    SharedFragments); the other account's page gets nothing."""
    acme_id = await _account_id(hub, "acme")
    request = ExportRequest(resource="payroll", format=ExportFormat.CSV, columns=("payrollId",))
    job = await AccountScope(pool, acme_id).jobs.insert(request, idempotency_key=None)
    await pool.execute(
        "UPDATE export_jobs SET status = 'processing', started_at = now(), total_rows = 5000 WHERE id = $1", job.id
    )
    redis = Redis.from_url(hub.settings.redis.url)
    try:
        async with (
            console(hub, "acme") as (first, _),
            console(hub, "acme") as (second, _),
            console(hub, "globex") as (other, _),
            console_socket(hub, first) as ws1,
            console_socket(hub, second) as ws2,
            console_socket(hub, other) as other_ws,
        ):
            for ws in (ws1, ws2, other_ws):
                await asyncio.wait_for(ws.recv(), 10)  # the snapshots
            for rows in (1234, 2500):
                event = {"type": "export.progress", "exportId": str(job.id), "status": "processing",
                         "progress": rows * 100 // 5000, "processedRows": rows, "totalRows": 5000}  # fmt: skip
                await publish_event(redis, hub.settings.redis.queue_name, acme_id, event)
                text = f"{rows:,} of 5,000 rows"
                (card1,) = await receive_until(ws1, lambda f, text=text: text in f, timeout=10)
                (card2,) = await receive_until(ws2, lambda f, text=text: text in f, timeout=10)
                assert card1 == card2 and f'id="export-{job.id}"' in card1 and 'hx-swap-oob="true"' in card1
                assert f'value="{rows * 100 // 5000}"' in card1  # the bar
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(other_ws.recv(), 0.5)
    finally:
        await redis.aclose()
