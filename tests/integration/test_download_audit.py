"""The download audit against the running hub: every answer of a download link is recorded with who
asked (the link alone, an API key sent along, a console session), when, the client's address and
user agent; GET /api/v1/exports/{id}/downloads lists them, newest first, a page at a time, for the
export's own account only. (S3's 307: tests/integration/test_s3_storage.py; pruning:
tests/integration/exports/test_retention.py; the card in a browser: tests/browser/test_download_audit.py.)
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from exporthub.exports.downloads import MAX_USER_AGENT
from tests.conftest import Hub
from tests.harness import exporthub_command, hidden_token, sign_in
from tests.integration.helpers import submit, wait_status

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SMALL = {"format": "csv", "resource": "compliance", "columns": ["recordId"]}


async def completed_export(api: httpx.AsyncClient) -> dict[str, Any]:
    created = await submit(api, SMALL)
    status = await wait_status(api, created["exportId"])
    assert status["status"] == "completed", status
    return status


async def records(api: httpx.AsyncClient, export_id: str, query: str = "") -> list[dict[str, Any]]:
    response = await api.get(f"/api/v1/exports/{export_id}/downloads{query}")
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_the_link_alone_is_recorded_with_address_and_user_agent(hub: Hub, api: httpx.AsyncClient) -> None:
    status = await completed_export(api)
    async with httpx.AsyncClient(timeout=30) as anonymous:
        got = await anonymous.get(status["downloadUrl"], headers={"User-Agent": "audit-test/1.0 (anonymous)"})
    assert got.status_code == 200 and got.content.startswith(b"\xef\xbb\xbf")
    [record] = await records(api, status["id"])
    assert record["via"] == "signed_link"
    assert record["apiKey"] is None and record["sessionStartedAt"] is None
    assert record["redirected"] is False
    assert record["clientIp"] == "127.0.0.1"  # the peer: our test client
    assert record["userAgent"] == "audit-test/1.0 (anonymous)"
    assert abs(_age_seconds(record["downloadedAt"])) < 60


async def test_an_api_key_sent_along_is_named(hub: Hub, api: httpx.AsyncClient) -> None:
    status = await completed_export(api)
    got = await api.get(status["downloadUrl"], headers={"User-Agent": "exporthub-cli-test"})  # acme's key
    assert got.status_code == 200
    [record] = await records(api, status["id"])
    assert record["via"] == "api_key"
    assert record["apiKey"] == {"prefix": hub.keys["acme"][:12], "name": "tests"}
    assert record["userAgent"] == "exporthub-cli-test"


async def test_another_accounts_key_or_a_bad_key_counts_as_the_link_alone(hub: Hub, api: httpx.AsyncClient) -> None:
    """The link still works (it alone authorises), but globex's key names nobody in acme's audit."""
    status = await completed_export(api)
    for authorization in (
        f"Bearer {hub.keys['globex']}",
        "Bearer ehk_not-a-key",
        "Basic abc",
        "Bearer  é".encode("latin-1"),
    ):
        async with httpx.AsyncClient(timeout=30) as other:
            got = await other.get(status["downloadUrl"], headers={"Authorization": authorization})
        assert got.status_code == 200, authorization
    listed = await records(api, status["id"])
    assert [r["via"] for r in listed] == ["signed_link"] * 4
    assert all(r["apiKey"] is None for r in listed)


async def test_a_console_download_names_the_session(hub: Hub, api: httpx.AsyncClient) -> None:
    status = await completed_export(api)
    async with httpx.AsyncClient(base_url=hub.base_url, timeout=30) as browser:
        assert (await sign_in(browser, hub.keys["acme"])).status_code == 303
        card = await browser.get(f"/console/exports/{status['id']}/card")
        href = re.search(r'class="button primary download" href="([^"]+)"', card.text)
        assert href is not None, card.text
        link = href.group(1).replace("&amp;", "&")
        assert link == status["downloadUrl"]
        got = await browser.get(link, headers={"User-Agent": "Mozilla/5.0 (console test)"})
        assert got.status_code == 200
        [record] = await records(api, status["id"])
        assert record["via"] == "console"
        assert record["sessionStartedAt"] is not None
        assert record["apiKey"] == {"prefix": hub.keys["acme"][:12], "name": "tests"}  # the key it signed in with
        assert record["userAgent"] == "Mozilla/5.0 (console test)"

        # The card now says so, the time in UTC with its zone named (console.js shows the browser's zone).
        await browser.get(link)
        card = await browser.get(f"/console/exports/{status['id']}/card")
        line = re.search(r'<p class="card-downloads">(.*?)</p>', card.text, re.S)
        assert line is not None, card.text
        assert re.fullmatch(
            r'Downloaded 2 times, last <time datetime="[^"]+" data-local-time="clock">\d\d:\d\d UTC</time>',
            line.group(1),
        ), line.group(1)
        # A signed-out browser's cookie names nobody.
        page = await browser.get("/console")
        assert (
            await browser.post("/console/sign-out", data={"_csrf_token": hidden_token(page.text)})
        ).status_code == 303
        await browser.get(link)
    assert [r["via"] for r in await records(api, status["id"])] == ["signed_link", "console", "console"]
    # One more, by an API client behind a proxy: a sample of every kind, saved for the record.
    headers = {"X-Forwarded-For": "203.0.113.9", "User-Agent": "exporthub-cli/0.1"}
    assert (await api.get(status["downloadUrl"], headers=headers)).status_code == 200
    ARTIFACTS.mkdir(exist_ok=True)
    sample = (await api.get(f"/api/v1/exports/{status['id']}/downloads?limit=3")).json()
    assert sample["nextCursor"] is not None
    (ARTIFACTS / "download-audit.json").write_text(json.dumps(sample, indent=2) + "\n")


def test_exporthub_export_downloads_with_its_key(hub: Hub, tmp_path: Path) -> None:
    """The CLI sends its key along to the hub's own link (never to a bucket): the audit names it."""
    args = ["export", "--resource", "compliance", "--columns", "recordId", "--api-url", hub.base_url]
    result = exporthub_command(hub.settings, *args, "-o", str(tmp_path / "out.csv"), EXPORTHUB_API_KEY=hub.keys["acme"])
    assert result.returncode == 0, result.stderr
    queued = re.search(r"export ([0-9a-f-]{36}) queued", result.stderr)
    assert queued is not None, result.stderr
    with httpx.Client(base_url=hub.base_url, headers={"Authorization": f"Bearer {hub.keys['acme']}"}) as api:
        [record] = api.get(f"/api/v1/exports/{queued.group(1)}/downloads").json()["items"]
    assert record["via"] == "api_key" and record["apiKey"]["prefix"] == hub.keys["acme"][:12]
    assert record["userAgent"].startswith("python-httpx/")


