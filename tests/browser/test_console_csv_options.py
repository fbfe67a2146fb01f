"""The form's CSV options in Chromium: shown only while CSV is chosen; a semicolon-separated,
gzip-compressed export started from them downloads as a .csv.gz that opens into its columns."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import asyncpg

from tests.browser.conftest import signed_in_page
from tests.conftest import Hub


async def test_a_semicolon_gzip_csv_from_the_form(
    chromium: object, hub: Hub, pool: asyncpg.Pool, clean_jobs: None, tmp_path: Path
) -> None:
    page = await signed_in_page(chromium, hub, "acme")
    try:
        options = page.locator("fieldset.csv-only")  # type: ignore[attr-defined]
        separator = page.get_by_label("Separator")  # type: ignore[attr-defined]
        assert await options.is_visible()
        await page.get_by_label("Excel (XLSX)").check()  # type: ignore[attr-defined]
        assert not await options.is_visible()  # nothing CSV-only is offered, or sent, with XLSX
        await page.get_by_label("CSV", exact=True).check()  # type: ignore[attr-defined]
        assert await options.is_visible()

        await page.select_option("#f-resource", "compliance")  # type: ignore[attr-defined]
        await separator.select_option("semicolon")
        await page.get_by_label("Compress (.csv.gz)").check()  # type: ignore[attr-defined]
        await page.get_by_role("button", name="Start export").click()  # type: ignore[attr-defined]
        card = page.locator(".export-card[data-status=completed]").first  # type: ignore[attr-defined]
        await card.wait_for(timeout=60_000)
        options_kept = await pool.fetchval("SELECT options::text FROM export_jobs")
        assert '"csvDelimiter": ";"' in options_kept and '"csvGzip": true' in options_kept

        async with page.expect_download() as info:  # type: ignore[attr-defined]
            await card.locator("a.download").click()
        download = await info.value
        saved = tmp_path / download.suggested_filename
        await download.save_as(saved)
        assert saved.name.endswith(".csv.gz")
        text = gzip.decompress(saved.read_bytes()).decode("utf-8-sig")
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
        assert len(rows) > 1 and len(rows[0]) > 3  # the header splits into its columns at the semicolons
        assert all(len(row) == len(rows[0]) for row in rows)
    finally:
        await page.context.close()  # type: ignore[attr-defined]
