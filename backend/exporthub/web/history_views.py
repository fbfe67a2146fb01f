"""What the console's list of exports shows (`partials/export_history.html`): its filters, its cards
and the link to the next, older page. The filter lives in the URL: /console?status=&resource=&format=."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from urllib.parse import urlencode

from exporthub.catalog import Resource
from exporthub.errors import Problem
from exporthub.exports.history import Cursor, HistoryFilter
from exporthub.exports.models import ExportFormat, ExportStatus
from exporthub.web.console_views import FORMAT_LABELS, STATUS_LABELS, CardView

HISTORY_PATH = "/console/history"


def page_url(filter: HistoryFilter) -> str:
    """The console page showing this filter: what the address bar says, so a reload keeps it."""
    params = filter.params()
    return "/console?" + urlencode(params) if params else "/console"


def older_url(filter: HistoryFilter, before: Cursor) -> str:
    return HISTORY_PATH + "?" + urlencode({**filter.params(), "before": str(before)})


def ignored_notes(problems: Sequence[Problem]) -> list[str]:
    """The page shows every export instead of refusing an address it cannot read: say which value it ignored."""
    return [f"{p.message[:1].upper()}{p.message[1:]}: showing any {p.field}." for p in problems]


@dataclasses.dataclass(frozen=True, slots=True)
class HistoryView:
    filter: HistoryFilter
    cards: list[CardView]
    older_url: str | None  # None: no older exports
    resources: list[Resource]  # the filter's choices: those the signed-in key may export
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def filtered(self) -> bool:
        return bool(self.filter.params())

    @property
    def statuses(self) -> list[tuple[str, str]]:
        return [(s.value, STATUS_LABELS[s]) for s in ExportStatus]

    @property
    def formats(self) -> list[tuple[str, str]]:
        return [(f.value, FORMAT_LABELS.get(f.value, f.value.upper())) for f in ExportFormat]
