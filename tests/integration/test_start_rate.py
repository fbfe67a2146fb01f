"""The start rate over HTTP, on a hub of its own at the shipped default (10 a minute; the session's other
hubs allow far more): the 429 and its headers, two web processes sharing one count, an account's own
rate set with the CLI, the console's message, and `exporthub export` waiting and trying again.

Each test starts exports for accounts of its own, so that no count carries over from another test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from exporthub.accounts import create_account, create_api_key
from exporthub.settings import Rate, Settings
from tests.conftest import Hub
from tests.harness import LOG_DIR, ROOT, exporthub_command, extra_web, sign_in, start_worker, web_server, with_new_port

DEFAULT_RATE = Settings().exports.start_rate  # what a deployment gets without EXPORTHUB_START_RATE
BODY = {"format": "csv", "resource": "compliance", "columns": ["recordId"]}
QUOTA_EXCEEDED = "https://iana.org/assignments/http-problem-types#quota-exceeded"
RATELIMIT = re.compile(r'^"start";r=(\d+)(?:;t=(\d+))?$')


@pytest.fixture(scope="module")
def rate_hub(settings: Settings) -> Iterator[Hub]:
    """A web server and a worker at the default start rate, on a queue (and Redis namespace) of their own.
    The active-export cap is raised so that a burst meets the rate, not the cap."""
    rated = with_new_port(settings).replace(
        redis={"queue_name": f"{settings.redis.queue_name}-rate"},
        exports={"start_rate": DEFAULT_RATE, "max_active_exports": 100},
    )
    worker = start_worker(rated, LOG_DIR, "rate-worker")
    try:
        with web_server(rated, LOG_DIR, "rate-web") as web:
            yield Hub(rated, web, worker, None, LOG_DIR, {})
    finally:
        worker.stop()


async def new_account(pool: asyncpg.Pool, rate: Rate | None = None) -> tuple[str, str]:
    """A fresh account (its own count) and an API key of it: (slug, key)."""
    slug = f"rate-{uuid.uuid4().hex[:8]}"
    account = await create_account(pool, slug, "Start rate test", start_rate=rate)
    return slug, await create_api_key(pool, account.id, label="rate-test")


@contextlib.asynccontextmanager
async def api(base_url: str, key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        yield c


def remaining(response: httpx.Response) -> tuple[int, int | None]:
    """The RateLimit header's r and t."""
    match = RATELIMIT.match(response.headers["RateLimit"])
    assert match, response.headers["RateLimit"]
    return int(match[1]), int(match[2]) if match[2] else None


def headers_of(response: httpx.Response) -> str:
    names = ("RateLimit-Policy", "RateLimit", "Retry-After")
    return "  ".join(f"{n}: {response.headers[n]}" for n in names if n in response.headers)


async def test_a_burst_of_twelve_gets_ten_starts_and_two_429s_with_the_headers(
    rate_hub: Hub, pool: asyncpg.Pool, clean_jobs: None
) -> None:
    _, key = await new_account(pool)
    _, other_key = await new_account(pool)
    async with api(rate_hub.base_url, key) as client:
        responses = [await client.post("/api/v1/exports", json=BODY) for _ in range(12)]
    transcript = "\n".join(f"{i:2} {r.status_code}  {headers_of(r)}" for i, r in enumerate(responses, 1))
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    (ROOT / "test-artifacts" / "start-rate-burst.txt").write_text(transcript + "\n")

    assert [r.status_code for r in responses] == [202] * 10 + [429] * 2, transcript
    assert all(r.headers["RateLimit-Policy"] == '"start";q=10;w=60' for r in responses), transcript
    started = [remaining(r) for r in responses[:10]]
    assert [r for r, _ in started] == list(range(9, -1, -1)), transcript
    assert all(t is not None and 55 <= t <= 60 for _, t in started), transcript  # the first start leaves then
    for refused in responses[10:]:
        wait = int(refused.headers["Retry-After"])
        assert 55 <= wait <= 60, transcript
        assert remaining(refused) == (0, wait)  # Retry-After is no earlier than t
        assert refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert problem["type"] == QUOTA_EXCEEDED and problem["status"] == 429
        assert problem["title"] == "Too many exports started"
        assert problem["violated-policies"] == ["start"] and problem["retryAfter"] == wait
        assert problem["detail"] == f"this account may start at most 10 exports per minute; try again in {wait} s"
    # Another account has its own count.
    async with api(rate_hub.base_url, other_key) as other:
        elsewhere = await other.post("/api/v1/exports", json=BODY)
    assert elsewhere.status_code == 202 and remaining(elsewhere)[0] == 9
    assert await pool.fetchval("SELECT count(*) FROM export_jobs") == 11


