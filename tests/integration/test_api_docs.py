"""The API reference at /schema loads nothing from elsewhere: its HTML names no other host, the pinned
Scalar bundle comes from our /static, and a Content-Security-Policy allows our own origin only."""

from __future__ import annotations

import hashlib
import re

import httpx

from exporthub.web.api_docs import API_DOCS_CSS_URL, SCALAR_JS_URL
from tests.conftest import Hub
from tests.harness import ROOT

VENDOR = ROOT / "static" / "vendor"


async def docs_page(hub: Hub, path: str = "/schema") -> httpx.Response:
    async with httpx.AsyncClient(base_url=hub.base_url, timeout=30) as client:
        response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    return response


async def test_the_docs_page_references_no_external_host(hub: Hub) -> None:
    for path in ("/schema", "/schema/scalar"):
        page = (await docs_page(hub, path)).text
        assert not re.search(r"(?i)(https?:)?//[a-z0-9.-]+", page), page  # no absolute or scheme-relative URL
        assert "cdn" not in page.lower()
        urls = re.findall(r'(?:src|href|data-url)="([^"]*)"', page)
        assert SCALAR_JS_URL in urls and API_DOCS_CSS_URL in urls
        assert all(url.startswith(("/", "data:")) for url in urls), urls
        assert "<script>" not in page  # no inline script: the configuration is a data attribute


async def test_the_pinned_bundle_and_stylesheet_are_served_from_static(hub: Hub) -> None:
    async with httpx.AsyncClient(base_url=hub.base_url, timeout=30) as client:
        bundle = await client.get(SCALAR_JS_URL)
        css = await client.get(API_DOCS_CSS_URL)
    assert bundle.status_code == 200
    assert "javascript" in bundle.headers["content-type"]
    assert bundle.content == (ROOT / SCALAR_JS_URL.removeprefix("/")).read_bytes()
    digest = hashlib.sha256(bundle.content).hexdigest()
    name = SCALAR_JS_URL.rsplit("/", 1)[1]
    assert f"{digest}  {name}" in (VENDOR / "README.md").read_text()  # the version the README pins
    assert (VENDOR / "scalar-api-reference.LICENSE").read_text().startswith("MIT License")
    assert css.status_code == 200
    assert "text/css" in css.headers["content-type"]


async def test_the_docs_page_has_a_csp_allowing_our_origin_only(hub: Hub) -> None:
    for path in ("/schema", "/schema/scalar", "/schema/openapi.json"):
        async with httpx.AsyncClient(base_url=hub.base_url, timeout=30) as client:
            response = await client.get(path)
        policy = response.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["default-src"] == "'none'"
        assert directives["script-src"] == "'self'"  # no inline script, no eval
        assert directives["connect-src"] == "'self'"
        assert directives["style-src"] == "'self' 'unsafe-inline'"  # what Scalar's Vue components need
        assert directives["frame-ancestors"] == "'none'"
        assert not re.search(r"https?:|\*", policy)  # no other host
        assert response.headers["x-content-type-options"] == "nosniff"
