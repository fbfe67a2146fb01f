"""When a schedule comes due: a five-field cron expression read in an IANA time zone.

`next_due(cron, zone, after)` is the one answer, in UTC. Expressions are evaluated by cronsim, which
follows Debian cron's rules at daylight-saving changes, and so do we:

- A time named by hour and minute (`30 2 * * *`) follows the wall clock. On the day the clocks skip
  it (Europe/Berlin, last Sunday of March, 02:00 -> 03:00) it runs at the first minute after the gap
  (03:00); on the day it occurs twice (last Sunday of October, 03:00 -> 02:00) it runs once, at the
  first 02:30 (CEST).
- A schedule that repeats within the day (`*` or a step in the minute or hour field, e.g. `0 * * * *`)
  follows elapsed time: an hourly schedule runs every real hour, 23 times on the March day and 25 on
  the October day, never twice in one hour and never with two hours between runs.

Nothing else decides when a schedule runs, so the tests of this function are the tests of DST.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo

from cronsim import CronSim, CronSimError

from exporthub.zones import MAX_ZONE_LENGTH as MAX_ZONE_LENGTH  # schedules read it here
from exporthub.zones import zone_named

FIELDS = "minute hour day-of-month month day-of-week"
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MAX_CRON_LENGTH = 200


class CronInvalid(ValueError):
    """A cron expression or a time zone we cannot use; the message says why, in words."""


@dataclasses.dataclass(frozen=True, slots=True)
class Cron:
    """A checked expression: `text` as given, `fields` the five fields it stands for."""

    text: str
    fields: str

    def describe(self) -> str:
        """In words, e.g. 'At 06:00 on the first day of every month' (cronsim's)."""
        return CronSim(self.fields, dt.datetime(2000, 1, 1)).explain()


def parse_cron(text: str) -> Cron:
    """Five fields (minute hour day-of-month month day-of-week) or a macro such as @daily; raises
    CronInvalid naming what is wrong."""
    expr = " ".join(text.split())
    fields = MACROS.get(expr.lower(), expr)
    parts = fields.split()
    if len(parts) != 5:
        raise CronInvalid(
            f"expected five fields ({FIELDS}) or one of {', '.join(MACROS)}, got {len(parts)} field(s); "
            "e.g. '0 6 * * 1' is every Monday at 06:00"
        )
    try:
        sim = CronSim(fields, dt.datetime(2000, 1, 1))
        next(sim)
    except CronSimError as exc:  # "Bad minute", "Bad day-of-week", ...
        raise CronInvalid(f"{str(exc)[:1].lower()}{str(exc)[1:]} in '{_shorten(expr)}' ({FIELDS})") from None
    except StopIteration:
        raise CronInvalid(f"'{_shorten(expr)}' never comes due (no such date)") from None
    return Cron(text, fields)


def parse_zone(name: str) -> zoneinfo.ZoneInfo:
    """An IANA zone such as Europe/Berlin or UTC; raises CronInvalid, suggesting a close name."""
    try:
        return zone_named(name)
    except ValueError as exc:
        raise CronInvalid(str(exc)) from None


def next_due(cron: Cron, zone: zoneinfo.ZoneInfo, after: dt.datetime) -> dt.datetime:
    """The first due time strictly after `after` (an aware datetime), in UTC."""
    after = after.astimezone(dt.UTC)
    sim = CronSim(cron.fields, after.astimezone(zone))
    while True:
        due = next(sim).astimezone(dt.UTC)
        # A wall-clock schedule asked from inside the repeated hour may name the first (earlier)
        # occurrence of its time: that one has passed, so the next day's is the next.
        if due > after:
            return due


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
