from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from exporthub.errors import LinkExpired, LinkInvalid
from exporthub.exports.links import download_link, sign_download_link, signed_link, verify_download_link
from exporthub.exports.models import ExportFormat, ExportStatus
from exporthub.storage import Storage
from tests.factories import create_job

SECRETS = ("new-" + "n" * 40,)  # a secret list as EXPORTHUB_SECRET_KEY gives it: newest first
OLD, RETIRED = "old-" + "o" * 40, "retired-" + "r" * 40
NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def parts(url: str) -> tuple[str, str]:
    q = parse_qs(urlsplit(url).query)
    return q["expires"][0], q["signature"][0]


def test_a_fresh_link_verifies() -> None:
    export_id = uuid.uuid4()
    url = sign_download_link("http://hub", SECRETS, export_id, NOW + dt.timedelta(hours=24))
    assert url.startswith(f"http://hub/api/v1/exports/{export_id}/download?")
    verify_download_link(SECRETS, export_id, *parts(url), now=NOW)


@pytest.mark.parametrize("tamper", ["signature", "expires", "id", "secret"])
def test_a_tampered_link_is_invalid(tamper: str) -> None:
    export_id = uuid.uuid4()
    expires, signature = parts(sign_download_link("http://hub", SECRETS, export_id, NOW + dt.timedelta(hours=1)))
    secrets = SECRETS
    if tamper == "signature":
        signature = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    elif tamper == "expires":
        expires = str(int(expires) + 3600)
    elif tamper == "id":
        export_id = uuid.uuid4()
    else:
        secrets = ("other-" + "x" * 40,)
    with pytest.raises(LinkInvalid):
        verify_download_link(secrets, export_id, expires, signature, now=NOW)


def test_garbage_expiry_is_invalid_not_a_crash() -> None:
    with pytest.raises(LinkInvalid):
        verify_download_link(SECRETS, uuid.uuid4(), "tomorrow", "abc", now=NOW)


def test_a_genuine_link_past_its_time_is_expired() -> None:
    export_id = uuid.uuid4()
    expires, signature = parts(sign_download_link("http://hub", SECRETS, export_id, NOW - dt.timedelta(seconds=1)))
    with pytest.raises(LinkExpired):
        verify_download_link(SECRETS, export_id, expires, signature, now=NOW)


def test_after_a_rotation_links_of_the_old_secret_verify_while_it_is_listed() -> None:
    export_id = uuid.uuid4()
    old_link = sign_download_link("http://hub", (OLD,), export_id, NOW + dt.timedelta(hours=1))
    verify_download_link((SECRETS[0], OLD), export_id, *parts(old_link), now=NOW)
    # New links are signed with the first secret only.
    new_link = sign_download_link("http://hub", (SECRETS[0], OLD), export_id, NOW + dt.timedelta(hours=1))
    verify_download_link(SECRETS, export_id, *parts(new_link), now=NOW)
    with pytest.raises(LinkInvalid):
        verify_download_link((OLD,), export_id, *parts(new_link), now=NOW)


def test_a_link_of_a_secret_no_longer_listed_is_invalid() -> None:
    export_id = uuid.uuid4()
    link = sign_download_link("http://hub", (RETIRED,), export_id, NOW + dt.timedelta(hours=1))
    with pytest.raises(LinkInvalid):
        verify_download_link((SECRETS[0], OLD), export_id, *parts(link), now=NOW)


def test_a_non_ascii_signature_is_invalid_not_a_crash() -> None:
    export_id = uuid.uuid4()
    expires, _ = parts(sign_download_link("http://hub", SECRETS, export_id, NOW + dt.timedelta(hours=1)))
    with pytest.raises(LinkInvalid):
        verify_download_link(SECRETS, export_id, expires, "é" * 64, now=NOW)


@pytest.mark.parametrize("signature", ["é", "\udcc3", "", "0" * 5000])
def test_a_signature_of_any_text_is_invalid_not_an_error(signature: str) -> None:
    with pytest.raises(LinkInvalid):
        verify_download_link(SECRETS, uuid.uuid4(), str(int(NOW.timestamp()) + 60), signature, now=NOW)


# --- which link a finished export hands out -----------------------------------------------------------


