"""exports/pipeline.py without servers: its configuration, progress arithmetic, when progress is
published, stopping, backoff, file names and the clean-up of a killed run's partial files.

A run over real PostgreSQL: tests/integration/test_cancel_and_recovery.py, test_export_files.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import types
from pathlib import Path

import pytest

from exporthub.exports import pipeline
from exporthub.exports.models import ExportFormat, ExportJob, ExportStatus
from exporthub.exports.pipeline import (
    Cancelled,
    LeaseLost,
    PipelineConfig,
    _advance,
    _Progress,
    _progress_sent,
    file_name_for,
)
from exporthub.settings import Settings
from tests.factories import create_job

# --- configuration --------------------------------------------------------------------------------------


def test_the_config_takes_its_limits_from_the_settings() -> None:
    settings = Settings().replace(
        exports={"batch_size": 250, "link_ttl_seconds": 600, "max_rows_per_sheet": 10_000},
        recovery={"lease_seconds": 7, "max_attempts": 4},
        db={"source_statement_timeout_seconds": 2.5},
    )
    config = PipelineConfig.from_settings(settings)
    assert config == PipelineConfig(
        batch_size=250,
        lease_seconds=7,
        link_ttl_seconds=600,
        max_rows_per_sheet=10_000,
        max_attempts=4,
        statement_timeout_ms=2_500,
    )
    assert isinstance(config.statement_timeout_ms, int)


def test_the_config_of_the_default_settings_keeps_the_pipelines_own_defaults() -> None:
    config = PipelineConfig.from_settings(Settings())
    assert config.statement_timeout_ms == 600_000 == int(Settings().db.source_statement_timeout_seconds * 1000)
    assert config.heartbeat_seconds == 1.0
    assert config.retry_backoff_seconds == (1.0, 4.0)


# --- progress arithmetic -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("processed", "total", "percent"),
    [
        (0, None, 0),  # the count is not known yet
        (500, None, 0),
        (0, 0, 0),  # an export of no rows: never a division by zero
        (0, 1_000, 0),
        (9, 1_000, 0),
        (10, 1_000, 1),
        (999, 1_000, 99),  # rounded down: 100 % is the finished export's alone
        (1_000, 1_000, 99),
        (1_200, 1_000, 99),  # more rows than counted (rows added since the count) stays below 100
        (1, 3, 33),
        (2, 3, 66),
    ],
)
def test_progress_is_a_floored_percentage_that_only_the_end_makes_100(
    processed: int, total: int | None, percent: int
) -> None:
    assert _Progress(processed=processed, total=total).percent == percent


class Published:
    def __init__(self) -> None:
        self.jobs: list[ExportJob] = []

    async def __call__(self, job: ExportJob) -> None:
        self.jobs.append(job)


def processing_job() -> ExportJob:
    return create_job(ExportStatus.PROCESSING)


class Clock:
    """Stands in for the `time` module in pipeline.py: time passes only when a test says so."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(pipeline, "time", clock)
    return clock


async def test_advancing_publishes_the_first_batch_and_each_new_percent(clock: Clock) -> None:
    job, publish = processing_job(), Published()
    state = _Progress(total=1_000)
    await _advance(job, state, publish, 5)  # 0 %: published, the first news of the run
    await _advance(job, state, publish, 4)  # still 0 %, within half a second: not published
    await _advance(job, state, publish, 1)  # 1 %
    await _advance(job, state, publish, 10)  # 2 %
    await _progress_sent(state)
    assert [(j.processed_rows, j.progress) for j in publish.jobs] == [(5, 0), (10, 1), (20, 2)]
    assert all(j.total_rows == 1_000 and j.id == job.id and j.status is ExportStatus.PROCESSING for j in publish.jobs)
    assert state.processed == 20 and state.published_percent == 2


async def test_advancing_within_the_same_percent_publishes_again_after_half_a_second(clock: Clock) -> None:
    job, publish = processing_job(), Published()
    state = _Progress(total=1_000_000)
    await _advance(job, state, publish, 1)
    clock.now += 0.4
    await _advance(job, state, publish, 1)
    await _progress_sent(state)
    assert len(publish.jobs) == 1
    clock.now += 0.1  # half a second since the last event
    await _advance(job, state, publish, 1)
    clock.now += 0.1
    await _advance(job, state, publish, 1)
    await _progress_sent(state)
    assert [j.processed_rows for j in publish.jobs] == [1, 3]
    assert all(j.progress == 0 for j in publish.jobs)


