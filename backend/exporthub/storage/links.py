"""Signed, expiring download links: HMAC-SHA256 over the export id and the expiry time.

The HMAC key is derived from each configured secret (keys.py): the first signs, any verifies, so a
link made before a secret rotation keeps working while the old secret is still listed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import uuid
from collections.abc import Sequence
from urllib.parse import urlencode

from exporthub.errors import LinkExpired, LinkInvalid
from exporthub.keys import DOWNLOAD_LINK, derive_keys


def _signature(key: bytes, export_id: uuid.UUID, expires: int) -> str:
    message = f"download:{export_id}:{expires}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign_download_link(public_url: str, secrets: Sequence[str], export_id: uuid.UUID, expires_at: dt.datetime) -> str:
    expires = int(expires_at.timestamp())
    key = derive_keys(secrets[:1], DOWNLOAD_LINK)[0]
    query = urlencode({"expires": expires, "signature": _signature(key, export_id, expires)})
    return f"{public_url}/api/v1/exports/{export_id}/download?{query}"


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
