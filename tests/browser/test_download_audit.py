"""The download audit in Chromium: the console's Download button is recorded as a console download,
and the card then says "Downloaded once, last 09:12", the time in the browser's zone."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import httpx

from tests.browser.conftest import ARTIFACTS
from tests.conftest import Hub
from tests.integration.helpers import submit, wait_status

ZONE = "Asia/Tokyo"  # far from UTC, no daylight saving: its clock differs from the server's UTC text


async def test_the_card_counts_downloads_in_the_browsers_zone(
    chromium: object, hub: Hub, api: httpx.AsyncClient
) -> None:
    status = await wait_status(api, (await submit(api, {"format": "csv", "resource": "compliance"}))["exportId"])
    assert status["status"] == "completed", status
    context = await chromium.new_context(  # type: ignore[attr-defined]
        base_url=hub.base_url, timezone_id=ZONE, locale="en-GB", accept_downloads=True
    )
    page = await context.new_page()
    await page.goto("/console")
    await page.get_by_label("API key").fill(hub.keys["acme"])
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/console")
    card = page.locator(f"#export-{status['id']}")
    await card.locator("a.download").wait_for()
    assert await card.locator(".card-downloads").count() == 0  # never downloaded: nothing said

    for _ in range(2):
        async with page.expect_download() as info:
            await card.get_by_role("link", name=re.compile(r"^Download CSV")).click()
        assert (await (await info.value).path()).stat().st_size == status["fileSize"]

    records = (await api.get(f"/api/v1/exports/{status['id']}/downloads")).json()["items"]
    assert [r["via"] for r in records] == ["console", "console"]
    assert "Chrome" in records[0]["userAgent"] and records[0]["clientIp"] == "127.0.0.1"
    last = dt.datetime.fromisoformat(records[0]["downloadedAt"]).astimezone(ZoneInfo(ZONE))

    await page.reload()
    line = card.locator(".card-downloads")
    await line.wait_for()
    # console.js has replaced the server's UTC text by the browser's clock: wait for it, not a time.
    await page.wait_for_function(
        "(id) => document.querySelector('#' + id + ' .card-downloads time').title !== ''",
        arg=f"export-{status['id']}",
    )
    text = await line.inner_text()
    assert text == f"Downloaded 2 times, last {last:%H:%M}", text
    title = await line.locator("time").get_attribute("title") or ""
    assert f"{last:%H:%M}" in title and ("JST" in title or "GMT+9" in title), title
    ARTIFACTS.mkdir(exist_ok=True)
    await card.screenshot(path=str(ARTIFACTS / "download-audit-card.png"))
    await context.close()
