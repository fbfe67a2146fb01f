"""The console's list of exports beyond its first page, and Run again (HTMX).

    GET  /console/history?status=&resource=&format=    the list as filtered (the filter form swaps it in;
                                                       HX-Push-Url puts the filter in the address bar)
    GET  /console/history?...&before=<cursor>          the next older page: its cards, appended, and the
                                                       Older exports button again (or none, at the end)
    POST /console/exports/{id}/run-again               a finished export's request as a new export

The list's filter values and cursor come from links the console made: a value it cannot read is
refused (400, problem JSON naming the parameter). The page itself (/console) shows every export
instead, saying which value it ignored.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.di import Provide
from markupsafe import escape

from exporthub.accounts import Account
from exporthub.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    Problem,
    ResourceNotAllowed,
    TooManyActiveExports,
    TooManyExportsStarted,
)
from exporthub.exports.history import Cursor, read_history_filter
from exporthub.exports.service import Exports
from exporthub.web.console import (
    SECURITY_HEADERS,
    NotSignedIn,
    console_account,
    history_view,
    html,
    not_found,
    not_signed_in,
    render,
    render_announcement,
    started,
)
from exporthub.web.errors import problem
from exporthub.web.history_views import page_url
from exporthub.web.schemas import FieldProblem, ProblemOut


def _refused(problems: list[Problem]) -> Response[ProblemOut]:
    return problem(
        400,
        "Bad request",
        "; ".join(f"{p.field}: {p.message}" for p in problems),
        [FieldProblem(p.field, p.message) for p in problems],
    )


@get("/console/history")
async def export_history(
    request: Request[Any, Any, Any],
    account: Account,
    exports: Exports,
    status: str = "",
    resource: str = "",
    format: str = "",
    before: str = "",
) -> Response[Any]:
    filter, problems = read_history_filter(status, resource, format, (r.key for r in exports.resources(account)))
    cursor = None
    if before:
        try:
            cursor = Cursor.parse(before)
        except InvalidRequest as exc:
            problems.extend(exc.problems)
    if problems:
        return _refused(problems)
    history = await history_view(exports, account, filter, before=cursor)
    if cursor is None:  # a new filter: the whole list, and the address that shows it
        response = html(render(request, "partials/export_history.html", history=history))
        response.headers["HX-Push-Url"] = page_url(filter)
        return response
    count = len(history.cards)
    said = f"{count} older export{'s' if count != 1 else ''} shown." if count else "No older exports."
    response = html(
        render(request, "partials/export_cards.html", cards=history.cards)
        + render(request, "partials/exports_more.html", history=history, oob=True)
        + render_announcement(request, said + ("" if history.older_url else " These are the oldest."))
    )
    if history.cards:  # focus moves from the button, now gone, to the first card it brought
        response.headers["HX-Trigger-After-Settle"] = json.dumps({"exportsPaged": {"card": history.cards[0].dom_id}})
    return response


@post("/console/exports/{export_id:uuid}/run-again")
async def run_again(
    request: Request[Any, Any, Any],
    export_id: uuid.UUID,
    account: Account,
    exports: Exports,
) -> Response[str]:
    """Answers into the card's note beside the button: nothing once the new export is recorded (its card
    arrives out of band), else why not, as the form would say it (htmx swaps 422 and 429 answers too)."""
    try:
        job = (await exports.run_again(account, export_id)).job
    except (TooManyActiveExports, TooManyExportsStarted) as exc:
        refused = _note(request, str(exc), status_code=429)
        refused.headers["Retry-After"] = str(exc.retry_after)
        return refused
    except InvalidRequest as exc:  # the catalog or the account's departments changed since
        return _note(request, "It cannot run again as it was: " + "; ".join(p.message for p in exc.problems), 422)
    except ResourceNotAllowed as exc:  # made with another key of the account, allowed more
        return _note(request, f"The key you signed in with may not export {exc.resource!r}.", 422)
    except Conflict as exc:  # still running (a stale card, or a hand-made post)
        return _note(request, str(exc), 409)
    return await started(request, exports, job, "")


def _note(request: Request[Any, Any, Any], message: str, status_code: int) -> Response[str]:
    sentence = message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")
    return html(str(escape(sentence)) + render_announcement(request, sentence), status_code=status_code)


console_history_router = Router(
    path="/",
    route_handlers=[export_history, run_again],
    dependencies={"account": Provide(console_account)},
    exception_handlers={NotSignedIn: not_signed_in, NotFound: not_found},
    response_headers=SECURITY_HEADERS,
    include_in_schema=False,
)
