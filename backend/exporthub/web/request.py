"""The app's request class: a JSON body too deeply nested to decode is the client's error."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import ClientException


class ExportHubRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        # msgspec gives up at a fixed depth with RecursionError, which would otherwise be a 500. Litestar
        # decodes the body before the handler's dependencies run, so this also comes before auth.
        try:
            return await super().json()
        except RecursionError:
            raise ClientException("the JSON body is nested too deeply") from None
