"""The benchmark suite, tiny: each benchmark runs once, small, and writes well-formed result files.

Timing is not asserted (CI machines vary); `make bench` measures. Runs in well under a minute:
one 2,000-row CSV export, 20 sockets of fan-out, 2 s of API load (wrk if installed, else the
asyncio load generator).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import asyncpg
import pytest
from bench.api_bench import default_tool
from bench.common import register_bench_key
from bench.run import Plan, run_suite

from exporthub.settings import Settings
from tests.support import free_port

pytestmark = pytest.mark.timeout(90)


async def test_bench_suite_writes_results(
    settings: Settings, pool: asyncpg.Pool, clean_jobs: None, tmp_path: Path
) -> None:
    port = free_port()
    bench = settings.replace(
        redis={"queue_name": f"{settings.redis.queue_name}-bench-{uuid.uuid4().hex[:6]}"},
        web={"port": port, "public_url": f"http://127.0.0.1:{port}"},
        storage={"data_dir": tmp_path / "data"},
    )
    plan = Plan(
        only=("exports", "fanout", "api"),
        formats=("csv",),
        sizes=(2_000,),
        fanout_ramp=(20,),
        fanout_events=3,
        fanout_interval=0.2,
        api_connections=20,
        api_duration=2.0,
        api_pause=0.0,
        api_tool=default_tool(),
    )
    await register_bench_key(pool)
    json_path, md_path = await run_suite(bench, pool, plan, tmp_path / "results")

    data = json.loads(json_path.read_text())
    assert {"meta", "exports", "fanout", "api"} <= data.keys()
    assert data["meta"]["cpus"] >= 1 and "loadavg_start" in data["meta"]

    (export,) = data["exports"]["rows"]
    assert export["format"] == "csv" and export["target_rows"] == 2_000
    assert export["rows"] > 0 and export["seconds"] > 0 and export["worker_peak_mib"] > 0 and export["file_mib"] > 0

    json_sockets, console_sockets = data["fanout"]["rows"]
    assert (json_sockets["socket"], console_sockets["socket"]) == ("json", "console")
    for fanout in (json_sockets, console_sockets):
        assert fanout["sockets"] == 20 and fanout["connected"] == 20, fanout
        # JSON sockets forward benchSeq; console cards show the rows the events set
        assert fanout["received_all"] == 20, fanout
        assert 0 < fanout["delay_p50_ms"] <= fanout["delay_p99_ms"]

    endpoints = [r["endpoint"] for r in data["api"]["rows"]]
    assert len(endpoints) == 3 and any(e.startswith("GET") for e in endpoints)
    for row in data["api"]["rows"]:
        assert row["requests"] > 0 and row["p50_ms"] <= row["p99_ms"] and row["verdict"] in {"met", "NOT met", "—"}
    capped = data["api"]["rows"][-1]
    assert "429" in capped["statuses"]  # past the cap of 5 the API refuses, and says so

    md = md_path.read_text()
    for title in ("### Exports", "### WebSocket fan-out", "### API under load"):
        assert title in md
    assert (tmp_path / "results" / "chart.png").exists() or "matplotlib" in data["meta"]["chart"]