class LinkStorage:
    """A Storage stand-in for download_link: answers `download_url` as told and records the calls."""

    def __init__(self, answer: str | None = None, error: Exception | None = None) -> None:
        self.temp_dir = Path("/nonexistent")
        self.answer, self.error = answer, error
        self.calls: list[tuple[str, str, str, dt.datetime]] = []

    async def download_url(self, key: str, *, filename: str, media_type: str, expires_at: dt.datetime) -> str | None:
        self.calls.append((key, filename, media_type, expires_at))
        if self.error is not None:
            raise self.error
        return self.answer

    def local_path(self, key: str) -> Path | None:
        raise AssertionError("download_link never serves a file")

    async def put(self, key: str, path: Path, *, sha256: str) -> int:
        raise AssertionError("download_link never writes")

    async def delete(self, key: str) -> None:
        raise AssertionError("download_link never deletes")

    async def exists(self, key: str) -> bool:
        raise AssertionError("download_link never looks")

    async def remove_stale_uploads(self, older_than: dt.timedelta) -> int:
        raise AssertionError("download_link never sweeps")


def test_the_stand_in_is_a_storage() -> None:
    assert isinstance(LinkStorage(), Storage)


async def test_a_storage_with_its_own_links_hands_out_its_own() -> None:
    job = create_job(ExportStatus.COMPLETED, format=ExportFormat.XLSX)
    storage = LinkStorage(answer="https://bucket.example/presigned")
    assert await download_link("http://hub", SECRETS, job, storage) == "https://bucket.example/presigned"
    assert job.file_key is not None and job.file_name is not None and job.expires_at is not None
    assert storage.calls == [(job.file_key, job.file_name, ExportFormat.XLSX.media_type, job.expires_at)]


async def test_a_storage_without_links_gets_our_signed_link() -> None:
    job = create_job(ExportStatus.COMPLETED)
    link = await download_link("http://hub", SECRETS, job, LinkStorage(answer=None))
    assert link is not None and link == signed_link("http://hub", SECRETS, job)
    assert link.startswith(f"http://hub/api/v1/exports/{job.id}/download?")
    verify_download_link(SECRETS, job.id, *parts(link), now=NOW)


async def test_a_storage_that_cannot_presign_now_falls_back_to_our_link(caplog: pytest.LogCaptureFixture) -> None:
    job = create_job(ExportStatus.COMPLETED)
    storage = LinkStorage(error=RuntimeError("credentials expired"))
    link = await download_link("http://hub", SECRETS, job, storage)
    assert len(storage.calls) == 1
    assert link == signed_link("http://hub", SECRETS, job)
    assert [r.levelname for r in caplog.records if str(job.id) in r.getMessage()] == ["WARNING"]


async def test_without_a_file_name_the_storage_is_offered_the_keys_last_part() -> None:
    job = create_job(ExportStatus.COMPLETED, file_key="acct/abc-1.csv", file_name=None)
    storage = LinkStorage(answer="https://bucket.example/presigned")
    await download_link("http://hub", SECRETS, job, storage)
    assert storage.calls[0][1] == "abc-1.csv"


@pytest.mark.parametrize("status", [s for s in ExportStatus if s is not ExportStatus.COMPLETED])
async def test_only_a_completed_export_has_a_link(status: ExportStatus) -> None:
    # Even with a file and an expiry still on the row (an expired export before the sweep deletes the file).
    job = create_job(status, file_key="acct/x.csv", expires_at=NOW + dt.timedelta(hours=1))
    storage = LinkStorage(answer="https://bucket.example/presigned")
    assert await download_link("http://hub", SECRETS, job, storage) is None
    assert storage.calls == []


@pytest.mark.parametrize("missing", ["file_key", "expires_at"])
async def test_a_completed_export_missing_its_file_or_expiry_has_no_link(missing: str) -> None:
    job = dataclasses.replace(create_job(ExportStatus.COMPLETED), **{missing: None})
    storage = LinkStorage(answer="https://bucket.example/presigned")
    assert await download_link("http://hub", SECRETS, job, storage) is None
    assert signed_link("http://hub", SECRETS, job) is None
    assert storage.calls == []


def test_our_link_expires_when_the_export_does() -> None:
    job = create_job(ExportStatus.COMPLETED)
    link = signed_link("http://hub", SECRETS, job)
    assert link is not None and job.expires_at is not None
    assert parts(link)[0] == str(int(job.expires_at.timestamp()))
