"""S3 storage against moto's S3 over real HTTP: uploads (single and multipart), presigned downloads with
Range, refused tampering, aborted uploads, lifecycle rules, and a web + worker pair storing in S3.

moto does not check presigned URLs' signatures (real S3 does), so the server here checks SigV4 query
signatures and their expiry first, the way S3 does, and answers 403 otherwise."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import asyncpg
import httpx
import pytest
from botocore.exceptions import EndpointConnectionError
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server

from exporthub.client import announced_sha256, download
from exporthub.connections import open_storage
from exporthub.errors import ExportFailed
from exporthub.exports.expiry import sweep_expired
from exporthub.settings import Settings
from exporthub.storage.s3 import LIFECYCLE_RULE_ID, MIB, S3Storage
from tests.harness import ROOT, free_port, running, settings_env, start_process, wait_http
from tests.integration.helpers import submit, wait_status

ACCESS_KEY, SECRET_KEY, REGION = "AKIDEXPORTHUBTEST", "exporthub-test-secret", "us-east-1"
MEDIA_CSV = "text/csv; charset=utf-8"


class PresignChecker:
    """WSGI middleware: verify a presigned request's SigV4 signature and expiry, as S3 does."""

    def __init__(self, app: Any, secret: str) -> None:
        self.app = app
        self.secret = secret

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        query = environ.get("QUERY_STRING", "")
        if "X-Amz-Signature=" in query:
            problem = self.problem(environ, query)
            if problem:
                body = f"<Error><Code>{problem}</Code></Error>".encode()
                start_response("403 Forbidden", [("Content-Type", "application/xml")])
                return [body]
        return self.app(environ, start_response)

    def problem(self, environ: dict[str, Any], query: str) -> str | None:
        params = parse_qsl(query, keep_blank_values=True)
        given = dict(params)
        signature = given.pop("X-Amz-Signature")
        if given.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" or given.get("X-Amz-SignedHeaders") != "host":
            return "AuthorizationQueryParametersError"
        _, day, region, service, _ = given["X-Amz-Credential"].split("/")
        amz_date = given["X-Amz-Date"]
        canonical_query = "&".join(
            f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
            for k, v in sorted((k, v) for k, v in params if k != "X-Amz-Signature")
        )
        raw_path = urlsplit(environ.get("RAW_URI") or environ.get("REQUEST_URI") or "").path
        canonical = "\n".join(
            [
                environ["REQUEST_METHOD"],
                raw_path,
                canonical_query,
                f"host:{environ['HTTP_HOST']}\n",
                "host",
                "UNSIGNED-PAYLOAD",
            ]
        )
        scope = f"{day}/{region}/{service}/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        key = f"AWS4{self.secret}".encode()
        for part in (day, region, service, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest(), signature):
            return "SignatureDoesNotMatch"
        signed_at = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
        if dt.datetime.now(dt.UTC) > signed_at + dt.timedelta(seconds=int(given["X-Amz-Expires"])):
            return "AccessDenied"  # "Request has expired"
        return None


class StrictMotoServer(ThreadedMotoServer):
    def _server_entry(self) -> None:
        app = PresignChecker(DomainDispatcherApplication(create_backend_app), SECRET_KEY)
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = StrictMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="module")
async def s3_settings(settings: Settings, s3_endpoint: str) -> Settings:
    bucket = f"exporthub-test-{uuid.uuid4().hex[:8]}"
    port = free_port()
    s3 = settings.replace(
        storage={
            "url": f"s3://{bucket}/exports",
            "s3_endpoint_url": s3_endpoint,
            "s3_region": REGION,
            "s3_access_key_id": ACCESS_KEY,
            "s3_secret_access_key": SECRET_KEY,
            "s3_part_size_mib": 5,
        },
        redis={"queue_name": f"{settings.redis.queue_name}-s3"},
        web={"port": port, "public_url": f"http://127.0.0.1:{port}"},
    )
    async with open_storage(s3) as storage:
        assert isinstance(storage, S3Storage)
        await storage.client.create_bucket(Bucket=bucket)
    return s3


@pytest.fixture
async def s3(s3_settings: Settings) -> AsyncIterator[S3Storage]:
    async with open_storage(s3_settings) as storage:
        assert isinstance(storage, S3Storage)
        yield storage


