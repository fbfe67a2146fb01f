"""The benchmark suite, tiny: each benchmark runs once, small, and writes well-formed result files.

Runs `python -m bench.run --smoke` against the test database, as an operator would run the suite.
Timing is not asserted (CI machines vary); `make bench` measures. Runs in well under a minute once
Node's packages are installed: one pair (ExportHub, then the seed's Node exporter on the same SQL)
of 2,000-row CSV and XLSX exports, the COPY floor of that SQL, 20 sockets of fan-out, 2 s of API
load (wrk if installed, else the asyncio load generator). Node's packages come from the Makefile's
own step (`make bench-node`, npm ci); only a machine without node skips the Node part, and says so.

Also here: the literals that bench/sql_literals.py inlines for Node read back in PostgreSQL exactly
as the bound parameters do.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest
from bench.sql_literals import inline_parameters

from exporthub.accounts import account_by_slug
from exporthub.catalog import load_catalog
from exporthub.exports.models import Filters
from exporthub.exports.query import build_export_query
from exporthub.settings import Settings
from tests.harness import ROOT, settings_env

NODE_INSTALL_TIMEOUT = 240


@pytest.fixture(scope="module")
def node_packages() -> str | None:
    """Node's packages installed by the Makefile's step; the reason the Node part cannot run, or None."""
    if shutil.which("node") is None:
        return "node is not installed"
    make = subprocess.run(
        ["make", "--no-print-directory", "bench-node"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=NODE_INSTALL_TIMEOUT,
    )
    assert make.returncode == 0, make.stdout[-2000:] + make.stderr[-2000:]
    return None


@pytest.mark.timeout(NODE_INSTALL_TIMEOUT + 120)
async def test_bench_suite_writes_results(
    settings: Settings, clean_jobs: None, tmp_path: Path, node_packages: str | None
) -> None:
    out = tmp_path / "results"
    bench = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bench.run", "--smoke", "--database", settings.db.url, "--out", str(out)),
        cwd=ROOT,
        env=settings_env(settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(bench.communicate(), 110)
    assert bench.returncode == 0, output.decode(errors="replace")[-4000:]
    json_path, md_path = out / "results.json", out / "results.md"

    data = json.loads(json_path.read_text())
    assert {"meta", "targets", "node_paired", "copy_floor", "exports", "fanout", "api"} <= data.keys()
    assert data["meta"]["cpus"] >= 1 and "loadavg_start" in data["meta"]
    during = data["meta"]["loadavg_during"]
    assert during["samples"] >= 2 and 0 <= during["min"] <= during["mean"] <= during["max"]

    csv_export, xlsx_export = data["exports"]["rows"]
    for export, fmt in ((csv_export, "csv"), (xlsx_export, "xlsx")):
        assert export["format"] == fmt and export["target_rows"] == 2_000, export
        assert export["rows"] > 0 and export["seconds"] > 0 and export["worker_peak_mib"] > 0 and export["file_mib"] > 0
        assert export["source"] == "paired, median of 1"  # the pair's run, not run twice

    # The SQL Node and the floor ran: ExportHub's query for those rows, its parameters inlined.
    sql = (out / "payroll-2000.sql").read_text()
    assert "$1" not in sql and sql.startswith("SELECT ") and "ORDER BY" in sql
    assert (out / "payroll-2000-csv-text.sql").read_text() != sql
    plain_floor, csv_text_copy = data["copy_floor"]["rows"]
    assert plain_floor["sql_file"] == "payroll-2000.sql" and plain_floor["runs"] == 3
    assert 0 < plain_floor["min_seconds"] <= plain_floor["seconds"] <= plain_floor["max_seconds"]
    assert plain_floor["mib"] > 0 and csv_text_copy["mib"] > 0
    assert plain_floor["ratio"] == round(plain_floor["exporthub_csv_seconds"] / plain_floor["seconds"], 2)

    paired = {r["format"]: r for r in data["node_paired"]["rows"]}
    assert paired.keys() == {"csv", "xlsx"}
    for fmt, row in paired.items():
        assert row["pairs"] == 1 and row["rows"] == data["exports"]["rows"][fmt == "xlsx"]["rows"]
        if node_packages is None:
            assert row["node_rows"] == row["rows"], row  # the same rows on both sides
            assert row["node_seconds"] > 0 and row["node_peak_mib"] > 0 and row["node_file_mib"] > 0, row
            # one pair: its ratio (of the unrounded times) is the median
            assert row["ratio"] == pytest.approx(row["exporthub_seconds"] / row["node_seconds"], rel=0.1), row
        else:
            assert row["verdict"] == "not measured" and row["node_seconds"] is None

    targets = data["targets"]["rows"]
    assert len(targets) == 11
    kinds = {r["verdict"].split(" (")[0] for r in targets}
    assert kinds <= {"met", "NOT met", "—", "not run", "not measured"}, kinds
    by_target = {r["target"].split(" (")[0]: r for r in targets}
    assert by_target["XLSX worker peak < 100 MiB"]["verdict"].startswith("— (measured at 2,0")  # smoke size
    assert by_target["5,000 sockets across 1,000 accounts while 200 exports run: p95 < 50 ms"]["verdict"] == (
        "— (measured at 4 sockets)"
    )
    open_loop_target = "open loop 300/s over 50 accounts for 30 s: p99 < 50 ms, 0 errors, the active-export cap exact"
    assert by_target[open_loop_target]["verdict"] == "— (a shorter or slower run)"
    assert by_target["XLSX ≤ 0.15x Node"]["measured"] is not None

    json_sockets, console_sockets, many_accounts = data["fanout"]["rows"]
    assert many_accounts["connected"] == 4 and many_accounts["deliveries"].split(" of ")[0] == "40", many_accounts
    assert (json_sockets["socket"], console_sockets["socket"]) == ("json", "console")
    for fanout in (json_sockets, console_sockets):
        assert fanout["sockets"] == 20 and fanout["connected"] == 20, fanout
        # JSON sockets forward benchSeq; console cards show the rows the events set
        assert fanout["received_all"] == 20, fanout
        assert 0 < fanout["delay_p50_ms"] <= fanout["delay_p99_ms"]

    endpoints = [r["endpoint"] for r in data["api"]["rows"]]
    assert len(endpoints) == 4 and any(e.startswith("GET") for e in endpoints)
    for row in data["api"]["rows"]:
        assert row["requests"] > 0 and row["p50_ms"] <= row["p99_ms"] and row["verdict"] in {"met", "NOT met", "—"}
    capped = data["api"]["rows"][2]
    assert "429" in capped["statuses"]  # past the cap of 5 the API refuses, and says so
    open_loop = data["api"]["rows"][-1]  # 20 submits a second for 2 s over 2 accounts, two web processes
    assert open_loop["web_workers"] == 2 and open_loop["requests"] == 40 and open_loop["errors"] == 0, open_loop
    assert open_loop["cap_exact"] and open_loop["max_active_seen"] <= 5, open_loop

    md = md_path.read_text()
    for title in ("### Targets (issue 14)", "### Against the Node reference", "### The COPY floor", "### Exports"):
        assert title in md
    for title in ("### WebSocket fan-out", "### API under load"):
        assert title in md
    assert (out / "chart.png").exists() or "matplotlib" in data["meta"]["chart"]
    if node_packages is not None:
        pytest.skip(f"the suite ran, but not the Node exporter: {node_packages}")


TRICKY = ["it's", "back\\slash", "'; DROP TABLE accounts; --", "$1", 'quote "d"', "ünïcødé ✓", "", "{a,b}", "NULL"]


@pytest.mark.parametrize(
    ("value", "sql_type"),
    [
        *((v, "text") for v in TRICKY),
        (None, "text"),
        (-42, "int8"),
        (12.5, "float8"),
        (True, "bool"),
        (datetime.date(2024, 2, 29), "date"),
        (datetime.datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=datetime.UTC), "timestamptz"),
        (uuid.UUID(int=7), "uuid"),
        (TRICKY, "text[]"),
        ([], "text[]"),
        (["a", None, "b"], "text[]"),
        ([[1, 2], [3, 4]], "int4[]"),
    ],
)
async def test_inlined_literals_read_back_as_bound_parameters(pool: asyncpg.Pool, value: object, sql_type: str) -> None:
    sql = f"SELECT $1::{sql_type} AS v, $1::{sql_type} IS NULL AS is_null"
    bound = await pool.fetchrow(sql, value)
    inlined = await pool.fetchrow(inline_parameters(sql, [value]))
    assert inlined == bound and bound["v"] == value
    assert bound["is_null"] is (value is None)


async def test_the_inlined_export_query_selects_the_same_rows(settings: Settings, pool: asyncpg.Pool) -> None:
    acme = await account_by_slug(pool, "acme")
    assert acme is not None
    resource = load_catalog().resources["payroll"]
    departments = await pool.fetch(
        "SELECT DISTINCT e.department_id::text AS id FROM payroll p JOIN employees e ON e.id = p.employee_id"
        " WHERE p.account_id = $1 ORDER BY 1 LIMIT 2",
        acme.id,
    )
    dates = await pool.fetchrow(
        "SELECT min(pay_date) AS lo, max(pay_date) AS hi FROM payroll WHERE account_id = $1", acme.id
    )
    filters = Filters(date_from=dates["lo"], date_to=dates["hi"], department_ids=tuple(d["id"] for d in departments))
    columns = tuple(c.key for c in resource.columns)
    for csv_text in (False, True):
        query = build_export_query(resource, columns, filters, acme.tenant_key, csv_text=csv_text)
        bound = await pool.fetch(query.select_sql, *query.args)
        assert len(bound) > 0
        assert await pool.fetch(inline_parameters(query.select_sql, query.args)) == bound
