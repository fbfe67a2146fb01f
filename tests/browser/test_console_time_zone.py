"""The new-export form's time zone in Chromium: it starts as the browser's (Playwright's timezone_id),
the export started from it carries that zone, and a zone the tz database lacks is refused beside the field."""

from __future__ import annotations

import asyncpg

from tests.conftest import Hub


async def test_the_form_preselects_the_browsers_zone_and_the_export_carries_it(
    chromium: object, hub: Hub, pool: asyncpg.Pool, clean_jobs: None
) -> None:
    context = await chromium.new_context(  # type: ignore[attr-defined]
        base_url=hub.base_url, timezone_id="Asia/Tokyo", locale="en-GB", viewport={"width": 1280, "height": 1000}
    )
    try:
        page = await context.new_page()
        await page.goto("/console")
        await page.get_by_label("API key").fill(hub.keys["acme"])
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url("**/console")
        zone = page.get_by_label("Time zone", exact=True).first
        await page.wait_for_function("document.querySelector('#f-timezone').value !== ''")
        assert await zone.get_attribute("id") == "f-timezone"
        assert await zone.input_value() == "Asia/Tokyo"
        # Its suggestions are the tz database's names.
        assert await page.locator("#f-timezone-names option[value='America/New_York']").count() == 1

        await page.select_option("#f-resource", "compliance")
        await page.get_by_role("button", name="Start export").click()
        await page.locator(".export-card").first.wait_for()
        zones = [r["time_zone"] for r in await pool.fetch("SELECT time_zone FROM export_jobs")]
        assert zones == ["Asia/Tokyo"]
        assert await zone.input_value() == "Asia/Tokyo"  # kept for the next export

        await zone.fill("Asia/Tokio")
        await page.get_by_role("button", name="Start export").click()
        error = page.locator("#err-timezone")
        await error.wait_for()
        assert "did you mean Asia/Tokyo?" in await error.inner_text()
        assert await page.locator("#f-timezone").get_attribute("aria-invalid") == "true"
        assert await pool.fetchval("SELECT count(*) FROM export_jobs") == 1
    finally:
        await context.close()
