"""The start rate in the domain, over real PostgreSQL and Redis: exports/start_rate.py's script, and
`Exports.submit`, which counts only the exports it records."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from redis.asyncio import Redis

from exporthub.accounts import Account, account_by_slug, create_account, set_start_rate
from exporthub.errors import InvalidRequest, TooManyActiveExports, TooManyExportsStarted
from exporthub.exports.start_rate import POLICY, StartRateLimiter
from exporthub.redis_client import create_redis
from exporthub.settings import Rate, Settings
from tests.harness import free_port
from tests.integration.domain import exports_domain

BODY = {"format": "csv", "resource": "compliance", "columns": ["recordId"]}


class Sent:
    """An Enqueue that remembers what it was given."""

    def __init__(self) -> None:
        self.ids: list[uuid.UUID] = []

    async def __call__(self, export_id: uuid.UUID) -> None:
        self.ids.append(export_id)


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = create_redis(settings.redis.url)
    yield client
    await client.aclose()


def limiter_for(redis: Redis, default: Rate) -> StartRateLimiter:
    """A limiter in a namespace of its own, so that no other test's counts are seen."""
    return StartRateLimiter(redis, f"start-rate-test:{uuid.uuid4().hex[:8]}", default)


async def new_account(pool: asyncpg.Pool, rate: Rate | None = None) -> Account:
    slug = f"rate-{uuid.uuid4().hex[:8]}"
    await create_account(pool, slug, "Start rate test", start_rate=rate)
    account = await account_by_slug(pool, slug)
    assert account is not None
    return account


# --- the script ----------------------------------------------------------------------------------------


async def test_the_window_allows_its_limit_then_says_when_the_next_start_can_come(redis: Redis) -> None:
    limiter = limiter_for(redis, Rate(3, 60))
    account = uuid.uuid4()
    states = [await limiter.take(account, None) for _ in range(4)]
    assert [s.counted for s in states if s] == [True, True, True, False]
    assert [s.remaining for s in states if s] == [2, 1, 0, 0]
    assert all(s is not None and 59 <= (s.reset_seconds or 0) <= 60 for s in states)  # when the 1st leaves
    assert await redis.zcard(limiter.key(account)) == 3  # the refused start is not recorded
    assert 0 < await redis.pttl(limiter.key(account)) <= 60_000  # the log goes away with its window
    assert limiter.key(account).endswith(f":start-rate:{account}")
    refused = states[-1]
    assert refused is not None
    error = refused.refusal()
    assert (error.limit, error.window_seconds, error.policy) == (3, 60, POLICY)
    assert error.retry_after == refused.reset_seconds
    assert str(error) == f"this account may start at most 3 exports per minute; try again in {error.retry_after} s"


async def test_accounts_are_counted_apart_and_a_look_counts_nothing(redis: Redis) -> None:
    limiter = limiter_for(redis, Rate(2, 60))
    one, other = uuid.uuid4(), uuid.uuid4()
    fresh = await limiter.peek(one, None)
    assert fresh is not None and (fresh.remaining, fresh.reset_seconds, fresh.counted) == (2, None, False)
    await limiter.take(one, None)
    await limiter.take(one, None)
    looked = await limiter.peek(one, None)
    assert looked is not None and looked.remaining == 0 and not looked.counted
    elsewhere = await limiter.take(other, None)
    assert elsewhere is not None and elsewhere.counted and elsewhere.remaining == 1


async def test_an_accounts_own_rate_replaces_the_default_and_a_lower_one_waits_for_the_older_starts(
    redis: Redis,
) -> None:
    limiter = limiter_for(redis, Rate(2, 60))
    account = uuid.uuid4()
    for _ in range(4):
        state = await limiter.take(account, Rate(5, 60))
        assert state is not None and state.counted
    lowered = await limiter.take(account, Rate(2, 60))  # 4 in the window, 2 allowed: 3 must leave first
    assert lowered is not None and not lowered.counted and lowered.remaining == 0
    assert lowered.rate == Rate(2, 60)


async def test_a_start_given_back_frees_its_place(redis: Redis) -> None:
    limiter = limiter_for(redis, Rate(1, 60))
    account = uuid.uuid4()
    taken = await limiter.take(account, None)
    assert taken is not None and taken.counted
    await limiter.give_back(account, taken)
    again = await limiter.take(account, None)
    assert again is not None and again.counted


async def test_room_comes_back_when_the_window_has_passed(redis: Redis) -> None:
    limiter = limiter_for(redis, Rate(2, 1))
    account = uuid.uuid4()
    await limiter.take(account, None)
    await limiter.take(account, None)
    refused = await limiter.take(account, None)
    assert refused is not None and not refused.counted and refused.reset_seconds == 1
    await asyncio.sleep(1.05)  # the scenario: a one-second window passing
    later = await limiter.take(account, None)
    assert later is not None and later.counted and later.remaining == 1


async def test_with_redis_unreachable_starts_are_allowed_and_it_is_not_asked_again_for_a_while(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="exporthub.exports.start_rate")
    dead = create_redis(f"redis://127.0.0.1:{free_port()}/0")
    try:
        limiter = StartRateLimiter(dead, "nowhere", Rate(1, 60), timeout_seconds=0.3)
        account = uuid.uuid4()
        assert await limiter.take(account, None) is None
        assert await limiter.take(account, None) is None  # within the pause: Redis not asked
        assert await limiter.peek(account, None) is None
    finally:
        await dead.aclose()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "start rate not checked for 5 s" in warnings[0] and "the active-export cap still holds" in warnings[0]


