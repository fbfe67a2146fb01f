"""Helpers for end-to-end tests over HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
import httpx

from exporthub.accounts import create_api_key
from tests.harness import wait_for_async

TERMINAL = {"completed", "failed", "cancelled", "expired"}


async def submit(client: httpx.AsyncClient, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = await client.post("/api/v1/exports", json=body, headers=headers)
    assert response.status_code == 202, response.text
    return response.json()


async def wait_status(
    client: httpx.AsyncClient, export_id: str, statuses: set[str] | None = None, timeout: float = 60
) -> dict[str, Any]:
    """The export, once its status is one of `statuses` (default: any final one)."""
    wanted = statuses or TERMINAL
    return await wait_until(client, export_id, lambda body: body["status"] in wanted, timeout, interval=0.1)


async def wait_until(
    client: httpx.AsyncClient,
    export_id: str,
    predicate: Callable[[dict[str, Any]], bool],
    timeout: float = 60,
    interval: float = 0.05,
) -> dict[str, Any]:
    """The export, once `predicate` holds for it."""
    last: dict[str, Any] = {}

    async def reached() -> dict[str, Any] | None:
        response = await client.get(f"/api/v1/exports/{export_id}")
        assert response.status_code == 200, response.text
        last.clear()
        last.update(response.json())
        return dict(last) if predicate(last) else None

    return await wait_for_async(
        reached, timeout, lambda: f"export {export_id} to reach the condition: {last}", interval
    )


async def export_and_download(client: httpx.AsyncClient, body: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    created = await submit(client, body)
    status = await wait_status(client, created["exportId"])
    assert status["status"] == "completed", status
    response = await client.get(status["downloadUrl"])
    assert response.status_code == 200, response.text
    return status, response.content


async def new_key(pool: asyncpg.Pool, account: str, *, resources: list[str] | None = None) -> str:
    """A fresh API key of a demo account (revoking it leaves the demo keys alone)."""
    account_id = await pool.fetchval("SELECT id FROM accounts WHERE slug = $1", account)
    return await create_api_key(pool, account_id, label="test", resources=resources)
