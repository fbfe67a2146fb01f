"""The issue 14 targets in one table, each met or not, from the sections of one run (bench.run).

A target whose benchmark did not run says "not run"; one measured at a smaller size than the target's
(the smoke run, or --sizes) says so and has no verdict; one no benchmark can measure yet says
"not measured" with the reason. Nothing here measures: it reads the other sections' rows.
"""

from __future__ import annotations

from typing import Any

from bench.api_bench import OPEN_LOOP_ACCOUNTS, OPEN_LOOP_RATE, OPEN_LOOP_SECONDS, SUBMIT_P99_TARGET_MS
from bench.common import Section, verdict
from bench.export_bench import CONCURRENCY_TARGET, FULL_ROWS, PDF_PEAK_TARGET_MIB, PDF_RATE_TARGET
from bench.fanout_bench import (
    FANOUT_P95_TARGET_MS,
    FANOUT_TARGET,
    MIXED_ACCOUNTS,
    MIXED_P95_TARGET_MS,
    MIXED_RUNNING,
    MIXED_SOCKETS,
)
from bench.paired_bench import FLOOR_RATIO_TARGET, NODE_RATIO_TARGET, XLSX_PEAK_TARGET_MIB

NOT_RUN = "not run"
NOT_MEASURED = "not measured"


def _row(area: str, target: str, measured: str | None, state: str, source: dict[str, Any] | None = None) -> dict:
    return {
        "area": area,
        "target": target,
        "measured": measured,
        "verdict": state,
        "loadavg": source.get("loadavg") if source else None,
    }


def _at_size(rows: int, wanted: int) -> bool:
    return rows >= wanted * 0.98


def _judged(met: bool, rows: int, wanted: int) -> str:
    """The verdict, when measured at the target's size; else no verdict, and why."""
    return verdict(met) if _at_size(rows, wanted) else f"— (measured at {rows:,} rows; the target is at {wanted:,})"


