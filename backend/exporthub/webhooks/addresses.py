"""Where a webhook may go: over https only, and never to private, loopback, link-local, site-local,
multicast, reserved or unspecified addresses (SSRF), unless configuration allows it.

A refusal says the same for every internal address (`REFUSED`): the client learns neither what a
name resolved to nor which kind of network it is in; the reason is logged for operators.

Checked at submit time and again before every attempt, since DNS answers change; the attempt then
connects to the very address that was checked (no second lookup an attacker could rebind).
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from exporthub.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

log = logging.getLogger(__name__)

RESOLVE_TIMEOUT_SECONDS = 5.0
REFUSED = "webhooks can only be sent to public addresses"
HTTPS_ONLY = "webhooks are sent over https only"
# Deprecated site-local IPv6 (RFC 3879), still routed inside some networks; ipaddress calls it global.
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")


class WebhookUrlRefused(Exception):
    """The URL is not one we send to; the message says why, for the client."""


class WebhookHostUnresolved(WebhookUrlRefused):
    """The host did not resolve: refused at submit, but worth retrying at delivery."""


@dataclasses.dataclass(frozen=True, slots=True)
class AddressPolicy:
    allow_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()
    allow_http: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> AddressPolicy:
        return cls(
            allow_private=settings.webhooks.allow_private,
            allow_http=settings.webhooks.allow_http,
            allowed_networks=tuple(ipaddress.ip_network(c) for c in settings.webhooks.allowed_cidrs),
        )

    def refusal(self, address: IPAddress) -> str | None:
        """Why this address is refused, or None if webhooks may go there."""
        if self.allow_private or any(address in n for n in self.allowed_networks):
            return None
        plain = _embedded_ipv4(address) or address
        if plain in _SITE_LOCAL:
            return f"{address} is a site-local address"
        for flag in ("loopback", "private", "link_local", "multicast", "reserved", "unspecified"):
            if getattr(plain, f"is_{flag}"):
                return f"{address} is a {flag.replace('_', '-')} address"
        if not plain.is_global:  # e.g. 100.64.0.0/10 (carrier-grade NAT)
            return f"{address} is not a public address"
        return None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address hidden in an IPv4-mapped (::ffff:a.b.c.d) or 6to4 IPv6 address."""
    if isinstance(address, ipaddress.IPv6Address):
        return address.ipv4_mapped or address.sixtofour
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def resolve_checked(url: str, policy: AddressPolicy, resolver: Resolver = system_resolver) -> list[IPAddress]:
    """Every address the URL's host resolves to, all allowed; raises WebhookUrlRefused otherwise."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # "http://[": an unclosed IPv6 literal
        raise WebhookUrlRefused("expected an absolute https:// URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise WebhookUrlRefused("expected an absolute https:// URL")
    if parts.scheme == "http" and not policy.allow_http:
        raise WebhookUrlRefused(HTTPS_ONLY)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise WebhookUrlRefused("the URL's port is not valid") from None
    addresses = [literal] if (literal := _address_literal(host)) else await _resolve(resolver, host, port)
    for address in addresses:
        reason = policy.refusal(address)
        if reason is not None:
            log.info("webhook URL refused: %s (%s)", url, reason if str(address) == host else f"{host}: {reason}")
            raise WebhookUrlRefused(REFUSED)
    return addresses


def _address_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%")[0])
    except ValueError:  # a name
        return None


async def _resolve(resolver: Resolver, host: str, port: int) -> list[IPAddress]:
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            found = await resolver(host, port)
    except TimeoutError:
        raise WebhookHostUnresolved(f"could not resolve {host} in time") from None
    except UnicodeError:  # not a valid IDNA name (a label over 63 characters, an empty one): never resolvable
        raise WebhookUrlRefused("the URL's host is not a valid name") from None
    except OSError as exc:
        raise WebhookHostUnresolved(f"could not resolve {host} ({exc.strerror or exc})") from None
    if not found:
        raise WebhookHostUnresolved(f"{host} has no address")
    return [ipaddress.ip_address(a.split("%")[0]) for a in found]