# --- Exports.submit --------------------------------------------------------------------------------


async def test_only_recorded_exports_count_not_refused_or_replayed_ones(
    settings: Settings, pool: asyncpg.Pool, clean_jobs: None
) -> None:
    limited = settings.replace(
        redis={"queue_name": f"{settings.redis.queue_name}-rate-{uuid.uuid4().hex[:6]}"},
        exports={"start_rate": Rate(3, 60), "max_active_exports": 2},
    )
    account = await new_account(pool)
    sent = Sent()
    async with exports_domain(limited, enqueue=sent) as exports:
        for _ in range(3):  # invalid: refused before anything is counted
            with pytest.raises(InvalidRequest):
                await exports.submit(account, {**BODY, "columns": ["nope"]})
        first = await exports.submit(account, BODY, idempotency_key="nightly")
        assert first.created and first.start_rate is not None
        assert (first.start_rate.remaining, first.start_rate.rate) == (2, Rate(3, 60))
        for _ in range(3):  # the same export again: answered, not counted
            replay = await exports.submit(account, BODY, idempotency_key="nightly")
            assert not replay.created and replay.job.id == first.job.id
            assert replay.start_rate is not None and replay.start_rate.remaining == 2
        second = await exports.submit(account, BODY)
        assert second.start_rate is not None and second.start_rate.remaining == 1
        with pytest.raises(TooManyActiveExports):  # the cap of 2 refuses before the rate is asked
            await exports.submit(account, BODY)
        await exports.cancel(account, first.job.id)
        third = await exports.submit(account, BODY)
        assert third.start_rate is not None and third.start_rate.remaining == 0
        await exports.cancel(account, second.job.id)
        with pytest.raises(TooManyExportsStarted) as refused:  # room under the cap, none in the rate
            await exports.submit(account, BODY)
    assert refused.value.limit == 3 and 59 <= refused.value.retry_after <= 60
    assert sent.ids == [first.job.id, second.job.id, third.job.id]
    assert await pool.fetchval("SELECT count(*) FROM export_jobs WHERE account_id = $1", account.id) == 3


async def test_the_accounts_own_rate_is_read_at_each_submit(
    settings: Settings, pool: asyncpg.Pool, clean_jobs: None
) -> None:
    limited = settings.replace(
        redis={"queue_name": f"{settings.redis.queue_name}-rate-{uuid.uuid4().hex[:6]}"},
        exports={"start_rate": Rate(10, 60)},
    )
    account = await new_account(pool, Rate(1, 60))
    async with exports_domain(limited, enqueue=Sent()) as exports:
        accepted = await exports.submit(account, BODY)
        assert accepted.start_rate is not None and accepted.start_rate.rate == Rate(1, 60)
        with pytest.raises(TooManyExportsStarted) as refused:
            await exports.submit(account, BODY)
        assert refused.value.rate == "1 export per minute"
        await set_start_rate(pool, account.slug, None)  # back to the default: 1 of 10 used
        again = await exports.submit(account, BODY)
        assert again.start_rate is not None and (again.start_rate.rate, again.start_rate.remaining) == (Rate(10, 60), 8)


async def test_a_start_whose_export_could_not_be_recorded_is_given_back(
    settings: Settings, pool: asyncpg.Pool, clean_jobs: None
) -> None:
    limited = settings.replace(
        redis={"queue_name": f"{settings.redis.queue_name}-rate-{uuid.uuid4().hex[:6]}"},
        exports={"start_rate": Rate(1, 60)},
    )
    account = await new_account(pool)
    # The insert fails after the start was counted: PostgreSQL refuses this account's rows for a moment.
    await pool.execute(
        f"""
        CREATE FUNCTION refuse_rate_test_rows() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.account_id = '{account.id}' THEN RAISE EXCEPTION 'refused for the test'; END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_rate_test_rows BEFORE INSERT ON export_jobs
            FOR EACH ROW EXECUTE FUNCTION refuse_rate_test_rows();
        """
    )
    try:
        async with exports_domain(limited, enqueue=Sent()) as exports:
            with pytest.raises(asyncpg.RaiseError):
                await exports.submit(account, BODY)
            await pool.execute("DROP TRIGGER refuse_rate_test_rows ON export_jobs")
            accepted = await exports.submit(account, BODY)  # the failed one does not hold the only place
            assert accepted.start_rate is not None and accepted.start_rate.remaining == 0
    finally:
        await pool.execute("DROP TRIGGER IF EXISTS refuse_rate_test_rows ON export_jobs")
        await pool.execute("DROP FUNCTION refuse_rate_test_rows()")


async def test_submits_go_on_when_redis_is_unreachable(
    settings: Settings, pool: asyncpg.Pool, clean_jobs: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="exporthub.exports.start_rate")
    no_redis = settings.replace(
        redis={"url": f"redis://127.0.0.1:{free_port()}/0"},
        exports={"start_rate": Rate(1, 60), "max_active_exports": 2},
    )
    account = await new_account(pool)
    sent = Sent()
    async with exports_domain(no_redis, enqueue=sent) as exports:
        first = await exports.submit(account, BODY)
        second = await exports.submit(account, BODY)  # over the rate, but nobody can count it: allowed
        with pytest.raises(TooManyActiveExports):  # the cap, in PostgreSQL, still holds
            await exports.submit(account, BODY)
    assert first.start_rate is None and second.start_rate is None
    assert sent.ids == [first.job.id, second.job.id]
    assert "start rate not checked" in caplog.text
