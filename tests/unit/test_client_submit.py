"""`exporthub export`'s submit: a 429 is waited out as its Retry-After says, a bounded number of times."""

from __future__ import annotations

import httpx
import pytest

from exporthub.client import MAX_RETRY_WAIT_SECONDS, submit

BODY = {"resource": "payroll", "format": "csv"}
ACCEPTED = httpx.Response(202, json={"exportId": "e1", "status": "queued", "pollUrl": "…"})


def too_many(
    retry_after: str | None, detail: str = "this account may start at most 10 exports per minute"
) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return httpx.Response(429, headers=headers, json={"title": "Too many exports started", "detail": detail})


def client_answering(*answers: httpx.Response) -> tuple[httpx.Client, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return queue.pop(0)

    return httpx.Client(base_url="http://hub.example", transport=httpx.MockTransport(handler)), seen


def test_a_429_is_waited_out_and_tried_again(capsys: pytest.CaptureFixture[str]) -> None:
    client, seen = client_answering(too_many("12"), too_many("3"), ACCEPTED)
    slept: list[float] = []
    response = submit(client, BODY, retries=5, sleep=slept.append)
    assert response.status_code == 202
    assert slept == [12, 3]
    assert len(seen) == 3 and all(r.method == "POST" and r.url.path == "/api/v1/exports" for r in seen)
    err = capsys.readouterr().err
    assert "HTTP 429: this account may start at most 10 exports per minute" in err
    assert "waiting 12 s before trying again (retry 1 of 5)" in err
    assert "waiting 3 s before trying again (retry 2 of 5)" in err


def test_the_retries_are_bounded_and_the_last_answer_is_returned() -> None:
    client, seen = client_answering(*(too_many("1") for _ in range(4)))
    slept: list[float] = []
    response = submit(client, BODY, retries=3, sleep=slept.append)
    assert response.status_code == 429
    assert len(seen) == 4 and slept == [1, 1, 1]


@pytest.mark.parametrize("retry_after", [None, "soon", str(MAX_RETRY_WAIT_SECONDS + 1)])
def test_a_429_without_a_usable_wait_is_not_tried_again(retry_after: str | None) -> None:
    client, seen = client_answering(too_many(retry_after))
    slept: list[float] = []
    assert submit(client, BODY, retries=5, sleep=slept.append).status_code == 429
    assert len(seen) == 1 and slept == []


def test_other_refusals_are_not_tried_again() -> None:
    client, seen = client_answering(httpx.Response(422, headers={"Retry-After": "1"}, json={"detail": "bad"}))
    assert submit(client, BODY, retries=5, sleep=lambda _: None).status_code == 422
    assert len(seen) == 1


def test_no_retries_means_the_first_answer() -> None:
    client, seen = client_answering(too_many("1"))
    assert submit(client, BODY, retries=0, sleep=lambda _: None).status_code == 429
    assert len(seen) == 1
