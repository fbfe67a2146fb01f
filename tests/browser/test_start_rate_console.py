"""The console in Chromium when the account's start rate refuses an export: the message appears beside
the Start button, which it describes, and says when to try again."""

from __future__ import annotations

import dataclasses
import re
import uuid

import asyncpg

from exporthub.accounts import create_account, create_api_key
from exporthub.settings import Rate
from tests.browser.conftest import ARTIFACTS, signed_in_page
from tests.conftest import Hub


async def test_a_refused_start_is_explained_beside_the_start_button(
    chromium: object, hub: Hub, clean_jobs: None, pool: asyncpg.Pool
) -> None:
    # An account of its own rate (the session's hubs allow far more than the default), one start a minute.
    slug = f"rate-{uuid.uuid4().hex[:8]}"
    account = await create_account(pool, slug, "Start rate test", start_rate=Rate(1, 60))
    rated = dataclasses.replace(hub, keys={**hub.keys, slug: await create_api_key(pool, account.id, label="rate")})
    page = await signed_in_page(chromium, rated, slug)
    start = page.get_by_role("button", name="Start export")  # type: ignore[attr-defined]
    await start.click()
    await page.locator("#exports > .export-card").first.wait_for()  # type: ignore[attr-defined]
    await start.click()
    message = page.locator("#start-error")  # type: ignore[attr-defined]
    await message.wait_for()
    text = (await message.text_content()).strip()
    assert re.fullmatch(r"This account may start at most 1 export per minute; try again in \d+ s\.", text), text
    assert await start.get_attribute("aria-describedby") == "start-error"
    assert await page.locator("#exports > .export-card").count() == 1  # type: ignore[attr-defined]
    ARTIFACTS.mkdir(exist_ok=True)
    await page.locator("#export-form").screenshot(path=str(ARTIFACTS / "console-start-rate.png"))  # type: ignore[attr-defined]
    button, said = await start.bounding_box(), await message.bounding_box()
    assert button and said
    # Beside the button: on its right in the same row, or (the form is a narrow column) right under it.
    same_row = said["x"] >= button["x"] + button["width"] and said["y"] < button["y"] + button["height"]
    right_under = 0 <= said["y"] - (button["y"] + button["height"]) <= 16 and said["x"] == button["x"]
    assert same_row or right_under, (button, said)
    await page.context.close()  # type: ignore[attr-defined]
