"""exports/service.py without servers: what is decided before any connection is used.

Submitting, cancelling and the sweeps over real PostgreSQL are in tests/integration (test_api.py,
test_cancel_and_recovery.py, exports/); the webhook address policy itself in test_webhook_signing.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from exporthub.catalog import load_catalog
from exporthub.errors import InvalidRequest, LinkExpired, LinkInvalid, ResourceNotAllowed
from exporthub.exports import events
from exporthub.exports.links import sign_download_link
from exporthub.exports.models import ExportFormat, ExportStatus
from exporthub.exports.service import Exports, list_departments, parse_submission, resources_for
from exporthub.exports.validation import ExportRequestIn
from exporthub.settings import Settings
from exporthub.webhooks.addresses import HTTPS_ONLY, REFUSED
from tests.factories import create_account, create_job

HR = load_catalog()
STRICT = Settings(secret_keys=("s" * 48,))  # the defaults: https only, public addresses only
PUBLIC = "93.184.216.34"  # an address literal: the check needs no DNS


class Untouchable:
    """A pool, Redis or storage that the code under test must not reach: any use fails the test."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getattr__(self, attribute: str) -> Any:
        raise AssertionError(f"{self.name}.{attribute} was used")


class NoEnqueue:
    async def __call__(self, export_id: uuid.UUID, /) -> None:
        raise AssertionError(f"export {export_id} should not have been enqueued")


def exports_without_servers(settings: Settings = STRICT, **fields: Any) -> Exports:
    parts: dict[str, Any] = {
        "pool": Untouchable("pool"),
        "source": Untouchable("source"),
        "redis": Untouchable("redis"),
        "storage": Untouchable("storage"),
        "catalog": HR,
        "settings": settings,
        "enqueue": NoEnqueue(),
    }
    return Exports(**(parts | fields))


def problems_of(info: pytest.ExceptionInfo[InvalidRequest]) -> dict[str, str]:
    return {p.field: p.message for p in info.value.problems}


# --- resources_for --------------------------------------------------------------------------------------


def test_an_unlimited_key_gets_every_resource_in_catalog_order() -> None:
    assert [r.key for r in resources_for(HR, create_account())] == list(HR.resources)
    assert resources_for(HR, create_account()) == exports_without_servers().resources(create_account())


def test_a_limited_key_gets_its_resources_in_catalog_order_not_its_own() -> None:
    account = create_account(resources=frozenset({"compliance", "employees"}))
    assert [r.key for r in resources_for(HR, account)] == ["employees", "compliance"]


def test_a_key_limited_to_names_the_catalog_lacks_gets_none_of_them() -> None:
    assert [r.key for r in resources_for(HR, create_account(resources=frozenset({"payroll", "bonuses"})))] == [
        "payroll"
    ]
    assert resources_for(HR, create_account(resources=frozenset())) == []


async def test_a_catalog_without_departments_lists_none_without_asking_the_source() -> None:
    bare = dataclasses.replace(HR, departments=None)
    assert await list_departments(Untouchable("source"), bare, create_account()) == []


# --- parse_submission: validation and the webhook address check together ----------------------------


async def test_a_public_webhook_address_is_kept_on_the_request() -> None:
    request = await parse_submission(
        {"format": "csv", "resource": "payroll", "webhookUrl": f"https://{PUBLIC}/hook"}, STRICT, HR
    )
    assert request.webhook_url == f"https://{PUBLIC}/hook"


async def test_plain_http_is_refused_by_the_address_check_after_the_catalogs_problems() -> None:
    body = {"format": "csv", "resource": "payroll", "columns": ["bonus"], "filters": {"status": "bogus"}}
    with pytest.raises(InvalidRequest) as info:
        await parse_submission(body | {"webhookUrl": f"http://{PUBLIC}/hook"}, STRICT, HR)
    assert [p.field for p in info.value.problems] == ["columns", "filters.status", "webhookUrl"]
    assert problems_of(info)["webhookUrl"] == HTTPS_ONLY


async def test_a_fault_of_shape_elsewhere_still_gets_the_webhook_address_checked() -> None:
    with pytest.raises(InvalidRequest) as info:
        await parse_submission({"format": "docx", "resource": "payroll", "webhookUrl": "https://10.0.0.1/"}, STRICT, HR)
    assert [p.field for p in info.value.problems] == ["format", "webhookUrl"]
    assert problems_of(info)["webhookUrl"] == REFUSED


