"""The pipeline's test-only pause: marked, held until released or stopped, and inert when unset."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from exporthub.exports.pause_hook import hold_if_paused
from tests.harness import Pauses


async def test_an_export_is_held_until_its_release_file_exists(tmp_path: Path) -> None:
    pauses, export_id = Pauses(tmp_path / "pauses"), uuid.uuid4()
    held = asyncio.create_task(hold_if_paused(pauses.path, export_id, stopped=lambda: False))
    await pauses.wait_paused(export_id, timeout=5)
    assert not held.done()
    pauses.release(export_id)
    await asyncio.wait_for(held, 5)


async def test_a_stop_ends_the_hold_without_a_release(tmp_path: Path) -> None:
    pauses, export_id, stop = Pauses(tmp_path), uuid.uuid4(), False
    held = asyncio.create_task(hold_if_paused(pauses.path, export_id, stopped=lambda: stop))
    await pauses.wait_paused(export_id, timeout=5)
    stop = True
    await asyncio.wait_for(held, 5)
    assert not (tmp_path / f"{export_id}.release").exists()


async def test_without_a_pause_dir_nothing_is_held_or_written(tmp_path: Path) -> None:
    await asyncio.wait_for(hold_if_paused(None, uuid.uuid4(), stopped=lambda: False), 1)
    assert list(tmp_path.iterdir()) == []
