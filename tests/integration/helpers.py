"""Helpers for end-to-end tests over HTTP."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import httpx

from exporthub.accounts import create_api_key

TERMINAL = {"completed", "failed", "cancelled", "expired"}


async def submit(client: httpx.AsyncClient, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = await client.post("/api/v1/exports", json=body, headers=headers)
    assert response.status_code == 202, response.text
    return response.json()


async def wait_status(
    client: httpx.AsyncClient, export_id: str, statuses: set[str] | None = None, timeout: float = 60
) -> dict[str, Any]:
    statuses = statuses or TERMINAL
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(f"/api/v1/exports/{export_id}")
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] in statuses:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"export {export_id} still {body['status']} after {timeout}s: {body}")
        await asyncio.sleep(0.1)


async def wait_until(client: httpx.AsyncClient, export_id: str, predicate: Any, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = (await client.get(f"/api/v1/exports/{export_id}")).json()
        if predicate(body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"export {export_id} never reached the condition: {body}")
        await asyncio.sleep(0.05)


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
