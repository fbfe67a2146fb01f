"""The benchmark suite, tiny: each benchmark runs once, small, and writes well-formed result files.

Runs `python -m bench.run --smoke` against the test database, as an operator would run the suite.
Timing is not asserted (CI machines vary); `make bench` measures. Runs in well under a minute:
one 2,000-row CSV export, 20 sockets of fan-out, 2 s of API load (wrk if installed, else the
asyncio load generator).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from exporthub.settings import Settings
from tests.harness import ROOT, settings_env

pytestmark = pytest.mark.timeout(90)


async def test_bench_suite_writes_results(settings: Settings, clean_jobs: None, tmp_path: Path) -> None:
    out = tmp_path / "results"
    bench = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bench.run", "--smoke", "--database", settings.db.url, "--out", str(out)),
        cwd=ROOT,
        env=settings_env(settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(bench.communicate(), 80)
    assert bench.returncode == 0, output.decode(errors="replace")[-4000:]
    json_path, md_path = out / "results.json", out / "results.md"

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
    assert (out / "chart.png").exists() or "matplotlib" in data["meta"]["chart"]