async def test_a_webhook_url_of_the_wrong_shape_is_reported_once_by_validation() -> None:
    with pytest.raises(InvalidRequest) as info:
        await parse_submission(
            {"format": "csv", "resource": "payroll", "webhookUrl": "https://10.0.0.1/" + "p" * 2048}, STRICT, HR
        )
    assert problems_of(info) == {"webhookUrl": "expected at most 2048 characters"}


async def test_a_webhook_url_that_validation_refuses_is_reported_once_by_validation() -> None:
    with pytest.raises(InvalidRequest) as info:
        await parse_submission({"format": "csv", "resource": "payroll", "webhookUrl": "ftp://10.0.0.1/"}, STRICT, HR)
    assert [p.field for p in info.value.problems] == ["webhookUrl"]
    assert info.value.problems[0].message == "expected an absolute http:// or https:// URL"


async def test_a_webhook_url_that_is_not_text_is_a_validation_problem_only() -> None:
    with pytest.raises(InvalidRequest) as info:
        await parse_submission({"format": "csv", "resource": "payroll", "webhookUrl": 42}, STRICT, HR)
    assert [p.field for p in info.value.problems] == ["webhookUrl"]


async def test_a_body_that_is_not_an_object_is_one_problem() -> None:
    with pytest.raises(InvalidRequest) as info:
        await parse_submission([{"webhookUrl": "https://10.0.0.1/"}], STRICT, HR)
    assert problems_of(info) == {"body": "expected a JSON object, got a list"}


async def test_allowed_networks_from_the_settings_let_a_private_webhook_through() -> None:
    settings = STRICT.replace(webhooks={"allowed_cidrs": ("10.0.0.0/8",)})
    body = {"format": "csv", "resource": "payroll", "webhookUrl": "https://10.1.2.3/hook"}
    assert (await parse_submission(body, settings, HR)).webhook_url == "https://10.1.2.3/hook"
    with pytest.raises(InvalidRequest) as info:
        await parse_submission(body | {"webhookUrl": "https://192.168.1.5/"}, settings, HR)
    assert problems_of(info) == {"webhookUrl": REFUSED}


async def test_the_settings_choose_the_default_byte_order_mark() -> None:
    body = {"format": "csv", "resource": "payroll"}
    assert (await parse_submission(body, STRICT, HR)).csv_bom is True
    assert (await parse_submission(body, STRICT.replace(exports={"csv_bom": False}), HR)).csv_bom is False
    assert (await parse_submission(body | {"csvBom": True}, STRICT.replace(exports={"csv_bom": False}), HR)).csv_bom


# --- Exports.submit refuses before it touches a connection -------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"format": "csv", "resource": "payroll"},
        {"format": "docx", "resource": "payroll", "columns": ["bonus"]},  # refused for the key, not as invalid
        {"format": "csv", "resource": "payroll", "colour": "red"},
        {"format": "csv", "resource": "payroll", "webhookUrl": "https://10.0.0.1/"},
    ],
)
async def test_a_resource_the_key_may_not_export_is_refused_before_validation(body: dict[str, Any]) -> None:
    account = create_account(resources=frozenset({"employees"}))
    with pytest.raises(ResourceNotAllowed) as info:
        await exports_without_servers().submit(account, body)
    assert info.value.resource == "payroll"


async def test_a_typed_request_gets_the_same_checks_as_json() -> None:
    """The API hands over the Struct it decoded: the key's resource limit and the address check hold."""
    limited = create_account(resources=frozenset({"employees"}))
    with pytest.raises(ResourceNotAllowed):
        await exports_without_servers().submit(limited, ExportRequestIn(format=ExportFormat.CSV, resource="payroll"))
    private = ExportRequestIn(format=ExportFormat.CSV, resource="employees", webhook_url="https://10.0.0.1/hook")
    with pytest.raises(InvalidRequest) as info:
        await exports_without_servers().submit(create_account(), private)
    assert list(problems_of(info)) == ["webhookUrl"]


async def test_a_limited_key_naming_an_unknown_resource_learns_nothing_of_the_catalog() -> None:
    account = create_account(resources=frozenset({"employees"}))
    with pytest.raises(ResourceNotAllowed) as info:
        await exports_without_servers().submit(account, {"format": "csv", "resource": "salaries"})
    assert "payroll" not in str(info.value)


