"""The start rate in HTTP: `RateLimit-Policy` and `RateLimit` as the IETF httpapi draft
"RateLimit header fields for HTTP" (draft-ietf-httpapi-ratelimit-headers-10/-11) writes them, each a
structured-field list of one item named after the policy:

    RateLimit-Policy: "start";q=10;w=60     at most q new exports in any w seconds
    RateLimit: "start";r=7;t=54             r more may start now; t seconds until one more may

`t` is left out when no start is in the window (nothing to wait for). A refusal (429) also carries
`Retry-After` with the same number of seconds as `t`, and a problem of the draft's "quota-exceeded"
type naming the policy.
"""

from __future__ import annotations

from exporthub.errors import TooManyExportsStarted
from exporthub.exports.start_rate import POLICY, StartRateState

QUOTA_EXCEEDED = "https://iana.org/assignments/http-problem-types#quota-exceeded"

POLICY_HEADER_DOC = (
    f'The account\'s start rate: `"{POLICY}";q=10;w=60` allows 10 new exports in any 60 seconds '
    "(EXPORTHUB_START_RATE, or the account's own). IETF draft-ietf-httpapi-ratelimit-headers."
)
RATELIMIT_HEADER_DOC = (
    f'Where the account stands: `"{POLICY}";r=7;t=54`: 7 more exports may start now, and one more '
    "in 54 seconds (t is left out when no start is in the window)."
)
RETRY_AFTER_DOC = "Seconds until the request may succeed."


def policy_value(policy: str, limit: int, window_seconds: int) -> str:
    return f'"{policy}";q={limit};w={window_seconds}'


def ratelimit_value(policy: str, remaining: int, reset_seconds: int | None) -> str:
    return f'"{policy}";r={remaining}' + (f";t={reset_seconds}" if reset_seconds is not None else "")


def start_rate_headers(state: StartRateState | None) -> dict[str, str]:
    """For an accepted submit (or a replay); none when Redis could not tell."""
    if state is None:
        return {}
    return {
        "RateLimit-Policy": policy_value(POLICY, state.rate.limit, state.rate.window_seconds),
        "RateLimit": ratelimit_value(POLICY, state.remaining, state.reset_seconds),
    }


def refusal_headers(exc: TooManyExportsStarted) -> dict[str, str]:
    return {
        "Retry-After": str(exc.retry_after),
        "RateLimit-Policy": policy_value(exc.policy, exc.limit, exc.window_seconds),
        "RateLimit": ratelimit_value(exc.policy, 0, exc.retry_after),
    }
