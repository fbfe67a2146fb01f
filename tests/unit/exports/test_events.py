"""exports/events.py: the progress event each state publishes, and the webhook body an ended export sends."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from exporthub.exports.events import EVENT_TYPES, WEBHOOK_EVENTS, export_event, wants_webhook, webhook_body
from exporthub.exports.models import ExportStatus
from tests.factories import create_job

COMMON = {"type", "exportId", "status", "progress", "processedRows", "totalRows", "at"}
LINK = "https://hub.example/api/v1/exports/x/download?expires=1&signature=s"


def test_every_status_has_an_event_type() -> None:
    assert set(EVENT_TYPES) == set(ExportStatus)
    assert {EVENT_TYPES[s] for s in (ExportStatus.QUEUED, ExportStatus.PROCESSING)} == {"export.progress"}


@pytest.mark.parametrize("status", [ExportStatus.QUEUED, ExportStatus.PROCESSING])
def test_an_active_export_publishes_progress_and_nothing_of_a_file(status: ExportStatus) -> None:
    job = create_job(status, progress=42, processed_rows=420, total_rows=1_000)
    event = export_event(job, LINK)  # a link given for an active export is not passed on
    assert set(event) == COMMON
    assert event["type"] == "export.progress"
    assert (event["exportId"], event["status"]) == (str(job.id), status.value)
    assert (event["progress"], event["processedRows"], event["totalRows"]) == (42, 420, 1_000)


def test_a_completed_export_publishes_its_link_size_and_expiry() -> None:
    job = create_job(ExportStatus.COMPLETED)
    event = export_event(job, LINK)
    assert set(event) == COMMON | {"downloadUrl", "fileSize", "expiresAt", "sha256"}
    assert event["type"] == "export.completed"
    assert event["downloadUrl"] == LINK
    assert event["fileSize"] == job.file_size
    assert job.sha256 is not None and event["sha256"] == job.sha256
    assert job.expires_at is not None and event["expiresAt"] == job.expires_at.isoformat()


def test_a_completed_export_without_a_link_says_so_rather_than_leaving_the_key_out() -> None:
    event = export_event(create_job(ExportStatus.COMPLETED, expires_at=None))
    assert event["downloadUrl"] is None and event["expiresAt"] is None


def test_a_failed_export_publishes_its_error_message() -> None:
    job = create_job(ExportStatus.FAILED, error_message="narrow the filters")
    event = export_event(job, LINK)
    assert set(event) == COMMON | {"errorMessage"}
    assert (event["type"], event["errorMessage"]) == ("export.failed", "narrow the filters")


@pytest.mark.parametrize(
    ("status", "kind"), [(ExportStatus.CANCELLED, "export.cancelled"), (ExportStatus.EXPIRED, "export.expired")]
)
def test_a_cancelled_or_expired_export_publishes_only_the_common_fields(status: ExportStatus, kind: str) -> None:
    event = export_event(create_job(status, error_message="left over"), LINK)
    assert set(event) == COMMON
    assert event["type"] == kind


def test_the_event_time_is_an_aware_iso_timestamp_of_now() -> None:
    before = dt.datetime.now(dt.UTC)
    at = dt.datetime.fromisoformat(export_event(create_job())["at"])
    assert at.tzinfo is not None
    assert before <= at <= dt.datetime.now(dt.UTC)


def test_every_progress_event_is_plain_json() -> None:
    for status in ExportStatus:
        event = export_event(create_job(status), LINK)
        assert json.loads(json.dumps(event)) == event


@pytest.mark.parametrize("status", list(ExportStatus))
def test_only_an_ended_export_with_a_webhook_wants_one(status: ExportStatus) -> None:
    ended = status in (ExportStatus.COMPLETED, ExportStatus.FAILED, ExportStatus.CANCELLED)
    assert wants_webhook(create_job(status, webhook_url="https://hooks.example/x")) is ended
    assert wants_webhook(create_job(status, webhook_url=None)) is False
    assert wants_webhook(create_job(status, webhook_url="")) is False


def test_the_webhook_body_of_a_completed_export() -> None:
    job = create_job(ExportStatus.COMPLETED, webhook_url="https://hooks.example/x")
    event_id = uuid.uuid4()
    body = webhook_body(job, event_id, LINK)
    assert ": " not in body and ", " not in body  # compact: the exact bytes that are signed
    assert job.expires_at is not None
    assert json.loads(body) == {
        "event": "export.completed",
        "eventId": str(event_id),
        "exportId": str(job.id),
        "status": "completed",
        "downloadUrl": LINK,
        "totalRows": job.total_rows,
        "fileSize": job.file_size,
        "sha256": job.sha256,
        "expiresAt": job.expires_at.isoformat(),
        "errorMessage": None,
    }
    assert job.sha256 is not None


@pytest.mark.parametrize("status", [ExportStatus.FAILED, ExportStatus.CANCELLED])
def test_the_webhook_body_of_an_unsuccessful_export_never_carries_a_link(status: ExportStatus) -> None:
    job = create_job(status, error_message="it broke" if status is ExportStatus.FAILED else None)
    body = json.loads(webhook_body(job, uuid.uuid4(), LINK))
    assert body["event"] == WEBHOOK_EVENTS[status] == f"export.{status.value}"
    assert body["downloadUrl"] is None
    assert body["sha256"] is None
    assert body["errorMessage"] == job.error_message
    assert set(body) == {
        "event",
        "eventId",
        "exportId",
        "status",
        "downloadUrl",
        "totalRows",
        "fileSize",
        "sha256",
        "expiresAt",
        "errorMessage",
    }


@pytest.mark.parametrize("status", [ExportStatus.QUEUED, ExportStatus.PROCESSING, ExportStatus.EXPIRED])
def test_a_state_that_fires_no_webhook_has_no_webhook_body(status: ExportStatus) -> None:
    with pytest.raises(KeyError):
        webhook_body(create_job(status), uuid.uuid4(), None)
