"""The export benchmark's verdicts check the targets of the speed-and-scale work."""

from __future__ import annotations

from bench.export_bench import against_targets


def row(fmt: str, rows: int, seconds: float, peak: float) -> dict:
    return {"format": fmt, "rows": rows, "seconds": seconds, "worker_peak_mib": peak}


def test_500k_rows_need_the_time_the_peak_and_flat_growth() -> None:
    ok = against_targets(row("xlsx", 500_000, 8.5, 110.0), peak_at_50k=107.0)
    assert ok["verdict"] == "met" and ok["growth_mib"] == 3.0 and ok["time_vs_node"] == round(8.5 / 21.9, 2)
    assert against_targets(row("xlsx", 500_000, 9.5, 110.0), 107.0)["verdict"] == "NOT met"  # too slow
    assert against_targets(row("csv", 500_000, 1.9, 119.0), 100.0)["verdict"] == "NOT met"  # grew 19 MiB
    assert against_targets(row("csv", 500_000, 1.9, 121.0), 120.0)["verdict"] == "NOT met"  # over 120 MiB


def test_smaller_exports_are_held_to_the_peak_only_and_pdf_to_nothing() -> None:
    assert against_targets(row("xlsx", 50_004, 1.0, 119.0), None)["verdict"] == "met"
    assert against_targets(row("pdf", 50_004, 12.0, 131.0), None)["verdict"] == "—"
    small = against_targets(row("csv", 5_000, 0.3, 125.0), None)
    assert small["verdict"] == "NOT met" and small["target"] == "peak < 120 MiB" and small["time_vs_node"] is None