def write_file(path: Path, size: int) -> bytes:
    data = (os.urandom(64 * 1024) * (size // (64 * 1024) + 1))[:size]
    path.write_bytes(data)
    return data


async def uploads_in_progress(s3: S3Storage) -> list[Any]:
    return (await s3.client.list_multipart_uploads(Bucket=s3.bucket)).get("Uploads", [])


@pytest.mark.parametrize("size", [1000, 11 * MIB], ids=["single-put", "multipart"])
async def test_upload_then_presigned_download_with_range(s3: S3Storage, tmp_path: Path, size: int) -> None:
    data = write_file(tmp_path / "export.csv.part", size)
    key = f"acct/{uuid.uuid4()}-1.csv"
    assert await s3.put(key, tmp_path / "export.csv.part", sha256=hashlib.sha256(data).hexdigest()) == size
    assert not (tmp_path / "export.csv.part").exists()
    assert await s3.exists(key)
    assert await uploads_in_progress(s3) == []
    head = await s3.client.head_object(Bucket=s3.bucket, Key=f"exports/{key}")
    assert head["ContentLength"] == size
    expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(hours=24)
    url = await s3.download_url(
        key, filename="payroll-20260101-120000.csv", media_type=MEDIA_CSV, expires_at=expires_at
    )
    assert url is not None
    assert url.startswith(f"{s3.client.meta.endpoint_url}/{s3.bucket}/exports/acct/")
    query = dict(parse_qsl(urlsplit(url).query))
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert 86390 <= int(query["X-Amz-Expires"]) <= 86400
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.get(url)
        assert response.status_code == 200
        assert response.content == data
        assert response.headers["content-disposition"] == 'attachment; filename="payroll-20260101-120000.csv"'
        assert response.headers["content-type"] == MEDIA_CSV
        ranged = await http.get(url, headers={"Range": "bytes=100-199"})
        assert ranged.status_code == 206
        assert ranged.content == data[100:200]


async def test_tampered_or_expired_presigned_urls_are_refused(s3: S3Storage, tmp_path: Path) -> None:
    data = write_file(tmp_path / "f.part", 10)
    await s3.put("acct/f.csv", tmp_path / "f.part", sha256=hashlib.sha256(data).hexdigest())
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    url = await s3.download_url("acct/f.csv", filename="f.csv", media_type=MEDIA_CSV, expires_at=later)
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    short = await s3.download_url("acct/f.csv", filename="f.csv", media_type=MEDIA_CSV, expires_at=soon)
    assert url is not None and short is not None
    tampered_signature = re.sub(r"X-Amz-Signature=([0-9a-f])", lambda m: "X-Amz-Signature=" + "01"[m[1] == "0"], url)
    other_name = url.replace("filename%3D%22f.csv", "filename%3D%22g.csv")
    longer = re.sub(r"X-Amz-Expires=\d+", "X-Amz-Expires=604800", url)
    async with httpx.AsyncClient(timeout=30) as http:
        assert (await http.get(url)).status_code == 200
        for bad in (tampered_signature, other_name, longer):
            assert bad != url
            refused = await http.get(bad)
            assert refused.status_code == 403, bad
            assert b"SignatureDoesNotMatch" in refused.content
        # The scenario: the short link's time passes (S3 counts whole seconds, hence the margin).
        await asyncio.sleep(max(0.0, (soon - dt.datetime.now(dt.UTC)).total_seconds()) + 1.5)
        assert (await http.get(short)).status_code == 403  # past its time
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    assert await s3.download_url("acct/f.csv", filename="f.csv", media_type=MEDIA_CSV, expires_at=past) is None


class FailingClient:
    """The real client, except that uploading part 2 fails as a dropped connection would."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    async def upload_part(self, **kwargs: Any) -> Any:
        if kwargs["PartNumber"] == 2:
            raise EndpointConnectionError(endpoint_url="http://s3.invalid")
        return await self.real.upload_part(**kwargs)


class ShrinkingFileClient(FailingClient):
    """The file loses its tail once part 1 is sent: reading part 2 fails."""

    path: Path

    async def upload_part(self, **kwargs: Any) -> Any:
        answer = await self.real.upload_part(**kwargs)
        with self.path.open("r+b") as f:
            f.truncate(6 * MIB)
        return answer


@pytest.mark.parametrize("failure", ["network", "file"])
async def test_a_failed_multipart_upload_is_aborted(s3: S3Storage, tmp_path: Path, failure: str) -> None:
    path = tmp_path / "big.part"
    sha256 = hashlib.sha256(write_file(path, 12 * MIB)).hexdigest()
    client = FailingClient(s3.client) if failure == "network" else ShrinkingFileClient(s3.client)
    if isinstance(client, ShrinkingFileClient):
        client.path = path
    broken = S3Storage(client, bucket=s3.bucket, prefix=s3.prefix, temp_dir=tmp_path, part_size=5 * MIB)
    key = f"acct/{uuid.uuid4()}-1.csv"
    if failure == "network":
        with pytest.raises(ExportFailed) as raised:
            await broken.put(key, path, sha256=sha256)
        assert raised.value.transient  # the pipeline runs the export again
    else:
        with pytest.raises(OSError, match="changed while it was being uploaded"):
            await broken.put(key, path, sha256=sha256)
    assert await uploads_in_progress(s3) == []
    assert not await s3.exists(key)


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


@pytest.mark.parametrize("size", [1000, 12 * MIB], ids=["single-put", "multipart"])
async def test_the_object_carries_the_files_sha256(s3: S3Storage, tmp_path: Path, size: int) -> None:
    """A single PUT: the object's own checksum is the file's SHA-256 (FULL_OBJECT). Multipart: S3 has
    no full-object SHA-256, so the object's checksum is COMPOSITE (the SHA-256 of the parts' SHA-256s,
    "-<parts>"); either way the file's SHA-256 is the object's x-amz-meta-sha256, which a presigned GET
    returns, and the CLI's download checks."""
    data = write_file(tmp_path / "f.part", size)
    sha256 = hashlib.sha256(data).hexdigest()
    key = f"acct/{uuid.uuid4()}-1.csv"
    await s3.put(key, tmp_path / "f.part", sha256=sha256)
    # GET, not HEAD: moto's HEAD leaves the "-<parts>" off a composite checksum (S3's does not).
    head = await s3.client.get_object(Bucket=s3.bucket, Key=f"exports/{key}", ChecksumMode="ENABLED")
    async with head["Body"] as body:
        assert await body.read() == data
    assert head["Metadata"] == {"sha256": sha256}
    if size <= s3.part_size:
        assert head["ChecksumSHA256"] == b64(hashlib.sha256(data).digest())
        assert head.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT"
    else:
        parts = [data[i : i + s3.part_size] for i in range(0, size, s3.part_size)]
        composite = hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in parts)).digest()
        assert head["ChecksumSHA256"] == f"{b64(composite)}-{len(parts)}"
        assert head["ChecksumType"] == "COMPOSITE"
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    url = await s3.download_url(key, filename="f.csv", media_type=MEDIA_CSV, expires_at=later)
    assert url is not None
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.get(url)
    assert response.headers["x-amz-meta-sha256"] == sha256
    assert announced_sha256(response) == {"the object's x-amz-meta-sha256": sha256}
    download(url, tmp_path / "saved.csv", size, sha256=sha256)
    assert (tmp_path / "saved.csv").read_bytes() == data


