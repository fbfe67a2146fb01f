"""What a download request carried, for the download audit (exports/downloads.py `Presented`).

The client's address is the ASGI scope's: uvicorn (`exporthub serve`) puts there the peer's address,
or the `X-Forwarded-For` client when the peer is a trusted proxy (its `FORWARDED_ALLOW_IPS`, by
default 127.0.0.1 only), so a spoofed header from anyone else is ignored.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection

from exporthub.exports.downloads import Presented
from exporthub.settings import Settings
from exporthub.web.session import session_id


def presented(connection: ASGIConnection[Any, Any, Any, Any], settings: Settings) -> Presented:
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    return Presented(
        client_ip=connection.client.host if connection.client else None,
        user_agent=connection.headers.get("user-agent"),
        api_key=(token.strip() or None) if scheme.lower() == "bearer" else None,
        session_id=session_id(connection, settings),
    )
