"""`exporthub schedule create | list | delete` against the real web server, as an operator runs it."""

from __future__ import annotations

import json
import uuid

import asyncpg

from tests.conftest import Hub
from tests.harness import exporthub_command


def schedule_command(hub: Hub, *args: str, account: str = "acme") -> tuple[int, str, str]:
    result = exporthub_command(hub.settings, "schedule", *args, EXPORTHUB_API_KEY=hub.keys[account])
    return result.returncode, result.stdout, result.stderr


async def test_create_list_delete(hub: Hub, pool: asyncpg.Pool) -> None:
    await pool.execute("DELETE FROM schedules")
    code, out, err = schedule_command(
        hub,
        "create",
        "--resource", "timesheets",
        "--format", "xlsx",
        "--cron", "30 7 * * 1",
        "--time-zone", "Europe/Berlin",
        "--window", "last_days:7",
        "--status", "approved",
        "--name", "Weekly timesheets",
    )  # fmt: skip
    assert code == 0, err
    schedule_id = uuid.UUID(out.strip())
    assert "At 07:30 on Monday (Europe/Berlin); next run 20" in err
    row = await pool.fetchrow("SELECT * FROM schedules WHERE id = $1", schedule_id)
    assert json.loads(row["date_window"]) == {"kind": "last_days", "days": 7}
    assert json.loads(row["export"]) == {"resource": "timesheets", "format": "xlsx", "filters": {"status": "approved"}}

    code, out, err = schedule_command(hub, "list")
    assert code == 0, err
    assert f"{schedule_id}  Weekly timesheets  30 7 * * 1 Europe/Berlin  next 20" in out
    code, out, _ = schedule_command(hub, "list", "--json")
    assert [s["id"] for s in json.loads(out)] == [str(schedule_id)]
    code, out, _ = schedule_command(hub, "list", account="globex")
    assert out == ""

    code, _, err = schedule_command(hub, "delete", str(schedule_id), account="globex")
    assert code == 1 and "HTTP 404" in err
    code, _, err = schedule_command(hub, "delete", str(schedule_id))
    assert code == 0 and "deleted" in err
    assert await pool.fetchval("SELECT count(*) FROM schedules") == 0


def test_faults_are_printed_by_field(hub: Hub) -> None:
    code, out, err = schedule_command(
        hub, "create", "--resource", "payroll", "--cron", "0 25 * * *", "--time-zone", "Europe/Berln"
    )
    assert code == 1 and out == ""
    assert "HTTP 422" in err
    assert "  cron: bad hour in '0 25 * * *'" in err
    assert "  timeZone: unknown time zone 'Europe/Berln'" in err
