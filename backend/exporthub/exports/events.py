"""What an export announces: the progress event pushed to live clients and the webhook event
recorded when it ends. The transports (progress/ over Redis pub/sub, webhooks/ over signed POSTs)
carry these bodies and know nothing of exports.

The progress event, on the account's channel (progress.channel_for):

    {
      "type": "export.progress" | "export.completed" | "export.failed" | "export.cancelled" | "export.expired",
      "exportId": "uuid", "status": "processing" | "completed" | ...,
      "progress": 0-100, "processedRows": int, "totalRows": int | null,
      "at": "ISO-8601 time the event was made",
      # completed only:
      "downloadUrl": "signed link", "fileSize": int, "expiresAt": "ISO-8601",
      "sha256": "hex SHA-256 of the file" | null (files made before checksums),
      # failed only:
      "errorMessage": "what went wrong, in words a person can act on"
    }
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from exporthub.exports.models import ExportJob, ExportStatus

EVENT_TYPES = {
    ExportStatus.QUEUED: "export.progress",
    ExportStatus.PROCESSING: "export.progress",
    ExportStatus.COMPLETED: "export.completed",
    ExportStatus.FAILED: "export.failed",
    ExportStatus.CANCELLED: "export.cancelled",
    ExportStatus.EXPIRED: "export.expired",
}

# The states that fire a webhook: an export that ended.
WEBHOOK_EVENTS = {
    ExportStatus.COMPLETED: "export.completed",
    ExportStatus.FAILED: "export.failed",
    ExportStatus.CANCELLED: "export.cancelled",
}


def export_event(job: ExportJob, download_url: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": EVENT_TYPES[job.status],
        "exportId": str(job.id),
        "status": job.status.value,
        "progress": job.progress,
        "processedRows": job.processed_rows,
        "totalRows": job.total_rows,
        "at": dt.datetime.now(dt.UTC).isoformat(),
    }
    if job.status is ExportStatus.COMPLETED:
        event["downloadUrl"] = download_url
        event["fileSize"] = job.file_size
        event["sha256"] = job.sha256
        event["expiresAt"] = job.expires_at.isoformat() if job.expires_at else None
    if job.status is ExportStatus.FAILED:
        event["errorMessage"] = job.error_message
    return event


def wants_webhook(job: ExportJob) -> bool:
    return bool(job.webhook_url) and job.status in WEBHOOK_EVENTS


def webhook_body(job: ExportJob, event_id: uuid.UUID, download_url: str | None) -> str:
    return json.dumps(
        {
            "event": WEBHOOK_EVENTS[job.status],
            "eventId": str(event_id),
            "exportId": str(job.id),
            "status": job.status.value,
            "downloadUrl": download_url if job.status is ExportStatus.COMPLETED else None,
            "totalRows": job.total_rows,
            "fileSize": job.file_size,
            "sha256": job.sha256 if job.status is ExportStatus.COMPLETED else None,
            "expiresAt": job.expires_at.isoformat() if job.expires_at else None,
            "errorMessage": job.error_message,
        },
        separators=(",", ":"),
    )
