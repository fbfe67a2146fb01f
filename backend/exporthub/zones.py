"""IANA time zones by name: the one check of a zone an operator or a request names (an export's
`timezone`, an account's default, a schedule's `timeZone`), with a close name suggested."""

from __future__ import annotations

import difflib
import functools
import zoneinfo

MAX_ZONE_LENGTH = 64  # the longest IANA name is 32 characters
DEFAULT_ZONE = "UTC"


@functools.cache
def zone_names() -> tuple[str, ...]:
    """Every zone this machine's tz database knows, sorted (the console's list)."""
    return tuple(sorted(zoneinfo.available_timezones()))


@functools.cache
def _known() -> frozenset[str]:
    return frozenset(zone_names())


def zone_named(name: str) -> zoneinfo.ZoneInfo:
    """The zone called `name` (Europe/Berlin, UTC); ValueError in words otherwise, naming a close one."""
    if name not in _known():
        close = difflib.get_close_matches(name[:MAX_ZONE_LENGTH], zone_names(), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        shown = name if len(name) <= 60 else name[:59] + "…"
        raise ValueError(f"unknown time zone '{shown}': expected an IANA name such as Europe/Berlin{hint}")
    return zoneinfo.ZoneInfo(name)
