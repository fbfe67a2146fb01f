"""Console sign-in: an encrypted session cookie holding the account id only, and CSRF for its forms.

The API does not use either: its clients send `Authorization: Bearer <key>` and no cookies, so the
CSRF middleware skips /api/ (and the signed download links, which are plain GETs anyway).
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from litestar.config.csrf import CSRFConfig
from litestar.connection import ASGIConnection
from litestar.middleware.session.client_side import CookieBackendConfig

from exporthub.accounts import Account
from exporthub.keys import CONSOLE_SESSION, CSRF, derive_keys
from exporthub.settings import Settings

SESSION_COOKIE = "exporthub_session"
CSRF_COOKIE = "exporthub_csrf"
CSRF_HEADER = "x-csrftoken"
ACCOUNT_KEY = "account_id"


def _secure(settings: Settings) -> bool:
    return settings.public_url.startswith("https://")


def session_config(settings: Settings) -> CookieBackendConfig:
    """AES-GCM encrypted cookie (Litestar's client-side session): HttpOnly, SameSite=Lax.

    Litestar's cookie backend takes one key, so only the first secret's counts: after a rotation every
    console user signs in again. Once sessions live server-side the cookie carries only a session id."""
    return CookieBackendConfig(
        secret=derive_keys(settings.secret_keys[:1], CONSOLE_SESSION)[0],
        key=SESSION_COOKIE,
        max_age=settings.session_max_age_seconds,
        httponly=True,
        samesite="lax",
        secure=_secure(settings),
        exclude=["^/api/", "^/static/", "^/healthz$", "^/schema"],
    )


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


def sign_in(connection: ASGIConnection[Any, Any, Any, Any], account: Account) -> None:
    # A fresh dict: nothing of an earlier session survives a sign-in.
    connection.set_session({ACCOUNT_KEY: str(account.id)})


def sign_out(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    connection.clear_session()


async def session_account(connection: ASGIConnection[Any, Any, Any, Any], pool: asyncpg.Pool) -> Account | None:
    """The signed-in account, or None (no cookie, a cookie we cannot decrypt, or an account gone)."""
    session = connection.scope.get("session")
    raw = session.get(ACCOUNT_KEY) if isinstance(session, dict) else None
    if not isinstance(raw, str):
        return None
    try:
        account_id = uuid.UUID(raw)
    except ValueError:
        return None
    row = await pool.fetchrow("SELECT id, slug, name, tenant_key FROM accounts WHERE id = $1", account_id)
    return Account.from_record(row) if row else None
