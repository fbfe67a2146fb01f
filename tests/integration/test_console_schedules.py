"""The console's Schedules panel over HTTP: create (problems next to their fields), pause, resume,
delete, the last run's export card; another account's schedule is not found."""

from __future__ import annotations

import re
import uuid

import asyncpg
import pytest

from tests.conftest import Hub
from tests.harness import wait_for_async
from tests.integration.test_console import console

FORM = {
    "name": "Weekly timesheets",
    "resource": "timesheets",
    "format": "csv",
    "window": "last_days:7",
    "cron": "30 7 * * 1",
    "time_zone": "Europe/Berlin",
}
CARD = re.compile(r'<li id="schedule-([0-9a-f-]{36})"')


@pytest.fixture
async def no_schedules(pool: asyncpg.Pool) -> None:
    await pool.execute("DELETE FROM schedules")


async def test_create_pause_resume_delete(hub: Hub, pool: asyncpg.Pool, no_schedules: None) -> None:
    async with console(hub) as (client, token):
        headers = {"X-CSRFToken": token, "HX-Request": "true"}
        page = await client.get("/console")
        assert 'hx-get="/console/schedules"' in page.text
        panel = await client.get("/console/schedules")
        assert panel.status_code == 200 and "New schedule" in panel.text and "No schedules yet" in panel.text

        created = await client.post("/console/schedules", data=FORM, headers=headers)
        assert created.status_code == 200, created.text
        assert 'hx-swap-oob="beforeend:#schedules"' in created.text
        assert "Weekly timesheets" in created.text and "At 07:30 on Monday (Europe/Berlin)" in created.text
        assert "the 7 days before each run" in created.text
        assert 'value="Europe/Berlin"' in created.text  # the fresh form keeps the zone
        schedule_id = uuid.UUID(CARD.search(created.text).group(1))  # type: ignore[union-attr]
        row = await pool.fetchrow("SELECT * FROM schedules WHERE id = $1", schedule_id)
        assert row["cron"] == "30 7 * * 1" and row["time_zone"] == "Europe/Berlin"
        assert "data-local-time" in created.text and "CET" in created.text  # its own zone, until the script runs

        paused = await client.post(f"/console/schedules/{schedule_id}/pause", headers=headers)
        assert 'data-status="paused"' in paused.text and "Resume" in paused.text
        assert await pool.fetchval("SELECT enabled FROM schedules WHERE id = $1", schedule_id) is False
        resumed = await client.post(f"/console/schedules/{schedule_id}/resume", headers=headers)
        assert 'data-status="active"' in resumed.text and "Next run" in resumed.text

        async with console(hub, "globex") as (other, other_token):
            refused = await other.delete(f"/console/schedules/{schedule_id}", headers={"X-CSRFToken": other_token})
            assert refused.status_code == 404
            assert (await other.get(f"/console/schedules/{schedule_id}/card")).status_code == 404

        gone = await client.delete(f"/console/schedules/{schedule_id}", headers=headers)
        assert gone.status_code == 200 and gone.text == ""
        assert await pool.fetchval("SELECT count(*) FROM schedules WHERE id = $1", schedule_id) == 0


async def test_problems_are_shown_next_to_their_fields(hub: Hub, no_schedules: None) -> None:
    async with console(hub) as (client, token):
        bad = {**FORM, "cron": "every monday", "time_zone": "Europe/Berln"}
        answer = await client.post("/console/schedules", data=bad, headers={"X-CSRFToken": token})
        assert answer.status_code == 422
        assert 'id="err-s-cron"' in answer.text and "Expected five fields" in answer.text
        assert 'id="err-s-zone"' in answer.text and "did you mean Europe/Berlin?" in answer.text
        assert 'value="every monday"' in answer.text  # what was typed stays


async def test_the_last_runs_export_shows_as_its_card(hub: Hub, pool: asyncpg.Pool, no_schedules: None) -> None:
    async with console(hub) as (client, token):
        created = await client.post("/console/schedules", data=FORM, headers={"X-CSRFToken": token})
        schedule_id = uuid.UUID(CARD.search(created.text).group(1))  # type: ignore[union-attr]
        await pool.execute("UPDATE schedules SET next_run_at = now() WHERE id = $1", schedule_id)

        async def with_export() -> str | None:
            card = await client.get(f"/console/schedules/{schedule_id}/card")
            return card.text if 'class="export-card is-completed"' in card.text else None

        card = await wait_for_async(with_export, 60, "the schedule's card to show its completed export")
        assert f'id="schedule-{schedule_id}-last-export"' in card and "Last run, due" in card
        assert "Download CSV" in card and "/cancel" not in card
