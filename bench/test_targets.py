"""The paired rows (median of per-pair ratios) and the issue 14 targets table read from one run's sections."""

from __future__ import annotations

from typing import Any

from bench.common import Section
from bench.paired_bench import pair_row
from bench.targets import target_rows


def hub(seconds: float, peak: float = 95.0, rows: int = 500_000) -> dict[str, Any]:
    return {"rows": rows, "seconds": seconds, "worker_peak_mib": peak, "file_mib": 30.0, "loadavg": 1.5}


def node(seconds: float, rows: int = 500_000) -> dict[str, Any]:
    return {"rows": rows, "seconds": seconds, "maxrss_mib": 600.0, "file_mib": 31.0}


def test_the_ratio_is_the_median_of_the_pairs_ratios_not_the_ratio_of_medians() -> None:
    # pair ratios 0.1, 0.2, 0.5 -> 0.2; the medians' ratio would be 3 / 20 = 0.15
    row = pair_row("xlsx", [(hub(3.0), node(30.0)), (hub(2.0), node(10.0)), (hub(5.0), node(10.0))], None)
    assert row["ratio"] == 0.2 and row["ratios"] == "0.100 / 0.200 / 0.500"
    assert row["exporthub_seconds"] == 3.0 and row["node_seconds"] == 10.0 and row["node_peak_mib"] == 600.0
    assert row["verdict"] == "NOT met" and row["target"] == "≤ 0.15x Node, worker peak < 100 MiB"
    fast = pair_row("xlsx", [(hub(1.0), node(10.0)), (hub(1.4), node(10.0))], None)
    assert fast["ratio"] == 0.12 and fast["verdict"] == "met"
    heavy = pair_row("xlsx", [(hub(1.0, peak=100.0), node(10.0))], None)
    assert heavy["verdict"] == "NOT met"  # fast enough, but the worker's peak reached 100 MiB
    assert pair_row("csv", [(hub(1.7, peak=150.0), node(10.0))], None)["verdict"] == "met"  # CSV: time only
    small = pair_row("csv", [(hub(1.0, rows=2_000), node(10.0, rows=2_000))], None)
    assert small["ratio"] == 0.1 and small["verdict"] == "—"  # the target is set at 500,000 rows


def test_without_node_the_pairs_say_why() -> None:
    row = pair_row("csv", [(hub(1.7), None)], "node is not installed")
    assert row["verdict"] == "not measured" and row["ratio"] is None and row["exporthub_seconds"] == 1.7


def sections(rows: int = 500_000, pdf_rows: int = 100_000, node_missing: bool = False) -> dict[str, Section]:
    paired = [
        pair_row(
            "xlsx",
            [(hub(2.4, 97.0, rows), None if node_missing else node(20.0, rows))],
            "no node" if node_missing else None,
        ),
        pair_row(
            "csv",
            [(hub(1.7, 95.0, rows), None if node_missing else node(10.0, rows))],
            "no node" if node_missing else None,
        ),
    ]
    notes = ["Node not measured: node is not installed."] if node_missing else []
    floor = {"seconds": 1.0, "exporthub_csv_seconds": 1.7, "ratio": 1.7, "loadavg": 1.0}
    pdf = {
        "format": "pdf",
        "rows": pdf_rows,
        "seconds": 10.0,
        "rows_per_second": pdf_rows // 10,
        "worker_peak_mib": 110.0,
    }
    pair = {"format": "csv", "rows_each": rows, "ratio": 0.54, "concurrent_seconds": 2.0, "sequential_seconds": 3.7}
    fanout = {"socket": "json", "sockets": 5_000, "connected": 5_000, "received_all": 5_000, "delay_p95_ms": 164.6,
              "verdict": "NOT met"}  # fmt: skip
    return {
        "node_paired": Section("node_paired", "", paired, [], notes),
        "copy_floor": Section("copy_floor", "", [floor], []),
        "exports": Section("exports", "", [pdf], []),
        "concurrency": Section("concurrency", "", [pair], []),
        "fanout": Section("fanout", "", [fanout], []),
    }


