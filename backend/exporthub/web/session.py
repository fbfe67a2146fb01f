"""Console sign-in: an encrypted session cookie holding the account id only, and CSRF for its forms.

The API does not use either: its clients send `Authorization: Bearer <key>` and no cookies, so the
CSRF middleware skips /api/ (and the signed download links, which are plain GETs anyway).
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import asyncpg
from litestar.config.csrf import CSRFConfig
from litestar.connection import ASGIConnection
from litestar.middleware.session.client_side import CookieBackendConfig

from exporthub.accounts import Account
from exporthub.settings import Settings

SESSION_COOKIE = "exporthub_session"
CSRF_COOKIE = "exporthub_csrf"
CSRF_HEADER = "x-csrftoken"
ACCOUNT_KEY = "account_id"


def _derived_key(secret_key: str, purpose: str) -> bytes:
    """32 bytes for one purpose, so the session cipher never shares a key with link signing."""
    return hashlib.sha256(f"exporthub:{purpose}:{secret_key}".encode()).digest()


def _secure(settings: Settings) -> bool:
    return settings.public_url.startswith("https://")


def session_config(settings: Settings) -> CookieBackendConfig:
    """AES-GCM encrypted cookie (Litestar's client-side session): HttpOnly, SameSite=Lax."""
    return CookieBackendConfig(
        secret=_derived_key(settings.secret_key, "console-session"),
        key=SESSION_COOKIE,
        max_age=settings.session_max_age_seconds,
        httponly=True,
        samesite="lax",
        secure=_secure(settings),
        exclude=["^/api/", "^/static/", "^/healthz$", "^/schema"],
    )


def csrf_config(settings: Settings) -> CSRFConfig:
    return CSRFConfig(
        secret=_derived_key(settings.secret_key, "console-csrf").hex(),
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