async def test_progress_is_published_behind_the_rows_in_order_and_every_event(clock: Clock) -> None:
    """A slow publish (a Redis round trip) does not hold up the rows; the events all go, in order."""
    job, sent, release = processing_job(), [], asyncio.Event()

    async def publish(event: ExportJob) -> None:
        await release.wait()
        sent.append(event.progress)

    state = _Progress(total=100)
    async with asyncio.timeout(5):  # awaited, the first publish would wait for good
        for _ in range(5):
            await _advance(job, state, publish, 1)  # returns at once although nothing could be sent
    assert state.processed == 5 and sent == []
    release.set()
    await _progress_sent(state)
    assert sent == [1, 2, 3, 4, 5]


async def test_a_failed_progress_publish_stops_the_run_at_the_next_event(clock: Clock) -> None:
    async def publish(event: ExportJob) -> None:
        raise ConnectionError("redis went away")

    state = _Progress(total=100)
    await _advance(processing_job(), state, publish, 1)
    await asyncio.sleep(0)  # the publish runs, and fails
    with pytest.raises(ConnectionError):
        await _advance(processing_job(), state, publish, 1)


async def test_advancing_after_a_cancel_request_stops_the_run_without_publishing() -> None:
    job, publish = processing_job(), Published()
    state = _Progress(total=100, cancel_requested=True)
    with pytest.raises(Cancelled):
        await _advance(job, state, publish, 10)
    assert state.processed == 10  # the batch was written; the run stops before the next
    assert publish.jobs == []


async def test_advancing_after_the_lease_was_lost_stops_the_run_without_publishing() -> None:
    job, publish = processing_job(), Published()
    state = _Progress(total=100, lease_lost=True)
    with pytest.raises(LeaseLost):
        await _advance(job, state, publish, 10)
    assert publish.jobs == []


async def test_a_cancel_request_wins_over_a_lost_lease() -> None:
    # Cancelled ends the export as cancelled; LeaseLost leaves it to the run that took over.
    with pytest.raises(Cancelled):
        await _advance(processing_job(), _Progress(cancel_requested=True, lease_lost=True), Published(), 1)


# --- retries -------------------------------------------------------------------------------------------


async def test_the_backoff_waits_the_configured_delays_and_then_the_last_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)

    monkeypatch.setattr(pipeline, "asyncio", types.SimpleNamespace(sleep=sleep))  # pipeline's name only
    config = dataclasses.replace(PipelineConfig.from_settings(Settings()), retry_backoff_seconds=(0.5, 2.0))
    for attempt in (1, 2, 3, 4):
        await pipeline._backoff(config, attempt, processing_job(), OSError("reset"))
    assert waited == [0.5, 2.0, 2.0, 2.0]


# --- files ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(ExportFormat))
def test_the_file_name_says_what_and_when_in_the_exports_format(fmt: ExportFormat) -> None:
    job = create_job(resource="timesheets", format=fmt, created_at=dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC))
    assert file_name_for(job) == f"timesheets-20260304-050607.{fmt.value}"


@dataclasses.dataclass
class TempDirOnly:
    """All of a Storage that _remove_leftovers uses."""

    temp_dir: Path


def test_a_new_run_removes_only_its_own_exports_partial_files(tmp_path: Path) -> None:
    job, other = processing_job(), processing_job()
    mine = [tmp_path / f"{job.id}-1.csv.part", tmp_path / f"{job.id}-2.xlsx.part"]
    theirs = [tmp_path / f"{other.id}-1.csv.part", tmp_path / "unrelated.part"]
    for path in mine + theirs:
        path.write_bytes(b"partial")
    pipeline._remove_leftovers(TempDirOnly(tmp_path), job.id)  # type: ignore[arg-type]
    assert sorted(tmp_path.iterdir()) == sorted(theirs)
