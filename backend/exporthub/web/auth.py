"""API key authentication: `Authorization: Bearer <key>` names exactly one account."""

from __future__ import annotations

from typing import Any

import asyncpg
from litestar import Request
from litestar.exceptions import NotAuthorizedException

from exporthub.accounts import Account, account_for_key


async def api_account(request: Request[Any, Any, Any], pool: asyncpg.Pool) -> Account:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthorizedException(
            "send your API key as 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": 'Bearer realm="exporthub"'},
        )
    account = await account_for_key(pool, token.strip())
    if account is None:
        raise NotAuthorizedException(
            "unknown or revoked API key", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        )
    return account
