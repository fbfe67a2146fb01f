"""The export console: HTMX pages under /console, signed in with a server-side session (session.py).

    GET  /                                  -> /console
    GET  /console?status=&resource=&format= the page: new-export form and the account's exports, filtered
    GET  /console/sign-in                   paste an API key (or, with demo_sign_in, pick a demo account)
    POST /console/sign-in, /sign-in/demo    start a session; POST /console/sign-out ends it
    GET  /console/form/fields?resource=     the resource-dependent part of the form
    POST /console/exports                   submit (the API's one submit path) -> form + new card
    GET  /console/history?...&before=       the list, filtered, or its next older page (console_history.py)
    POST /console/exports/{id}/run-again    a finished export's request as a new export (console_history.py)
    POST /console/exports/{id}/cancel       -> the card
    GET  /console/exports/{id}/card         -> the card (polling fallback; 286 once it is finished)
    WS   /console/ws                        snapshot of the cards, then each change (console_live.py)
    ...  /console/schedules...              the Schedules panel, loaded into the page (console_schedules.py)

Every card, wherever it is rendered, comes from `partials/export_card.html` via `render_card`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
from litestar import MediaType, Request, Response, Router, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import ResponseHeader
from litestar.di import Provide
from litestar.exceptions import NotFoundException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from exporthub.accounts import Account, account_for_key, demo_accounts
from exporthub.catalog import Catalog
from exporthub.errors import (
    ConfigError,
    Conflict,
    InvalidRequest,
    NotFound,
    ResourceNotAllowed,
    TooManyActiveExports,
    TooManyExportsStarted,
)
from exporthub.exports.history import Cursor, HistoryFilter, read_history_filter
from exporthub.exports.models import ExportJob, ExportStatus
from exporthub.exports.service import Exports
from exporthub.settings import PROJECT_ROOT, Settings
from exporthub.web import session
from exporthub.web.console_views import (
    STATUS_LABELS,
    CardView,
    Department,
    FormView,
    card_view,
    departments_from,
    form_from_input,
    new_form,
)
from exporthub.web.history_views import HistoryView, ignored_notes, older_url

log = logging.getLogger(__name__)

FRONTEND_DIR = PROJECT_ROOT / "frontend"
STATIC_DIR = PROJECT_ROOT / "static"

RECENT_EXPORTS = 20
SIGN_IN_PATH = "/console/sign-in"
HTMX_STOP_POLLING = 286


class NotSignedIn(Exception):
    """Raised by the console's account dependency; answered with a redirect to the sign-in page."""


def not_signed_in(request: Request[Any, Any, Any], _: NotSignedIn) -> Response[Any]:
    if request.headers.get("hx-request") == "true":
        return Response(None, status_code=204, headers={"HX-Redirect": SIGN_IN_PATH})
    return Redirect(SIGN_IN_PATH, status_code=303)


async def console_account(request: Request[Any, Any, Any], pool: asyncpg.Pool, settings: Settings) -> Account:
    account = await session.session_account(request, pool, settings)
    if account is None:
        raise NotSignedIn()
    return account


# --- rendering ---------------------------------------------------------------------------------------


def render(connection: ASGIConnection[Any, Any, Any, Any], name: str, **context: Any) -> str:
    engine = connection.app.template_engine
    assert engine is not None, "create_app configures the template engine"
    return engine.engine.get_template(name).render(**context)


def html(content: str, status_code: int = 200) -> Response[str]:
    return Response(content, media_type=MediaType.HTML, status_code=status_code)


async def cards_for(exports: Exports, jobs: Sequence[ExportJob], now: dt.datetime | None = None) -> list[CardView]:
    """The cards of a list of exports; their download counts come in one query."""
    now = now or dt.datetime.now(dt.UTC)
    downloads = await exports.download_summaries(jobs)
    return [
        card_view(
            job,
            exports.catalog.resource(job.resource),
            now=now,
            queue_position=await exports.queue_position(job),
            download_url=await exports.link(job),
            downloads=downloads.get(job.id),
        )
        for job in jobs
    ]


async def card_for(exports: Exports, job: ExportJob, now: dt.datetime | None = None) -> CardView:
    (card,) = await cards_for(exports, [job], now)
    return card


def render_card(
    connection: ASGIConnection[Any, Any, Any, Any], card: CardView, *, oob: str | None = None, origin: str = ""
) -> str:
    """The card; `oob="replace"` swaps it by id, `oob="prepend"` inserts it at the top of #exports."""
    return render(connection, "partials/export_card.html", card=card, oob=oob, origin=origin)


def render_announcement(connection: ASGIConnection[Any, Any, Any, Any], text: str) -> str:
    return render(connection, "partials/announcement.html", text=text)


