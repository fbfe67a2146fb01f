"""Fuzzing the running hub: whatever comes in, nothing answers 5xx.

Every REST operation of the hub's own OpenAPI schema gets generated requests, valid and invalid by the
schema (schemathesis), sent with a valid API key; then the pages and the API get hostile cookies,
headers and query strings (Hypothesis). Derandomised generation and a small, fixed number of examples keep the
file reproducible and under a minute; `pytest -s` shows a summary.
"""

from __future__ import annotations

import collections
import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import quote

import asyncpg
import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.conftest import Hub
from tests.harness import wait_for

EXAMPLES_PER_MODE = 12  # per operation, once with schema-valid and once with schema-invalid input
HOSTILE_EXAMPLES = 60
FUZZ = settings(
    max_examples=EXAMPLES_PER_MODE,
    deadline=None,
    derandomize=True,  # the same examples on every run
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@dataclasses.dataclass
class Tally:
    operations: set[str] = dataclasses.field(default_factory=set)
    statuses: collections.Counter[int] = dataclasses.field(default_factory=collections.Counter)
    server_errors: list[str] = dataclasses.field(default_factory=list)

    def record(self, what: str, status: int, detail: str) -> None:
        self.operations.add(what)
        self.statuses[status] += 1
        if status >= 500:
            self.server_errors.append(f"{what} -> {status}: {detail[:300]}")

    def summary(self) -> str:
        examples = sum(self.statuses.values())
        hostile = sum(1 for o in self.operations if o.startswith("hostile "))
        by_status = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses.items()))
        return (
            f"fuzz: {len(self.operations) - hostile} REST operations from the schema + {hostile} paths with"
            f" hostile cookies/headers/query strings, {examples} examples, {len(self.server_errors)} 5xx"
            f" (statuses {by_status})"
        )


@pytest.fixture(scope="module")
def tally() -> Iterator[Tally]:
    t = Tally()
    yield t
    print("\n" + t.summary())


@pytest.fixture
async def no_exports_after(pool: asyncpg.Pool, clean_jobs: None) -> AsyncIterator[None]:
    """Generated valid submits start real exports: stop them (a deleted job loses its lease)."""
    yield
    await pool.execute("DELETE FROM export_jobs")


def test_every_rest_operation_survives_generated_input(hub: Hub, no_exports_after: None, tally: Tally) -> None:
    schema = schemathesis.openapi.from_url(f"{hub.base_url}/schema/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10, [op.label for op in operations]
    assert "GET /api/v1/exports/{export_id}/downloads" in {op.label for op in operations}
    session = requests.Session()
    auth = {"Authorization": f"Bearer {hub.keys['acme']}"}
    before = sum(tally.statuses.values())
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @FUZZ
            # The key as a fixed header: otherwise invalid input means mostly an invalid key (a 401
            # before any other check); bad keys are the hostile test's below.
            @given(case=operation.as_strategy(generation_mode=mode, headers=auth))
            def run(case: schemathesis.Case) -> None:
                response = case.call(base_url=hub.base_url, session=session, timeout=15)
                detail = f"{case.method} {case.formatted_path} {response.text}"
                tally.record(case.operation.label, response.status_code, detail)

            try:
                run()
            except Unsatisfiable:  # an operation that takes no input has no invalid input either
                assert mode is GenerationMode.NEGATIVE, operation.label
    assert sum(tally.statuses.values()) - before >= len(operations) * 2  # every operation was called
    assert tally.server_errors == []


def test_the_download_audit_pages_of_a_real_export_survive_generated_paging(
    hub: Hub, no_exports_after: None, tally: Tally
) -> None:
    """The listing's limit and cursor, generated for an export that exists and has records (a random id
    stops at 404 before the page is read)."""
    with httpx.Client(base_url=hub.base_url, headers={"Authorization": f"Bearer {hub.keys['acme']}"}) as api:
        created = api.post("/api/v1/exports", json={"format": "csv", "resource": "compliance", "columns": ["recordId"]})
        export_id = created.json()["exportId"]
        status = wait_for(
            lambda: (body := api.get(f"/api/v1/exports/{export_id}").json())["status"] == "completed" and body,
            60,
            "the export to complete",
        )
        for _ in range(3):
            assert api.get(status["downloadUrl"]).status_code == 200
    schema = schemathesis.openapi.from_url(f"{hub.base_url}/schema/openapi.json")
    operation = schema["/api/v1/exports/{export_id}/downloads"]["GET"]
    session = requests.Session()
    auth = {"Authorization": f"Bearer {hub.keys['acme']}"}
    statuses: collections.Counter[int] = collections.Counter()
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @FUZZ
        @given(case=operation.as_strategy(generation_mode=mode, headers=auth, path_parameters={"export_id": export_id}))
        def run(case: schemathesis.Case) -> None:
            response = case.call(base_url=hub.base_url, session=session, timeout=15)
            statuses[response.status_code] += 1
            tally.record(f"{case.operation.label} (an export with records)", response.status_code, response.text)
            if response.status_code == 200:
                body = response.json()
                assert len(body["items"]) <= int(case.query.get("limit", 20) if case.query else 20)

        run()
    assert statuses[200] > 0 and statuses[400] > 0, statuses
    assert tally.server_errors == []


_HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=300)
_PATHS = [
    "/console",
    "/console/sign-in",
    "/api/v1/exports",
    "/api/v1/resources",
    f"/api/v1/exports/{uuid.uuid4()}",
    f"/api/v1/exports/{uuid.uuid4()}/download",
    f"/api/v1/exports/{uuid.uuid4()}/downloads",
    "/api/v1/webhook-secret",
    "/healthz",
    "/schema",
]
_COOKIE_NAMES = st.sampled_from(["exporthub_session", "exporthub_csrf", "exporthub_session-0", "x"])


