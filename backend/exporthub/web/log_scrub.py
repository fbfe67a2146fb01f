"""Secrets out of the server's logs: uvicorn writes request paths with their query strings, where
`?apiKey=` (live sockets of browsers) and `?signature=` (download links) are credentials."""

from __future__ import annotations

import logging
import re

_SECRET_QUERY = re.compile(r"([?&](?:apiKey|signature)=)[^&\s\"]*", re.IGNORECASE)
REDACTED = "[redacted]"


def scrub(text: str) -> str:
    return _SECRET_QUERY.sub(rf"\1{REDACTED}", text)


class ScrubSecrets(logging.Filter):
    """Rewrites the arguments of a record (uvicorn passes the path as one of them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(scrub(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = scrub(record.msg)
        return True


def install() -> None:
    """On uvicorn's access log and its error log (which logs each WebSocket's path as it is accepted)."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).addFilter(ScrubSecrets())