def announcement_for(job: ExportJob, catalog: Catalog) -> str:
    name = f"{catalog.label_of(job.resource)} export"
    fmt = job.format.value.upper()
    if job.status is ExportStatus.COMPLETED:
        return f"{name} ({fmt}) is ready to download."
    if job.status is ExportStatus.FAILED:
        return f"{name} ({fmt}) failed: {job.error_message or 'please try again'}"
    return f"{name} ({fmt}): {STATUS_LABELS[job.status].lower()}."


async def departments_of(exports: Exports, account: Account, form: FormView) -> list[Department]:
    """The department filter's choices, when the form's resource has that filter."""
    if form.resource.department_sql is None:
        return []
    return departments_from(await exports.departments(account))


async def render_form(request: Request[Any, Any, Any], exports: Exports, account: Account, form: FormView) -> str:
    departments = await departments_of(exports, account, form)
    return render(request, "partials/export_form.html", form=form, departments=departments)


async def started(request: Request[Any, Any, Any], exports: Exports, job: ExportJob, content: str) -> Response[str]:
    """The answer to a new export (the form's, or Run again's): `content`, the card at the top of the list
    whatever its filters, and a word for screen readers; console.js then scrolls to the card and focuses it."""
    card = await card_for(exports, job)
    response = html(
        content
        + render_card(request, card, oob="prepend", origin="submit")
        + render_announcement(
            request, f"{announcement_for(job, exports.catalog)[:-1]}; it appears at the top of your exports."
        )
    )
    response.headers["HX-Trigger-After-Settle"] = json.dumps({"exportStarted": {"card": card.dom_id}})
    return response


# --- sign-in -----------------------------------------------------------------------------------------


async def _sign_in_page(pool: asyncpg.Pool, settings: Settings, *, error: str = "", status_code: int = 200) -> Template:
    return Template(
        template_name="pages/sign_in.html",
        media_type=MediaType.HTML,
        context={"error": error, "demo_accounts": await demo_accounts(pool) if settings.web.demo_sign_in else ()},
        status_code=status_code,
    )


@get("/console/sign-in", name="console:sign-in")
async def sign_in_page(request: Request[Any, Any, Any], pool: asyncpg.Pool, settings: Settings) -> Any:
    if await session.session_account(request, pool, settings) is not None:
        return Redirect("/console", status_code=303)
    return await _sign_in_page(pool, settings)


@post("/console/sign-in", status_code=303)
async def sign_in_with_key(request: Request[Any, Any, Any], pool: asyncpg.Pool, settings: Settings) -> Any:
    form = await request.form()
    key = str(form.get("api_key") or "").strip()
    account = await account_for_key(pool, key) if key else None
    cookie = await session.sign_in(pool, settings, account) if account is not None else None
    if cookie is None:
        message = "Paste an API key." if not key else "That API key is unknown or has been revoked."
        return await _sign_in_page(pool, settings, error=message, status_code=401)
    return Redirect("/console", status_code=303, cookies=[cookie])


@post("/console/sign-in/demo", status_code=303)
async def sign_in_demo(request: Request[Any, Any, Any], pool: asyncpg.Pool, settings: Settings) -> Any:
    # Two locks: `demo_sign_in` is set only by `exporthub dev` (settings.py), and only accounts the seeder
    # flagged `is_demo` qualify, so a real account is never one click away, even on a dev server.
    if not settings.web.demo_sign_in:
        raise NotFoundException()
    form = await request.form()
    slug = str(form.get("account") or "")
    account = next((a for a in await demo_accounts(pool) if a.slug == slug), None)
    cookie = await session.sign_in(pool, settings, account) if account is not None else None
    if cookie is None:
        return await _sign_in_page(
            pool, settings, error="That demo account does not exist here, or is disabled.", status_code=400
        )
    return Redirect("/console", status_code=303, cookies=[cookie])


@post("/console/sign-out", status_code=303)
async def sign_out(request: Request[Any, Any, Any], pool: asyncpg.Pool, settings: Settings) -> Redirect:
    cookie = await session.sign_out(request, pool, settings)
    return Redirect(SIGN_IN_PATH, status_code=303, cookies=[cookie])


@get("/", include_in_schema=False)
async def root() -> Redirect:
    return Redirect("/console", status_code=303)


# --- the console -------------------------------------------------------------------------------------


