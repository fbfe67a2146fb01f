"""The API reference at /schema: Scalar, loaded from our own /static, under a strict CSP.

Litestar's `ScalarRenderPlugin` loads `@scalar/api-reference@latest` and a stylesheet from a CDN, so
the page breaks offline and runs whatever the CDN serves that day. Here the bundle is a pinned copy
in `static/vendor/` (see its README), the page's HTML is our own (no inline script: the configuration is a
data attribute; no CDN favicon), and every response of the /schema router carries a
Content-Security-Policy (`DOCS_CSP`): scripts, fetches, fonts and images from our origin only.
Scalar's own web fonts (fonts.scalar.com) are switched off (`withDefaultFonts`), so the page uses
the system's fonts, and nothing else in it calls another host (the browser test refuses any such
request). The one CSP report left is a probe: zod tries `Function("")` to see whether it may compile
validators, is refused, and validates without compiling.
"""

from __future__ import annotations

import html
import json
from typing import Any

from litestar import Request, Router
from litestar.datastructures import ResponseHeader
from litestar.openapi.plugins import ScalarRenderPlugin

SCALAR_VERSION = "1.76.0"
SCALAR_JS_URL = f"/static/vendor/scalar-api-reference-{SCALAR_VERSION}.js"
API_DOCS_CSS_URL = "/static/css/api-docs.css"
SCALAR_OPTIONS: dict[str, Any] = {"withDefaultFonts": False}

# Scripts, fetches, fonts and images from our origin only; no eval, no framing. Styles need
# 'unsafe-inline': besides the <style> the bundle inserts with a nonce, Vue inserts <style> elements
# (vite's CSS injection, theme styles) without one and sets style attributes (tested in Chromium:
# tests/browser/test_api_docs.py). Inline style cannot run script, and nothing secret is on the page.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_DOCS_HEADERS = [
    ResponseHeader(name="Content-Security-Policy", value=DOCS_CSP),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="Referrer-Policy", value="same-origin"),
]


class OfflineScalarRenderPlugin(ScalarRenderPlugin):
    """Scalar from our /static, configured by a data attribute rather than an inline script."""

    def __init__(self) -> None:
        super().__init__(js_url=SCALAR_JS_URL, css_url=API_DOCS_CSS_URL, options=SCALAR_OPTIONS)

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = html.escape(str(openapi_schema["info"]["title"]))
        url = html.escape(self.get_openapi_json_route(request))
        configuration = html.escape(json.dumps(self.options))
        return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{html.escape(self.css_url)}">
</head>
<body>
<noscript>The API reference needs JavaScript; the schema itself is at <a href="{url}">{url}</a>.</noscript>
<script id="api-reference" data-url="{url}" data-configuration="{configuration}"></script>
<script src="{html.escape(self.js_url)}"></script>
</body>
</html>
""".encode()


def openapi_router(path: str) -> Router:
    """The router Litestar puts the schema routes on (`OpenAPIConfig.openapi_router`)."""
    return Router(
        path, route_handlers=[], include_in_schema=False, dto=None, return_dto=None, response_headers=_DOCS_HEADERS
    )