async def test_two_web_processes_share_one_count(rate_hub: Hub, pool: asyncpg.Pool, clean_jobs: None) -> None:
    _, key = await new_account(pool)
    with extra_web(rate_hub.settings, "rate-web-2", LOG_DIR) as second_url:
        async with api(rate_hub.base_url, key) as first, api(second_url, key) as second:
            # One after another, alternating: each process continues the other's count.
            alternating = [await (first, second)[i % 2].post("/api/v1/exports", json=BODY) for i in range(6)]
            assert [remaining(r)[0] for r in alternating] == [9, 8, 7, 6, 5, 4]
            # Then at once, through both: 4 places left, 6 asking.
            at_once = await asyncio.gather(
                *((first, second)[i % 2].post("/api/v1/exports", json=BODY) for i in range(6))
            )
    codes = sorted(r.status_code for r in at_once)
    assert codes == [202] * 4 + [429] * 2, codes
    assert all(r.json()["violated-policies"] == ["start"] for r in at_once if r.status_code == 429)


async def test_replays_and_refused_requests_do_not_count(rate_hub: Hub, pool: asyncpg.Pool, clean_jobs: None) -> None:
    _, key = await new_account(pool)
    async with api(rate_hub.base_url, key) as client:
        first = await client.post("/api/v1/exports", json=BODY, headers={"Idempotency-Key": "nightly"})
        assert first.status_code == 202 and remaining(first)[0] == 9
        for _ in range(3):
            replay = await client.post("/api/v1/exports", json=BODY, headers={"Idempotency-Key": "nightly"})
            assert replay.status_code == 202 and replay.json()["exportId"] == first.json()["exportId"]
            assert remaining(replay)[0] == 9  # told where the account stands, not counted
        for bad in ({**BODY, "columns": ["nope"]}, {**BODY, "format": "docx"}, {"resource": "compliance"}):
            invalid = await client.post("/api/v1/exports", json=bad)
            assert invalid.status_code == 422 and "RateLimit" not in invalid.headers
        conflict = await client.post(
            "/api/v1/exports", json={**BODY, "format": "xlsx"}, headers={"Idempotency-Key": "nightly"}
        )
        assert conflict.status_code == 409
        second = await client.post("/api/v1/exports", json=BODY)
    assert remaining(second)[0] == 8


async def test_room_comes_back_as_the_window_passes(rate_hub: Hub, pool: asyncpg.Pool, clean_jobs: None) -> None:
    _, key = await new_account(pool, Rate(2, 2))
    async with api(rate_hub.base_url, key) as client:
        for _ in range(2):
            assert (await client.post("/api/v1/exports", json=BODY)).status_code == 202
        refused = await client.post("/api/v1/exports", json=BODY)
        assert refused.status_code == 429 and refused.headers["RateLimit-Policy"] == '"start";q=2;w=2'
        wait = int(refused.headers["Retry-After"])
        assert 1 <= wait <= 2
        await asyncio.sleep(wait)  # the scenario: waiting as told
        later = await client.post("/api/v1/exports", json=BODY)
    assert later.status_code == 202, later.text


async def test_an_accounts_own_rate_is_set_and_cleared_with_the_cli(
    rate_hub: Hub, pool: asyncpg.Pool, clean_jobs: None
) -> None:
    settings = rate_hub.settings
    slug, key = await new_account(pool)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return exporthub_command(settings, "accounts", *args)

    done = cli("set-rate", "--slug", slug, "--rate", "2/min")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"account {slug}: start rate 2/min"
    listed = {a["slug"]: a for a in json.loads(cli("list", "--json").stdout)}
    assert listed[slug]["startRate"] == "2/min"
    table = cli("list").stdout.splitlines()
    assert table[0].split()[:6] == ["SLUG", "NAME", "TENANT", "KEY", "START", "RATE"]
    assert " 2/min " in next(line for line in table if line.startswith(slug))
    async with api(rate_hub.base_url, key) as client:
        codes = [(await client.post("/api/v1/exports", json=BODY)).status_code for _ in range(3)]
        assert codes == [202, 202, 429]
        refused = await client.post("/api/v1/exports", json=BODY)
        assert refused.headers["RateLimit-Policy"] == '"start";q=2;w=60'
        assert "at most 2 exports per minute" in refused.json()["detail"]

        cleared = cli("set-rate", "--slug", slug, "--rate", "default")
        assert cleared.returncode == 0, cleared.stderr
        assert cleared.stdout.strip() == f"account {slug}: start rate default (10/min)"  # EXPORTHUB_START_RATE
        listed = {a["slug"]: a for a in json.loads(cli("list", "--json").stdout)}
        assert listed[slug]["startRate"] is None
        again = await client.post("/api/v1/exports", json=BODY)  # the 2 starts count against 10 now
    assert again.status_code == 202 and again.headers["RateLimit-Policy"] == '"start";q=10;w=60'
    assert remaining(again)[0] == 7

    created_slug = f"rate-{uuid.uuid4().hex[:8]}"
    created = cli("create", "--slug", created_slug, "--name", "Batch", "--rate", "100/h")
    assert created.returncode == 0, created.stderr
    assert "start rate 100/h" in created.stdout
    listed = {a["slug"]: a for a in json.loads(cli("list", "--json").stdout)}
    assert listed[created_slug]["startRate"] == "100/h"
    for bad, words in (("fast", "expected a rate such as 10/min"), ("0/min", "from 1 to 100,000"), ("5/week", "unit")):
        result = cli("set-rate", "--slug", slug, "--rate", bad)
        assert result.returncode == 1 and words in result.stderr and "Traceback" not in result.stderr, result.stderr
    unknown = cli("set-rate", "--slug", "umbrella", "--rate", "5/min")
    assert unknown.returncode == 1 and "account 'umbrella' not found" in unknown.stderr


