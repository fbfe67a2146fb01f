"""Chromium through Playwright, against the real web server and worker (`hub`).

Debian's Chromium is used (`/usr/bin/chromium`; `.ci/run` installs it); Playwright's own browser
download is never used. Without Chromium these tests skip, saying why.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import Hub
from tests.harness import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[object]:
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium; .ci/run does this)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def signed_in_page(
    chromium: object,
    hub: Hub,
    account: str,
    *,
    width: int = 1280,
    height: int = 900,
    init_script: str | None = None,
    wait_live: bool = True,
) -> object:
    """A new browser context (its own cookies) signed in through the sign-in form."""
    context = await chromium.new_context(  # type: ignore[attr-defined]
        base_url=hub.base_url, accept_downloads=True, viewport={"width": width, "height": height}
    )
    if init_script:
        await context.add_init_script(init_script)
    page = await context.new_page()
    await page.goto("/console")
    assert page.url.endswith("/console/sign-in"), page.url
    await page.get_by_label("API key").fill(hub.keys[account])
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/console")
    if wait_live:
        await page.locator("#live-status[data-state=live]").wait_for()
    return page
