"""One table from errors to HTTP answers: problem JSON naming the fields at fault."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from exporthub.errors import (
    Conflict,
    ExportHubError,
    InvalidRequest,
    LinkExpired,
    LinkInvalid,
    NotFound,
    Problem,
    ResourceNotAllowed,
    TooManyActiveExports,
    TooManyExportsStarted,
)
from exporthub.exports.validation import shape_problem
from exporthub.web.rate_limit import QUOTA_EXCEEDED, refusal_headers
from exporthub.web.schemas import FieldProblem, ProblemOut, QuotaExceededOut

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

_STATUS: dict[type[ExportHubError], tuple[int, str]] = {
    InvalidRequest: (422, "The request has invalid fields"),
    NotFound: (404, "Not found"),
    ResourceNotAllowed: (403, "Resource not allowed for this API key"),
    Conflict: (409, "Conflict"),
    TooManyActiveExports: (429, "Too many active exports"),
    TooManyExportsStarted: (429, "Too many exports started"),
    LinkInvalid: (403, "Invalid download link"),
    LinkExpired: (410, "Download link expired"),
}


def problem(
    status: int,
    title: str,
    detail: str,
    errors: list[FieldProblem] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[ProblemOut]:
    return Response(
        ProblemOut(title=title, status=status, detail=detail, errors=errors or []),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def domain_error_handler(_: Request[Any, Any, Any], exc: ExportHubError) -> Response[ProblemOut]:
    status, title = next(
        (v for k, v in _STATUS.items() if isinstance(exc, k)),
        (500, "Internal error"),
    )
    if status == 500:
        log.error("unmapped domain error: %r", exc)
        return problem(500, title, "something went wrong on our side; please try again")
    if isinstance(exc, TooManyExportsStarted):
        body = QuotaExceededOut(
            title=title,
            status=status,
            detail=str(exc),
            type=QUOTA_EXCEEDED,
            violated_policies=[exc.policy],
            retry_after=exc.retry_after,
        )
        return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=refusal_headers(exc))
    errors = [FieldProblem(p.field, p.message) for p in exc.problems] if isinstance(exc, InvalidRequest) else []
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyActiveExports) else None
    return problem(status, title, str(exc), errors, headers)


def validation_error_handler(request: Request[Any, Any, Any], exc: ValidationException) -> Response[ProblemOut]:
    """Litestar's check of a typed body answers as the domain's does (InvalidRequest: 422, the field in
    our names, in words); a bad query parameter or header alone stays a 400."""
    items = [i for i in exc.extra if isinstance(i, dict)] if isinstance(exc.extra, list) else []
    if not any(i.get("source") == "body" for i in items):
        return http_error_handler(request, exc)
    data = request.route_handler.parsed_data_field
    root = data.annotation if data is not None else None
    problems = [
        shape_problem(str(i.get("message", "")), "" if i.get("key") == "data" else str(i.get("key", "")), root)
        if i.get("source") == "body"
        else Problem(str(i.get("key") or "request"), str(i.get("message", "invalid")))
        for i in items
    ]
    return domain_error_handler(request, InvalidRequest(problems))


def http_error_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ProblemOut]:
    if exc.status_code >= 500:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return problem(exc.status_code, "Internal error", "something went wrong on our side; please try again")
    errors: list[FieldProblem] = []
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        for item in exc.extra:
            if isinstance(item, dict):
                errors.append(
                    FieldProblem(
                        str(item.get("key") or item.get("source") or "request"),
                        str(item.get("message", "invalid")),
                    )
                )
    titles = {
        400: "Bad request",
        401: "Unauthorized",
        404: "Not found",
        405: "Method not allowed",
        413: "Request body too large",
        415: "Unsupported media type",
    }
    return problem(
        exc.status_code,
        titles.get(exc.status_code, "Error"),
        exc.detail,
        errors,
        headers=dict(exc.headers) if exc.headers else None,
    )


def unexpected_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[ProblemOut]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "Internal error", "something went wrong on our side; please try again")


EXCEPTION_HANDLERS: dict[int | type[Exception], Any] = {
    ExportHubError: domain_error_handler,
    ValidationException: validation_error_handler,
    HTTPException: http_error_handler,
    Exception: unexpected_error_handler,
}
