"""The garbage collector's settings for a long-running process (`exporthub serve`, `exporthub worker`)."""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Call once start-up is done. Objects made so far (modules, templates, the app) live as long as
    the process: keep them out of every full collection. A young generation of 10,000 objects
    instead of 700: the default thresholds collected so often that they cost the web process 30 % of
    a fan-out's CPU (publish-to-receipt p95 at 5,000 sockets 500 -> 146 ms, bench/fanout_bench.py)
    and a worker 6 % of a 500,000-row XLSX export (3.41 -> 3.22 s, bench/export_bench.py): asyncpg's
    records are tracked objects, made by the hundred thousand."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
