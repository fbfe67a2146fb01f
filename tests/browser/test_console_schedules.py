"""The Schedules panel in Chromium: the time zone starts as the browser's, the next run is shown in it,
a schedule's first run appears as its export card (screenshot), and pause and delete work."""

from __future__ import annotations

import re
import uuid

import asyncpg

from tests.browser.conftest import ARTIFACTS
from tests.conftest import Hub


async def signed_in_in_zone(chromium: object, hub: Hub, zone: str) -> object:
    context = await chromium.new_context(  # type: ignore[attr-defined]
        base_url=hub.base_url, timezone_id=zone, locale="en-GB", viewport={"width": 1280, "height": 1000}
    )
    page = await context.new_page()
    await page.goto("/console")
    await page.get_by_label("API key").fill(hub.keys["acme"])
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/console")
    await page.locator("#schedule-form").wait_for()
    return page


async def test_a_schedules_first_run_shows_as_its_export_card(chromium: object, hub: Hub, pool: asyncpg.Pool) -> None:
    await pool.execute("DELETE FROM schedules")
    page = await signed_in_in_zone(chromium, hub, "America/New_York")
    zone = page.locator("#s-zone")  # type: ignore[attr-defined]
    # The page's script fills in the browser's zone once it has loaded: wait for it, not a fixed time.
    await page.wait_for_function("document.querySelector('#s-zone').value !== ''")  # type: ignore[attr-defined]
    assert await zone.input_value() == "America/New_York"

    await page.get_by_label("Name (optional)").fill("Payroll, yearly")  # type: ignore[attr-defined]
    await page.locator("#s-resource").select_option("payroll")  # type: ignore[attr-defined]
    await page.locator("#s-window").select_option("previous_year")  # type: ignore[attr-defined]
    await page.locator("#s-format").select_option("xlsx")  # type: ignore[attr-defined]
    await page.get_by_label("When (cron: minute hour day month weekday)").fill("0 6 1 1 *")  # type: ignore[attr-defined]
    await zone.fill("Europe/Berlin")  # the schedule's zone; the page still shows times in New York's
    await page.get_by_role("button", name="Create schedule").click()  # type: ignore[attr-defined]

    card = page.locator(".schedule-card", has_text="Payroll, yearly")  # type: ignore[attr-defined]
    await card.wait_for()
    dom_id = await card.get_attribute("id")
    assert dom_id is not None
    schedule_id = uuid.UUID(dom_id.removeprefix("schedule-"))
    next_run = card.locator("time.next-run")
    await page.wait_for_function(  # type: ignore[attr-defined]
        "(id) => document.querySelector('#' + id + ' time.next-run').title !== ''", arg=dom_id
    )
    # 06:00 on 1 January in Berlin is midnight in New York, shown with New York's zone.
    assert re.search(r"\b1 Jan \d{4}, 00:00 (EST|GMT-5)\b", await next_run.inner_text()), await next_run.inner_text()
    assert "CET" in (await next_run.get_attribute("title") or "")  # the schedule's own zone, on hover
    assert "At 06:00 on January 1 (Europe/Berlin) · the year before each run" in await card.inner_text()

    # Its due time comes (rather than on the 1st): the page shows the run and its export, live.
    await pool.execute("UPDATE schedules SET next_run_at = now() WHERE id = $1", schedule_id)
    await page.reload()  # type: ignore[attr-defined]
    card = page.locator(f"#{dom_id}")  # type: ignore[attr-defined]
    export_card = card.locator(".export-card")
    await export_card.locator("a.download").wait_for(timeout=60_000)
    assert await export_card.get_attribute("data-status") == "completed"
    text = await card.inner_text()
    assert "Last run, due" in text and "Payroll · XLSX" in text and "Download XLSX" in text
    ARTIFACTS.mkdir(exist_ok=True)
    await card.screenshot(path=str(ARTIFACTS / "schedule-run.png"))
    assert await export_card.get_attribute("id") == f"{dom_id}-last-export"  # an id of its own on this page

    await card.get_by_role("button", name="Pause").click()
    await card.locator(".badge", has_text="Paused").wait_for()
    assert await pool.fetchval("SELECT enabled FROM schedules WHERE id = $1", schedule_id) is False
    await card.get_by_role("button", name="Delete").click()
    await card.wait_for(state="detached")
    assert await pool.fetchval("SELECT count(*) FROM schedules WHERE id = $1", schedule_id) == 0
