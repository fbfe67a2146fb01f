"""Signing in to the console as its form does (the tests and the console fan-out benchmark)."""

from __future__ import annotations

import re

import httpx


def hidden_token(page: str) -> str:
    """The CSRF token of a console form."""
    match = re.search(r'name="_csrf_token" value="([^"]+)"', page)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def sign_in(client: httpx.AsyncClient, key: str) -> httpx.Response:
    """Sign a cookie-keeping client (base_url: the hub) in to the console with an API key, as the form does."""
    page = await client.get("/console/sign-in")
    assert page.status_code == 200, page.text
    return await client.post("/console/sign-in", data={"api_key": key, "_csrf_token": hidden_token(page.text)})