@get("/console", name="console:index")
async def console_page(
    request: Request[Any, Any, Any],
    account: Account,
    exports: Exports,
    status: str = "",
    resource: str = "",
    format: str = "",
) -> Template:
    # An address that names no status (say) shows every export, and says so: the page never refuses to open.
    resources = exports.resources(account)
    filter, problems = read_history_filter(status, resource, format, (r.key for r in resources))
    return Template(
        template_name="pages/console.html",
        media_type=MediaType.HTML,
        context={
            "account": account,
            "history": await history_view(exports, account, filter, notes=ignored_notes(problems)),
            "form_html": await render_form(request, exports, account, new_form(resources)),
        },
    )


async def history_view(
    exports: Exports,
    account: Account,
    filter: HistoryFilter,
    *,
    before: Cursor | None = None,
    notes: list[str] | None = None,
) -> HistoryView:
    """One page of the account's exports as cards, with the address of the next, older page."""
    page = await exports.history(account, filter, before=before)
    now = dt.datetime.now(dt.UTC)
    return HistoryView(
        filter=filter,
        cards=await cards_for(exports, page.jobs, now),
        older_url=older_url(filter, page.older) if page.older else None,
        resources=exports.resources(account),
        notes=notes or [],
    )


@get("/console/form/fields")
async def form_fields(
    request: Request[Any, Any, Any],
    account: Account,
    exports: Exports,
    resource: str = "",
    date_from: str = "",
    date_to: str = "",
) -> Response[str]:
    form = new_form(exports.resources(account), resource, date_from=date_from, date_to=date_to)
    departments = await departments_of(exports, account, form)
    return html(render(request, "partials/resource_fields.html", form=form, departments=departments))


@post("/console/exports")
async def submit_export(
    request: Request[Any, Any, Any],
    account: Account,
    exports: Exports,
) -> Response[str]:
    values = await request.form()
    form, body = form_from_input(exports.resources(account), values, lambda name: values.getall(name, []))
    try:
        job = (await exports.submit(account, body)).job
    except InvalidRequest as exc:
        form.add_problems(exc.problems)
        return html(await render_form(request, exports, account, form), status_code=422)
    except (TooManyActiveExports, TooManyExportsStarted) as exc:
        form.errors["start"] = [str(exc)[:1].upper() + str(exc)[1:] + "."]
        refused = html(await render_form(request, exports, account, form), status_code=429)
        refused.headers["Retry-After"] = str(exc.retry_after)
        return refused
    except ResourceNotAllowed as exc:  # a stale page, or a hand-made post: the form offers only allowed ones
        form.errors["resource"] = [f"The key you signed in with may not export {exc.resource!r}."]
        return html(await render_form(request, exports, account, form), status_code=403)
    form.errors.clear()
    return await started(request, exports, job, await render_form(request, exports, account, form))


@post("/console/exports/{export_id:uuid}/cancel")
async def cancel_export(
    request: Request[Any, Any, Any],
    export_id: uuid.UUID,
    account: Account,
    exports: Exports,
) -> Response[str]:
    try:
        job = await exports.cancel(account, export_id)
    except Conflict:  # finished meanwhile: show how it ended
        job = await exports.get(account, export_id)
    return html(render_card(request, await card_for(exports, job)))


@get("/console/exports/{export_id:uuid}/card")
async def export_card(
    request: Request[Any, Any, Any],
    export_id: uuid.UUID,
    account: Account,
    exports: Exports,
) -> Response[str]:
    job = await exports.get(account, export_id)
    # 286 tells htmx to stop polling this card once its export has finished.
    return html(
        render_card(request, await card_for(exports, job)),
        status_code=200 if job.status.is_active else HTMX_STOP_POLLING,
    )


# --- realtime ----------------------------------------------------------------------------------------


def not_found(request: Request[Any, Any, Any], exc: NotFound) -> Response[str]:
    return html(render(request, "pages/not_found.html", message=str(exc)), status_code=404)


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    if not FRONTEND_DIR.is_dir():
        raise ConfigError("frontend", f"templates not found at {FRONTEND_DIR}; run from a source checkout")
    return TemplateConfig(directory=FRONTEND_DIR, engine=JinjaTemplateEngine)


def static_files_router() -> Router:
    return create_static_files_router(path="/static", directories=[STATIC_DIR], name="static")


# The console's pages load nothing from elsewhere and are never framed.
SECURITY_HEADERS = [
    ResponseHeader(
        name="Content-Security-Policy",
        value="default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="Referrer-Policy", value="same-origin"),
]

console_router = Router(
    path="/",
    route_handlers=[
        root,
        sign_in_page,
        sign_in_with_key,
        sign_in_demo,
        sign_out,
        console_page,
        form_fields,
        submit_export,
        cancel_export,
        export_card,
    ],
    dependencies={"account": Provide(console_account)},
    exception_handlers={NotSignedIn: not_signed_in, NotFound: not_found},
    response_headers=SECURITY_HEADERS,
    include_in_schema=False,
)