async def test_a_trusted_proxys_forwarded_address_is_recorded_and_user_agents_are_cut(
    hub: Hub, api: httpx.AsyncClient
) -> None:
    """The hub's peer here is 127.0.0.1, which uvicorn trusts as a proxy by default (FORWARDED_ALLOW_IPS):
    the client it names in X-Forwarded-For is recorded. A user agent keeps its first 512 characters."""
    status = await completed_export(api)
    async with httpx.AsyncClient(timeout=30) as proxied:
        got = await proxied.get(
            status["downloadUrl"],
            headers={"X-Forwarded-For": "203.0.113.9, 127.0.0.1", "User-Agent": ("é" + "x" * 5000).encode("latin-1")},
        )
        assert got.status_code == 200
        assert (await proxied.get(status["downloadUrl"], headers={"X-Forwarded-For": "2001:db8::7"})).status_code == 200
    newest, oldest = await records(api, status["id"])
    assert oldest["clientIp"] == "203.0.113.9"
    assert oldest["userAgent"] == ("é" + "x" * 5000)[:MAX_USER_AGENT]
    assert newest["clientIp"] == "2001:db8::7"
    assert newest["userAgent"].startswith("python-httpx/")


async def test_refused_links_are_not_recorded(hub: Hub, api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    status = await completed_export(api)
    async with httpx.AsyncClient(timeout=30) as anonymous:
        tampered = re.sub(r"signature=([0-9a-f])", lambda m: "signature=" + "01"[m[1] == "0"], status["downloadUrl"])
        assert (await anonymous.get(tampered)).status_code == 403
        await pool.execute(
            "UPDATE export_jobs SET expires_at = now() - interval '1 second' WHERE id = $1", status["id"]
        )
        assert (await anonymous.get(status["downloadUrl"])).status_code in (403, 410)
    assert await records(api, status["id"]) == []


async def test_the_list_is_newest_first_a_page_at_a_time(hub: Hub, api: httpx.AsyncClient) -> None:
    status = await completed_export(api)
    async with httpx.AsyncClient(timeout=30) as anonymous:
        for n in range(5):
            got = await anonymous.get(status["downloadUrl"], headers={"User-Agent": f"client-{n}"})
            assert got.status_code == 200
    pages, query = [], "?limit=2"
    while True:
        response = await api.get(f"/api/v1/exports/{status['id']}/downloads{query}")
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([r["userAgent"] for r in body["items"]])
        if body["nextCursor"] is None:
            break
        query = f"?limit=2&cursor={body['nextCursor']}"
    assert pages == [["client-4", "client-3"], ["client-2", "client-1"], ["client-0"]]
    everything = await records(api, status["id"], "?limit=100")
    assert [r["userAgent"] for r in everything] == [f"client-{n}" for n in range(4, -1, -1)]
    times = [r["downloadedAt"] for r in everything]
    assert times == sorted(times, reverse=True)


async def test_another_accounts_export_answers_404_like_an_unknown_one(hub: Hub, api: httpx.AsyncClient) -> None:
    status = await completed_export(api)
    async with httpx.AsyncClient(timeout=30) as anonymous:
        assert (await anonymous.get(status["downloadUrl"])).status_code == 200
    async with hub.client("globex") as theirs:
        other = await theirs.get(f"/api/v1/exports/{status['id']}/downloads")
        unknown = await theirs.get(f"/api/v1/exports/{uuid.uuid4()}/downloads")
        assert other.status_code == unknown.status_code == 404
        assert other.headers["content-type"] == unknown.headers["content-type"]
        assert other.json()["title"] == unknown.json()["title"]
        assert other.json()["detail"].replace(status["id"], "ID") == re.sub(
            r"[0-9a-f-]{36}", "ID", unknown.json()["detail"]
        )
        # globex's own export lists only its own records, never acme's.
        theirs_status = await completed_export(theirs)
        assert (await theirs.get(theirs_status["downloadUrl"])).status_code == 200
        [only] = await records(theirs, theirs_status["id"])
        assert only["apiKey"]["prefix"] == hub.keys["globex"][:12]
    assert len(await records(api, status["id"])) == 1


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?limit=ten", "limit"),
        ("?limit=", "limit"),
        ("?cursor=abc", "cursor"),
        ("?cursor=0", "cursor"),
        ("?cursor=-1", "cursor"),
        ("?cursor=1.5", "cursor"),
        ("?cursor=" + "9" * 40, "cursor"),
        ("?cursor=%00", "cursor"),
        ("?cursor=%C3%A9", "cursor"),
    ],
)
async def test_bad_paging_answers_400_naming_the_field(api: httpx.AsyncClient, query: str, field: str) -> None:
    created = await submit(api, SMALL)
    response = await api.get(f"/api/v1/exports/{created['exportId']}/downloads{query}")
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_bad_ids_and_missing_keys_are_refused(hub: Hub, api: httpx.AsyncClient) -> None:
    for path in ("not-a-uuid", "1", "%00", "x" * 500):
        response = await api.get(f"/api/v1/exports/{path}/downloads")
        assert response.status_code in (400, 404), (path, response.text)
    created = await submit(api, SMALL)
    async with httpx.AsyncClient(base_url=hub.base_url, timeout=30) as anonymous:
        response = await anonymous.get(f"/api/v1/exports/{created['exportId']}/downloads")
    assert response.status_code == 401
    # A cursor past every record is an empty last page, not an error.
    empty = (await api.get(f"/api/v1/exports/{created['exportId']}/downloads?cursor=1")).json()
    assert empty == {"items": [], "nextCursor": None}


def _age_seconds(at: str) -> float:
    return (dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(at)).total_seconds()
