"""The worker's stream broker re-creates a consumer group Redis lost (as a restart without persistence
does), with redis-py's XGROUP CREATE and the settings the broker was made with."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
from redis.asyncio import Redis
from taskiq import BrokerMessage

from exporthub.queue.broker import create_stream_broker
from exporthub.settings import Settings

GROUP = "exporthub-workers"


def test_the_broker_keeps_the_settings_ensure_consumer_group_reads() -> None:
    broker = create_stream_broker("redis://127.0.0.1:1/0", "some-queue")
    assert broker.queue_name == "some-queue"
    assert broker.consumer_group_name == GROUP
    assert broker.consumer_id == "0"
    assert broker.mkstream is True
    assert broker.additional_streams == {}


async def test_a_lost_stream_and_group_are_made_again_and_nothing_sent_is_missed(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    queue = f"{settings.redis.queue_name}-group-{uuid.uuid4().hex[:8]}"
    broker = create_stream_broker(settings.redis.url, queue)
    redis = Redis.from_url(settings.redis.url)
    await broker.startup()
    listener = broker.listen()
    try:
        assert [g["name"] for g in await redis.xinfo_groups(queue)] == [GROUP.encode()]
        await redis.delete(queue)  # Redis lost the stream, and the group with it
        # Sent before any worker made the group again: the group starts at 0, so it is still read.
        await broker.kick(BrokerMessage(task_id="t1", task_name="export", message=b"job-1", labels={}))
        message = await asyncio.wait_for(anext(listener), 10)
        assert message.data == b"job-1"
        await message.ack()
        assert "consumer group missing" in caplog.text
        assert [g["name"] for g in await redis.xinfo_groups(queue)] == [GROUP.encode()]
        caplog.clear()
        await broker.ensure_consumer_group()  # exists already: quietly nothing
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert (await redis.xinfo_groups(queue))[0]["pending"] == 0
    finally:
        await listener.aclose()
        await broker.shutdown()
        await redis.delete(queue)
        await redis.aclose()
