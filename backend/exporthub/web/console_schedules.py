"""The console's Schedules panel (HTMX), over the same domain calls as /api/v1/schedules.

    GET    /console/schedules                  the panel: new-schedule form and the account's schedules
    POST   /console/schedules                  create -> the form again + the new card (appended)
    GET    /console/schedules/{id}/card        -> the card (it asks for itself at its next run)
    POST   /console/schedules/{id}/pause       -> the card
    POST   /console/schedules/{id}/resume      -> the card
    DELETE /console/schedules/{id}             -> nothing (the card goes)

A schedule's last run shows the export it made with the export card (`partials/export_card.html`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from litestar import Request, Response, Router, delete, get, post
from litestar.di import Provide

from exporthub.accounts import Account
from exporthub.errors import Conflict, InvalidRequest, NotFound, ResourceNotAllowed
from exporthub.exports.schedules import Schedule
from exporthub.exports.service import Exports
from exporthub.web.console import (
    SECURITY_HEADERS,
    NotSignedIn,
    card_for,
    console_account,
    html,
    not_found,
    not_signed_in,
    render,
)
from exporthub.web.schedule_views import (
    ScheduleCardView,
    ScheduleFormView,
    new_schedule_form,
    schedule_card_view,
    schedule_form_from_input,
)


async def schedule_card_for(exports: Exports, account: Account, schedule: Schedule) -> ScheduleCardView:
    now = dt.datetime.now(dt.UTC)
    last = await exports.find(account, schedule.last_export_id) if schedule.last_export_id else None
    return schedule_card_view(
        schedule,
        exports.catalog.resource(schedule.resource),
        now=now,
        last_card=await card_for(exports, last, now) if last is not None else None,
    )


def render_schedule(request: Request[Any, Any, Any], card: ScheduleCardView, *, oob: str | None = None) -> str:
    return render(request, "partials/schedule_card.html", schedule=card, oob=oob)


def render_schedule_form(request: Request[Any, Any, Any], form: ScheduleFormView) -> str:
    return render(request, "partials/schedule_form.html", form=form)


@get("/console/schedules")
async def schedules_panel(request: Request[Any, Any, Any], account: Account, exports: Exports) -> Response[str]:
    cards = [await schedule_card_for(exports, account, s) for s in await exports.schedules(account)]
    form_html = render_schedule_form(request, new_schedule_form(exports.resources(account)))
    return html(render(request, "partials/schedules_panel.html", schedules=cards, form_html=form_html))


@post("/console/schedules")
async def create_schedule(request: Request[Any, Any, Any], account: Account, exports: Exports) -> Response[str]:
    values = await request.form()
    form, body = schedule_form_from_input(exports.resources(account), values)
    try:
        schedule = await exports.create_schedule(account, body)
    except InvalidRequest as exc:
        form.add_problems(exc.problems)
        return html(render_schedule_form(request, form), status_code=422)
    except (Conflict, ResourceNotAllowed) as exc:
        form.errors["form"] = [str(exc)]
        return html(render_schedule_form(request, form), status_code=422)
    card = await schedule_card_for(exports, account, schedule)
    fresh = new_schedule_form(exports.resources(account))
    fresh.time_zone = form.time_zone  # the zone just used is the likeliest next one
    return html(render_schedule_form(request, fresh) + render_schedule(request, card, oob="append"))


@get("/console/schedules/{schedule_id:uuid}/card")
async def schedule_card(
    request: Request[Any, Any, Any], schedule_id: uuid.UUID, account: Account, exports: Exports
) -> Response[str]:
    schedule = await exports.schedule(account, schedule_id)
    return html(render_schedule(request, await schedule_card_for(exports, account, schedule)))


@post("/console/schedules/{schedule_id:uuid}/pause")
async def pause_schedule(
    request: Request[Any, Any, Any], schedule_id: uuid.UUID, account: Account, exports: Exports
) -> Response[str]:
    schedule = await exports.update_schedule(account, schedule_id, {"enabled": False})
    return html(render_schedule(request, await schedule_card_for(exports, account, schedule)))


@post("/console/schedules/{schedule_id:uuid}/resume")
async def resume_schedule(
    request: Request[Any, Any, Any], schedule_id: uuid.UUID, account: Account, exports: Exports
) -> Response[str]:
    schedule = await exports.update_schedule(account, schedule_id, {"enabled": True})
    return html(render_schedule(request, await schedule_card_for(exports, account, schedule)))


@delete("/console/schedules/{schedule_id:uuid}", status_code=200)
async def delete_schedule(schedule_id: uuid.UUID, account: Account, exports: Exports) -> Response[str]:
    await exports.delete_schedule(account, schedule_id)
    return html("")


console_schedules_router = Router(
    path="/",
    route_handlers=[schedules_panel, create_schedule, schedule_card, pause_schedule, resume_schedule, delete_schedule],
    dependencies={"account": Provide(console_account)},
    exception_handlers={NotSignedIn: not_signed_in, NotFound: not_found},
    response_headers=SECURITY_HEADERS,
    include_in_schema=False,
)
