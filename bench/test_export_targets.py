"""The export benchmark's verdicts check the targets of the speed-and-scale work."""

from __future__ import annotations

from bench.export_bench import against_targets, export_sizes


def row(fmt: str, rows: int, seconds: float, peak: float) -> dict:
    return {"format": fmt, "rows": rows, "seconds": seconds, "worker_peak_mib": peak}


def test_500k_rows_need_the_time_the_peak_and_flat_growth() -> None:
    ok = against_targets(row("xlsx", 500_000, 8.5, 110.0), peak_at_50k=107.0)
    assert ok["verdict"] == "met" and ok["growth_mib"] == 3.0
    assert against_targets(row("xlsx", 500_000, 9.5, 110.0), 107.0)["verdict"] == "NOT met"  # too slow
    assert against_targets(row("csv", 500_000, 1.9, 119.0), 100.0)["verdict"] == "NOT met"  # grew 19 MiB
    assert against_targets(row("csv", 500_000, 1.9, 121.0), 120.0)["verdict"] == "NOT met"  # over 120 MiB


def test_smaller_exports_are_held_to_the_peak_only() -> None:
    assert against_targets(row("xlsx", 50_004, 1.0, 119.0), None)["verdict"] == "met"
    small = against_targets(row("csv", 5_000, 0.3, 125.0), None)
    assert small["verdict"] == "NOT met" and small["target"] == "peak < 120 MiB"


def test_pdf_at_its_largest_size_needs_8000_rows_a_second_and_the_peak() -> None:
    assert against_targets(row("pdf", 50_004, 12.0, 131.0), None)["verdict"] == "—"  # below the cap: no target
    ok = against_targets(row("pdf", 100_000, 12.0, 119.0), None, pdf_max_rows=100_000)
    assert ok["verdict"] == "met" and ok["target"] == "≥ 8,000 rows/s, peak < 120 MiB"
    assert against_targets(row("pdf", 100_000, 12.6, 119.0), None, 100_000)["verdict"] == "NOT met"  # 7,937/s
    assert against_targets(row("pdf", 100_000, 12.0, 120.0), None, 100_000)["verdict"] == "NOT met"
    assert against_targets(row("pdf", 20_000, 2.0, 100.0), None, pdf_max_rows=20_000)["verdict"] == "met"


def test_pdf_sizes_above_the_cap_are_measured_at_the_cap() -> None:
    assert export_sizes("pdf", [5_000, 50_000, 500_000], 100_000) == [5_000, 50_000, 100_000]
    assert export_sizes("pdf", [100_000, 500_000], 100_000) == [100_000]
    assert export_sizes("csv", [5_000, 500_000], 100_000) == [5_000, 500_000]
