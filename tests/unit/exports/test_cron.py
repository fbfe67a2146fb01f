"""exports/cron.py: when a schedule comes due, across Europe/Berlin's daylight-saving changes in 2026
(29 March, 02:00 CET -> 03:00 CEST: 02:xx does not exist; 25 October, 03:00 CEST -> 02:00 CET: 02:xx
happens twice). Walking `next_due` from each due time to the next, as the runner does, no due time is
doubled and none is missing."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import zoneinfo

import pytest

from exporthub.exports.cron import Cron, CronInvalid, next_due, parse_cron, parse_zone

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
UTC = dt.UTC


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def walk(expr: str, start: dt.datetime, until: dt.datetime, zone: zoneinfo.ZoneInfo = BERLIN) -> list[dt.datetime]:
    """Every due time after `start` up to `until`, each found from the one before (as the runner finds them)."""
    cron, due, out = parse_cron(expr), start, []
    while True:
        due = next_due(cron, zone, due)
        if due > until:
            return out
        out.append(due)


def local(times: list[dt.datetime]) -> list[str]:
    return [t.astimezone(BERLIN).strftime("%m-%d %H:%M %Z") for t in times]


def test_daily_0230_runs_once_at_0300_on_the_day_the_clocks_skip_0230() -> None:
    due = walk("30 2 * * *", utc(2026, 3, 27, 12), utc(2026, 3, 31, 12))
    assert local(due) == ["03-28 02:30 CET", "03-29 03:00 CEST", "03-30 02:30 CEST", "03-31 02:30 CEST"]
    assert due[1] == utc(2026, 3, 29, 1, 0)  # the first instant after the gap


def test_daily_0230_runs_once_on_the_day_0230_happens_twice() -> None:
    due = walk("30 2 * * *", utc(2026, 10, 23, 12), utc(2026, 10, 27, 12))
    assert local(due) == ["10-24 02:30 CEST", "10-25 02:30 CEST", "10-26 02:30 CET", "10-27 02:30 CET"]
    assert due[1] == utc(2026, 10, 25, 0, 30)  # the first 02:30; the second (01:30 UTC) is not a due time


def test_asked_from_inside_the_repeated_hour_the_passed_0230_is_not_due_again() -> None:
    """A schedule created (or resumed) at the second 02:10 of 25 October: the day's 02:30 was at the first."""
    cron = parse_cron("30 2 * * *")
    inside_second_hour = utc(2026, 10, 25, 1, 10)  # 02:10 CET
    assert next_due(cron, BERLIN, inside_second_hour) == utc(2026, 10, 26, 1, 30)  # 02:30 CET the next day
    assert next_due(cron, BERLIN, utc(2026, 10, 25, 0, 10)) == utc(2026, 10, 25, 0, 30)  # the first 02:10


@pytest.mark.parametrize(
    ("start", "until", "hours"),
    [
        (utc(2026, 3, 28, 23), utc(2026, 3, 29, 22), 23),  # 29 March in Berlin: 23 hours long
        (utc(2026, 10, 24, 22), utc(2026, 10, 25, 23), 25),  # 25 October: 25 hours long
    ],
)
def test_hourly_runs_every_real_hour_through_both_changes(start: dt.datetime, until: dt.datetime, hours: int) -> None:
    due = walk("0 * * * *", start, until)
    assert len(due) == hours  # midnight to midnight, local
    assert all(b - a == dt.timedelta(hours=1) for a, b in itertools.pairwise(due))
    assert len(set(due)) == len(due)


def test_hourly_in_march_goes_from_0100_cet_to_0300_cest() -> None:
    due = walk("0 * * * *", utc(2026, 3, 28, 23, 30), utc(2026, 3, 29, 2, 30))
    assert local(due) == ["03-29 01:00 CET", "03-29 03:00 CEST", "03-29 04:00 CEST"]


def test_hourly_in_october_runs_at_both_0200s() -> None:
    due = walk("30 * * * *", utc(2026, 10, 24, 23, 0), utc(2026, 10, 25, 2, 45))
    assert local(due) == ["10-25 01:30 CEST", "10-25 02:30 CEST", "10-25 02:30 CET", "10-25 03:30 CET"]


def test_a_daily_0200_schedule_and_a_whole_year_of_days() -> None:
    """Every day of 2026 exactly once, whatever its length."""
    due = walk("0 2 * * *", utc(2025, 12, 31, 12), utc(2026, 12, 31, 12))
    days = [t.astimezone(BERLIN).date() for t in due]
    assert len(days) == 365 == len(set(days))
    assert local([d for d in due if d.astimezone(BERLIN).date() == dt.date(2026, 3, 29)]) == ["03-29 03:00 CEST"]


def test_a_zone_without_daylight_saving_and_utc() -> None:
    assert walk("30 2 * * *", utc(2026, 3, 28), utc(2026, 3, 30), zoneinfo.ZoneInfo("UTC")) == [
        utc(2026, 3, 28, 2, 30),
        utc(2026, 3, 29, 2, 30),
    ]
    tokyo = zoneinfo.ZoneInfo("Asia/Tokyo")
    assert next_due(parse_cron("0 9 * * *"), tokyo, utc(2026, 3, 28, 23)) == utc(2026, 3, 29, 0, 0)  # 09:00 JST


def test_the_southern_hemisphere_changes_the_other_way() -> None:
    """Sydney: 5 April 2026, 03:00 AEDT -> 02:00 AEST (02:30 twice); 4 October, 02:00 -> 03:00 (no 02:30)."""
    sydney = zoneinfo.ZoneInfo("Australia/Sydney")
    april = walk("30 2 * * *", utc(2026, 4, 3, 12), utc(2026, 4, 6, 12), sydney)
    assert len(april) == 3 and len({t.astimezone(sydney).date() for t in april}) == 3
    october = walk("30 2 * * *", utc(2026, 10, 2, 12), utc(2026, 10, 5, 12), sydney)
    assert [t.astimezone(sydney).strftime("%d %H:%M") for t in october] == ["03 02:30", "04 03:00", "05 02:30"]


@pytest.mark.parametrize(
    ("text", "fields"),
    [("@daily", "0 0 * * *"), ("@HOURLY", "0 * * * *"), ("@monthly", "0 0 1 * *"), ("  0  6 * *   1 ", "0 6 * * 1")],
)
def test_macros_and_spacing(text: str, fields: str) -> None:
    assert parse_cron(text) == Cron(text, fields)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "expected five fields"),
        ("* * * * * *", "got 6 field(s)"),
        ("0 25 * * *", "bad hour in '0 25 * * *'"),
        ("0 6 * 13 *", "bad month"),
        ("0 6 31 4 *", "bad day-of-month"),
        ("@fortnightly", "expected five fields"),
    ],
)
def test_expressions_we_cannot_use_are_named(text: str, words: str) -> None:
    with pytest.raises(CronInvalid, match=re.escape(words)):
        parse_cron(text)


def test_zones_are_iana_names() -> None:
    assert parse_zone("Europe/Berlin") == BERLIN
    with pytest.raises(CronInvalid, match="did you mean America/New_York"):
        parse_zone("America/New_Yrok")
    for bad in ("CEST", "+02:00", "../../etc/passwd", ""):
        with pytest.raises(CronInvalid, match="expected an IANA name"):
            parse_zone(bad)


def test_descriptions_in_words() -> None:
    assert parse_cron("0 6 1 * *").describe() == "At 06:00 on the first day of every month"
    assert parse_cron("30 7 * * 1").describe() == "At 07:30 on Monday"