async def test_an_unlimited_key_naming_an_unknown_resource_gets_a_validation_problem() -> None:
    with pytest.raises(InvalidRequest) as info:
        await exports_without_servers().submit(create_account(), {"format": "csv", "resource": "salaries"})
    assert list(problems_of(info)) == ["resource"]


@pytest.mark.parametrize(
    "body",
    [
        {"format": "csv", "resource": "employees", "columns": []},
        {"format": "csv", "resource": "employees", "webhookUrl": "https://127.0.0.1/"},
        ["employees"],
    ],
)
async def test_an_invalid_body_for_an_allowed_resource_is_refused_before_any_connection(body: Any) -> None:
    account = create_account(resources=frozenset({"employees"}))
    with pytest.raises(InvalidRequest):
        await exports_without_servers().submit(account, body)


# --- download links are checked before the database is asked ----------------------------------------

NOW = dt.datetime.now(dt.UTC)


def link_parts(url: str) -> tuple[str, str]:
    query = parse_qs(urlsplit(url).query)
    return query["expires"][0], query["signature"][0]


async def test_a_tampered_download_link_never_reaches_the_database() -> None:
    export_id = uuid.uuid4()
    expires, signature = link_parts(
        sign_download_link("http://hub", STRICT.secret_keys, export_id, NOW + dt.timedelta(hours=1))
    )
    with pytest.raises(LinkInvalid):
        await exports_without_servers().download(uuid.uuid4(), expires, signature)  # another export's signature


async def test_a_genuine_link_past_its_time_never_reaches_the_database() -> None:
    export_id = uuid.uuid4()
    expires, signature = link_parts(
        sign_download_link("http://hub", STRICT.secret_keys, export_id, NOW - dt.timedelta(seconds=1))
    )
    with pytest.raises(LinkExpired):
        await exports_without_servers().download(export_id, expires, signature)


# --- the webhook outbox row ------------------------------------------------------------------------------


class OutboxPool:
    """Stands in for the pool in record_webhook_event: webhook_store.insert_event's one fetchval."""

    def __init__(self, answer: Any = None, error: Exception | None = None) -> None:
        self.answer, self.error = answer, error
        self.inserted: list[tuple[Any, ...]] = []

    async def fetchval(self, sql: str, *args: Any) -> Any:
        assert sql.lstrip().startswith("INSERT INTO webhook_events")
        self.inserted.append(args)
        if self.error is not None:
            raise self.error
        return self.answer


async def test_an_ended_exports_webhook_event_is_recorded_and_the_dispatcher_woken() -> None:
    woken: list[None] = []
    pool = OutboxPool(answer=uuid.uuid4())
    exports = exports_without_servers(pool=pool, webhook_recorded=lambda: woken.append(None))
    job = create_job(ExportStatus.FAILED, webhook_url="https://hooks.example/x")
    await exports.record_webhook_event(job, None)
    [(event_id, account_id, export_id, event, url, body, window)] = pool.inserted
    assert (account_id, export_id, event, url) == (job.account_id, job.id, "export.failed", job.webhook_url)
    assert body == events.webhook_body(job, event_id, None)
    assert json.loads(body)["eventId"] == str(event_id)
    assert window == STRICT.webhooks.retry_window_seconds
    assert woken == [None]


async def test_an_event_already_recorded_does_not_wake_the_dispatcher() -> None:
    woken: list[None] = []
    exports = exports_without_servers(pool=OutboxPool(answer=None), webhook_recorded=lambda: woken.append(None))
    await exports.record_webhook_event(create_job(ExportStatus.CANCELLED, webhook_url="https://hooks.example/x"), None)
    assert woken == []


async def test_a_webhook_event_that_cannot_be_recorded_never_fails_the_export(
    caplog: pytest.LogCaptureFixture,
) -> None:
    woken: list[None] = []
    pool = OutboxPool(error=ConnectionResetError("database went away"))
    exports = exports_without_servers(pool=pool, webhook_recorded=lambda: woken.append(None))
    job = create_job(ExportStatus.COMPLETED, webhook_url="https://hooks.example/x")
    await exports.record_webhook_event(job, "https://hub/link")  # does not raise
    assert len(pool.inserted) == 1 and woken == []
    assert any(r.levelname == "WARNING" and str(job.id) in r.getMessage() for r in caplog.records)
