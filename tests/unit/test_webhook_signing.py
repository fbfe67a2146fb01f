"""Webhook signatures, the retry schedule and the SSRF guard: no servers, no traffic."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import re
import socket

import httpx
import pytest

from exporthub.catalog import load_catalog
from exporthub.errors import ConfigError, InvalidRequest
from exporthub.exports.service import parse_submission
from exporthub.settings import Settings, WebhookSettings, load_settings
from exporthub.webhooks import signing
from exporthub.webhooks.addresses import (
    REFUSED,
    AddressPolicy,
    WebhookHostUnresolved,
    WebhookUrlRefused,
    resolve_checked,
)
from exporthub.webhooks.delivery import retry_delay, retry_schedule, send_once

HR = load_catalog()

BODY = b'{"event":"export.completed","eventId":"e1"}'
SECRET = "whsec_test"


def test_header_is_a_timestamp_and_an_hmac_of_timestamp_dot_body() -> None:
    header = signing.signature_header([SECRET], BODY, timestamp=1_767_225_600)
    assert re.fullmatch(r"t=1767225600,v1=[0-9a-f]{64}", header)
    expected = hmac.new(SECRET.encode(), b"1767225600." + BODY, hashlib.sha256).hexdigest()
    assert header.endswith(expected)


def test_verify_accepts_the_genuine_request_and_nothing_else() -> None:
    header = signing.signature_header([SECRET], BODY, timestamp=1000)
    assert signing.verify_signature(SECRET, header, BODY, now=1100) == 1000
    for secret, body, now in [
        ("whsec_other", BODY, 1100),  # wrong secret
        (SECRET, BODY + b" ", 1100),  # tampered body
        (SECRET, BODY, 1000 + 301),  # older than 5 minutes: a replay
    ]:
        with pytest.raises(signing.InvalidSignature):
            signing.verify_signature(secret, header, body, now=now)
    with pytest.raises(signing.InvalidSignature):
        signing.verify_signature(SECRET, "v1=abc", BODY, now=1000)


def test_during_a_rotation_either_secret_verifies() -> None:
    header = signing.signature_header(["whsec_new", "whsec_old"], BODY, timestamp=1000)
    assert header.count("v1=") == 2
    for secret in ("whsec_new", "whsec_old"):
        assert signing.verify_signature(secret, header, BODY, now=1000) == 1000


def test_secrets_are_prefixed_and_random() -> None:
    a, b = signing.generate_secret(), signing.generate_secret()
    assert a.startswith("whsec_") and len(a) > 40 and a != b


def test_retries_back_off_three_fold_capped_at_an_hour_for_a_day() -> None:
    assert [retry_delay(n, base=10, cap=3600) for n in range(1, 9)] == [
        10,
        30,
        90,
        270,
        810,
        2430,
        3600,
        3600,
    ]
    schedule = retry_schedule(10, 3600, 24 * 3600)
    assert sum(schedule) <= 24 * 3600 < sum(schedule) + 3600
    assert 25 <= len(schedule) <= 30


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1",
        "192.168.1.5",
        "172.16.3.4",
        "127.0.0.1",
        "0.0.0.0",
        "169.254.169.254",
        "100.64.0.1",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:10.0.0.1",
        "2002:a00:1::1",  # 6to4 wrapping 10.0.0.1
        "fec0::1",  # site-local
        "feff::1",
    ],
)
async def test_internal_addresses_are_refused(address: str) -> None:
    url = f"https://[{address}]/hook" if ":" in address else f"https://{address}/hook"
    with pytest.raises(WebhookUrlRefused) as info:
        await resolve_checked(url, AddressPolicy(), resolver=_no_dns)
    assert str(info.value) == REFUSED  # the same words for every kind of network


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
async def test_public_addresses_pass(address: str) -> None:
    url = f"https://[{address}]/hook" if ":" in address else f"https://{address}/hook"
    assert await resolve_checked(url, AddressPolicy(), resolver=_no_dns) == [ipaddress.ip_address(address)]


async def test_a_name_is_refused_if_any_of_its_addresses_is_internal() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        assert (host, port) == ("hooks.example.com", 443)
        return ["93.184.216.34", "10.1.2.3"]

    with pytest.raises(WebhookUrlRefused) as info:
        await resolve_checked("https://hooks.example.com/x", AddressPolicy(), resolver=resolver)
    assert str(info.value) == REFUSED and "10.1.2.3" not in str(info.value)  # what it resolved to stays ours


async def test_plain_http_is_refused_unless_allowed() -> None:
    with pytest.raises(WebhookUrlRefused, match="https only"):
        await resolve_checked("http://93.184.216.34/hook", AddressPolicy(), resolver=_no_dns)
    allowed = AddressPolicy.from_settings(
        load_settings({"EXPORTHUB_SECRET_KEY": "x", "EXPORTHUB_WEBHOOK_ALLOW_HTTP": "1"})
    )
    assert await resolve_checked("http://93.184.216.34/hook", allowed, resolver=_no_dns)


@pytest.mark.parametrize("host", ["a" * 64 + ".example.com", "a..b", ".example.com"])
async def test_a_host_that_is_not_a_valid_name_is_refused(host: str) -> None:
    # The system resolver itself: it raises UnicodeError for these before any lookup.
    with pytest.raises(WebhookUrlRefused, match="not a valid name"):
        await resolve_checked(f"https://{host}/hook", AddressPolicy())


@pytest.mark.parametrize("url", ["https://[/hook", "https://[::1/hook", "http://]"])
async def test_a_url_that_cannot_be_read_is_refused_not_an_error(url: str) -> None:
    with pytest.raises(WebhookUrlRefused, match="absolute https:// URL"):
        await resolve_checked(url, AddressPolicy(), resolver=_no_dns)


async def test_an_unresolvable_name_is_reported_as_such() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(WebhookHostUnresolved, match=r"could not resolve nowhere\.invalid"):
        await resolve_checked("https://nowhere.invalid/", AddressPolicy(), resolver=resolver)


async def test_configuration_can_allow_private_networks() -> None:
    assert await resolve_checked("https://127.0.0.1:8080/", AddressPolicy(allow_private=True), _no_dns)
    settings = load_settings({"EXPORTHUB_SECRET_KEY": "x", "EXPORTHUB_WEBHOOK_ALLOWED_CIDRS": "10.0.0.0/8, fd00::/8"})
    policy = AddressPolicy.from_settings(settings)
    assert await resolve_checked("https://10.9.9.9/", policy, _no_dns)
    with pytest.raises(WebhookUrlRefused):
        await resolve_checked("https://192.168.1.5/", policy, _no_dns)
    with pytest.raises(ConfigError, match="EXPORTHUB_WEBHOOK_ALLOWED_CIDRS"):
        load_settings({"EXPORTHUB_SECRET_KEY": "x", "EXPORTHUB_WEBHOOK_ALLOWED_CIDRS": "10.0.0.0/33"})


async def test_submit_refuses_a_private_webhook_along_with_other_faults() -> None:
    strict = Settings(webhooks=WebhookSettings(allow_private=False))
    for url in ("https://10.0.0.1/hook", "https://192.168.1.5/"):
        with pytest.raises(InvalidRequest) as info:
            await parse_submission({"format": "csv", "resource": "payroll", "webhookUrl": url}, strict, HR)
        assert [p.field for p in info.value.problems] == ["webhookUrl"]
        assert info.value.problems[0].message == REFUSED
    with pytest.raises(InvalidRequest) as info:
        await parse_submission({"format": "csv", "resource": "nope", "webhookUrl": "https://10.0.0.1/"}, strict, HR)
    assert {p.field for p in info.value.problems} == {"resource", "webhookUrl"}
    lenient = Settings(webhooks=WebhookSettings(allow_private=True, allow_http=True))
    request = await parse_submission(
        {"format": "csv", "resource": "payroll", "webhookUrl": "http://10.0.0.1/hook"}, lenient, HR
    )
    assert request.webhook_url == "http://10.0.0.1/hook"


async def test_delivery_refuses_before_connecting_and_is_not_retried() -> None:
    async def rebound(host: str, port: int) -> list[str]:
        return ["192.168.1.5"]  # the name pointed elsewhere at submit time

    async with httpx.AsyncClient(transport=httpx.MockTransport(_never)) as client:
        for url, resolver in [("https://10.0.0.1/hook", _no_dns), ("https://hooks.example.com/", rebound)]:
            outcome = await send_once(
                client, url, BODY, {}, policy=AddressPolicy(), timeout_seconds=5, resolver=resolver
            )
            assert outcome.status_code is None and not outcome.delivered
            assert outcome.retry is False
            assert outcome.error is not None and outcome.error.startswith("refused, not retried:")


async def test_delivery_connects_to_the_checked_address_with_the_original_host() -> None:
    seen: list[httpx.Request] = []

    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        outcome = await send_once(
            client,
            "https://hooks.example.com:8443/in?x=1",
            BODY,
            {"ExportHub-Event": "export.completed"},
            policy=AddressPolicy(),
            timeout_seconds=5,
            resolver=resolver,
        )
    assert outcome.delivered and outcome.error is None
    [request] = seen
    assert str(request.url) == "https://93.184.216.34:8443/in?x=1"
    assert request.headers["host"] == "hooks.example.com:8443"
    assert request.extensions["sni_hostname"] == "hooks.example.com"
    assert request.content == BODY


async def test_a_slow_receiver_times_out_and_a_redirect_is_not_followed() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)  # the scenario: a receiver slower than the 0.2 s timeout below
        return httpx.Response(200)

    def redirect(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "http://169.254.169.254/"})

    policy = AddressPolicy(allow_http=True)
    async with httpx.AsyncClient(transport=httpx.MockTransport(slow)) as client:
        outcome = await send_once(client, "http://93.184.216.34/", BODY, {}, policy=policy, timeout_seconds=0.2)
    assert outcome.error == "timed out after 0.2 s" and outcome.retry and 150 <= outcome.duration_ms < 1000
    async with httpx.AsyncClient(transport=httpx.MockTransport(redirect), follow_redirects=False) as client:
        outcome = await send_once(client, "http://93.184.216.34/", BODY, {}, policy=policy, timeout_seconds=1)
    assert outcome.status_code == 302 and not outcome.delivered
    assert outcome.error == "redirect to http://169.254.169.254/ not followed"


async def _no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"no lookup expected for {host}")


def _never(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no connection expected to {request.url}")