def verdicts(rows: list[dict[str, Any]]) -> dict[str, str]:
    return {r["target"].split(" (")[0].split(":")[0]: r["verdict"] for r in rows}


def test_every_issue_14_target_has_a_row_with_its_verdict() -> None:
    got = verdicts(target_rows(sections(), 100_000))
    assert got == {
        "XLSX ≤ 0.15x Node": "met",  # 2.4 / 20 = 0.12
        "XLSX worker peak < 100 MiB": "met",
        "CSV ≤ 1.3x the COPY floor": "NOT met",  # 1.7x
        "CSV ≤ 0.18x Node": "met",  # 0.17
        "PDF ≥ 8,000 rows/s at its largest size": "met",
        "PDF worker peak < 120 MiB": "met",
        "two workers, two 500,000-row CSV exports ≤ 0.55x serial": "met",
        "two workers, two 500,000-row XLSX exports ≤ 0.55x serial": "not run",  # only CSV ran
        "5,000 JSON sockets, one account": "NOT met",
        "5,000 sockets across 1,000 accounts while 200 exports run": "not run",
        "open loop 300/s over 50 accounts for 30 s": "not run",
    }


def test_targets_measured_at_a_smaller_size_carry_no_verdict_and_missing_parts_say_so() -> None:
    rows = target_rows(sections(rows=2_000, pdf_rows=2_000, node_missing=True), 100_000)
    got = verdicts(rows)
    assert got["XLSX ≤ 0.15x Node"] == got["CSV ≤ 0.18x Node"] == "not measured"
    assert rows[0]["measured"] == "Node not measured: node is not installed."
    small = "— (measured at 2,000 rows; the target is at 500,000)"
    assert got["XLSX worker peak < 100 MiB"] == got["CSV ≤ 1.3x the COPY floor"] == small
    assert got["PDF worker peak < 120 MiB"] == "— (measured at 2,000 rows; the target is at 100,000)"
    assert verdicts(target_rows({}, 100_000))["XLSX ≤ 0.15x Node"] == "not run"
    assert {r["verdict"] for r in target_rows({}, 100_000)} == {"not run"}


def test_the_many_accounts_fanout_and_the_open_loop_are_judged_from_their_rows() -> None:
    mixed = {"socket": "json, many accounts", "sockets": 5_000, "accounts": 1_000, "running_exports": 200,
             "connected": 5_000, "deliveries": "20,000 of 20,000", "delay_p95_ms": 31.0, "web_workers": 1,
             "verdict": "met"}  # fmt: skip
    open_loop = [
        {"load": "open loop 300/s, 50 accounts, 30 s", "web_workers": n, "requests": 9_000, "p99_ms": p99,
         "statuses": "202: 8,000, 429: 1,000", "errors": 0, "max_active_seen": 5, "verdict": v}
        for n, p99, v in ((1, 80.0, "NOT met"), (2, 40.0, "met"))
    ]  # fmt: skip
    given = {**sections(), "api": Section("api", "", open_loop, [])}
    given["fanout"].rows.append(mixed)
    rows = {r["target"].split(":")[0]: r for r in target_rows(given, 100_000)}
    many = rows["5,000 sockets across 1,000 accounts while 200 exports run"]
    assert many["verdict"] == "met" and "p95 31.0 ms" in many["measured"]
    submits = rows["open loop 300/s over 50 accounts for 30 s"]
    assert submits["verdict"] == "met" and submits["measured"].startswith("p99 40.0 ms with 2 web process(es)")
    short = [{**open_loop[1], "requests": 40}]
    given["api"] = Section("api", "", short, [])
    assert verdicts(target_rows(given, 100_000))["open loop 300/s over 50 accounts for 30 s"].startswith("—")
