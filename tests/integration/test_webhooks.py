"""Signed webhooks end to end: real worker, real receivers on 127.0.0.1, every attempt recorded."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
import hmac
import itertools
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import asyncpg
import httpx
import pytest

from exporthub.accounts import account_by_slug
from exporthub.catalog import load_catalog
from exporthub.errors import InvalidRequest
from exporthub.exports import service
from exporthub.exports.models import ExportStatus
from exporthub.exports.service import Exports
from exporthub.exports.validation import parse_export_request
from exporthub.queue import create_queue
from exporthub.redis_client import create_redis
from exporthub.settings import Settings
from exporthub.storage import LocalStorage
from exporthub.webhooks import WebhookDispatcher
from exporthub.webhooks.addresses import REFUSED
from tests.harness import scratch_database, wait_for_async
from tests.integration.domain import NoQueue, exports_domain
from tests.integration.helpers import submit, wait_status

HR = load_catalog()  # the HR catalog shipped in the package

QUICK = {"format": "csv", "resource": "compliance", "columns": ["recordId"]}


@dataclasses.dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival

    @property
    def event(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """A webhook endpoint on a free 127.0.0.1 port: answers the n-th POST with statuses[n] (then the last)."""

    def __init__(self, statuses: tuple[int, ...] = (200,), delay: float = 0.0) -> None:
        self.requests: list[Received] = []
        self.answered = 0
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                n = len(receiver.requests)
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body, time.monotonic()))
                if delay:
                    receiver._release.wait(delay)
                with contextlib.suppress(OSError):  # the sender may have given up already
                    self.send_response(statuses[min(n, len(statuses) - 1)])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                receiver.answered += 1

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    async def wait_for(self, count: int, timeout: float = 20) -> list[Received]:
        await wait_for_async(
            lambda: len(self.requests) >= count,
            timeout,
            lambda: f"{count} webhook requests ({len(self.requests)} arrived)",
        )
        return list(self.requests)

    def close(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(statuses: tuple[int, ...] = (200,), delay: float = 0.0) -> Receiver:
        made.append(Receiver(statuses, delay))
        return made[-1]

    yield make
    for r in made:
        r.close()


def signatures(header: str) -> tuple[int, list[str]]:
    parts = [p.split("=", 1) for p in header.split(",")]
    return int(next(v for k, v in parts if k == "t")), [v for k, v in parts if k == "v1"]


def verifies(secret: str, received: Received) -> bool:
    """What a receiver does (see the README): recompute the HMAC, compare, reject old timestamps."""
    timestamp, candidates = signatures(received.headers["ExportHub-Signature"])
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + received.body, hashlib.sha256).hexdigest()
    fresh = abs(time.time() - timestamp) < 300
    return fresh and any(hmac.compare_digest(expected, c) for c in candidates)


async def deliveries(client: httpx.AsyncClient, export_id: str) -> dict:
    response = await client.get(f"/api/v1/exports/{export_id}/webhooks")
    assert response.status_code == 200, response.text
    return response.json()


async def wait_deliveries(
    client: httpx.AsyncClient, export_id: str, predicate: Callable[[dict], bool], timeout: float = 20
) -> dict:
    last: dict = {}

    async def reached() -> dict | None:
        last.clear()
        last.update(await deliveries(client, export_id))
        return dict(last) if predicate(last) else None

    return await wait_for_async(reached, timeout, lambda: f"the deliveries of export {export_id}: {last}", 0.1)


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_a_completed_export_sends_one_signed_event(api: httpx.AsyncClient, receivers) -> None:
    secret = (await api.get("/api/v1/webhook-secret")).json()["secret"]
    assert secret.startswith("whsec_")
    assert (await api.get("/api/v1/webhook-secret")).json()["secret"] == secret  # made once, then kept
    rx = receivers()
    created = await submit(api, {**QUICK, "webhookUrl": f"{rx.url}/hooks/exporthub?src=test"})
    status = await wait_status(api, created["exportId"])
    assert status["status"] == "completed"
    [got] = await rx.wait_for(1)
    event = got.event
    assert event == {
        "event": "export.completed",
        "eventId": event["eventId"],
        "exportId": created["exportId"],
        "status": "completed",
        "downloadUrl": status["downloadUrl"],
        "totalRows": status["totalRows"],
        "fileSize": status["fileSize"],
        "sha256": status["sha256"],
        "expiresAt": event["expiresAt"],
        "errorMessage": None,
    }
    assert event["sha256"] == hashlib.sha256((await api.get(status["downloadUrl"])).content).hexdigest()
    assert parse_time(event["expiresAt"]) == parse_time(status["expiresAt"])
    assert got.path == "/hooks/exporthub?src=test"
    assert got.headers["Host"] == rx.url.removeprefix("http://")
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["ExportHub-Event"] == "export.completed"
    assert got.headers["ExportHub-Event-Id"] == event["eventId"]
    assert verifies(secret, got)
    assert not verifies(secret.replace("whsec_", "whsec_x"), got)
    listed = await wait_deliveries(api, created["exportId"], lambda b: b["events"][0]["state"] == "delivered")
    # A quiet second, to see that nothing more arrives (a duplicate from another worker's dispatcher):
    # an absence has no condition to wait for.
    await asyncio.sleep(1.0)
    assert len(rx.requests) == 1  # exactly one delivery
    assert [(e["eventId"], e["event"], e["state"], e["attempts"]) for e in listed["events"]] == [
        (event["eventId"], "export.completed", "delivered", 1)
    ]
    [attempt] = listed["items"]
    assert attempt["attempt"] == 1 and attempt["statusCode"] == 200 and attempt["error"] is None
    assert attempt["nextRetryAt"] is None and attempt["url"].startswith(rx.url) and attempt["durationMs"] >= 0


async def test_failed_and_cancelled_exports_send_their_events(
    api: httpx.AsyncClient, hub, paused_hub, pool: asyncpg.Pool, receivers
) -> None:
    rx = receivers()
    hook = {"webhookUrl": f"{rx.url}/hook"}
    acme = await account_by_slug(pool, "acme")

    async def queued_only(body: dict) -> str:  # recorded, never enqueued
        submitted = await service.submit_export(
            pool,
            pool,
            HR,
            acme,
            parse_export_request(body, HR),
            idempotency_key=None,
            max_active=100,
            idempotency_ttl_seconds=60,
        )
        job = submitted.job
        return str(job.id)

    # failed: a column that no longer exists when the worker runs it
    failing = await queued_only({"format": "csv", "resource": "payroll", **hook})
    await pool.execute("UPDATE export_jobs SET columns = ARRAY['grossPay', 'bonus'] WHERE id = $1", uuid.UUID(failing))
    queue = create_queue(hub.settings)
    await queue.broker.startup()
    try:
        await queue.enqueue(uuid.UUID(failing))
    finally:
        await queue.broker.shutdown()
    # cancelled while running: the worker ends it (the paused hub's worker holds it after its first rows)
    async with paused_hub.client("acme") as paused:
        running = (await submit(paused, {**QUICK, "format": "pdf", **hook}))["exportId"]
        await paused_hub.pauses.wait_paused(running)
        assert (await paused.post(f"/api/v1/exports/{running}/cancel")).status_code == 200
    # cancelled while queued: the web process ends it, no worker involved
    queued = await queued_only({**QUICK, **hook})
    assert (await api.post(f"/api/v1/exports/{queued}/cancel")).json()["status"] == "cancelled"

    events = {r.event["exportId"]: r.event for r in await rx.wait_for(3)}
    assert {k: (v["event"], v["status"]) for k, v in events.items()} == {
        failing: ("export.failed", "failed"),
        running: ("export.cancelled", "cancelled"),
        queued: ("export.cancelled", "cancelled"),
    }
    assert "bonus" in events[failing]["errorMessage"]
    assert all(e["downloadUrl"] is None and e["fileSize"] is None and e["sha256"] is None for e in events.values())
    secret = (await api.get("/api/v1/webhook-secret")).json()["secret"]
    assert all(verifies(secret, r) for r in rx.requests)
    for export_id in (failing, running, queued):
        listed = await wait_deliveries(api, export_id, lambda b: bool(b["items"]))
        assert [a["statusCode"] for a in listed["items"]] == [200]


async def test_a_failing_receiver_gets_retries_with_growing_delays(api: httpx.AsyncClient, receivers) -> None:
    rx = receivers(statuses=(500, 500, 500, 200))
    created = await submit(api, {**QUICK, "webhookUrl": f"{rx.url}/flaky"})
    assert (await wait_status(api, created["exportId"]))["status"] == "completed"
    got = await rx.wait_for(4)
    assert len({r.body for r in got}) == 1  # the same event, byte for byte
    assert {r.headers["ExportHub-Event-Id"] for r in got} == {got[0].event["eventId"]}
    assert [r.headers["ExportHub-Delivery-Attempt"] for r in got] == ["1", "2", "3", "4"]
    gaps = [b.at - a.at for a, b in itertools.pairwise(got)]
    assert 0.15 < gaps[0] < gaps[1] < gaps[2], gaps  # 0.2 s, 0.6 s, 1.8 s in the tests' settings
    assert gaps[2] > 1.5, gaps
    listed = await wait_deliveries(api, created["exportId"], lambda b: len(b["items"]) == 4)
    items = listed["items"]
    assert [(a["attempt"], a["statusCode"]) for a in items] == [(1, 500), (2, 500), (3, 500), (4, 200)]
    waits = [(parse_time(a["nextRetryAt"]) - parse_time(a["attemptedAt"])).total_seconds() for a in items[:3]]
    assert waits[0] < waits[1] < waits[2], waits
    assert items[3]["nextRetryAt"] is None
    assert listed["events"][0]["state"] == "delivered" and listed["events"][0]["attempts"] == 4
    await asyncio.sleep(0.5)  # a quiet moment: no fifth attempt after the delivery (an absence, not a condition)
    assert len(rx.requests) == 4


async def test_a_slow_receiver_never_delays_the_export(api: httpx.AsyncClient, receivers) -> None:
    rx = receivers(delay=10)
    started = time.monotonic()
    created = await submit(api, {**QUICK, "webhookUrl": f"{rx.url}/slow"})
    status = await wait_status(api, created["exportId"], timeout=15)
    assert status["status"] == "completed"
    assert time.monotonic() - started < 4  # not held by the 5 s timeout, let alone the 10 s receiver
    assert rx.answered == 0
    [got] = await rx.wait_for(1)
    assert got.event["exportId"] == created["exportId"]
    listed = await wait_deliveries(api, created["exportId"], lambda b: bool(b["items"]), timeout=15)
    first = listed["items"][0]
    assert first["statusCode"] is None and first["error"] == "timed out after 5 s"
    assert 4900 <= first["durationMs"] < 7000
    assert first["nextRetryAt"] is not None
    assert parse_time(status["completedAt"]) < parse_time(first["attemptedAt"]) + dt.timedelta(seconds=1)
    assert rx.answered == 0  # the receiver was still busy when the attempt was given up


async def test_rotating_the_secret_changes_the_signatures(
    api: httpx.AsyncClient, pool: asyncpg.Pool, receivers
) -> None:
    rx = receivers()
    hook = {**QUICK, "webhookUrl": rx.url}

    async def one_event(n: int) -> Received:
        created = await submit(api, hook)
        await wait_status(api, created["exportId"])
        return (await rx.wait_for(n))[n - 1]

    await pool.execute("DELETE FROM webhook_secrets")  # no rotation grace left from other tests
    old = (await api.get("/api/v1/webhook-secret")).json()["secret"]
    before = await one_event(1)
    assert len(signatures(before.headers["ExportHub-Signature"])[1]) == 1 and verifies(old, before)

    rotated = await api.post("/api/v1/webhook-secret/rotate")
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new != old and new.startswith("whsec_")
    assert rotated.json()["previousSecretExpiresAt"] is not None
    assert (await api.get("/api/v1/webhook-secret")).json()["secret"] == new

    during = await one_event(2)  # grace period: signed with both, the new one first
    timestamp, sigs = signatures(during.headers["ExportHub-Signature"])
    assert sigs[0] == hmac.new(new.encode(), f"{timestamp}.".encode() + during.body, hashlib.sha256).hexdigest()
    assert len(sigs) == 2 and verifies(new, during) and verifies(old, during)

    await pool.execute("UPDATE webhook_secrets SET previous_expires_at = now() - interval '1 second'")
    assert (await api.get("/api/v1/webhook-secret")).json()["previousSecretExpiresAt"] is None
    after = await one_event(3)
    assert verifies(new, after) and not verifies(old, after)
    assert len(signatures(after.headers["ExportHub-Signature"])[1]) == 1


async def test_other_accounts_see_neither_deliveries_nor_secret(hub, api: httpx.AsyncClient, receivers) -> None:
    rx = receivers()
    created = await submit(api, {**QUICK, "webhookUrl": rx.url})
    await wait_deliveries(api, created["exportId"], lambda b: bool(b["items"]))
    unknown = str(uuid.uuid4())
    async with hub.client("globex") as theirs:
        other = await theirs.get(f"/api/v1/exports/{created['exportId']}/webhooks")
        missing = await theirs.get(f"/api/v1/exports/{unknown}/webhooks")
        assert other.status_code == missing.status_code == 404
        assert other.json()["detail"].replace(created["exportId"], "ID") == missing.json()["detail"].replace(
            unknown, "ID"
        )
        mine = (await api.get("/api/v1/webhook-secret")).json()["secret"]
        assert (await theirs.get("/api/v1/webhook-secret")).json()["secret"] != mine
    async with httpx.AsyncClient(base_url=hub.base_url) as anonymous:
        for method, path in [
            ("GET", "/api/v1/webhook-secret"),
            ("POST", "/api/v1/webhook-secret/rotate"),
            ("GET", f"/api/v1/exports/{created['exportId']}/webhooks"),
        ]:
            assert (await anonymous.request(method, path)).status_code == 401


async def test_private_addresses_are_refused_at_submit(settings: Settings, pool: asyncpg.Pool, clean_jobs) -> None:
    strict = settings.replace(webhooks={"allow_private": False})
    acme = await account_by_slug(pool, "acme")
    async with exports_domain(strict, catalog=HR) as exports:
        for url in [
            "http://10.0.0.1/hook",
            "http://192.168.1.5/",
            "http://127.0.0.1:9/x",
            "http://[::1]/",
            "http://169.254.169.254/latest/meta-data",
            "http://localhost:8080/",
        ]:
            with pytest.raises(InvalidRequest) as info:
                await exports.submit(acme, {**QUICK, "webhookUrl": url})
            assert [p.field for p in info.value.problems] == ["webhookUrl"], url
    assert await pool.fetchval("SELECT count(*) FROM export_jobs") == 0


@pytest.fixture
async def scratch_pool(server_settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """A database no worker watches: what happens here is only what the test runs."""
    async with scratch_database(server_settings.db.url, "exporthub_webhooks") as url:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
        try:
            yield pool
        finally:
            await pool.close()


async def test_delivery_refuses_an_internal_address_once_and_for_all(
    settings: Settings, scratch_pool: asyncpg.Pool
) -> None:
    """Checked again at delivery (DNS can change): recorded as a failed attempt, never retried."""
    strict = settings.replace(webhooks={"allow_private": False}, recovery={"sweep_interval_seconds": 0})
    account = await scratch_pool.fetchval(
        "INSERT INTO accounts (slug, name) VALUES ('wh-test', 'Webhook test') RETURNING id"
    )

    async def finished(url: str) -> uuid.UUID:
        return await scratch_pool.fetchval(
            "INSERT INTO export_jobs (id, account_id, resource, format, columns, webhook_url, status, error_message,"
            " completed_at) VALUES (gen_random_uuid(), $1, 'payroll', 'csv', ARRAY['grossPay'], $2, 'failed',"
            " 'boom', now()) RETURNING id",
            account,
            url,
        )

    async def rebound(host: str, port: int) -> list[str]:
        return ["10.0.0.7"]

    literal = await finished("https://10.0.0.1/hook")
    named = await finished("https://hooks.example.com/hook")  # resolves to a private address now
    dispatcher = WebhookDispatcher(scratch_pool, strict, resolver=rebound)
    redis = create_redis(strict.redis.url)
    exports = Exports(
        pool=scratch_pool,
        source=scratch_pool,
        redis=redis,
        storage=LocalStorage(strict.storage.directory),
        catalog=HR,
        settings=strict,
        enqueue=NoQueue(),
    )
    try:
        assert await exports.record_missed_webhook_events() == 2  # ended without an event: the sweep records them
        assert await dispatcher.run_once() == 2
        await dispatcher.wait_idle()
        assert await dispatcher.run_once() == 0  # nothing left to retry
    finally:
        await dispatcher.stop()
        await redis.aclose()
    rows = await scratch_pool.fetch(
        "SELECT e.export_id, e.state, a.attempt, a.status_code, a.error, a.next_retry_at"
        " FROM webhook_events e JOIN webhook_attempts a ON a.event_id = e.id"
    )
    by_export = {r["export_id"]: r for r in rows}
    assert set(by_export) == {literal, named} and len(rows) == 2
    for row in rows:
        assert (row["state"], row["attempt"], row["status_code"], row["next_retry_at"]) == (
            "failed",
            1,
            None,
            None,
        )
        assert row["error"] == f"refused, not retried: {REFUSED}"  # nothing about where the name points
    assert ExportStatus.FAILED.value == await scratch_pool.fetchval(
        "SELECT status FROM export_jobs WHERE id = $1", literal
    )
