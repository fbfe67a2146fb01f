"""The download audit's values: who a download request came from, and what is recorded of it.

A signed link alone authorises a download; a request may also carry an API key (`Authorization:
Bearer`, as `exporthub export` sends it to our own host) or the console's session cookie. The web
layer hands over what the request presented (`Presented`, nothing looked up yet); the domain
(`Exports.download`) decides who that was, for the export's own account only, and records it
through `AccountScope.downloads`. Another account's key or session counts as the link alone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import ipaddress
import re
import uuid

import asyncpg

MAX_USER_AGENT = 512  # the table's CHECK; user agents past this are padding, not information
MAX_CLIENT_IP = 64
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class DownloadVia(enum.StrEnum):
    SIGNED_LINK = "signed_link"  # the link alone
    API_KEY = "api_key"  # with a working key of the export's account
    CONSOLE = "console"  # with a live console session of the export's account


@dataclasses.dataclass(frozen=True, slots=True)
class Presented:
    """What a download request carried, as the web layer read it; nothing checked yet."""

    client_ip: str | None = None  # the peer, or the proxy's X-Forwarded-For where the server trusts it
    user_agent: str | None = None
    api_key: str | None = None  # the bearer token, if any
    session_id: uuid.UUID | None = None  # a console cookie whose signature held

    def clean_ip(self) -> str | None:
        if not self.client_ip:
            return None
        try:
            return str(ipaddress.ip_address(self.client_ip))
        except ValueError:  # a unix socket path, a test client's name: kept, cut to size
            return _CONTROL.sub("", self.client_ip)[:MAX_CLIENT_IP] or None

    def clean_user_agent(self) -> str | None:
        if not self.user_agent:
            return None
        return _CONTROL.sub("", self.user_agent)[:MAX_USER_AGENT] or None


@dataclasses.dataclass(frozen=True, slots=True)
class Requester:
    """Who a download is recorded as."""

    via: DownloadVia
    api_key_id: uuid.UUID | None = None
    console_session_id: uuid.UUID | None = None


SIGNED_LINK_ONLY = Requester(DownloadVia.SIGNED_LINK)


@dataclasses.dataclass(frozen=True, slots=True)
class DownloadRecord:
    """One recorded download, as the account sees it."""

    id: int
    downloaded_at: dt.datetime
    via: DownloadVia
    redirected: bool
    client_ip: str | None
    user_agent: str | None
    api_key_prefix: str | None  # the key sent along, or the console session's key (None: demo sign-in)
    api_key_name: str | None
    session_started_at: dt.datetime | None  # console downloads: when that session signed in

    @classmethod
    def from_record(cls, row: asyncpg.Record) -> DownloadRecord:
        return cls(
            id=row["id"],
            downloaded_at=row["downloaded_at"],
            via=DownloadVia(row["via"]),
            redirected=row["redirected"],
            client_ip=row["client_ip"],
            user_agent=row["user_agent"],
            api_key_prefix=row["key_prefix"],
            api_key_name=row["key_name"],
            session_started_at=row["session_started_at"],
        )


@dataclasses.dataclass(frozen=True, slots=True)
class DownloadPage:
    items: list[DownloadRecord]
    next_before: int | None  # pass as `before` for the next (older) page; None: this was the last


@dataclasses.dataclass(frozen=True, slots=True)
class DownloadSummary:
    """What the console card says: "downloaded 3 times, last 09:12"."""

    count: int
    last_at: dt.datetime
