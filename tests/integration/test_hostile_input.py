"""Hostile input answered with 4xx, never 500: odd signatures, cookies, deep JSON, webhook hosts."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.conftest import Hub
from tests.harness import wait_for_async


async def test_a_non_ascii_signature_is_refused_not_an_error(hub: Hub) -> None:
    async with httpx.AsyncClient(base_url=hub.base_url) as client:
        response = await client.get(f"/api/v1/exports/{uuid.uuid4()}/download?expires=99999999999&signature=%C3%A9")
    assert response.status_code == 403, response.text


def _cookie(decoded: bytes) -> str:
    return base64.b64encode(decoded).decode()


AAD = b"additional_authenticated_data="
BAD_COOKIES = [
    "%%%",
    "null",
    "e30=",
    "a" * 4000,
    '"',
    "é",
    _cookie(b"n" * 12 + b"x" + AAD + b"not json"),  # undecodable associated data
    _cookie(b"n" * 12 + b"x" + AAD + b"{}"),  # no expiry
    _cookie(b"n" * 12 + b"x" + AAD + b'{"expires_at": "later"}'),  # an expiry of the wrong type
    _cookie(b"n" * 3 + AAD + b'{"expires_at": 99999999999}'),  # a nonce too short
    _cookie(b"n" * 12 + b"x" * 40 + AAD + b'{"expires_at": 99999999999}'),  # a forged tag
]


@pytest.mark.parametrize("cookie", BAD_COOKIES)
async def test_a_malformed_session_cookie_means_signed_out(hub: Hub, cookie: str) -> None:
    async with httpx.AsyncClient(base_url=hub.base_url) as client:
        # Raw bytes: httpx would refuse a non-ASCII header value given as str.
        response = await client.get("/console", headers=[(b"cookie", f"exporthub_session={cookie}".encode())])
    assert response.status_code < 500, response.text
    assert response.status_code in (200, 302, 303, 307), response.status_code


@pytest.mark.parametrize("authorised", [True, False])
async def test_deeply_nested_json_is_a_bad_request(hub: Hub, authorised: bool) -> None:
    body = "[" * 1000 + "]" * 1000
    async with hub.client() if authorised else httpx.AsyncClient(base_url=hub.base_url) as client:
        response = await client.post("/api/v1/exports", content=body, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, response.text


@pytest.mark.parametrize(
    "host", ["a" * 64 + ".example.com", "a..b", ".example.com", "xn--a.example.com", "exa\u00admple.com"]
)
async def test_a_webhook_host_that_is_not_a_valid_name_is_refused(hub: Hub, clean_jobs: None, host: str) -> None:
    async with hub.client() as client:
        response = await client.post(
            "/api/v1/exports",
            json={"format": "csv", "resource": "compliance", "webhookUrl": f"https://{host}/hook"},
        )
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["webhookUrl"]


async def test_the_servers_log_holds_no_key_or_signature(hub: Hub) -> None:
    marker = uuid.uuid4().hex
    before = hub.web.log_path.stat().st_size
    async with httpx.AsyncClient(base_url=hub.base_url) as client:
        await client.get(f"/api/v1/exports/{uuid.uuid4()}/download?expires=1&signature=sig{marker}")
        await client.get(f"/healthz?x=1&apiKey=key{marker}&signature=sig{marker}")
    with contextlib.suppress(Exception):
        async with connect(f"{hub.base_url.replace('http', 'ws', 1)}/api/v1/exports/ws?apiKey=ws{marker}") as ws:
            await asyncio.wait_for(ws.recv(), 5)
    scrubbed = ("/healthz?x=1&apiKey=[redacted]&signature=[redacted]", "/api/v1/exports/ws?apiKey=[redacted]")

    def written() -> str | None:  # this test's lines of the access log, once the last of them is there
        log = hub.web.log_path.read_bytes()[before:].decode(errors="replace")
        return log if all(line in log for line in scrubbed) else None

    log = await wait_for_async(written, 10, "the access log lines of these requests, scrubbed")
    assert marker not in log
