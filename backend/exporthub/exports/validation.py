"""Turn a decoded JSON body into an ExportRequest, naming every field at fault at once."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

from exporthub.catalog import Catalog, Resource
from exporthub.errors import InvalidRequest, Problem
from exporthub.exports.models import ExportFormat, ExportRequest, Filters

_TOP_FIELDS = {"format", "resource", "filters", "columns", "webhookUrl", "csvBom"}
_FILTER_FIELDS = {"dateFrom", "dateTo", "departmentIds", "status"}
MAX_DEPARTMENT_IDS = 500
MAX_DEPARTMENT_ID_LENGTH = 200
MAX_URL_LENGTH = 2048


def _choices(values: Any) -> str:
    return ", ".join(str(v) for v in values)


def parse_export_request(body: Any, catalog: Catalog, *, default_csv_bom: bool = True) -> ExportRequest:
    problems: list[Problem] = []

    def bad(field: str, message: str) -> None:
        problems.append(Problem(field, message))

    if not isinstance(body, dict):
        raise InvalidRequest([Problem("body", "expected a JSON object")])
    for key in sorted(set(body) - _TOP_FIELDS):
        bad(key, f"unknown field; allowed: {_choices(sorted(_TOP_FIELDS))}")

    fmt = body.get("format")
    export_format: ExportFormat | None = None
    if fmt is None:
        bad("format", f"required; one of {_choices(f.value for f in ExportFormat)}")
    elif not isinstance(fmt, str) or fmt not in ExportFormat._value2member_map_:
        bad("format", f"unknown format {fmt!r}; one of {_choices(f.value for f in ExportFormat)}")
    else:
        export_format = ExportFormat(fmt)

    res_key = body.get("resource")
    resource = catalog.resource(res_key)
    if res_key is None:
        bad("resource", f"required; one of {_choices(catalog.resources)}")
    elif resource is None:
        bad("resource", f"unknown resource {res_key!r}; one of {_choices(catalog.resources)}")

    columns: tuple[str, ...] = resource.default_columns if resource else ()
    raw_columns = body.get("columns")
    if raw_columns is not None:
        if not isinstance(raw_columns, list) or not all(isinstance(c, str) for c in raw_columns):
            bad("columns", "expected a list of column keys (strings)")
        elif not raw_columns:
            bad("columns", "choose at least one column, or leave the field out for the defaults")
        elif len(set(raw_columns)) != len(raw_columns):
            bad("columns", "a column is listed twice")
        elif resource is not None:
            unknown = [c for c in raw_columns if resource.column(c) is None]
            if unknown:
                bad(
                    "columns",
                    f"unknown column(s) {_choices(unknown)} for {resource.key}; "
                    f"available: {_choices(c.key for c in resource.columns)}",
                )
            columns = tuple(raw_columns)

    filters = Filters()
    raw_filters = body.get("filters")
    if raw_filters is not None:
        if not isinstance(raw_filters, dict):
            bad("filters", "expected an object")
        else:
            filters = _parse_filters(raw_filters, resource, bad)

    webhook_url = body.get("webhookUrl")
    if webhook_url is not None and not _valid_url(webhook_url):
        bad("webhookUrl", "expected an absolute http:// or https:// URL")
        webhook_url = None

    csv_bom = body.get("csvBom", default_csv_bom)
    if not isinstance(csv_bom, bool):
        bad("csvBom", "expected true or false")

    if problems or export_format is None or resource is None:
        raise InvalidRequest(problems)
    return ExportRequest(
        resource=resource.key,
        format=export_format,
        columns=columns,
        filters=filters,
        webhook_url=webhook_url,
        csv_bom=bool(csv_bom),
    )


def _offered(resource: Resource | None) -> dict[str, bool]:
    """The filters a resource has; all of them while the resource is unknown (its own problem)."""
    if resource is None:
        return dict.fromkeys(_FILTER_FIELDS, True)
    has_date = resource.date_sql is not None
    return {
        "dateFrom": has_date,
        "dateTo": has_date,
        "departmentIds": resource.department_sql is not None,
        "status": resource.status_sql is not None,
    }


def _parse_filters(raw: dict[str, Any], resource: Resource | None, bad: Any) -> Filters:
    for key in sorted(set(raw) - _FILTER_FIELDS):
        bad(f"filters.{key}", f"unknown filter; allowed: {_choices(sorted(_FILTER_FIELDS))}")
    offered = _offered(resource)
    for key in sorted(k for k in _FILTER_FIELDS if k in raw and raw[k] is not None and not offered[k]):
        has = [k for k, yes in offered.items() if yes]
        bad(
            f"filters.{key}",
            f"{resource.key if resource else 'this resource'} has no such filter; "
            + (f"it offers: {_choices(has)}" if has else "it offers none"),
        )
    raw = {k: v for k, v in raw.items() if offered.get(k)}
    dates: dict[str, dt.date | None] = {}
    for key in ("dateFrom", "dateTo"):
        value = raw.get(key)
        dates[key] = None
        if value is None:
            continue
        try:
            if not isinstance(value, str) or len(value) != 10:
                raise ValueError
            dates[key] = dt.date.fromisoformat(value)
        except ValueError:
            bad(f"filters.{key}", f"expected a date as YYYY-MM-DD, got {value!r}")
    if dates["dateFrom"] and dates["dateTo"] and dates["dateFrom"] > dates["dateTo"]:
        bad("filters.dateFrom", "must not be after filters.dateTo")

    department_ids: list[str] = []
    raw_ids = raw.get("departmentIds")
    if raw_ids is not None:
        if not isinstance(raw_ids, list):
            bad("filters.departmentIds", "expected a list of department ids (strings)")
        elif len(raw_ids) > MAX_DEPARTMENT_IDS:
            bad("filters.departmentIds", f"at most {MAX_DEPARTMENT_IDS} departments")
        else:
            for i, value in enumerate(raw_ids):
                if isinstance(value, str) and 0 < len(value) <= MAX_DEPARTMENT_ID_LENGTH:
                    department_ids.append(value)
                else:
                    bad(f"filters.departmentIds[{i}]", f"expected a department id (a non-empty string), got {value!r}")

    status = raw.get("status")
    if status is not None and resource is not None and status not in resource.statuses:
        bad(
            "filters.status",
            f"{status!r} is not a status of {resource.key}; one of {_choices(resource.statuses)}",
        )
        status = None
    return Filters(
        date_from=dates["dateFrom"],
        date_to=dates["dateTo"],
        department_ids=tuple(dict.fromkeys(department_ids)),
        status=status,
    )


def _valid_url(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > MAX_URL_LENGTH:
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and _valid_host(parts.hostname or "")


def _valid_host(host: str) -> bool:
    """Whether DNS could look the host up: IDNA-encodable, no empty label, none over 63 characters
    (`socket.getaddrinfo` raises UnicodeError, not OSError, for such names)."""
    try:
        host.encode("idna")
    except UnicodeError:
        return False
    return True
