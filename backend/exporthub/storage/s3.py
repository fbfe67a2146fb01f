"""Files in an S3 bucket (AWS or any S3-compatible server such as MinIO).

The finished temporary file is uploaded in parts (there is no upload helper in aiobotocore), so the
key appears only when the upload completes; any failure aborts the upload. Downloads never pass
through our servers: clients get a presigned GET (SigV4) that names the file and its type.

The clients are opened once in connections.py and passed in: `client` talks to the endpoint the
processes reach, `presigner` signs with the public endpoint, since a presigned URL's host is its
client's endpoint_url.

Checksums: the pipeline hashes the file as it writes it (formats/output.py) and hands the SHA-256 in.
A single PUT carries it as `ChecksumSHA256`: S3 refuses the upload if the bytes it got differ, and
keeps it as the object's checksum (HEAD/GET with ChecksumMode ENABLED). A multipart upload cannot have
a full-object SHA-256: S3 offers full-object checksums of multipart uploads for the CRC algorithms
only, so with SHA-256 the object's checksum is COMPOSITE, the SHA-256 of the parts' SHA-256s with
"-<parts>" (each part's checked by S3 as it arrives). So every object also carries the file's own
SHA-256 as metadata, `x-amz-meta-sha256` (hex), which a presigned GET returns as a header; and the
parts, hashed as they are read for the upload, must add up to the file's SHA-256 before the upload
is completed.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import hashlib
import logging
import math
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiobotocore.config import AioConfig
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from exporthub.errors import ExportFailed

log = logging.getLogger(__name__)

MIB = 1024 * 1024
MIN_PART_SIZE = 5 * MIB  # S3's minimum for every part but the last
MAX_PARTS = 10_000
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4's limit
LIFECYCLE_RULE_ID = "exporthub-expiry"
_CONTENT_TYPES = {  # the object's own type; downloads name theirs in the presigned URL
    ".csv": "text/csv; charset=utf-8",
    ".gz": "application/gzip",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pdf": "application/pdf",
}
_TRANSIENT_CODES = {"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "RequestTimeTooSkewed"}


def client_config(*, path_style: bool) -> AioConfig:
    """s3v4 (else presigned URLs come out as SigV2) and checksums only when an operation requires them
    (S3-compatible stores reject the newer default). Path addressing for custom endpoints, which
    rarely serve bucket subdomains; AWS itself prefers virtual-hosted addressing."""
    return AioConfig(
        signature_version="s3v4",
        s3={"addressing_style": "path" if path_style else "auto"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"mode": "standard", "max_attempts": 4},
        connect_timeout=10,
        read_timeout=60,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class S3Location:
    bucket: str
    prefix: str  # "" or ending in "/"

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """`s3://bucket/some/prefix` -> S3Location("bucket", "some/prefix/")."""
        if not url.startswith("s3://"):
            raise ValueError(f"not an s3:// URL: {url!r}")
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            raise ValueError(f"no bucket in {url!r}")
        prefix = prefix.strip("/")
        return cls(bucket, f"{prefix}/" if prefix else "")


def content_disposition(filename: str) -> str:
    """`attachment; filename="…"`, with an RFC 6266 `filename*` when the name is not plain ASCII."""
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_")
    if ascii_name == filename:
        return f'attachment; filename="{filename}"'
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


class S3Storage:
    def __init__(
        self,
        client: Any,
        *,
        bucket: str,
        prefix: str = "",
        temp_dir: Path,
        presigner: Any | None = None,
        part_size: int = 8 * MIB,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes")
        self.client = client
        self.presigner = presigner or client
        self.bucket = bucket
        self.prefix = prefix
        self.part_size = part_size
        self.temp_dir = temp_dir  # where the worker writes a file before it is uploaded
        self.temp_dir.mkdir(parents=True, exist_ok=True)

    def object_key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    async def put(self, key: str, path: Path, *, sha256: str) -> int:
        size = (await asyncio.to_thread(path.stat)).st_size
        object_key = self.object_key(key)
        content_type = _CONTENT_TYPES.get(Path(key).suffix) or "application/octet-stream"
        try:
            if size <= self.part_size:
                body = await asyncio.to_thread(path.read_bytes)
                await self.client.put_object(
                    Bucket=self.bucket,
                    Key=object_key,
                    Body=body,
                    ContentType=content_type,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=_base64(bytes.fromhex(sha256)),
                    Metadata={"sha256": sha256},
                )
            else:
                await self._put_multipart(object_key, path, size, content_type, sha256)
        except (BotoCoreError, ClientError) as exc:
            raise storage_failure(exc) from exc
        await asyncio.to_thread(path.unlink, missing_ok=True)
        return size

    async def _put_multipart(self, object_key: str, path: Path, size: int, content_type: str, sha256: str) -> None:
        part_size = max(self.part_size, math.ceil(size / MAX_PARTS / MIB) * MIB)
        created = await self.client.create_multipart_upload(
            Bucket=self.bucket,
            Key=object_key,
            ContentType=content_type,
            ChecksumAlgorithm="SHA256",
            ChecksumType="COMPOSITE",  # SHA-256 has no FULL_OBJECT type for multipart uploads
            Metadata={"sha256": sha256},
        )
        upload_id = created["UploadId"]
        try:
            parts = []
            whole = hashlib.sha256()
            with path.open("rb") as f:
                for number in range(1, math.ceil(size / part_size) + 1):
                    expected = min(part_size, size - (number - 1) * part_size)
                    data, digest = await asyncio.to_thread(_read_part, f, part_size, whole)
                    if len(data) != expected:
                        raise OSError(f"{path} changed while it was being uploaded")
                    answer = await self.client.upload_part(
                        Bucket=self.bucket,
                        Key=object_key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=data,
                        ChecksumAlgorithm="SHA256",
                        ChecksumSHA256=digest,
                    )
                    parts.append({"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": digest})
            if whole.hexdigest() != sha256:
                raise OSError(f"{path} changed after it was written: its SHA-256 is no longer the one taken then")
            await self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=object_key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:  # cancellation too: an unfinished upload keeps its parts (and costs) until aborted
            try:
                await self.client.abort_multipart_upload(Bucket=self.bucket, Key=object_key, UploadId=upload_id)
            except Exception as exc:  # the sweep and the bucket's lifecycle rule abort it later
                log.warning("could not abort upload %s of %s: %r", upload_id, object_key, exc)
            raise

    async def delete(self, key: str) -> None:
        await self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))

    async def exists(self, key: str) -> bool:
        try:
            await self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def local_path(self, key: str) -> Path | None:
        return None

    async def download_url(self, key: str, *, filename: str, media_type: str, expires_at: dt.datetime) -> str | None:
        """A presigned GET valid until `expires_at`; None once that has passed."""
        seconds = math.floor(expires_at.timestamp() - time.time())
        if seconds <= 0:
            return None
        url: str = await self.presigner.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": self.object_key(key),
                "ResponseContentDisposition": content_disposition(filename),
                "ResponseContentType": media_type,
            },
            ExpiresIn=min(seconds, MAX_PRESIGN_SECONDS),
        )
        return url

    async def remove_stale_uploads(self, older_than: dt.timedelta) -> int:
        """Abort multipart uploads under our prefix started before `older_than` ago (a killed worker's)."""
        cutoff = dt.datetime.now(dt.UTC) - older_than
        aborted = 0
        paginator = self.client.get_paginator("list_multipart_uploads")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for upload in page.get("Uploads", []):
                if upload["Initiated"] >= cutoff:
                    continue
                try:
                    await self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    aborted += 1
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":
                        raise
        return aborted

    async def ensure_lifecycle(self, *, expire_days: int = 2, abort_days: int = 1) -> dict[str, Any]:
        """A safety net under the app's own expiry: objects under our prefix go after `expire_days`,
        unfinished uploads after `abort_days`. Other rules of the bucket are kept."""
        try:
            current = await self.client.get_bucket_lifecycle_configuration(Bucket=self.bucket)
            rules = [r for r in current.get("Rules", []) if r.get("ID") != LIFECYCLE_RULE_ID]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchLifecycleConfiguration":
                raise
            rules = []
        rule: dict[str, Any] = {
            "ID": LIFECYCLE_RULE_ID,
            "Filter": {"Prefix": self.prefix},
            "Status": "Enabled",
            "Expiration": {"Days": expire_days},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": abort_days},
        }
        try:
            await self.client.put_bucket_lifecycle_configuration(
                Bucket=self.bucket, LifecycleConfiguration={"Rules": [*rules, rule]}
            )
        except ClientError as exc:
            # Some S3-compatible servers refuse AbortIncompleteMultipartUpload: keep the expiration
            # (the sweep aborts stale uploads anyway).
            if exc.response.get("Error", {}).get("Code") not in ("NotImplemented", "MalformedXML", "InvalidArgument"):
                raise
            log.warning("the bucket refused AbortIncompleteMultipartUpload (%s); setting expiration only", exc)
            del rule["AbortIncompleteMultipartUpload"]
            await self.client.put_bucket_lifecycle_configuration(
                Bucket=self.bucket, LifecycleConfiguration={"Rules": [*rules, rule]}
            )
        return rule


def _base64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def _read_part(f: Any, size: int, whole: Any) -> tuple[bytes, str]:
    """The next part and its SHA-256 (base64, as S3 takes it); `whole` hashes the file so far."""
    data = f.read(size)
    whole.update(data)
    return data, _base64(hashlib.sha256(data).digest())


def storage_failure(exc: BaseException) -> ExportFailed:
    """Network trouble and server-side errors are worth another try; a refusal is not."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        code = error.get("Code", "?")
        if status >= 500 or code in _TRANSIENT_CODES:
            return ExportFailed(f"the file store was unavailable ({code}); it is safe to try again", transient=True)
        return ExportFailed(f"the file store refused the export's file ({code}); please contact support")
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return ExportFailed(
            f"the file store was unreachable ({type(exc).__name__}); it is safe to try again", transient=True
        )
    return ExportFailed(f"the export's file could not be stored ({type(exc).__name__}); please contact support")
