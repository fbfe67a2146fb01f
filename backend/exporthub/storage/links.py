"""Signed, expiring download links: HMAC-SHA256 over the export id and the expiry time."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import uuid
from urllib.parse import urlencode

from exporthub.errors import LinkExpired, LinkInvalid


def _signature(secret: str, export_id: uuid.UUID, expires: int) -> str:
    message = f"download:{export_id}:{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign_download_link(public_url: str, secret: str, export_id: uuid.UUID, expires_at: dt.datetime) -> str:
    expires = int(expires_at.timestamp())
    query = urlencode({"expires": expires, "signature": _signature(secret, export_id, expires)})
    return f"{public_url}/api/v1/exports/{export_id}/download?{query}"


def verify_download_link(secret: str, export_id: uuid.UUID, expires: str, signature: str, now: dt.datetime) -> None:
    """Raise LinkInvalid for a tampered link, LinkExpired for a genuine one past its time."""
    try:
        expires_ts = int(expires)
    except ValueError:
        raise LinkInvalid() from None
    if not hmac.compare_digest(_signature(secret, export_id, expires_ts), signature):
        raise LinkInvalid()
    if now.timestamp() >= expires_ts:
        raise LinkExpired()
