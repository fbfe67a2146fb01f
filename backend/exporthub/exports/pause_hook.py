"""Tests only: hold a running export at a known point, so that a test can cancel it or kill its worker there.

With EXPORTHUB_TEST_PAUSE_DIR set, the pipeline calls `hold_if_paused` once, after an export's first
batch of rows: it creates `<dir>/<export_id>.paused`, then waits until `<dir>/<export_id>.release`
exists or the export is told to stop (a cancel, a lost lease). The lease keeper runs meanwhile, so
the export stays claimed and a cancel is noticed as in any other moment of the run. Unset (always, in
production), nothing happens.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path

POLL_SECONDS = 0.02


async def hold_if_paused(pause_dir: Path | None, export_id: uuid.UUID, stopped: Callable[[], bool]) -> None:
    if pause_dir is None:
        return
    release = _mark_paused(pause_dir, export_id)
    # Polled, not awaited: the release is a file that another process (the test) creates.
    while not (stopped() or release.exists()):  # noqa: ASYNC110
        await asyncio.sleep(POLL_SECONDS)


def _mark_paused(pause_dir: Path, export_id: uuid.UUID) -> Path:
    """Create `<export_id>.paused`; returns the path of the file that releases the export."""
    pause_dir.mkdir(parents=True, exist_ok=True)
    (pause_dir / f"{export_id}.paused").touch()
    return pause_dir / f"{export_id}.release"
