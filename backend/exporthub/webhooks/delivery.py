"""Deliver webhook events: one signed POST per attempt, retried with backoff, every attempt recorded.

An export that ends records an event (the outbox row) and wakes the dispatcher; nothing else happens
in the export's run, so a slow receiver never delays it. Each worker process runs a dispatcher loop
that claims due events (`FOR UPDATE SKIP LOCKED`), sends them concurrently and schedules retries in
the same table: no scheduler, and a worker that dies mid-attempt leaves a claim that lapses.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import time

import asyncpg
import httpx

from exporthub import __version__
from exporthub.settings import Settings
from exporthub.webhooks import store
from exporthub.webhooks.addresses import (
    AddressPolicy,
    IPAddress,
    Resolver,
    WebhookHostUnresolved,
    WebhookUrlRefused,
    resolve_checked,
    system_resolver,
)
from exporthub.webhooks.signing import SIGNATURE_HEADER, signature_header

log = logging.getLogger(__name__)

RETRY_FACTOR = 3


def retry_delay(attempt: int, *, base: float, cap: float) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based): base, 3x base, 9x base... capped."""
    return min(cap, base * RETRY_FACTOR ** (attempt - 1))


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: int
    retry: bool = True  # False for a refused address: sending again would be refused again

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _pinned_request(
    client: httpx.AsyncClient, url: str, address: IPAddress, body: bytes, headers: dict[str, str]
) -> httpx.Request:
    """A request to the address that was checked, with the original Host and TLS server name."""
    target = httpx.URL(url)
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    return client.build_request(
        "POST",
        target.copy_with(host=str(address)),
        content=body,
        headers={**headers, "Host": target.netloc.decode("ascii")},
        extensions=extensions,
    )


async def send_once(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    policy: AddressPolicy,
    timeout_seconds: float,
    resolver: Resolver = system_resolver,
) -> Outcome:
    """One attempt: check the address (again), POST, read the status. Never raises."""
    started = time.monotonic()

    def outcome(status_code: int | None, error: str | None, *, retry: bool = True) -> Outcome:
        return Outcome(status_code, error, round((time.monotonic() - started) * 1000), retry)

    try:
        async with asyncio.timeout(timeout_seconds):
            addresses = await resolve_checked(url, policy, resolver)
            request = _pinned_request(client, url, addresses[0], body, headers)
            response = await client.send(request, stream=True)
            await response.aclose()
    except WebhookHostUnresolved as exc:
        return outcome(None, str(exc))
    except WebhookUrlRefused as exc:
        return outcome(None, f"refused, not retried: {exc}", retry=False)
    except (TimeoutError, httpx.TimeoutException):
        return outcome(None, f"timed out after {timeout_seconds:g} s")
    except httpx.HTTPError as exc:
        return outcome(None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    except OSError as exc:
        return outcome(None, f"{type(exc).__name__}: {exc}")
    error = None
    if response.is_redirect:
        error = f"redirect to {response.headers.get('location', '?')} not followed"
    return outcome(response.status_code, error)


class WebhookDispatcher:
    """One per worker process: `start()` at worker start-up, `record()` when an export ends, `stop()`."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: Settings,
        *,
        resolver: Resolver = system_resolver,
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._resolver = resolver
        self._policy = AddressPolicy.from_settings(settings)
        self._timeout: float = settings.webhooks.timeout_seconds
        self._window: float = settings.webhooks.retry_window_seconds
        self._concurrency: int = settings.webhooks.concurrency
        self._client = httpx.AsyncClient(
            timeout=self._timeout,
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": _USER_AGENT},
        )
        self._wake = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._loop = asyncio.create_task(self.run(), name="webhook-dispatcher")

    async def stop(self) -> None:
        tasks = [*self._inflight, *([self._loop] if self._loop else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._client.aclose()

    async def wait_idle(self) -> None:
        """Wait for the deliveries in flight (tests, and a graceful stop)."""
        while self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)

    def wake(self) -> None:
        """An event was recorded: look for due deliveries now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        poll: float = self._settings.webhooks.poll_seconds
        while True:
            self._wake.clear()
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook dispatch failed; trying again")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll):
                    await self._wake.wait()

    async def run_once(self) -> int:
        """Start due deliveries, as many as there are free slots. Returns how many."""
        free = self._concurrency - len(self._inflight)
        if free <= 0:
            return 0
        claimed = await store.claim_due(self._pool, limit=free, lock_seconds=self._timeout + 60)
        for event in claimed:
            task = asyncio.create_task(self._deliver(event))
            self._inflight.add(task)
            task.add_done_callback(self._done)
        return len(claimed)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._wake.set()  # a slot is free: more due events may be waiting

    async def _deliver(self, event: store.ClaimedEvent) -> None:
        try:
            await self._attempt(event)
        except asyncio.CancelledError:
            raise
        except Exception:  # the claim lapses and another attempt follows
            log.exception("webhook event %s: attempt %d could not be recorded", event.id, event.attempt)

    async def _attempt(self, event: store.ClaimedEvent) -> None:
        secrets_ = await store.signing_secrets(self._pool, event.account_id)
        body = event.body.encode()
        headers = {
            "Content-Type": "application/json",
            "ExportHub-Event": event.event,
            "ExportHub-Event-Id": str(event.id),
            "ExportHub-Delivery-Attempt": str(event.attempt),
            SIGNATURE_HEADER: signature_header(secrets_, body),
        }
        attempted_at = dt.datetime.now(dt.UTC)
        result = await send_once(
            self._client,
            event.url,
            body,
            headers,
            policy=self._policy,
            timeout_seconds=self._timeout,
            resolver=self._resolver,
        )
        retry_in = None
        if not result.delivered and result.retry:
            retry_in = retry_delay(
                event.attempt,
                base=self._settings.webhooks.retry_base_seconds,
                cap=self._settings.webhooks.retry_max_delay_seconds,
            )
        async with self._pool.acquire() as conn:
            state = await store.record_attempt(
                conn,
                event,
                delivered=result.delivered,
                retry_in_seconds=retry_in,
                status_code=result.status_code,
                error=result.error,
                duration_ms=result.duration_ms,
                attempted_at=attempted_at,
            )
        level = logging.INFO if result.delivered else logging.WARNING
        log.log(
            level,
            "webhook %s for export %s, attempt %d: %s -> %s",
            event.event,
            event.export_id,
            event.attempt,
            result.status_code or result.error,
            state or "claim lost",
        )


_USER_AGENT = f"ExportHub-Webhooks/{__version__}"


def retry_schedule(base: float, cap: float, window: float) -> list[float]:
    """The delays between attempts for one event that never succeeds (for docs and tests)."""
    delays: list[float] = []
    elapsed, attempt = 0.0, 1
    while True:
        delay = retry_delay(attempt, base=base, cap=cap)
        if elapsed + delay > window:
            return delays
        delays.append(delay)
        elapsed += delay
        attempt += 1
