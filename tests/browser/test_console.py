"""The console in Chromium: sign in, watch an export's bar move live, download the file, stay isolated
from other accounts, and catch up after the socket drops (snapshot) or never connects (polling)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import asyncpg

from tests.browser.conftest import ARTIFACTS, signed_in_page
from tests.conftest import Hub
from tests.integration.helpers import wait_status

# Record every WebSocket the page opens; `__dropSocket()` ends the newest one as a network drop
# would (close code 1006, which the htmx extension retries), and `__blockSockets` makes new ones fail.
SOCKET_HOOKS = """
(() => {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.__blockSockets = window.__blockSockets || false;
  function Recorded(url, protocols) {
    // A blocked socket asks for a path with no WebSocket: the handshake fails as a dropped network would.
    const target = window.__blockSockets ? url.replace("/console/ws", "/console/no-socket") : url;
    if (window.__blockSockets) document.documentElement.dataset.refusedSockets = "yes";
    const socket = new Native(target, protocols);
    window.__sockets.push(socket);
    return socket;
  }
  Recorded.prototype = Native.prototype;
  Object.assign(Recorded, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
  window.WebSocket = Recorded;
  window.__dropSocket = () => {
    const socket = window.__sockets[window.__sockets.length - 1];
    const onclose = socket.onclose;
    socket.onclose = null;
    socket.close();
    if (onclose) onclose(new CloseEvent("close", { code: 1006 }));
  };
})();
"""

# Sample the card's bar in the page itself: every distinct (value, text) it shows.
SAMPLER = """
(id) => {
  window.__samples = [];
  window.__sameDocument = true;
  const seen = new Set();
  window.__sampler = setInterval(() => {
    const card = document.getElementById(id);
    const bar = card && card.querySelector("progress");
    if (!bar) return;
    const text = card.querySelector(".progress-text").textContent.trim();
    const key = bar.value + "|" + text;
    if (!seen.has(key)) { seen.add(key); window.__samples.push({ value: bar.value, text: text }); }
  }, 20);
}
"""


async def start_payroll_export(page: object, fmt: str = "CSV") -> str:
    await page.select_option("#f-resource", "payroll")  # type: ignore[attr-defined]
    await page.locator("#resource-fields legend", has_text="Pay date").wait_for()  # type: ignore[attr-defined]
    for box in await page.locator("#resource-fields input[name=columns]").all():  # type: ignore[attr-defined]
        await box.check()  # every column: more work per row, a bar that moves for longer
    await page.get_by_label(fmt, exact=True).check()  # type: ignore[attr-defined]
    await page.get_by_role("button", name="Start export").click()  # type: ignore[attr-defined]
    card = page.locator("#exports > .export-card").first  # type: ignore[attr-defined]
    await card.wait_for()
    dom_id = await card.get_attribute("id")
    assert dom_id and dom_id.startswith("export-")
    return dom_id


async def acme_payroll_rows(pool: asyncpg.Pool) -> int:
    return await pool.fetchval(
        "SELECT count(*) FROM payroll p JOIN accounts a ON a.id = p.account_id WHERE a.slug = 'acme'"
    )


async def test_live_progress_then_download_and_no_leak_to_other_accounts(
    chromium: object, hub: Hub, clean_jobs: None, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    page = await signed_in_page(chromium, hub, "acme")
    narrow = await signed_in_page(chromium, hub, "acme", width=375, height=812)
    globex = await signed_in_page(chromium, hub, "globex")

    dom_id = await start_payroll_export(page)
    await page.evaluate(SAMPLER, dom_id)  # type: ignore[attr-defined]

    # Mid-export: both acme pages show the bar; keep pictures of them.
    await page.wait_for_function(  # type: ignore[attr-defined]
        "(id) => { const b = document.querySelector('#' + id + ' progress'); return b && b.value >= 10; }",
        arg=dom_id,
        timeout=60_000,
    )
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "console-mid-export.png"), full_page=True)  # type: ignore[attr-defined]
    await narrow.screenshot(path=str(ARTIFACTS / "console-mid-export-375px.png"), full_page=True)  # type: ignore[attr-defined]

    card = page.locator(f"#{dom_id}")  # type: ignore[attr-defined]
    await card.locator("a.download").wait_for(timeout=90_000)
    samples = await page.evaluate("window.__samples")  # type: ignore[attr-defined]
    values = {s["value"] for s in samples}
    assert len(values) >= 3, samples
    assert any(re.search(r"\d+% · [\d,]+ of [\d,]+ rows", s["text"]) for s in samples), samples
    assert await page.evaluate("window.__sameDocument === true"), "the page reloaded"  # type: ignore[attr-defined]
    assert await card.get_attribute("data-status") == "completed"
    link = card.get_by_role("link", name=re.compile(r"Download CSV \(\d"))
    await link.wait_for()
    assert "expires" in (await card.inner_text())

    async with page.expect_download() as info:  # type: ignore[attr-defined]
        await link.click()
    download = await info.value
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    assert saved.suffix == ".csv"
    with saved.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    assert rows[0][:3] == ["Payroll ID", "Employee No.", "Employee"]
    assert len(rows) - 1 == await acme_payroll_rows(pool) >= 100_000

    await narrow.locator(f"#{dom_id}[data-status=completed]").wait_for()  # type: ignore[attr-defined]
    # Globex's console, open all along, never saw acme's export.
    assert await globex.locator(f"#{dom_id}").count() == 0  # type: ignore[attr-defined]
    assert await globex.locator("#exports .export-card").count() == 0  # type: ignore[attr-defined]
    for p in (page, narrow, globex):
        await p.context.close()  # type: ignore[attr-defined]


async def test_a_dropped_socket_catches_up_from_the_snapshot(
    chromium: object, paused_hub: Hub, clean_jobs: None
) -> None:
    # The paused hub holds the export after its first batch: the socket drops while it runs, for sure.
    assert paused_hub.pauses is not None
    page = await signed_in_page(chromium, paused_hub, "acme", init_script=SOCKET_HOOKS)
    dom_id = await start_payroll_export(page)
    export_id = dom_id.removeprefix("export-")
    await paused_hub.pauses.wait_paused(export_id)
    await page.locator(f"#{dom_id}[data-status=processing] progress").wait_for(timeout=60_000)  # type: ignore[attr-defined]

    # Polling must not be what catches up here: refuse it, and keep the socket away until the end.
    await page.route("**/console/exports/*/card", lambda route: route.abort())  # type: ignore[attr-defined]
    await page.evaluate("window.__blockSockets = true; window.__dropSocket()")  # type: ignore[attr-defined]
    await page.locator("#live-status[data-state=down]").wait_for()  # type: ignore[attr-defined]
    paused_hub.pauses.release(export_id)
    async with paused_hub.client("acme") as api:
        final = await wait_status(api, export_id, timeout=90)
    assert final["status"] == "completed"
    assert await page.locator(f"#{dom_id}").get_attribute("data-status") == "processing"  # missed it
    # The export can finish before the extension's first retry: wait until a retry has been refused.
    await page.locator("html[data-refused-sockets]").wait_for(state="attached", timeout=30_000)  # type: ignore[attr-defined]

    await page.evaluate("window.__blockSockets = false")  # type: ignore[attr-defined]
    await page.locator(f"#{dom_id}[data-status=completed] a.download").wait_for(timeout=90_000)  # type: ignore[attr-defined]
    await page.locator("#live-status[data-state=live]").wait_for()  # type: ignore[attr-defined]
    assert await page.evaluate("window.__sockets.length") >= 3  # type: ignore[attr-defined]
    assert await page.locator(f"#exports > #{dom_id}").count() == 1  # type: ignore[attr-defined]
    await page.context.close()  # type: ignore[attr-defined]


async def test_without_a_socket_active_cards_poll(chromium: object, hub: Hub, clean_jobs: None) -> None:
    page = await signed_in_page(
        chromium, hub, "acme", init_script="window.__blockSockets = true;\n" + SOCKET_HOOKS, wait_live=False
    )
    await page.locator("#live-status[data-state=down]").wait_for()  # type: ignore[attr-defined]
    await page.get_by_role("button", name="Start export").click()  # employees, CSV: the defaults
    card = page.locator("#exports > .export-card").first  # type: ignore[attr-defined]
    await card.wait_for()
    await card.locator("a.download").wait_for(timeout=60_000)
    assert await card.get_attribute("data-status") == "completed"
    assert await card.get_attribute("data-active") is None  # polling stopped
    await page.context.close()  # type: ignore[attr-defined]
