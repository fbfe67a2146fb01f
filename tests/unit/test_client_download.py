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


@pytest.mark.parametrize("name", ["../../x.csv", "/etc/x.csv", "a/b/x.csv", "..\\\\..\\\\x.csv", "x.csv"])
def test_the_servers_file_name_cannot_leave_the_folder(tmp_path: Path, name: str) -> None:
    assert _target(None, name) == Path("x.csv")
    assert _target(str(tmp_path), name) == tmp_path / "x.csv"
