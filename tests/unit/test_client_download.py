"""`exporthub export`'s download: no API key to the file's host, and no folders from the server's name."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import httpx
import pytest

from exporthub.cli import build_parser
from exporthub.client import ChecksumMismatch, _target, announced_sha256, build_request, download


def test_the_download_sends_no_api_key_and_follows_the_redirect(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "hub.example":
            return httpx.Response(307, headers={"Location": "https://bucket.s3.example/f.csv?X-Amz-Signature=s"})
        return httpx.Response(200, content=b"a,b\r\n")

    target = tmp_path / "f.csv"
    download(
        "https://hub.example/api/v1/exports/x/download?signature=s", target, 5, transport=httpx.MockTransport(handler)
    )
    assert target.read_bytes() == b"a,b\r\n"
    assert [r.url.host for r in seen] == ["hub.example", "bucket.s3.example"]
    assert all("authorization" not in r.headers for r in seen)


def test_the_key_goes_to_the_hub_for_the_audit_but_never_to_the_bucket(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "hub.example":
            return httpx.Response(307, headers={"Location": "https://bucket.s3.example/f.csv?X-Amz-Signature=s"})
        return httpx.Response(200, content=b"a,b\r\n")

    download(
        "https://hub.example/api/v1/exports/x/download?signature=s",
        tmp_path / "f.csv",
        5,
        api_key="ehk_secret",
        api_url="https://hub.example",
        transport=httpx.MockTransport(handler),
    )
    assert [(r.url.host, r.headers.get("authorization")) for r in seen] == [
        ("hub.example", "Bearer ehk_secret"),
        ("bucket.s3.example", None),
    ]


@pytest.mark.parametrize(
    "link", ["https://other.example/f.csv", "http://hub.example/f.csv", "https://hub.example:8443/f"]
)
def test_a_link_elsewhere_never_gets_the_key(tmp_path: Path, link: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"a")

    download(
        link,
        tmp_path / "f",
        1,
        api_key="ehk_secret",
        api_url="https://hub.example",
        transport=httpx.MockTransport(handler),
    )
    assert [r.headers.get("authorization") for r in seen] == [None]


@pytest.mark.parametrize("name", ["../../x.csv", "/etc/x.csv", "a/b/x.csv", "..\\\\..\\\\x.csv", "x.csv"])
def test_the_servers_file_name_cannot_leave_the_folder(tmp_path: Path, name: str) -> None:
    assert _target(None, name) == Path("x.csv")
    assert _target(str(tmp_path), name) == tmp_path / "x.csv"


FILE = b"Record ID;Notes\r\n1;'=1+1\r\n"
FILE_SHA256 = hashlib.sha256(FILE).hexdigest()
REPR_DIGEST = f"sha-256=:{base64.b64encode(hashlib.sha256(FILE).digest()).decode()}:"


def serve(body: bytes, **headers: str) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(200, content=body, headers=headers))


@pytest.mark.parametrize(
    "headers",
    [{}, {"Repr-Digest": REPR_DIGEST}, {"x-amz-meta-sha256": FILE_SHA256}],
    ids=["status-only", "repr-digest", "s3-metadata"],
)
def test_a_download_matching_its_checksum_is_saved(
    tmp_path: Path, headers: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "f.csv"
    download("https://hub.example/d", target, len(FILE), sha256=FILE_SHA256, transport=serve(FILE, **headers))
    assert target.read_bytes() == FILE
    assert f"SHA-256 {FILE_SHA256} checked" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("sha256", "headers", "source"),
    [
        (FILE_SHA256, {}, "the export's status"),  # the stored file was changed after it was hashed
        (None, {"Repr-Digest": REPR_DIGEST}, "its Repr-Digest header"),
        (None, {"x-amz-meta-sha256": FILE_SHA256}, "the object's x-amz-meta-sha256"),
        (FILE_SHA256, {"Repr-Digest": "sha-256=:!!notbase64!!:"}, "its Repr-Digest header"),
    ],
)
def test_a_tampered_download_fails_and_leaves_no_file(
    tmp_path: Path, sha256: str | None, headers: dict[str, str], source: str
) -> None:
    tampered = FILE.replace(b"'=1+1", b"=1+1 ")  # same length, the formula guard removed
    target = tmp_path / "f.csv"
    body = tampered if "!!" not in headers.get("Repr-Digest", "") else FILE
    with pytest.raises(ChecksumMismatch, match=f"CHECKSUM MISMATCH.*{re.escape(source)}"):
        download("https://hub.example/d", target, len(FILE), sha256=sha256, transport=serve(body, **headers))
    assert list(tmp_path.iterdir()) == []  # neither the file nor its .part


def test_a_digest_in_the_header_other_than_the_status_fails_even_if_the_bytes_match_the_status(tmp_path: Path) -> None:
    other = f"sha-256=:{base64.b64encode(hashlib.sha256(b'other').digest()).decode()}:"
    with pytest.raises(ChecksumMismatch, match="Repr-Digest"):
        download(
            "https://hub.example/d",
            tmp_path / "f.csv",
            None,
            sha256=FILE_SHA256,
            transport=serve(FILE, **{"Repr-Digest": other}),
        )


def test_repr_digest_is_read_among_other_algorithms() -> None:
    response = httpx.Response(200, headers={"Repr-Digest": f"sha-512=:AAAA:, {REPR_DIGEST}"})
    assert announced_sha256(response) == {"its Repr-Digest header": FILE_SHA256}
    assert announced_sha256(httpx.Response(200)) == {}


def test_no_checksum_anywhere_saves_with_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    download("https://hub.example/d", tmp_path / "f.csv", None, transport=serve(FILE))
    assert (tmp_path / "f.csv").read_bytes() == FILE
    assert "no checksum to check f.csv against" in capsys.readouterr().err


def test_the_csv_options_go_into_the_request() -> None:
    args = build_parser().parse_args(["export", "--resource", "payroll", "--csv-delimiter", "tab", "--csv-gzip"])
    assert build_request(args) == {"resource": "payroll", "format": "csv", "csvDelimiter": "\t", "csvGzip": True}
    args = build_parser().parse_args(["export", "--resource", "payroll", "--csv-delimiter", ";"])
    assert build_request(args)["csvDelimiter"] == ";"
    assert "csvDelimiter" not in build_request(build_parser().parse_args(["export", "--resource", "payroll"]))
