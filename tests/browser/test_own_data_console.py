"""The console over an organisation's own catalog (tests/own_data): the form offers its resources and
only the filters each one has, and an export started from it downloads the cells the source holds."""

from __future__ import annotations

import csv
from pathlib import Path

import asyncpg
import openpyxl

from tests.browser.conftest import ARTIFACTS, signed_in_page
from tests.own_data import OwnHub

CARDS = "#exports > .export-card"


async def start_export(page: object) -> object:
    """Press Start export; the card of the export it made. Earlier tests' exports of this hub are listed
    too, so the new card is told by its id, not by its place or text."""
    known = await page.locator(CARDS).evaluate_all("cards => cards.map(c => c.id)")  # type: ignore[attr-defined]
    await page.get_by_role("button", name="Start export").click()  # type: ignore[attr-defined]
    await page.wait_for_function(  # type: ignore[attr-defined]
        "known => [...document.querySelectorAll('#exports > .export-card')].some(c => !known.includes(c.id))",
        arg=known,
    )
    new_id = await page.locator(CARDS).evaluate_all(  # type: ignore[attr-defined]
        "(cards, known) => cards.map(c => c.id).find(id => !known.includes(id))", known
    )
    return page.locator(f"#{new_id}")  # type: ignore[attr-defined]


async def test_the_form_follows_the_catalog_and_exports_own_data(
    chromium: object, own_hub: OwnHub, tmp_path: Path
) -> None:
    page = await signed_in_page(chromium, own_hub, "northwind")  # type: ignore[arg-type]
    options = await page.locator("#f-resource option").all_inner_texts()  # type: ignore[attr-defined]
    assert options == ["People", "Shifts", "Headcount by team"]

    # People: a start-date range, active/inactive, and the company's own teams (not Contoso's).
    await page.locator("#resource-fields legend", has_text="Start date").wait_for()  # type: ignore[attr-defined]
    teams = await page.locator("#resource-fields input[name=department_ids]").evaluate_all(  # type: ignore[attr-defined]
        "boxes => boxes.map(b => b.value)"
    )
    assert sorted(teams) == ["FOH", "KIT", "OPS"]
    statuses = await page.locator("#f-status option").all_inner_texts()  # type: ignore[attr-defined]
    assert statuses == ["Any status", "Active", "Inactive"]

    # Headcount: a view with no filters at all.
    await page.select_option("#f-resource", "headcount")  # type: ignore[attr-defined]
    await page.locator("#resource-fields input[value=avgSalary]").wait_for()  # type: ignore[attr-defined]
    for absent in ("#f-date-from", "#f-status", "input[name=department_ids]"):
        assert await page.locator(absent).count() == 0, absent  # type: ignore[attr-defined]
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "console-own-catalog.png"), full_page=True)  # type: ignore[attr-defined]

    await page.get_by_label("Excel (XLSX)", exact=True).check()  # type: ignore[attr-defined]
    card = await start_export(page)
    await card.locator("a.download").wait_for(timeout=60_000)  # type: ignore[attr-defined]
    assert "Headcount by team" in await card.inner_text()  # type: ignore[attr-defined]
    async with page.expect_download() as info:  # type: ignore[attr-defined]
        await card.locator("a.download").click()
    download = await info.value
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)

    sheet = openpyxl.load_workbook(saved).worksheets[0]
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    conn = await asyncpg.connect(own_hub.source_url)
    try:
        expected = await conn.fetch(
            "SELECT t.team_name, count(s.staff_no) AS n, round(coalesce(avg(s.salary_eur), 0), 2) AS avg,"
            " coalesce(bool_or(s.active), false) AS any FROM teams t"
            " LEFT JOIN staff s ON (s.company, s.team_code) = (t.company, t.team_code)"
            " WHERE t.company = 'nw-001' GROUP BY t.team_code, t.team_name ORDER BY t.team_code"
        )
    finally:
        await conn.close()
    assert cells[0] == ["Team", "Headcount", "Average salary", "Anyone active"]
    assert cells[1:] == [[r["team_name"], r["n"], float(r["avg"]), r["any"]] for r in expected]


async def test_a_people_export_from_the_form_applies_the_chosen_team(
    chromium: object, own_hub: OwnHub, tmp_path: Path
) -> None:
    page = await signed_in_page(chromium, own_hub, "northwind")  # type: ignore[arg-type]
    await page.locator("#resource-fields input[name=department_ids][value=KIT]").check()  # type: ignore[attr-defined]
    card = await start_export(page)
    await card.locator("a.download").wait_for(timeout=60_000)  # type: ignore[attr-defined]
    text = await card.inner_text()  # type: ignore[attr-defined]
    assert "People" in text and "1 department" in text
    async with page.expect_download() as info:  # type: ignore[attr-defined]
        await card.locator("a.download").click()
    saved = tmp_path / "people.csv"
    await (await info.value).save_as(saved)
    with saved.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    assert rows[0][:3] == ["Staff no.", "Name", "Team"]
    assert {r[2] for r in rows[1:]} == {"Kitchen"}
    assert [int(r[0]) for r in rows[1:]] == [n for n in range(1, 41) if n % 3 == 1]  # schema.sql: KIT is n % 3 = 1
