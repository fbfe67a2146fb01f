"""A finished export's download link: the one place that decides it.

Our own link is signed and expiring: HMAC-SHA256 over the export id and the expiry time, served by
the web app's download route (`DOWNLOAD_PATH`), which answers with the file on local disk or a
redirect to a fresh presigned URL. A storage that serves files itself (S3) hands out its own link.

The HMAC key is derived from each configured secret (keys.py): the first signs, any verifies, so a
link made before a secret rotation keeps working while the old secret is still listed.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
import uuid
from collections.abc import Sequence
from urllib.parse import urlencode

from exporthub.errors import LinkExpired, LinkInvalid
from exporthub.exports.models import ExportJob, ExportStatus
from exporthub.keys import DOWNLOAD_LINK, derive_keys
from exporthub.storage import Storage

log = logging.getLogger(__name__)

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


async def download_link(public_url: str, secrets: Sequence[str], job: ExportJob, storage: Storage) -> str | None:
    """The link handed out for a completed export: the storage's own (S3: a presigned GET straight
    from the bucket, valid until expires_at) when it has one, else our signed link."""
    if job.status is not ExportStatus.COMPLETED or job.expires_at is None or job.file_key is None:
        return None
    try:
        direct = await storage.download_url(
            job.file_key,
            filename=job.file_name or job.file_key.rsplit("/", 1)[-1],
            media_type=job.media_type,
            expires_at=job.expires_at,
        )
    except Exception:  # e.g. credentials that cannot be refreshed now: our link still works (it redirects)
        log.warning("could not presign the download of export %s; handing out our signed link", job.id, exc_info=True)
        direct = None
    return direct or signed_link(public_url, secrets, job)


def repr_digest(sha256_hex: str) -> str:
    """The RFC 9530 Repr-Digest field value for a file's SHA-256 (hex): `sha-256=:<base64>:`."""
    return f"sha-256=:{base64.b64encode(bytes.fromhex(sha256_hex)).decode()}:"
