"""A finished export's download link: the one place that decides it.

Our own link is signed and expiring: HMAC-SHA256 over the export id and the expiry time, served by
the web app's download route (`DOWNLOAD_PATH`), which records the download and answers with the file
on local disk or a redirect to a fresh presigned URL (S3). It is the only link handed out, so that no
download bypasses the record.

The HMAC key is derived from each configured secret (keys.py): the first signs, any verifies, so a
link made before a secret rotation keeps working while the old secret is still listed.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import uuid
from collections.abc import Sequence
from urllib.parse import urlencode

from exporthub.errors import LinkExpired, LinkInvalid
from exporthub.exports.models import ExportJob, ExportStatus
from exporthub.keys import DOWNLOAD_LINK, derive_keys

DOWNLOAD_PATH = "/api/v1/exports/{export_id}/download"  # the web app serves it (web/api.py `download`)


def _signature(key: bytes, export_id: uuid.UUID, expires: int) -> str:
    message = f"download:{export_id}:{expires}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign_download_link(public_url: str, secrets: Sequence[str], export_id: uuid.UUID, expires_at: dt.datetime) -> str:
    expires = int(expires_at.timestamp())
    key = derive_keys(secrets[:1], DOWNLOAD_LINK)[0]
    query = urlencode({"expires": expires, "signature": _signature(key, export_id, expires)})
    return f"{public_url}{DOWNLOAD_PATH.format(export_id=export_id)}?{query}"


def verify_download_link(
    secrets: Sequence[str], export_id: uuid.UUID, expires: str, signature: str, now: dt.datetime
) -> None:
    """Raise LinkInvalid for a tampered link, LinkExpired for a genuine one past its time."""
    try:
        expires_ts = int(expires)
    except ValueError:
        raise LinkInvalid() from None
    given = signature.encode("ascii", "replace")  # compare_digest refuses non-ASCII str
    if not any(
        hmac.compare_digest(_signature(key, export_id, expires_ts).encode(), given)
        for key in derive_keys(secrets, DOWNLOAD_LINK)
    ):
        raise LinkInvalid()
    if now.timestamp() >= expires_ts:
        raise LinkExpired()


def signed_link(public_url: str, secrets: Sequence[str], job: ExportJob) -> str | None:
    """Our signed link to a finished export's file; None while it has none."""
    if job.expires_at is None or job.file_key is None:
        return None
    return sign_download_link(public_url, secrets, job.id, job.expires_at)


def download_link(public_url: str, secrets: Sequence[str], job: ExportJob) -> str | None:
    """The link handed out for a completed export: our signed link, whatever the storage. With S3 it
    answers 307 to a fresh presigned URL, so the bucket still serves the bytes (and Range), while every
    download passes our download route and is recorded (the download audit)."""
    if job.status is not ExportStatus.COMPLETED:
        return None
    return signed_link(public_url, secrets, job)


def repr_digest(sha256_hex: str) -> str:
    """The RFC 9530 Repr-Digest field value for a file's SHA-256 (hex): `sha-256=:<base64>:`."""
    return f"sha-256=:{base64.b64encode(bytes.fromhex(sha256_hex)).decode()}:"
