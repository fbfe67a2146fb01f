"""The test side of the pipeline's pause hook (backend/exporthub/exports/pause_hook.py).

A worker whose settings have `test_pause_dir=pauses.path` (EXPORTHUB_TEST_PAUSE_DIR) holds every
export after its first batch of rows, having created `<export_id>.paused`, until the test creates
`<export_id>.release`, or the export is cancelled or loses its lease. So a test cancels, or kills the
worker, at a known point of a running export, however fast the machine:

    await pauses.wait_paused(export_id)   # running, rows written, lease kept
    ... cancel it, or worker.kill() ...
    pauses.release(export_id)             # the run (or the next worker's) goes on
"""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

from tests.harness.waiting import wait_for_async


@dataclasses.dataclass(frozen=True)
class Pauses:
    path: Path

    def paused(self, export_id: str | uuid.UUID) -> bool:
        """Whether the export has reached its pause (it stays true after the release)."""
        return (self.path / f"{export_id}.paused").exists()

    async def wait_paused(self, export_id: str | uuid.UUID, timeout: float = 30) -> None:
        await wait_for_async(lambda: self.paused(export_id), timeout, f"export {export_id} to pause")

    def release(self, export_id: str | uuid.UUID) -> None:
        """Let the export go on (or, if it pauses later, as a new run after a killed worker, not stop)."""
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / f"{export_id}.release").touch()

    def release_all(self) -> None:
        """Every export that has paused so far."""
        for marker in self.path.glob("*.paused"):
            self.release(marker.stem)
