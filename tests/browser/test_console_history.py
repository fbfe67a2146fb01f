"""The console's list in Chromium: Older exports loads the next page in place (none twice, and its cards
stay live), the filters swap the list and live in the address, a new export's card scrolls into view and
takes focus, the link's expiry counts down without asking the server, and Run again starts the same
request anew. Over HTTP: tests/integration/test_console_history.py."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

import asyncpg
from redis.asyncio import Redis

from exporthub.accounts import create_account, create_api_key
from exporthub.exports.models import ExportFormat
from exporthub.progress import publish_event
from exporthub.settings import Rate
from tests.browser.conftest import ARTIFACTS, signed_in_page
from tests.conftest import Hub
from tests.factories import create_export, create_request
from tests.integration.helpers import wait_status

CARD_IDS = "() => [...document.querySelectorAll('#exports > .export-card')].map(c => c.id)"
# The card that has focus, and whether all of it is inside the window.
FOCUSED_CARD = """
() => {
  const el = document.activeElement;
  if (!el || !el.classList.contains("export-card")) return null;
  const r = el.getBoundingClientRect();
  return { id: el.id, visible: r.top >= 0 && r.bottom <= window.innerHeight && r.height > 0 };
}
"""
# Where the focused card was the moment it took focus (before any smooth scroll went on).
AT_FOCUS = """
() => {
  window.__atFocus = null;
  document.addEventListener("focusin", (e) => {
    if (!e.target.classList || !e.target.classList.contains("export-card") || window.__atFocus) return;
    const r = e.target.getBoundingClientRect();
    window.__atFocus = { id: e.target.id, visible: r.top >= 0 && r.bottom <= window.innerHeight };
  });
}
"""


async def acme_id(pool: asyncpg.Pool) -> uuid.UUID:
    return await pool.fetchval("SELECT id FROM accounts WHERE slug = 'acme'")


async def old_exports(pool: asyncpg.Pool, count: int, *, start_minutes: int = 10, **columns: Any) -> list[str]:
    """`count` ended acme exports a minute apart, older than anything the test starts: their card ids, newest first."""
    account = await acme_id(pool)
    now = dt.datetime.now(dt.UTC)
    fields = {"status": "expired", **columns}
    async with pool.acquire() as conn:
        jobs = [
            await create_export(conn, account, created_at=now - dt.timedelta(minutes=start_minutes + i), **fields)
            for i in range(count)
        ]
    return [f"export-{j.id}" for j in jobs]


async def card_ids(page: Any) -> list[str]:
    return await page.evaluate(CARD_IDS)


async def test_older_exports_load_in_place_with_none_twice_and_stay_live(
    chromium: object, hub: Hub, clean_jobs: None, pool: asyncpg.Pool
) -> None:
    ids = await old_exports(pool, 45, status="completed", file_key="t/x.csv", file_size=10, processed_rows=1)
    await pool.execute("UPDATE export_jobs SET expires_at = now() + interval '1 day' WHERE status = 'completed'")
    page: Any = await signed_in_page(chromium, hub, "acme")
    assert await card_ids(page) == ids[:20]

    # A new export while the page is open: the socket puts it on top; the next page is not shifted by it.
    await page.get_by_role("button", name="Start export").click()
    await page.locator("#exports > .export-card").nth(20).wait_for()
    top = (await card_ids(page))[0]
    assert top not in ids
    await page.locator(f"#{top}[data-status=completed]").wait_for(timeout=60_000)  # its news told, the page is quiet

    older = page.get_by_role("button", name="Older exports")
    await older.click()
    await page.locator("#exports > .export-card").nth(40).wait_for()
    shown = await card_ids(page)
    assert shown == [top, *ids[:40]]  # appended in order, the first page untouched, none twice
    # Focus moves from the button (gone) to the first card it brought, once the cards have settled.
    await page.wait_for_function(f"() => document.activeElement && document.activeElement.id === {ids[20]!r}")
    assert await page.locator("#announcer").text_content() == "20 older exports shown."

    # A card of the second page changes (its file expired): the socket's card replaces it where it is.
    paged = uuid.UUID(ids[30].removeprefix("export-"))
    await pool.execute("UPDATE export_jobs SET status = 'expired' WHERE id = $1", paged)
    redis = Redis.from_url(hub.settings.redis.url)
    try:
        event = {"type": "export.expired", "exportId": str(paged), "status": "expired", "progress": 100,
                 "processedRows": 1, "totalRows": 1}  # fmt: skip
        await publish_event(redis, hub.settings.redis.queue_name, await acme_id(pool), event)
    finally:
        await redis.aclose()
    await page.locator(f"#{ids[30]}[data-status=expired]").wait_for()
    assert await card_ids(page) == shown  # same place, not moved to the top nor shown twice
    assert "The file was deleted" in await page.locator(f"#{ids[30]}").inner_text()

    await older.click()
    await page.locator("#exports > .export-card").nth(45).wait_for()
    assert await card_ids(page) == [top, *ids]
    assert await page.get_by_role("button", name="Older exports").count() == 0
    await page.context.close()


async def test_filters_swap_the_list_live_in_the_address_and_page_on(
    chromium: object, hub: Hub, clean_jobs: None, pool: asyncpg.Pool
) -> None:
    failed = await old_exports(pool, 24, status="failed", error_message="the source refused")
    xlsx = await old_exports(pool, 2, start_minutes=100, request=create_request(format=ExportFormat.XLSX))
    people = await old_exports(
        pool, 1, start_minutes=200, request=create_request(resource="employees", columns=("employeeNumber",))
    )
    page: Any = await signed_in_page(chromium, hub, "acme")
    filters = page.get_by_role("search", name="Filter your exports")

    await filters.get_by_label("Status").select_option("failed")
    await page.wait_for_url("**/console?status=failed")
    await page.locator("#exports[data-filter-status=failed]").wait_for()
    assert await card_ids(page) == failed[:20]
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "console-history.png"), full_page=True)
    await page.get_by_role("button", name="Older exports").click()  # the next page keeps the filter
    await page.locator("#exports > .export-card").nth(23).wait_for()
    assert await card_ids(page) == failed
    assert await page.get_by_role("button", name="Older exports").count() == 0

    await page.reload()  # the address keeps the filter
    await page.locator("#live-status[data-state=live]").wait_for()
    assert await filters.get_by_label("Status").input_value() == "failed"
    assert await card_ids(page) == failed[:20]

    await filters.get_by_label("Status").select_option("")
    await filters.get_by_label("Format").select_option("xlsx")
    await page.wait_for_url("**/console?format=xlsx")
    await page.locator("#exports[data-filter-format=xlsx]").wait_for()
    assert await card_ids(page) == xlsx

    await filters.get_by_label("Format").select_option("")
    await filters.get_by_label("Data").select_option("employees")
    await page.wait_for_url("**/console?resource=employees")
    await page.locator("#exports[data-filter-resource=employees]").wait_for()
    assert await card_ids(page) == people

    # A new payroll export does not join a list of employees exports.
    async with hub.client("acme") as api:
        response = await api.post("/api/v1/exports", json={"resource": "payroll", "format": "csv"})
        assert response.status_code == 202
        await wait_status(api, response.json()["exportId"])
    await filters.get_by_label("Status").select_option("failed")  # a round trip: the socket has had its say
    await page.locator("#exports[data-filter-status=failed][data-filter-resource=employees]").wait_for(state="attached")
    assert await card_ids(page) == []
    assert await page.locator("#exports-history .empty-note").is_visible()
    assert await page.locator("#exports-history .empty-note").text_content() == "No exports match these filters."

    await page.go_back()  # back to the employees-only list: a fresh page
    await page.wait_for_url("**/console?resource=employees")
    await page.locator("#exports[data-filter-resource=employees][data-filter-status='']").wait_for()
    assert await card_ids(page) == people
    await page.context.close()


async def test_a_new_exports_card_scrolls_into_view_and_takes_focus(
    chromium: object, hub: Hub, clean_jobs: None, pool: asyncpg.Pool
) -> None:
    await old_exports(pool, 12)
    for motion in ("no-preference", "reduce"):
        # One column: the list is under the form, out of sight of its Start button.
        page: Any = await signed_in_page(chromium, hub, "acme", width=375, height=700)
        await page.emulate_media(reduced_motion=motion)
        await page.evaluate(AT_FOCUS)
        start = page.get_by_role("button", name="Start export")
        await start.scroll_into_view_if_needed()
        before = await card_ids(page)
        await start.click()
        await page.wait_for_function(
            f"() => {{ const f = ({FOCUSED_CARD})(); return f && f.visible && !{before!r}.includes(f.id); }}"
        )
        focused = await page.evaluate(FOCUSED_CARD)
        assert focused["id"] == (await card_ids(page))[0]
        assert await page.evaluate("document.activeElement.tabIndex") == -1
        at_focus = await page.evaluate("window.__atFocus")
        assert at_focus["id"] == focused["id"]
        # Reduced motion: in view the moment it is focused; otherwise a smooth scroll brings it there after.
        assert at_focus["visible"] is (motion == "reduce"), (motion, at_focus)
        await page.context.close()


async def test_the_links_expiry_counts_down_without_asking_the_server(
    chromium: object, hub: Hub, clean_jobs: None, pool: asyncpg.Pool
) -> None:
    (card,) = await old_exports(pool, 1, status="completed", file_key="t/x.csv", file_size=10)
    await pool.execute("UPDATE export_jobs SET expires_at = now() + interval '2 hours'")
    page: Any = await signed_in_page(chromium, hub, "acme")
    await page.clock.install()
    await page.reload()
    await page.locator("#live-status[data-state=live]").wait_for()
    expiry = page.locator(f"#{card} time[data-expires-at]")
    assert await expiry.text_content() == "in 1 h 59 min"
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    await page.clock.fast_forward("31:00")
    await page.wait_for_function(
        "(id) => document.querySelector('#' + id + ' time[data-expires-at]').textContent === 'in 1 h 28 min'",
        arg=card,
    )
    await page.clock.fast_forward("01:28:30")  # 30 s left: seconds now, every second
    await page.wait_for_function(
        "(id) => /^in [1-3]\\d s$/.test(document.querySelector('#' + id + ' time[data-expires-at]').textContent)",
        arg=card,
    )
    await page.clock.fast_forward("01:00")
    await page.wait_for_function(
        "(id) => document.querySelector('#' + id + ' time[data-expires-at]').textContent === 'now'", arg=card
    )
    assert asked == []  # the page counted; nothing was fetched
    await page.context.close()


async def test_run_again_starts_the_same_request_as_a_new_export(chromium: object, hub: Hub, clean_jobs: None) -> None:
    page: Any = await signed_in_page(chromium, hub, "acme")
    await page.select_option("#f-resource", "payroll")
    await page.locator("#resource-fields legend", has_text="Pay date").wait_for()
    await page.get_by_label("Excel (XLSX)", exact=True).check()
    await page.get_by_role("button", name="Start export").click()
    first = page.locator("#exports > .export-card").first
    await first.locator("a.download").wait_for(timeout=60_000)
    first_id = (await first.get_attribute("id")).removeprefix("export-")

    await first.get_by_role("button", name="Run again").click()
    await page.wait_for_function("() => document.querySelectorAll('#exports > .export-card').length === 2")
    ids = await card_ids(page)
    new_id = ids[0].removeprefix("export-")
    assert ids == [f"export-{new_id}", f"export-{first_id}"]
    await page.wait_for_function(f"() => document.activeElement && document.activeElement.id === 'export-{new_id}'")
    await page.locator(f"#export-{new_id} a.download").wait_for(timeout=60_000)
    async with hub.client("acme") as api:
        before = (await api.get(f"/api/v1/exports/{first_id}")).json()
        again = (await api.get(f"/api/v1/exports/{new_id}")).json()
    for key in ("resource", "format", "columns", "filters", "timezone", "totalRows"):
        assert again[key] == before[key], key
    assert again["format"] == "xlsx"
    await page.context.close()


async def test_run_again_says_why_not_beside_its_button(
    chromium: object, hub: Hub, clean_jobs: None, pool: asyncpg.Pool
) -> None:
    slug = f"again-{uuid.uuid4().hex[:8]}"
    account = await create_account(pool, slug, "Run again test", start_rate=Rate(1, 60))
    rated = dataclasses.replace(hub, keys={**hub.keys, slug: await create_api_key(pool, account.id, label="t")})
    page: Any = await signed_in_page(chromium, rated, slug)
    await page.get_by_role("button", name="Start export").click()  # the one start of this minute
    card = page.locator("#exports > .export-card").first
    await card.locator("a.download").wait_for(timeout=60_000)
    await card.get_by_role("button", name="Run again").click()
    note = card.locator(".again-note")
    await note.filter(has_text="at most 1 export per minute").wait_for()
    assert (await note.text_content()).startswith("This account may start at most 1 export per minute; try again in")
    assert await page.locator("#exports > .export-card").count() == 1
    assert await card.get_by_role("button", name="Run again").is_enabled()
    await card.screenshot(path=str(ARTIFACTS / "console-run-again-refused.png"))
    await page.context.close()