async def test_a_file_that_changed_since_it_was_hashed_is_not_completed(s3: S3Storage, tmp_path: Path) -> None:
    """The parts, hashed as they are read for the upload, must add up to the SHA-256 taken when the
    file was written; otherwise the upload is aborted and no object appears."""
    path = tmp_path / "big.part"
    sha256 = hashlib.sha256(write_file(path, 11 * MIB)).hexdigest()
    with path.open("r+b") as f:
        f.seek(7 * MIB)
        f.write(b"tampered")
    key = f"acct/{uuid.uuid4()}-1.csv"
    with pytest.raises(OSError, match="changed after it was written"):
        await s3.put(key, path, sha256=sha256)
    assert await uploads_in_progress(s3) == []
    assert not await s3.exists(key)


async def test_stale_uploads_under_our_prefix_are_aborted(s3: S3Storage) -> None:
    # moto reports every upload as started in 2010, so both are stale; only ours may go.
    await s3.client.create_multipart_upload(Bucket=s3.bucket, Key="exports/acct/stale.csv")
    await s3.client.create_multipart_upload(Bucket=s3.bucket, Key="elsewhere/not-ours.csv")
    assert await s3.remove_stale_uploads(dt.timedelta(days=1)) == 1
    assert [u["Key"] for u in await uploads_in_progress(s3)] == ["elsewhere/not-ours.csv"]
    upload = (await uploads_in_progress(s3))[0]
    await s3.client.abort_multipart_upload(Bucket=s3.bucket, Key=upload["Key"], UploadId=upload["UploadId"])


