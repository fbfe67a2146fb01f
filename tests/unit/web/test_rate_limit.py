"""The RateLimit-Policy and RateLimit headers, written as the IETF httpapi draft's structured fields."""

from __future__ import annotations

from exporthub.errors import TooManyExportsStarted
from exporthub.exports.start_rate import StartRateState
from exporthub.settings import Rate
from exporthub.web.rate_limit import refusal_headers, start_rate_headers


def test_an_accepted_start_says_what_remains_and_when_more_comes() -> None:
    state = StartRateState(Rate(10, 60), counted=True, remaining=7, reset_seconds=54)
    assert start_rate_headers(state) == {"RateLimit-Policy": '"start";q=10;w=60', "RateLimit": '"start";r=7;t=54'}


def test_with_no_start_in_the_window_there_is_no_reset() -> None:
    state = StartRateState(Rate(3, 5), counted=False, remaining=3, reset_seconds=None)
    assert start_rate_headers(state)["RateLimit"] == '"start";r=3'


def test_an_unknown_state_sends_no_headers() -> None:
    assert start_rate_headers(None) == {}


def test_a_refusal_waits_as_long_as_the_reset() -> None:
    error = TooManyExportsStarted(30, 3600, retry_after=12, rate="30 exports per hour", policy="start")
    assert refusal_headers(error) == {
        "Retry-After": "12",
        "RateLimit-Policy": '"start";q=30;w=3600',
        "RateLimit": '"start";r=0;t=12',
    }