@st.composite
def hostile_requests(draw: st.DrawFn, key: str) -> tuple[str, str, list[tuple[bytes, bytes]]]:
    path = draw(st.sampled_from(_PATHS))
    query = draw(
        st.one_of(
            st.text(max_size=200),  # anything, percent-encoded by the client
            st.lists(
                st.tuples(
                    st.sampled_from(["limit", "status", "expires", "signature", "apiKey", "next", "cursor"]),
                    st.one_of(st.text(max_size=50), st.sampled_from(["%C3%A9", "%FF", "%00", "-1", "1e309", "9" * 40])),
                ),
                max_size=5,
            ).map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs)),
        )
    )
    headers: list[tuple[bytes, bytes]] = []
    for _ in range(draw(st.integers(0, 3))):
        name = draw(_COOKIE_NAMES)
        value = draw(st.one_of(_HEADER_TEXT, st.binary(max_size=200).map(lambda b: b.hex())))
        headers.append((b"cookie", f"{name}={value}".encode("latin-1")))
    authorization = draw(st.one_of(st.none(), st.just(f"Bearer {key}"), _HEADER_TEXT))
    if authorization is not None:
        headers.append((b"authorization", authorization.encode("latin-1")))
    for name in draw(st.lists(st.sampled_from(["accept", "content-type", "hx-request", "origin", "x-csrftoken"]))):
        headers.append((name.encode(), draw(_HEADER_TEXT).encode("latin-1")))
    return path, query, headers


def test_hostile_cookies_headers_and_query_strings(hub: Hub, tally: Tally) -> None:
    with httpx.Client(base_url=hub.base_url, timeout=15) as client:

        @settings(
            max_examples=HOSTILE_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(request=hostile_requests(hub.keys["acme"]))
        def run(request: tuple[str, str, list[tuple[bytes, bytes]]]) -> None:
            path, query, headers = request
            # Percent-encoded as a client would, but "%", "=" and "&" kept: "%FF" and "%00" arrive raw.
            url = httpx.URL(path, query=quote(query, safe="%=&", errors="surrogatepass").encode())
            try:
                response = client.get(url, headers=headers)
            except httpx.LocalProtocolError:  # a header our own client will not send (leading space...)
                return
            except httpx.RemoteProtocolError:  # refused by the HTTP layer before any handler: not a 5xx
                tally.record(f"hostile GET {path}", 400, "")
                return
            tally.record(f"hostile GET {path}", response.status_code, f"{url} {headers} {response.text}")

        run()
    assert tally.server_errors == []
