"""`exporthub export`'s download: no API key to the file's host, and no folders from the server's name."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from exporthub.client import _target, download


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
