"""Every file's SHA-256, end to end: the status's `sha256`, the download's RFC 9530 Repr-Digest header
(checked against hashlib over the downloaded bytes, and against `sha256sum`), the OpenAPI schema, and
`exporthub export` / `exporthub download`, which refuse a file that was changed after it was written."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import re
import subprocess
import uuid
from pathlib import Path

import asyncpg
import httpx
import openpyxl
import pytest
from pypdf import PdfReader

from exporthub.exports.links import repr_digest
from tests.harness import ROOT, exporthub_command
from tests.integration.helpers import export_and_download

BODIES = {
    "csv": {"format": "csv", "resource": "compliance"},
    "csv.gz": {"format": "csv", "resource": "compliance", "csvGzip": True, "csvDelimiter": ";"},
    "xlsx": {"format": "xlsx", "resource": "compliance"},
    "pdf": {"format": "pdf", "resource": "compliance", "columns": ["recordId", "title", "status"]},
}


def sha256_base64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


@pytest.mark.parametrize("kind", list(BODIES))
async def test_the_download_names_the_files_sha256_and_the_status_gives_it(api: httpx.AsyncClient, kind: str) -> None:
    status, _ = await export_and_download(api, BODIES[kind])
    response = await api.get(status["downloadUrl"])
    assert response.status_code == 200
    content = response.content
    assert response.headers["Repr-Digest"] == f"sha-256=:{sha256_base64(content)}:"
    assert status["sha256"] == hashlib.sha256(content).hexdigest()
    assert status["fileName"].endswith(f".{kind}") and len(content) == status["fileSize"]
    # The file is whole and opens (XLSX now carries data descriptors: the writer's output is not seekable).
    if kind == "xlsx":
        assert openpyxl.load_workbook(io.BytesIO(content)).active.max_row == status["totalRows"] + 1
    if kind == "pdf":
        assert len(PdfReader(io.BytesIO(content)).pages) >= 1
    listed = (await api.get("/api/v1/exports", params={"limit": 1})).json()["items"][0]
    assert listed["sha256"] == status["sha256"]


def test_repr_digest_is_the_rfc_9530_form_of_the_hex_digest() -> None:
    # RFC 9530's own example: the SHA-256 of {"hello": "world"}.
    digest = hashlib.sha256(b'{"hello": "world"}').hexdigest()
    assert repr_digest(digest) == "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"


async def test_a_curl_like_transcript_shows_the_header_and_sha256sum_agree(
    api: httpx.AsyncClient, tmp_path: Path
) -> None:
    status, _ = await export_and_download(api, BODIES["csv"])
    response = await api.get(status["downloadUrl"])
    saved = tmp_path / status["fileName"]
    saved.write_bytes(response.content)
    sha256sum = await asyncio.to_thread(
        subprocess.run, ["sha256sum", saved.name], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    hex_digest = sha256sum.stdout.split()[0]
    header = response.headers["Repr-Digest"]
    assert header == f"sha-256=:{base64.b64encode(bytes.fromhex(hex_digest)).decode()}:"
    assert hex_digest == status["sha256"]
    url = status["downloadUrl"].split("?")[0]
    transcript = "\n".join(
        [
            f"$ curl -sS -D - -o {saved.name} '{url}?expires=…&signature=…'",
            f"HTTP/1.1 {response.status_code} {response.reason_phrase}",
            *(
                f"{name}: {response.headers[name]}"
                for name in ("content-type", "content-disposition", "content-length", "cache-control", "repr-digest")
            ),
            "",
            f"$ sha256sum {saved.name}",
            sha256sum.stdout.strip(),
            "",
            f"$ echo {hex_digest} | xxd -r -p | base64",
            base64.b64encode(bytes.fromhex(hex_digest)).decode(),
            "",
            f'GET /api/v1/exports/{status["id"]} -> "sha256": "{status["sha256"]}"',
        ]
    )
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    (ROOT / "test-artifacts" / "repr-digest.txt").write_text(transcript + "\n")


async def test_the_openapi_schema_documents_the_checksum_and_the_csv_options(api: httpx.AsyncClient) -> None:
    schema = (await api.get("/schema/openapi.json")).json()
    components = schema["components"]["schemas"]
    export_out = next(v for k, v in components.items() if k.endswith("ExportOut"))
    sha256 = export_out["properties"]["sha256"]
    assert "Repr-Digest" in str(sha256) and "^[0-9a-f]{64}$" in str(sha256)
    request = next(v for k, v in components.items() if k.endswith("ExportRequestIn"))
    assert request["properties"]["csvDelimiter"]["enum"] == [",", ";", "\t", None]
    assert "gzip" in str(request["properties"]["csvGzip"])
    download = schema["paths"]["/api/v1/exports/{export_id}/download"]["get"]
    assert "sha-256=:" in str(download["responses"]["200"]["headers"]["Repr-Digest"])


async def stored_file(pool: asyncpg.Pool, hub, export_id: str) -> Path:
    key = await pool.fetchval("SELECT file_key FROM export_jobs WHERE id = $1", uuid.UUID(export_id))
    return hub.settings.storage.directory / key


async def test_exporthub_download_refuses_a_file_changed_after_it_was_written(
    api: httpx.AsyncClient, pool: asyncpg.Pool, hub, tmp_path: Path
) -> None:
    status, content = await export_and_download(
        api, {"format": "csv", "resource": "compliance", "columns": ["recordId", "notes"]}
    )
    key = hub.keys["acme"]
    good = exporthub_command(
        hub.settings, "download", status["id"], "--api-url", hub.base_url, "-o", str(tmp_path), EXPORTHUB_API_KEY=key
    )
    assert good.returncode == 0, good.stderr
    assert (tmp_path / status["fileName"]).read_bytes() == content
    assert f"SHA-256 {status['sha256']} checked" in good.stderr
    (tmp_path / status["fileName"]).unlink()

    # Someone with access to the storage neutralises the formula guard of one cell: same size, other bytes.
    path = await stored_file(pool, hub, status["id"])
    data = path.read_bytes()
    assert b"'=HYPERLINK" in data
    path.write_bytes(data.replace(b"'=HYPERLINK", b"=HYPERLINK ", 1))
    bad = exporthub_command(
        hub.settings, "download", status["id"], "--api-url", hub.base_url, "-o", str(tmp_path), EXPORTHUB_API_KEY=key
    )
    assert bad.returncode == 1
    assert "CHECKSUM MISMATCH" in bad.stderr and status["sha256"] in bad.stderr, bad.stderr
    assert list(tmp_path.iterdir()) == []  # nothing saved, not even the partial file


async def test_exporthub_export_checks_what_it_downloads(hub, tmp_path: Path, clean_jobs) -> None:
    result = exporthub_command(
        hub.settings,
        "export",
        "--resource",
        "compliance",
        "--columns",
        "recordId,notes",
        "--csv-delimiter",
        "tab",
        "--csv-gzip",
        "--api-url",
        hub.base_url,
        "-o",
        str(tmp_path),
        EXPORTHUB_API_KEY=hub.keys["acme"],
    )
    assert result.returncode == 0, result.stderr
    [saved] = list(tmp_path.iterdir())
    assert re.fullmatch(r"compliance-\d{8}-\d{6}\.csv\.gz", saved.name)
    assert f"SHA-256 {hashlib.sha256(saved.read_bytes()).hexdigest()} checked" in result.stderr