async def test_the_console_says_when_the_next_export_can_start(
    rate_hub: Hub, pool: asyncpg.Pool, clean_jobs: None
) -> None:
    _, key = await new_account(pool, Rate(1, 60))
    form = {"resource": "compliance", "format": "csv", "columns": ["recordId"]}
    async with httpx.AsyncClient(base_url=rate_hub.base_url, timeout=30, follow_redirects=False) as browser:
        assert (await sign_in(browser, key)).status_code == 303
        page = await browser.get("/console")
        token = re.search(r'"X-CSRFToken": "([^"]+)"', page.text)
        assert token
        headers = {"X-CSRFToken": token[1], "HX-Request": "true"}
        started = await browser.post("/console/exports", data=form, headers=headers)
        assert started.status_code == 200, started.text
        refused = await browser.post("/console/exports", data=form, headers=headers)
    assert refused.status_code == 429
    wait = int(refused.headers["Retry-After"])
    assert 55 <= wait <= 60
    # In the form's actions, beside the Start button, which points at it.
    actions = refused.text[refused.text.index('<div class="actions">') :]
    assert 'id="export-submit" class="button primary" aria-describedby="start-error"' in actions
    assert (
        '<p class="form-error start-error" role="alert" id="start-error">'
        f"This account may start at most 1 export per minute; try again in {wait} s.</p>"
    ) in actions
    assert refused.text.lstrip().startswith('<form id="export-form"')  # the form, kept as it was filled in
    assert 'value="recordId" checked' in refused.text


def test_exporthub_export_waits_as_told_and_tries_again(rate_hub: Hub, tmp_path: Path) -> None:
    _, key = asyncio.run(used_up_account(rate_hub, Rate(1, 6)))  # its one start of these 6 s is taken
    args = ["export", "--resource", "compliance", "--columns", "recordId", "--api-url", rate_hub.base_url]
    result = exporthub_command(rate_hub.settings, *args, "-o", str(tmp_path / "out.csv"), EXPORTHUB_API_KEY=key)
    assert result.returncode == 0, result.stderr
    assert "HTTP 429: this account may start at most 1 export per 6 seconds; try again in" in result.stderr
    assert re.search(r"waiting [1-6] s before trying again \(retry 1 of 5\)", result.stderr), result.stderr
    assert (tmp_path / "out.csv").read_text(encoding="utf-8-sig").splitlines() == [
        "Record ID"
    ]  # no rows: a new account


def test_exporthub_export_told_not_to_retry_stops_at_the_429(rate_hub: Hub, tmp_path: Path) -> None:
    _, key = asyncio.run(used_up_account(rate_hub, Rate(1, 60)))
    args = ["export", "--resource", "compliance", "--api-url", rate_hub.base_url, "--retries", "0"]
    result = exporthub_command(rate_hub.settings, *args, "-o", str(tmp_path / "out.csv"), EXPORTHUB_API_KEY=key)
    assert result.returncode == 1
    assert "HTTP 429: this account may start at most 1 export per minute" in result.stderr
    assert "waiting" not in result.stderr and not (tmp_path / "out.csv").exists()


async def used_up_account(hub: Hub, rate: Rate) -> tuple[str, str]:
    """A new account whose rate allows one start, already made (a synchronous test's own connection)."""
    conn = await asyncpg.connect(hub.settings.db.url)
    try:
        slug = f"rate-{uuid.uuid4().hex[:8]}"
        account = await create_account(conn, slug, "Start rate test", start_rate=rate)
        key = await create_api_key(conn, account.id, label="rate-test")
    finally:
        await conn.close()
    async with api(hub.base_url, key) as client:
        assert (await client.post("/api/v1/exports", json=BODY)).status_code == 202
    return slug, key


async def test_the_openapi_schema_describes_the_429_and_the_headers(rate_hub: Hub) -> None:
    async with httpx.AsyncClient(base_url=rate_hub.base_url, timeout=30) as client:
        schema = (await client.get("/schema/openapi.json")).json()
    responses = schema["paths"]["/api/v1/exports"]["post"]["responses"]
    assert set(responses["202"]["headers"]) == {"RateLimit-Policy", "RateLimit"}
    refused = responses["429"]
    assert set(refused["headers"]) == {"Retry-After", "RateLimit-Policy", "RateLimit"}
    assert "application/problem+json" in refused["content"]
    problem = schema["components"]["schemas"]["QuotaExceededOut"]["properties"]
    assert {"violated-policies", "retryAfter", "detail", "type"} <= set(problem)
    assert "start rate" in refused["description"]
