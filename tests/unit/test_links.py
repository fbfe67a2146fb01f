from __future__ import annotations

import datetime as dt
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

from exporthub.errors import LinkExpired, LinkInvalid
from exporthub.storage.links import sign_download_link, verify_download_link

SECRET = "s3cret"
NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def parts(url: str) -> tuple[str, str]:
    q = parse_qs(urlsplit(url).query)
    return q["expires"][0], q["signature"][0]


def test_a_fresh_link_verifies() -> None:
    export_id = uuid.uuid4()
    url = sign_download_link("http://hub", SECRET, export_id, NOW + dt.timedelta(hours=24))
    assert url.startswith(f"http://hub/api/v1/exports/{export_id}/download?")
    verify_download_link(SECRET, export_id, *parts(url), now=NOW)


@pytest.mark.parametrize("tamper", ["signature", "expires", "id", "secret"])
def test_a_tampered_link_is_invalid(tamper: str) -> None:
    export_id = uuid.uuid4()
    expires, signature = parts(sign_download_link("http://hub", SECRET, export_id, NOW + dt.timedelta(hours=1)))
    secret = SECRET
    if tamper == "signature":
        signature = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    elif tamper == "expires":
        expires = str(int(expires) + 3600)
    elif tamper == "id":
        export_id = uuid.uuid4()
    else:
        secret = "other"
    with pytest.raises(LinkInvalid):
        verify_download_link(secret, export_id, expires, signature, now=NOW)


def test_garbage_expiry_is_invalid_not_a_crash() -> None:
    with pytest.raises(LinkInvalid):
        verify_download_link(SECRET, uuid.uuid4(), "tomorrow", "abc", now=NOW)


def test_a_genuine_link_past_its_time_is_expired() -> None:
    export_id = uuid.uuid4()
    expires, signature = parts(sign_download_link("http://hub", SECRET, export_id, NOW - dt.timedelta(seconds=1)))
    with pytest.raises(LinkExpired):
        verify_download_link(SECRET, export_id, expires, signature, now=NOW)
