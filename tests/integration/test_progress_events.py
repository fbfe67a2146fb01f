"""Progress events on Redis pub/sub, as a worker publishes them for the live console and API sockets."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json

import httpx
from redis.asyncio import Redis

from exporthub.accounts import account_by_slug
from exporthub.progress import channel_for
from tests.integration.helpers import submit, wait_status


async def test_a_running_export_publishes_fine_grained_progress_then_completion(
    api: httpx.AsyncClient, pool, settings
) -> None:
    acme = await account_by_slug(pool, "acme")
    redis = Redis.from_url(settings.redis.url)
    pubsub = redis.pubsub()
    await pubsub.subscribe(channel_for(settings.redis.queue_name, acme.id))
    events: list[dict] = []
    try:
        created = await submit(api, {"format": "csv", "resource": "payroll", "columns": ["payrollId", "grossPay"]})
        async with asyncio.timeout(60):
            while not events or events[-1]["type"] == "export.progress":
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is not None:
                    event = json.loads(message["data"])
                    if event["exportId"] == created["exportId"]:
                        events.append(event)
    finally:
        await pubsub.aclose()
        await redis.aclose()
    progress = [e for e in events if e["type"] == "export.progress"]
    done = events[-1]
    assert done["type"] == "export.completed"
    assert done["progress"] == 100 and done["processedRows"] == done["totalRows"] == 200_000
    assert done["downloadUrl"].startswith(settings.web.public_url) and done["fileSize"] > 0 and done["expiresAt"]
    file = (await api.get(done["downloadUrl"])).content
    assert done["sha256"] == hashlib.sha256(file).hexdigest()
    running = [e for e in progress if e["processedRows"] > 0]
    values = [e["progress"] for e in running]
    assert values == sorted(values)
    assert len(set(values)) >= 90  # an event at least every 1 %
    assert max(b - a for a, b in itertools.pairwise(values)) <= 1
    assert all(e["totalRows"] == 200_000 for e in running)
    assert progress[0]["status"] == "processing"


async def test_other_accounts_channels_stay_silent(api: httpx.AsyncClient, pool, settings) -> None:
    globex = await account_by_slug(pool, "globex")
    redis = Redis.from_url(settings.redis.url)
    pubsub = redis.pubsub()
    await pubsub.subscribe(channel_for(settings.redis.queue_name, globex.id))
    try:
        created = await submit(api, {"format": "csv", "resource": "compliance"})
        await wait_status(api, created["exportId"])
        heard = []
        while (message := await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)) is not None:
            heard.append(message)
    finally:
        await pubsub.aclose()
        await redis.aclose()
    assert heard == []
