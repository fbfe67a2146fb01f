"""The one way in: submit, read, list, cancel, link and download exports (every download recorded),
and what happens when one ends; keep scheduled exports and run them when they are due (each run an
ordinary submit). The web app and the worker each build one `Exports` with their connections and
their way to reach the queue (`Enqueue`); neither decides any of this itself.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import asyncpg
import msgspec
from redis.asyncio import Redis

from exporthub import console_sessions
from exporthub.accounts import Account, Disabled, account_for_key
from exporthub.accounts import disable_account as disable_account_access
from exporthub.catalog import Catalog, Resource
from exporthub.errors import (
    Conflict,
    InvalidRequest,
    LinkExpired,
    NotFound,
    Problem,
    ResourceNotAllowed,
    TooManyActiveExports,
)
from exporthub.exports import events, links, unscoped
from exporthub.exports.account_scope import AccountScope, WebhookSecret
from exporthub.exports.copy_csv import ZONE_SQL
from exporthub.exports.cron import next_due, parse_zone
from exporthub.exports.downloads import (
    SIGNED_LINK_ONLY,
    DownloadPage,
    DownloadSummary,
    DownloadVia,
    Presented,
    Requester,
)
from exporthub.exports.expiry import sweep_expired
from exporthub.exports.history import NEWEST, PAGE_SIZE, Cursor, HistoryFilter, HistoryPage, page_of, request_of
from exporthub.exports.models import ExportFormat, ExportJob, ExportRequest, ExportStatus
from exporthub.exports.query import build_export_query, departments_query
from exporthub.exports.retention import Pruned, prune_old_records
from exporthub.exports.schedule_runs import ScheduleRun, run_due_schedules
from exporthub.exports.schedules import (
    Schedule,
    ScheduleIn,
    ScheduleSpec,
    check_schedule,
    export_part,
    merge_changes,
    read_changes,
    read_schedule,
)
from exporthub.exports.start_rate import StartRateLimiter, StartRateState
from exporthub.exports.validation import parse_export_request
from exporthub.progress import publish_event
from exporthub.settings import Settings
from exporthub.storage import Storage
from exporthub.webhooks import AddressPolicy, WebhookUrlRefused, resolve_checked
from exporthub.webhooks import store as webhook_store

log = logging.getLogger(__name__)


class Enqueue(Protocol):
    """Send one export id to the workers (queue.ExportQueue). A lost send is re-sent by `recover`."""

    async def __call__(self, export_id: uuid.UUID, /) -> None: ...


class Connected(Protocol):
    """What a process has opened (connections.Connections): the domain needs these four."""

    @property
    def pool(self) -> asyncpg.Pool: ...
    @property
    def source(self) -> asyncpg.Pool: ...
    @property
    def redis(self) -> Redis: ...
    @property
    def storage(self) -> Storage: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Download:
    """What a valid download link leads to: a file on local disk, or a redirect to the storage."""

    job: ExportJob
    path: Path | None = None
    redirect_url: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        """A file we serve names its checksum: RFC 9530 `Repr-Digest: sha-256=:<base64>:`. (A redirect
        leads to S3, whose object carries it: storage/s3.py.)"""
        if self.path is None or self.job.sha256 is None:
            return {}
        return {"Repr-Digest": links.repr_digest(self.job.sha256)}


@dataclasses.dataclass(frozen=True, slots=True)
class Submitted:
    """What a submit did: the export (new, or an idempotent replay's), and the account's start rate
    after it (None: not known, Redis did not answer)."""

    job: ExportJob
    created: bool
    start_rate: StartRateState | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Exports:
    pool: asyncpg.Pool  # ExportHub's own tables
    source: asyncpg.Pool  # the data the catalog reads (often `pool` itself)
    redis: Redis  # progress events, the start-rate count
    storage: Storage
    catalog: Catalog
    settings: Settings
    enqueue: Enqueue
    webhook_recorded: Callable[[], None] | None = None  # the worker's dispatcher wakes on it
    start_limiter: StartRateLimiter = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        limiter = StartRateLimiter(self.redis, self.settings.redis.queue_name, self.settings.exports.start_rate)
        object.__setattr__(self, "start_limiter", limiter)  # frozen; it remembers a Redis failure for a while

    @classmethod
    def over(
        cls,
        conns: Connected,
        *,
        catalog: Catalog,
        settings: Settings,
        enqueue: Enqueue,
        webhook_recorded: Callable[[], None] | None = None,
    ) -> Exports:
        """The domain over a process's connections: how the web app and the worker each build theirs."""
        return cls(
            pool=conns.pool,
            source=conns.source,
            redis=conns.redis,
            storage=conns.storage,
            catalog=catalog,
            settings=settings,
            enqueue=enqueue,
            webhook_recorded=webhook_recorded,
        )

    # --- for an account ---------------------------------------------------------------------------

    def resources(self, account: Account) -> list[Resource]:
        return resources_for(self.catalog, account)

    async def departments(self, account: Account) -> list[asyncpg.Record]:
        return await list_departments(self.source, self.catalog, account)

    async def submit(self, account: Account, body: Any, *, idempotency_key: str | None = None) -> Submitted:
        """Validate, record (commit first), then enqueue: the one submit path of the API and the console.
        `body`: the request as JSON-like builtins, or an ExportRequestIn. Raises InvalidRequest,
        ResourceNotAllowed, Conflict, TooManyActiveExports or TooManyExportsStarted."""
        body = _plain(body)
        resource = body.get("resource") if isinstance(body, dict) else None
        if isinstance(resource, str) and not account.allows(resource):
            # Before validation, whose messages would describe a resource this key may not see.
            raise ResourceNotAllowed(resource)
        request = await parse_submission(body, self.settings, self.catalog)
        settings = self.settings
        submitted = await submit_export(
            self.pool,
            self.source,
            self.catalog,
            account,
            request,
            idempotency_key=idempotency_key,
            max_active=settings.exports.max_active_exports,
            idempotency_ttl_seconds=settings.exports.idempotency_ttl_seconds,
            pdf_max_rows=settings.exports.pdf_max_rows,
            start_limiter=self.start_limiter,
        )
        if submitted.created:
            try:
                await self.enqueue(submitted.job.id)
            except Exception:  # the job is saved; the recovery sweep sends it later
                log.exception("could not enqueue export %s now; it will be re-sent", submitted.job.id)
        return submitted

    async def get(self, account: Account, export_id: uuid.UUID) -> ExportJob:
        job = await self.find(account, export_id)
        if job is None:
            raise NotFound("export", export_id)
        return job

    async def find(self, account: Account, export_id: uuid.UUID) -> ExportJob | None:
        """The account's export, or None: another account's id is exactly as unknown."""
        return await AccountScope(self.pool, account.id).jobs.get(export_id)

    async def recent(self, account: Account, *, limit: int, status: ExportStatus | None = None) -> list[ExportJob]:
        return await AccountScope(self.pool, account.id).jobs.recent(limit=limit, status=status)

    async def history(
        self, account: Account, filter: HistoryFilter, *, before: Cursor | None = None, limit: int = PAGE_SIZE
    ) -> HistoryPage:
        """One page of the account's exports that match `filter`, newest first, older than `before`."""
        rows = await AccountScope(self.pool, account.id).jobs.page(
            before=before.bound() if before else NEWEST,
            limit=limit + 1,
            status=filter.status,
            resource=filter.resource,
            format=filter.format,
        )
        return page_of(rows, limit)

    async def run_again(self, account: Account, export_id: uuid.UUID) -> Submitted:
        """Submit a finished export's request again, as a new export: through `submit`, so every check,
        the active-export cap and the start rate apply as to any other. Raises as `submit` does, NotFound
        for another account's id, and Conflict while the export is still queued or running."""
        job = await self.get(account, export_id)
        if job.status.is_active:
            raise Conflict(f"export {export_id} is still {job.status.value}; run it again once it has ended")
        return await self.submit(account, request_of(job))

    async def events_of_recent(self, account: Account, *, limit: int) -> list[dict[str, Any]]:
        """The account's newest exports, each shaped like the event its current state would publish."""
        return [events.export_event(j, await self.link(j)) for j in await self.recent(account, limit=limit)]

    async def cancel(self, account: Account, export_id: uuid.UUID) -> ExportJob:
        """Cancel a queued export now, a running one at its next batch (its worker ends it)."""
        job = await AccountScope(self.pool, account.id).jobs.cancel(export_id)
        if job is None:
            current = await self.get(account, export_id)  # raises NotFound for others' ids
            raise Conflict(
                f"export {export_id} is already {current.status.value}; "
                "only queued or processing exports can be cancelled"
            )
        if not job.status.is_active:  # cancelled while queued: no worker ends it, so it ends here
            await self.announce(job)
        return job

    async def queue_position(self, job: ExportJob) -> int | None:
        """Where a queued export stands in the order the workers take exports (unscoped.claim_fair)."""
        if job.status is not ExportStatus.QUEUED:
            return None
        return await unscoped.fair_queue_position(self.pool, job)

    async def webhook_deliveries(
        self, account: Account, export_id: uuid.UUID
    ) -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
        await self.get(account, export_id)  # 404 for another account's export, exactly as for an unknown id
        scope = AccountScope(self.pool, account.id)
        return await scope.webhooks.events(export_id), await scope.webhooks.attempts(export_id)

    async def downloads(
        self, account: Account, export_id: uuid.UUID, *, limit: int, before: int | None = None
    ) -> DownloadPage:
        """The export's recorded downloads, newest first; `before`: the previous page's `next_before`."""
        await self.get(account, export_id)  # 404 for another account's export, exactly as for an unknown id
        return await AccountScope(self.pool, account.id).downloads.page(export_id, limit=limit, before=before)

    async def download_summaries(self, jobs: Sequence[ExportJob]) -> dict[uuid.UUID, DownloadSummary]:
        """How often each ended export's file was downloaded, and when last, for the console's cards: one
        query per account (a list of cards is one account's); exports never downloaded are left out."""
        ended = [j for j in jobs if j.status in (ExportStatus.COMPLETED, ExportStatus.EXPIRED)]
        found: dict[uuid.UUID, DownloadSummary] = {}
        for account_id in {j.account_id for j in ended}:
            ids = [j.id for j in ended if j.account_id == account_id]
            found |= await AccountScope(self.pool, account_id).downloads.summaries(ids)
        return found

    async def webhook_secret(self, account: Account) -> WebhookSecret:
        return await AccountScope(self.pool, account.id).webhooks.secret()

    async def rotate_webhook_secret(self, account: Account) -> WebhookSecret:
        grace = self.settings.webhooks.secret_grace_seconds
        return await AccountScope(self.pool, account.id).webhooks.rotate_secret(grace_seconds=grace)

    # --- scheduled exports ------------------------------------------------------------------------

    async def create_schedule(self, account: Account, body: Any) -> Schedule:
        """Check the body (the export part exactly as a submit checks it) and record the schedule,
        due first at its next due time from now (none while paused)."""
        spec = await self._check_schedule(account, read_schedule(_plain(body)))
        limit = self.settings.exports.max_schedules
        async with self.pool.acquire() as conn, conn.transaction():
            scope = AccountScope(conn, account.id)
            await scope.jobs.lock()  # the account's submits and new schedules, one at a time: the cap holds
            if await scope.schedules.count() >= limit:
                raise Conflict(f"this account already has {limit} schedules, the most it may keep; delete one first")
            return await scope.schedules.insert(spec, next_run_at=_first_due(spec))

    async def schedules(self, account: Account) -> list[Schedule]:
        return await AccountScope(self.pool, account.id).schedules.all()

    async def schedule(self, account: Account, schedule_id: uuid.UUID) -> Schedule:
        """The account's schedule; another account's id is exactly as unknown (NotFound)."""
        schedule = await AccountScope(self.pool, account.id).schedules.get(schedule_id)
        if schedule is None:
            raise NotFound("schedule", schedule_id)
        return schedule

    async def update_schedule(self, account: Account, schedule_id: uuid.UUID, changes: Any) -> Schedule:
        """Apply PATCH's changes and check the whole schedule again. A new cron, zone or enabled
        reschedules it from now; other changes leave its due time (and a run waiting for a place) alone."""
        current = await self.schedule(account, schedule_id)
        spec = await self._check_schedule(account, read_schedule(merge_changes(current.body(), read_changes(changes))))
        timing = (spec.cron.text, spec.time_zone, spec.enabled)
        reschedule = timing != (current.cron, current.time_zone, current.enabled)
        updated = await AccountScope(self.pool, account.id).schedules.update(
            schedule_id, spec, reschedule=reschedule, next_run_at=_first_due(spec)
        )
        if updated is None:  # deleted meanwhile
            raise NotFound("schedule", schedule_id)
        return updated

    async def delete_schedule(self, account: Account, schedule_id: uuid.UUID) -> None:
        """Delete the schedule; the exports its runs made stay."""
        if not await AccountScope(self.pool, account.id).schedules.delete(schedule_id):
            raise NotFound("schedule", schedule_id)

    async def _check_schedule(self, account: Account, schedule: ScheduleIn) -> ScheduleSpec:
        if not account.allows(schedule.resource):
            raise ResourceNotAllowed(schedule.resource)
        spec, problems = check_schedule(schedule, self.catalog)
        try:
            request = await parse_submission(export_part(schedule), self.settings, self.catalog)
            await _check_departments(self.source, self.catalog, account, request)
        except InvalidRequest as exc:
            problems = [*exc.problems, *problems]
        if problems or spec is None:
            raise InvalidRequest(problems)
        return spec

    async def run_due_schedules(self, now: dt.datetime | None = None, *, limit: int = 100) -> list[ScheduleRun]:
        """Submit the export of each schedule whose due time has come, once per due time
        (exports/schedule_runs.py); each goes through `submit` like any other export."""
        return await run_due_schedules(self.pool, self.submit, now or dt.datetime.now(dt.UTC), limit=limit)

    # --- links ------------------------------------------------------------------------------------

    async def link(self, job: ExportJob) -> str | None:
        """The link handed out for a completed export: always our signed link (links.download_link)."""
        return links.download_link(self.settings.web.public_url, self.settings.secret_keys, job)

    async def download(
        self, export_id: uuid.UUID, expires: str, signature: str, presented: Presented | None = None
    ) -> Download:
        """What a signed link leads to, recorded with who asked (`presented`: what the request carried).
        Raises LinkInvalid, LinkExpired or NotFound; those are not recorded."""
        now = dt.datetime.now(dt.UTC)
        links.verify_download_link(self.settings.secret_keys, export_id, expires, signature, now)
        job = await unscoped.get_job(self.pool, export_id)  # the signature names the job: no account to scope by
        if job is None:
            raise NotFound("export", export_id)
        if job.status is ExportStatus.EXPIRED or (job.expires_at is not None and job.expires_at <= now):
            raise LinkExpired()
        if job.status is not ExportStatus.COMPLETED or job.file_key is None:
            raise NotFound("file for export", export_id)
        path = self.storage.local_path(job.file_key)
        if path is None:  # S3: the bucket serves it (with Range), not us
            url = await self.storage.download_url(
                job.file_key,
                filename=job.file_name or job.file_key.rsplit("/", 1)[-1],
                media_type=job.media_type,
                expires_at=job.expires_at or now,
            )
            if url is None:
                raise LinkExpired()
            await self._record_download(job, presented or Presented(), redirected=True)
            return Download(job, redirect_url=url)
        if not path.is_file():
            raise NotFound("file for export", export_id)
        await self._record_download(job, presented or Presented(), redirected=False)
        return Download(job, path=path)

    async def _record_download(self, job: ExportJob, presented: Presented, *, redirected: bool) -> None:
        """Before the file goes out: a download that cannot be recorded does not happen (the error is a 500)."""
        requester = await self._requester(job, presented)
        await AccountScope(self.pool, job.account_id).downloads.record(
            job.id,
            requester,
            redirected=redirected,
            client_ip=presented.clean_ip(),
            user_agent=presented.clean_user_agent(),
        )

    async def _requester(self, job: ExportJob, presented: Presented) -> Requester:
        """Who the request came from, for the export's own account: a working key sent along, else a live
        console session, else the link alone (another account's key or session counts as nothing)."""
        if presented.api_key:
            account = await account_for_key(self.pool, presented.api_key)
            if account is not None and account.id == job.account_id:
                return Requester(DownloadVia.API_KEY, api_key_id=account.key_id)
        if presented.session_id is not None:
            account = await console_sessions.session_account(self.pool, presented.session_id)
            if account is not None and account.id == job.account_id:
                return Requester(
                    DownloadVia.CONSOLE, api_key_id=account.key_id, console_session_id=presented.session_id
                )
        return SIGNED_LINK_ONLY

    # --- running and ending -----------------------------------------------------------------------

    async def announce(self, job: ExportJob) -> None:
        """Tell live clients where the export stands; an export that ended also records its webhook event."""
        url = await self.link(job) if job.status is ExportStatus.COMPLETED else None
        await publish_event(self.redis, self.settings.redis.queue_name, job.account_id, events.export_event(job, url))
        if events.wants_webhook(job):
            await self.record_webhook_event(job, url)

    async def record_webhook_event(self, job: ExportJob, download_url: str | None) -> None:
        """The outbox row the dispatcher delivers. Never raises: a webhook problem never fails an export,
        and `record_missed_webhook_events` records what was missed here."""
        assert job.webhook_url is not None
        event_id = uuid.uuid4()
        try:
            recorded = await webhook_store.insert_event(
                self.pool,
                account_id=job.account_id,
                export_id=job.id,
                url=job.webhook_url,
                event_id=event_id,
                event=events.WEBHOOK_EVENTS[job.status],
                body=events.webhook_body(job, event_id, download_url),
                window_seconds=self.settings.webhooks.retry_window_seconds,
            )
        except Exception:
            log.warning("could not record the webhook event of export %s now; the sweep will", job.id, exc_info=True)
            return
        if recorded and self.webhook_recorded is not None:
            self.webhook_recorded()

    # --- periodic work (worker/tasks.py runs these when the scheduler says so) -------------------

    async def recover(self) -> list[uuid.UUID]:
        """Re-send work a killed worker or a lost message left behind; end what cannot run again."""
        async with self.pool.acquire() as conn:
            requeue, ended = await unscoped.recover_stale(
                conn,
                max_claims=self.settings.recovery.max_claims,
                requeue_after_seconds=self.settings.recovery.requeue_after_seconds,
            )
        for job in ended:
            await self.announce(job)
        for export_id in requeue:
            log.info("re-sending export %s (lease ran out or message lost)", export_id)
            await self.enqueue(export_id)
        return requeue

    async def expire(self) -> int:
        """Delete the files of exports whose links expired; announce each newly expired one."""
        result = await sweep_expired(self.pool, self.storage)
        for job in result.expired:
            await self.announce(job)
        return len(result.expired)

    async def prune(self) -> Pruned:
        """Delete download records and finished webhook events past their retention, in short batches."""
        return await prune_old_records(
            self.pool,
            audit_retention_days=self.settings.exports.audit_retention_days,
            webhook_retention_days=self.settings.webhooks.retention_days,
            webhook_retry_window_seconds=self.settings.webhooks.retry_window_seconds,
        )

    async def record_missed_webhook_events(self, limit: int = 100) -> int:
        """Exports that ended with a webhook but no event: cancelled by an operator, or a worker died."""
        window = self.settings.webhooks.retry_window_seconds
        missed = await unscoped.finished_without_event(self.pool, window_seconds=window, limit=limit)
        for job in missed:
            url = links.signed_link(self.settings.web.public_url, self.settings.secret_keys, job)
            await self.record_webhook_event(job, url if job.status is ExportStatus.COMPLETED else None)
        return len(missed)


def _first_due(spec: ScheduleSpec) -> dt.datetime | None:
    """When a new (or newly enabled, or retimed) schedule is first due; None while paused."""
    if not spec.enabled:
        return None
    return next_due(spec.cron, parse_zone(spec.time_zone), dt.datetime.now(dt.UTC))


def _plain(body: Any) -> Any:
    """A typed request as the builtins the checks below read (a Struct must not skip them)."""
    return msgspec.to_builtins(body) if isinstance(body, msgspec.Struct) else body


async def parse_submission(body: Any, settings: Settings, catalog: Catalog) -> ExportRequest:
    """parse_export_request, plus the check that needs DNS: a webhook must not reach internal networks."""
    body = _plain(body)
    problems: list[Problem] = []
    request: ExportRequest | None = None
    try:
        request = parse_export_request(body, catalog, default_csv_bom=settings.exports.csv_bom)
    except InvalidRequest as exc:
        problems = list(exc.problems)
    url = body.get("webhookUrl") if isinstance(body, dict) else None
    if isinstance(url, str) and not any(p.field == "webhookUrl" for p in problems):
        try:
            await resolve_checked(url, AddressPolicy.from_settings(settings))
        except WebhookUrlRefused as exc:
            problems.append(Problem("webhookUrl", str(exc)))
    if problems or request is None:
        raise InvalidRequest(problems)
    return request


async def disable_account(conn: asyncpg.Connection, slug: str) -> Disabled:
    """Disable an account (accounts.disable_account) and cancel its active exports, in one transaction:
    queued ones now, running ones at their next batch (their webhook events are recorded by the sweep)."""
    async with conn.transaction():
        disabled = await disable_account_access(conn, slug)
        cancelled = await AccountScope(conn, disabled.account.id).jobs.cancel_all()
    return dataclasses.replace(disabled, cancelled_exports=len(cancelled))


async def submit_export(
    pool: asyncpg.Pool,
    source: asyncpg.Pool,
    catalog: Catalog,
    account: Account,
    request: ExportRequest,
    *,
    idempotency_key: str | None,
    max_active: int,
    idempotency_ttl_seconds: int,
    pdf_max_rows: int | None = None,
    start_limiter: StartRateLimiter | None = None,
) -> Submitted:
    """Record a new export (status queued); `created` is False on an idempotent replay.

    The caller enqueues the job after this returns: commit first, enqueue second. `source` is the
    pool of the database the catalog reads (often `pool` itself). With a `start_limiter`, a new
    export counts against the account's start rate, checked after the cap: a refused request
    (invalid, a replay, over the active cap) never counts; a start whose export is not recorded (the
    exact cap check lost a race, a failure) is given back.

    No transaction and no account lock: the insert itself checks the cap exactly
    (`AccountJobs.insert_within_cap`), so a submit is four statements at most, each its own commit,
    and Redis is never asked while a lock is held. The unlocked look at the active count before the
    start rate is asked keeps a full account from counting (and answering) against its start rate.
    """
    # The source is read first: no connection is held while another is awaited (the source pool may be
    # `pool` itself).
    await _check_departments(source, catalog, account, request)
    if request.format is ExportFormat.PDF and pdf_max_rows is not None:
        zone = request.time_zone or await AccountScope(pool, account.id).jobs.default_time_zone()
        await _check_pdf_size(source, catalog, account, request, pdf_max_rows, zone)
    async with pool.acquire() as conn:  # one connection for the few statements below: no transaction
        scoped = AccountScope(conn, account.id).jobs
        for _ in range(2):  # again once, if a concurrent submit took the idempotency key meanwhile
            own_rate, active = await scoped.submit_state()
            if idempotency_key is not None:
                previous = await scoped.by_idempotency_key(idempotency_key)
                if previous is not None:
                    if previous["age"] < dt.timedelta(seconds=idempotency_ttl_seconds):
                        if previous["request_hash"] != request.fingerprint():
                            raise Conflict(
                                "this Idempotency-Key was already used with a different request body; "
                                "use a new key for a new export"
                            )
                        standing = await start_limiter.peek(account.id, own_rate) if start_limiter else None
                        return Submitted(ExportJob.from_record(previous), False, standing)
                    await scoped.release_idempotency_key(previous["id"])
            if active >= max_active:  # refused before the start rate is asked; exactly checked below
                raise TooManyActiveExports(max_active, retry_after=30)
            # The start is counted before the export is recorded and given back if it is not (the cap,
            # a failure): Redis is not asked while PostgreSQL holds the account's count row locked.
            started: StartRateState | None = None
            if start_limiter is not None:
                started = await start_limiter.take(account.id, own_rate)
                if started is not None and not started.counted:
                    raise started.refusal()
            try:
                job = await scoped.insert_within_cap(request, idempotency_key=idempotency_key, max_active=max_active)
            except Exception as exc:
                if start_limiter is not None:
                    await start_limiter.give_back(account.id, started)
                if isinstance(exc, asyncpg.UniqueViolationError) and idempotency_key is not None:
                    continue  # the key's export exists now: answered as a replay
                raise
            if job is None:
                if start_limiter is not None:
                    await start_limiter.give_back(account.id, started)
                raise TooManyActiveExports(max_active, retry_after=30)
            return Submitted(job, True, started)
    raise Conflict("this Idempotency-Key is being used by another request right now; try again")


async def list_departments(source: asyncpg.Pool, catalog: Catalog, account: Account) -> list[asyncpg.Record]:
    """The account's departments (id, name as text), for the department filter; none without one."""
    if catalog.departments is None:
        return []
    sql, args = departments_query(catalog.departments, account.tenant_key)
    return await source.fetch(sql, *args)


async def _check_departments(source: asyncpg.Pool, catalog: Catalog, account: Account, request: ExportRequest) -> None:
    ids = list(request.filters.department_ids)
    if not ids or catalog.departments is None:
        return
    sql, args = departments_query(catalog.departments, account.tenant_key, ids)
    known = {r["id"] for r in await source.fetch(sql, *args)}
    problems = [
        Problem(f"filters.departmentIds[{i}]", f"no department {d} in this account")
        for i, d in enumerate(ids)
        if d not in known
    ]
    if problems:
        raise InvalidRequest(problems)


async def _check_pdf_size(
    source: asyncpg.Pool, catalog: Catalog, account: Account, request: ExportRequest, limit: int, time_zone: str
) -> None:
    resource = catalog.resources[request.resource]
    query = build_export_query(resource, request.columns, request.filters, account.tenant_key, time_zone=time_zone)
    async with source.acquire() as conn, conn.transaction(readonly=True):
        await conn.execute(ZONE_SQL, time_zone)  # the date filter's days start in the export's zone
        rows = await conn.fetchval(query.count_sql, *query.args)
    if rows > limit:
        raise InvalidRequest(
            [
                Problem(
                    "format",
                    f"a PDF report holds at most {limit:,} rows and this export has {rows:,}; "
                    "choose csv or xlsx, or narrow the filters",
                )
            ]
        )


def resources_for(catalog: Catalog, account: Account) -> list[Resource]:
    """The resources this account may export, in catalog order: those its API key is limited to."""
    return [r for r in catalog.resources.values() if account.allows(r.key)]