async def test_lifecycle_rule_keeps_the_buckets_other_rules(s3: S3Storage) -> None:
    other = {"ID": "someone-elses", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 30}}
    await s3.client.put_bucket_lifecycle_configuration(Bucket=s3.bucket, LifecycleConfiguration={"Rules": [other]})
    await s3.ensure_lifecycle()
    await s3.ensure_lifecycle()  # idempotent: replaced, not duplicated
    rules = (await s3.client.get_bucket_lifecycle_configuration(Bucket=s3.bucket))["Rules"]
    assert sorted(r["ID"] for r in rules) == sorted([LIFECYCLE_RULE_ID, "someone-elses"])
    ours = next(r for r in rules if r["ID"] == LIFECYCLE_RULE_ID)
    assert ours["Filter"]["Prefix"] == "exports/"
    assert ours["Expiration"]["Days"] == 2
    assert ours["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1


async def test_web_and_worker_store_in_s3_and_the_sweep_expires_it(
    s3_settings: Settings, s3: S3Storage, pool: asyncpg.Pool, clean_jobs: None, demo_keys: dict[str, str]
) -> None:
    """A real web server and worker with STORAGE_URL=s3://…: downloadUrl, our signed link, records the
    download and answers 307 to a presigned URL of the bucket; after the expiry sweep the object is gone
    and our signed link answers 410."""
    env = settings_env(s3_settings)
    log_dir = ROOT / "test-artifacts" / "logs"
    web = start_process("s3-web", ["serve"], env, log_dir)
    worker = start_process("s3-worker", ["worker"], env, log_dir)
    key = demo_keys["acme"]
    with running(web, worker):
        wait_http(f"{s3_settings.web.public_url}/healthz", 30, web)
        async with httpx.AsyncClient(
            base_url=s3_settings.web.public_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as api:
            created = await submit(api, {"format": "csv", "resource": "compliance"})
            status = await wait_status(api, created["exportId"])
            assert status["status"] == "completed", status
            # downloadUrl is our signed link: it records the download, then sends the client to the bucket
            signed = status["downloadUrl"]
            assert signed.startswith(f"{s3_settings.web.public_url}/api/v1/exports/{status['id']}/download?"), signed
            export_id = uuid.UUID(status["id"])
            async with httpx.AsyncClient(timeout=30) as anonymous:  # no API key: the link alone
                redirect = await anonymous.get(signed, headers={"User-Agent": "s3-audit-test"})
                assert redirect.status_code == 307
                url = redirect.headers["location"]
                assert url.startswith(f"{s3_settings.storage.s3_endpoint_url}/{s3.bucket}/exports/"), url
                assert "X-Amz-Signature=" in url
                response = await anonymous.get(url)  # the bucket serves it
                assert response.status_code == 200
                assert response.content.startswith(b"\xef\xbb\xbfEmployee No.,")
                assert len(response.content) == status["fileSize"]
                assert status["sha256"] == hashlib.sha256(response.content).hexdigest()
                assert response.headers["x-amz-meta-sha256"] == status["sha256"]
                assert re.fullmatch(
                    r'attachment; filename="compliance-\d{8}-\d{6}\.csv"', response.headers["content-disposition"]
                )
                assert (await anonymous.get(url, headers={"Range": "bytes=0-2"})).content == b"\xef\xbb\xbf"
                # with the API key sent along (as `exporthub export` does), followed to the bucket by httpx
                followed = await api.get(signed, follow_redirects=True)
                assert followed.status_code == 200 and followed.content == response.content
                audit = (await api.get(f"/api/v1/exports/{export_id}/downloads")).json()["items"]
                assert [(r["via"], r["redirected"]) for r in audit] == [("api_key", True), ("signed_link", True)]
                assert audit[1]["userAgent"] == "s3-audit-test" and audit[1]["clientIp"] == "127.0.0.1"
                assert audit[0]["apiKey"]["prefix"] == key[:12]

                # the link's time passes; the sweep deletes the object and marks the export expired
                file_key = await pool.fetchval("SELECT file_key FROM export_jobs WHERE id = $1", export_id)
                await pool.execute(
                    "UPDATE export_jobs SET expires_at = now() - interval '1 second' WHERE id = $1", export_id
                )
                result = await sweep_expired(pool, s3)
                assert [j.id for j in result.expired] == [export_id]
                assert not await s3.exists(file_key)
                # the bucket no longer has it (S3 says 403 for a missing key without s3:ListBucket)
                assert (await anonymous.get(url)).status_code in (403, 404)
                gone = await anonymous.get(signed)
                assert gone.status_code == 410
                assert "expired" in gone.json()["detail"]
            after = (await api.get(f"/api/v1/exports/{export_id}")).json()
            assert after["status"] == "expired"
            assert after["downloadUrl"] is None
