"""Console sign-in: a cookie naming a server-side session (console_sessions.py), and CSRF for its forms.

The cookie is `<session id>.<HMAC of the id>`: nothing else, since the row says whose session it is
and until when. The signature lets a forged or mangled cookie be refused without a query, and keeps
a copy of the table from being enough to sign in. The cookie's Max-Age is the session's absolute
lifetime, set once at sign-in; the row's `expires_at` is what counts.

The API does not use either: its clients send `Authorization: Bearer <key>` and no cookies, so the
CSRF middleware skips /api/ (and the signed download links, which are plain GETs anyway).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from typing import Any

import asyncpg
from litestar.config.csrf import CSRFConfig
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie

from exporthub import console_sessions
from exporthub.accounts import Account
from exporthub.keys import CONSOLE_SESSION, CSRF, derive_keys
from exporthub.settings import Settings

SESSION_COOKIE = "exporthub_session"
CSRF_COOKIE = "exporthub_csrf"
CSRF_HEADER = "x-csrftoken"


def _secure(settings: Settings) -> bool:
    return settings.web.public_url.startswith("https://")


def csrf_config(settings: Settings) -> CSRFConfig:
    # One key here too: a form rendered before a rotation is refused once (403) and works when reloaded.
    return CSRFConfig(
        secret=derive_keys(settings.secret_keys[:1], CSRF)[0].hex(),
        cookie_name=CSRF_COOKIE,
        header_name=CSRF_HEADER,
        cookie_httponly=True,  # templates embed the token; scripts never read the cookie
        cookie_samesite="lax",
        cookie_secure=_secure(settings),
        exclude=["^/api/", "^/healthz$", "^/schema"],
    )


def _signature(key: bytes, session_id: uuid.UUID) -> bytes:
    mac = hmac.new(key, session_id.bytes, hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=")


def _cookie(settings: Settings, value: str, max_age: int) -> Cookie:
    return Cookie(
        key=SESSION_COOKIE,
        value=value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(settings),
    )


def session_id(connection: ASGIConnection[Any, Any, Any, Any], settings: Settings) -> uuid.UUID | None:
    """The id the session cookie names, if its signature holds; None for anything else."""
    raw = connection.cookies.get(SESSION_COOKIE) or ""
    id_text, _, signature = raw.partition(".")
    try:
        sid = uuid.UUID(hex=id_text)
    except ValueError:
        return None
    given = signature.encode("utf-8", "replace")
    # Every configured secret verifies (rotation), the first one signs.
    if not any(
        hmac.compare_digest(_signature(k, sid), given) for k in derive_keys(settings.secret_keys, CONSOLE_SESSION)
    ):
        return None
    return sid


async def session_account(
    connection: ASGIConnection[Any, Any, Any, Any], pool: asyncpg.Pool, settings: Settings
) -> Account | None:
    """The signed-in account, or None: no cookie, a cookie we did not sign, or a session that ended."""
    sid = session_id(connection, settings)
    return await console_sessions.session_account(pool, sid) if sid is not None else None


async def sign_in(pool: asyncpg.Pool, settings: Settings, account: Account) -> Cookie | None:
    """Start a session (made with `account.key_id`; None: demo) and return the cookie that names it;
    None if the account is disabled. A fresh id each time: nothing of an earlier session survives."""
    max_age = settings.web.session_max_age_seconds
    sid = await console_sessions.start_session(pool, account, max_age_seconds=max_age)
    if sid is None:
        return None
    return _cookie(
        settings,
        f"{sid.hex}.{_signature(derive_keys(settings.secret_keys[:1], CONSOLE_SESSION)[0], sid).decode()}",
        max_age,
    )


async def sign_out(connection: ASGIConnection[Any, Any, Any, Any], pool: asyncpg.Pool, settings: Settings) -> Cookie:
    """End the session on the server (the old cookie opens nothing any more); returns the cookie
    that clears the browser's copy."""
    sid = session_id(connection, settings)
    if sid is not None:
        await console_sessions.end_session(pool, sid)
    return _cookie(settings, "", 0)