def target_rows(sections: dict[str, Section], pdf_max_rows: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    paired = sections.get("node_paired")
    floor = sections.get("copy_floor")
    by_format = {r["format"]: r for r in paired.rows} if paired else {}
    missing_node = next((n for n in paired.notes if n.startswith("Node not measured")), None) if paired else None

    def node_ratio(fmt: str) -> None:
        target = f"{fmt.upper()} ≤ {NODE_RATIO_TARGET[fmt]:g}x Node (median paired ratio, {FULL_ROWS:,} rows)"
        r = by_format.get(fmt)
        if r is None:
            rows.append(_row("exports", target, None, NOT_RUN))
        elif r["ratio"] is None:
            rows.append(_row("exports", target, missing_node, NOT_MEASURED, r))
        else:
            measured = (
                f"{r['ratio']:.3f}x (ExportHub {r['exporthub_seconds']} s / Node {r['node_seconds']} s, "
                f"pairs: {r['pairs']}, {r['rows']:,} rows)"
            )
            state = _judged(r["ratio"] <= NODE_RATIO_TARGET[fmt], r["rows"], FULL_ROWS)
            rows.append(_row("exports", target, measured, state, r))

    node_ratio("xlsx")
    target = f"XLSX worker peak < {XLSX_PEAK_TARGET_MIB:.0f} MiB ({FULL_ROWS:,} rows)"
    if (r := by_format.get("xlsx")) is None:
        rows.append(_row("exports", target, None, NOT_RUN))
    else:
        state = _judged(r["exporthub_peak_mib"] < XLSX_PEAK_TARGET_MIB, r["rows"], FULL_ROWS)
        measured = (
            f"{r['exporthub_peak_mib']} MiB (the highest of {r['pairs']} run(s); Node's {r['node_peak_mib']} MiB)"
        )
        rows.append(_row("exports", target, measured, state, r))

    target = f"CSV ≤ {FLOOR_RATIO_TARGET:g}x the COPY floor ({FULL_ROWS:,} rows)"
    f = floor.rows[0] if floor and floor.rows else None
    if f is None or f["ratio"] is None or (r := by_format.get("csv")) is None:
        rows.append(_row("exports", target, None, NOT_RUN))
    else:
        measured = f"{f['ratio']:.2f}x (ExportHub {f['exporthub_csv_seconds']} s / COPY {f['seconds']} s)"
        state = _judged(f["ratio"] <= FLOOR_RATIO_TARGET, r["rows"], FULL_ROWS)
        rows.append(_row("exports", target, measured, state, f))
    node_ratio("csv")

    exports = sections.get("exports")
    pdf = [r for r in exports.rows if r["format"] == "pdf"] if exports else []
    largest = max(pdf, key=lambda r: r["rows"]) if pdf else None
    for target, check, measure in (
        (
            f"PDF ≥ {PDF_RATE_TARGET:,} rows/s at its largest size ({pdf_max_rows:,} rows)",
            lambda r: r["rows_per_second"] >= PDF_RATE_TARGET,
            lambda r: f"{r['rows_per_second']:,} rows/s ({r['rows']:,} rows in {r['seconds']} s)",
        ),
        (
            f"PDF worker peak < {PDF_PEAK_TARGET_MIB:.0f} MiB ({pdf_max_rows:,} rows)",
            lambda r: r["worker_peak_mib"] < PDF_PEAK_TARGET_MIB,
            lambda r: f"{r['worker_peak_mib']} MiB",
        ),
    ):
        if largest is None:
            rows.append(_row("exports", target, None, NOT_RUN))
        else:
            state = _judged(check(largest), largest["rows"], pdf_max_rows)
            rows.append(_row("exports", target, measure(largest), state, largest))

    concurrency = sections.get("concurrency")
    for fmt in ("csv", "xlsx"):
        target = f"two workers, two {FULL_ROWS:,}-row {fmt.upper()} exports ≤ {CONCURRENCY_TARGET:g}x serial"
        r = next((c for c in concurrency.rows if c["format"] == fmt), None) if concurrency else None
        if r is None:
            rows.append(_row("concurrency", target, None, NOT_RUN))
        else:
            measured = f"{r['ratio']:.2f}x ({r['concurrent_seconds']} s vs {r['sequential_seconds']} s)"
            if "cpu_floor" in r:  # one export alone keeps more than one CPU busy: the floor is above 0.5x
                measured += f"; CPU floor {r['cpu_floor']:.2f}x ({r['sequential_cpus']} CPUs busy one at a time)"
            state = _judged(r["ratio"] <= CONCURRENCY_TARGET, r["rows_each"], FULL_ROWS)
            rows.append(_row("concurrency", target, measured, state, r))

    fanout = sections.get("fanout")
    target = f"{FANOUT_TARGET:,} JSON sockets, one account: every event, p95 < {FANOUT_P95_TARGET_MS:.0f} ms"
    json_rows = [r for r in fanout.rows if r["socket"] == "json"] if fanout else []
    if not json_rows:
        rows.append(_row("live sockets", target, None, NOT_RUN))
    else:
        r = max(json_rows, key=lambda r: r["sockets"])
        measured = (
            f"p95 {r['delay_p95_ms']} ms at {r['sockets']:,} sockets "
            f"({r['connected']:,} connected, {r['received_all']:,} got every event)"
        )
        state = r["verdict"] if r["sockets"] >= FANOUT_TARGET else f"— (largest run {r['sockets']:,} sockets)"
        rows.append(_row("live sockets", target, measured, state, r))
    target = (
        f"{MIXED_SOCKETS:,} sockets across {MIXED_ACCOUNTS:,} accounts while {MIXED_RUNNING} exports run: "
        f"p95 < {MIXED_P95_TARGET_MS:.0f} ms"
    )
    mixed = [r for r in fanout.rows if r["socket"] == "json, many accounts"] if fanout else []
    if not mixed:
        rows.append(_row("live sockets", target, None, NOT_RUN))
    else:
        r = mixed[-1]
        measured = (
            f"p95 {r['delay_p95_ms']} ms at {r['sockets']:,} sockets over {r['accounts']:,} accounts, "
            f"{r['running_exports']} exports sending progress ({r['connected']:,} connected, deliveries "
            f"{r['deliveries']}, {r.get('web_workers', 1)} web process(es))"
        )
        at_size = r["sockets"] >= MIXED_SOCKETS and r["running_exports"] >= MIXED_RUNNING
        state = r["verdict"] if at_size else f"— (measured at {r['sockets']:,} sockets)"
        rows.append(_row("live sockets", target, measured, state, r))
    api = sections.get("api")
    target = (
        f"open loop {OPEN_LOOP_RATE}/s over {OPEN_LOOP_ACCOUNTS} accounts for {OPEN_LOOP_SECONDS:g} s: "
        f"p99 < {SUBMIT_P99_TARGET_MS:.0f} ms, 0 errors, the active-export cap exact"
    )
    open_loop = [r for r in api.rows if r["load"].startswith("open loop")] if api else []
    if not open_loop:
        rows.append(_row("submit", target, None, NOT_RUN))
    else:
        r = min(open_loop, key=lambda r: r["p99_ms"])  # the best number of web processes measured
        measured = (
            f"p99 {r['p99_ms']} ms with {r['web_workers']} web process(es), {r['statuses']}, errors "
            f"{r['errors']}, at most {r['max_active_seen']} active seen ({r['load']}; every run: "
            + "; ".join(f"{o['web_workers']} proc p99 {o['p99_ms']} ms" for o in open_loop)
            + ")"
        )
        at_size = r["requests"] >= OPEN_LOOP_RATE * OPEN_LOOP_SECONDS
        rows.append(_row("submit", target, measured, r["verdict"] if at_size else "— (a shorter or slower run)", r))
    return rows


def targets_section(sections: list[Section], pdf_max_rows: int, loadavg_during: dict[str, Any]) -> Section:
    rows = target_rows({s.key: s for s in sections}, pdf_max_rows)
    met = sum(r["verdict"] == "met" for r in rows)
    not_met = sum(r["verdict"] == "NOT met" for r in rows)
    return Section(
        "targets",
        "Targets (issue 14), this run",
        rows,
        [
            ("area", "area"),
            ("target", "target"),
            ("measured", "measured"),
            ("verdict", "verdict"),
            ("loadavg", "load (1 min)"),
        ],
        [
            f"{met} met, {not_met} NOT met, {len(rows) - met - not_met} without a verdict in this run.",
            f"Load average (1 min) sampled every few seconds during the run: min {loadavg_during.get('min')}, "
            f"mean {loadavg_during.get('mean')}, max {loadavg_during.get('max')} on {loadavg_during.get('cpus')} "
            "CPUs; other processes share the machine, so compare runs made under similar load.",
        ],
    )
