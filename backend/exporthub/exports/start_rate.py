"""How many new exports an account may start in a window, one count for every web process.

One Lua script over one Redis sorted set per account (`<EXPORTHUB_QUEUE_NAME>:start-rate:<account id>`):
the times of the account's starts still inside the window (a sliding log). In one atomic step it
drops the starts older than the window, counts the rest and, if there is room, records this one; the
time is Redis's own (`TIME`), so web processes whose clocks differ still agree. It answers how many
starts remain and in how many milliseconds the next one is possible (when the oldest counted start
leaves the window). "10/min" thus means at most 10 in any 60 seconds, not 10 per calendar minute.

Only exports that are recorded count: `submit_export` asks after validation, after answering an
idempotent replay and after the active-export cap, and gives the start back if recording fails.

Redis unreachable: the start is allowed (fail open) with a warning. The active-export cap, held in
PostgreSQL, still bounds what an account can run. For a few seconds after a failure the limiter does
not ask Redis at all, so that submits do not each wait for it while holding the account's lock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
import uuid
from collections.abc import Callable

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from exporthub.errors import TooManyExportsStarted
from exporthub.settings import Rate

log = logging.getLogger(__name__)

POLICY = "start"  # the policy's name in the RateLimit headers and in a refusal

# KEYS[1]: the account's log. ARGV: limit, window (ms), cost (1: count this start if there is room,
# 0: only look), this start's member (unique). Returns {counted (0|1), starts in the window, ms until
# one more start is possible (-1: none in the window)}.
_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
local counted = 0
if tonumber(ARGV[3]) > 0 and used < limit then
    redis.call('ZADD', KEYS[1], now, ARGV[4])
    redis.call('PEXPIRE', KEYS[1], window)
    used = used + 1
    counted = 1
end
local wait = -1
if used > 0 then
    -- A lowered limit can leave more starts in the window than it allows: room comes back when
    -- the oldest (used - limit + 1) of them have left.
    local index = math.max(used - limit, 0)
    local entry = redis.call('ZRANGE', KEYS[1], index, index, 'WITHSCORES')
    wait = math.max(tonumber(entry[2]) + window - now, 1)
end
return {counted, used, wait}
"""


@dataclasses.dataclass(frozen=True, slots=True)
class StartRateState:
    """Where an account stands against its start rate, as the RateLimit headers tell it."""

    rate: Rate
    counted: bool  # this start was counted (False: refused, or only looked at)
    remaining: int  # starts possible now
    reset_seconds: int | None  # until one more start is possible, rounded up; None: no start in the window
    token: str = ""  # the counted start's entry, for `give_back`

    def refusal(self) -> TooManyExportsStarted:
        rate = self.rate
        exports = "export" if rate.limit == 1 else "exports"
        return TooManyExportsStarted(
            rate.limit,
            rate.window_seconds,
            retry_after=self.reset_seconds or 1,
            rate=f"{rate.limit} {exports} per {rate.window_words()}",
            policy=POLICY,
        )


class StartRateLimiter:
    """One per process (the `Exports` object holds it); the count itself lives in Redis."""

    def __init__(
        self,
        redis: Redis,
        namespace: str,
        default: Rate,
        *,
        timeout_seconds: float = 0.5,
        pause_after_failure_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = redis
        self.namespace = namespace
        self.default = default  # EXPORTHUB_START_RATE: for accounts without a rate of their own
        self.timeout_seconds = timeout_seconds
        self.pause_after_failure_seconds = pause_after_failure_seconds
        self.clock = clock
        self._script: AsyncScript | None = None
        self._skip_until = -math.inf

    def key(self, account_id: uuid.UUID) -> str:
        return f"{self.namespace}:start-rate:{account_id}"

    async def take(self, account_id: uuid.UUID, own_rate: Rate | None) -> StartRateState | None:
        """Count one start if the rate allows it (`counted`); None when Redis could not say (allow it).
        `own_rate`: the account's own (accounts.start_rate_*), else the default applies."""
        return await self._run(account_id, own_rate or self.default, cost=1)

    async def peek(self, account_id: uuid.UUID, own_rate: Rate | None) -> StartRateState | None:
        """Where the account stands, counting nothing (an idempotent replay)."""
        return await self._run(account_id, own_rate or self.default, cost=0)

    async def give_back(self, account_id: uuid.UUID, state: StartRateState | None) -> None:
        """Uncount a start whose export was not recorded after all. Never raises."""
        if state is None or not state.counted:
            return
        try:
            async with asyncio.timeout(self.timeout_seconds):
                await self.redis.zrem(self.key(account_id), state.token)
        except (RedisError, OSError, TimeoutError):
            log.warning("could not give back a start of account %s; it counts until the window passes", account_id)

    async def _run(self, account_id: uuid.UUID, rate: Rate, *, cost: int) -> StartRateState | None:
        if self.clock() < self._skip_until:
            return None
        if self._script is None:
            self._script = self.redis.register_script(_SCRIPT)
        token = uuid.uuid4().hex
        try:
            async with asyncio.timeout(self.timeout_seconds):
                counted, used, wait_ms = await self._script(
                    keys=[self.key(account_id)], args=[rate.limit, rate.window_seconds * 1000, cost, token]
                )
        except (RedisError, OSError, TimeoutError) as exc:
            self._skip_until = self.clock() + self.pause_after_failure_seconds
            log.warning(
                "start rate not checked for %g s: Redis did not answer (%s); the active-export cap still holds",
                self.pause_after_failure_seconds,
                exc or type(exc).__name__,
            )
            return None
        return StartRateState(
            rate=rate,
            counted=bool(counted),
            remaining=max(rate.limit - int(used), 0),
            reset_seconds=math.ceil(int(wait_ms) / 1000) if int(wait_ms) >= 0 else None,
            token=token,
        )
