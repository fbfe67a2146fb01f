"""An export request: its shape (ExportRequestIn, a msgspec Struct that Litestar also validates the API
body with and describes in OpenAPI), then what the catalog decides, naming every field at fault at once.

The Struct is the one statement of types, required fields, lengths and unknown fields; `shape_problem`
puts msgspec's report of a shape fault in our field names and in words, for the API and the console
alike. msgspec stops at the first shape fault; the catalog's checks then name every field at fault.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import zoneinfo
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec
from msgspec import Meta

from exporthub.catalog import Catalog, Resource
from exporthub.errors import InvalidRequest, Problem
from exporthub.exports.models import ExportFormat, ExportRequest, Filters
from exporthub.zones import DEFAULT_ZONE, MAX_ZONE_LENGTH, zone_named

MAX_DEPARTMENT_IDS = 500
MAX_DEPARTMENT_ID_LENGTH = 200
MAX_KEY_LENGTH = 200  # resource, column and status names: far over any catalog's, a bound on what we echo back
MAX_URL_LENGTH = 2048

_Key = Annotated[str, Meta(max_length=MAX_KEY_LENGTH)]
_DepartmentId = Annotated[str, Meta(min_length=1, max_length=MAX_DEPARTMENT_ID_LENGTH)]
# msgspec takes no union of date and datetime (both are strings in JSON): a string, read by `_moment_or_day`.
_DATE_WORDS = "a date as YYYY-MM-DD or a date and time with its offset, such as 2024-01-01T09:00:00+09:00"
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})?")


_DATE_META: dict[str, Any] = {
    "max_length": 40,
    "examples": ["2024-01-01", "2024-01-01T00:00:00Z", "2024-01-01T09:00:00+09:00"],
    "extra_json_schema": {"extra": {"any_of": [{"format": "date"}, {"format": "date-time"}]}},
    "extra": {"expected": _DATE_WORDS},  # `_describe`'s words for a value of the wrong type
}
_DateFrom = Annotated[
    str,
    Meta(
        description="First day included, compared with the resource's date (a day starts at midnight in the "
        "export's timezone); or the first moment included, a date and time with its offset (Z, +09:00).",
        **_DATE_META,
    ),
]
_DateTo = Annotated[
    str,
    Meta(description="Last day included; or the last moment included, a date and time with its offset.", **_DATE_META),
]


class FiltersIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True, omit_defaults=True):
    """Which rows: each filter only where the resource offers it (GET /api/v1/resources lists them)."""

    date_from: _DateFrom | None = None
    date_to: _DateTo | None = None
    department_ids: (
        Annotated[
            list[_DepartmentId],
            Meta(max_length=MAX_DEPARTMENT_IDS, description="Department ids of the account: rows of any of them."),
        ]
        | None
    ) = None
    status: Annotated[_Key, Meta(description="One of the resource's statuses.")] | None = None


class ExportRequestIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True, omit_defaults=True):
    """The body of POST /api/v1/exports. A field left out or null takes its default."""

    format: Annotated[ExportFormat, Meta(description="The file's format.")]
    # The catalog is the deployment's and a key may be limited to some of it: see GET /api/v1/resources.
    resource: Annotated[_Key, Meta(description="A resource key from GET /api/v1/resources.", examples=["payroll"])]
    columns: (
        Annotated[
            list[_Key],
            Meta(
                min_length=1,
                description="Column keys of the resource (GET /api/v1/resources), each once, in the file's order; "
                "left out: the resource's default columns.",
                examples=[["employeeNumber", "periodEnd", "netPay"]],
                extra_json_schema={"extra": {"unique_items": True}},  # Litestar's way to more OpenAPI keywords
            ),
        ]
        | None
    ) = None
    filters: Annotated[FiltersIn, Meta(description="Which rows; left out: all of the account's.")] | None = None
    webhook_url: (
        Annotated[
            str,
            Meta(
                max_length=MAX_URL_LENGTH,
                description="Called when the export ends, signed with the account's webhook secret: "
                "an absolute https:// URL on a public address.",
                examples=["https://hooks.example.com/exports"],
                extra_json_schema={"extra": {"format": "uri"}},
            ),
        ]
        | None
    ) = None
    csv_bom: (
        Annotated[bool, Meta(description="CSV only: start with a UTF-8 BOM; left out: the deployment's default.")]
        | None
    ) = None
    timezone: (
        Annotated[
            str,
            Meta(
                min_length=1,
                max_length=MAX_ZONE_LENGTH,
                description="An IANA time zone: datetimes are written in it (CSV: ISO 8601 with its offset; "
                "XLSX: its wall time, the zone named in the header) and date filters read in it; "
                "left out: the account's default (UTC unless an operator set another).",
                examples=["Asia/Tokyo"],
            ),
        ]
        | None
    ) = None
    csv_delimiter: (
        Annotated[
            Literal[",", ";", "\t"],
            Meta(
                description='CSV only: between cells, "," (left out), ";" (Excel where the decimal separator is '
                'a comma) or a tab, "\\t".'
            ),
        ]
        | None
    ) = None
    csv_gzip: (
        Annotated[bool, Meta(description="CSV only: gzip the file (.csv.gz, application/gzip); left out: false.")]
        | None
    ) = None


def read_request(body: Any) -> ExportRequestIn:
    """The body as an ExportRequestIn, converted as Litestar converts a request body (not strict:
    "true" is a bool), or InvalidRequest naming the first field of the wrong shape."""
    if isinstance(body, ExportRequestIn):
        return body
    try:
        return msgspec.convert(body, ExportRequestIn, strict=False, str_keys=True)
    except msgspec.ValidationError as exc:
        message, _, at = str(exc).rpartition(" - at `$")
        if not message:  # a fault of the body itself: msgspec names no path
            message, at = str(exc), ""
        raise InvalidRequest([shape_problem(message, at.removeprefix(".").removesuffix("`"))]) from None


def _choices(values: Any) -> str:
    return ", ".join(str(v) for v in values)


def parse_export_request(body: Any, catalog: Catalog, *, default_csv_bom: bool = True) -> ExportRequest:
    """`body`: an ExportRequestIn, or the decoded JSON (or the console's form) it is read from."""
    request = read_request(body)
    problems: list[Problem] = []

    def bad(field: str, message: str) -> None:
        problems.append(Problem(field, message))

    resource = catalog.resource(request.resource)
    if resource is None:
        bad("resource", f"unknown resource {_shown(request.resource)}; one of {_choices(catalog.resources)}")

    columns: tuple[str, ...] = resource.default_columns if resource else ()
    if request.columns is not None:
        if len(set(request.columns)) != len(request.columns):
            bad("columns", "a column is listed twice")
        elif resource is not None:
            unknown = [c for c in request.columns if resource.column(c) is None]
            if unknown:
                bad(
                    "columns",
                    f"unknown column(s) {_choices(unknown)} for {resource.key}; "
                    f"available: {_choices(c.key for c in resource.columns)}",
                )
            columns = tuple(request.columns)

    zone = None
    if request.timezone is not None:
        try:
            zone = zone_named(request.timezone)
        except ValueError as exc:
            bad("timezone", str(exc))
    filters = _check_filters(request.filters or FiltersIn(), resource, bad, zone or zone_named(DEFAULT_ZONE))

    webhook_url = request.webhook_url
    if webhook_url is not None and not _valid_url(webhook_url):
        bad("webhookUrl", "expected an absolute http:// or https:// URL")
        webhook_url = None

    if request.format is not ExportFormat.CSV:
        for field, value in (("csvDelimiter", request.csv_delimiter), ("csvGzip", request.csv_gzip)):
            if value is not None:
                bad(field, f"CSV only; leave it out for {request.format.value}")

    if problems or resource is None:
        raise InvalidRequest(problems)
    return ExportRequest(
        resource=resource.key,
        format=request.format,
        columns=columns,
        filters=filters,
        webhook_url=webhook_url,
        csv_bom=default_csv_bom if request.csv_bom is None else request.csv_bom,
        time_zone=request.timezone,
        csv_delimiter=request.csv_delimiter or ",",
        csv_gzip=bool(request.csv_gzip),
    )


def _offered(resource: Resource | None) -> dict[str, bool]:
    """The filters a resource has; all of them while the resource is unknown (its own problem)."""
    if resource is None:
        return dict.fromkeys(_FILTER_NAMES.values(), True)
    has_date = resource.date_sql is not None
    return {
        "dateFrom": has_date,
        "dateTo": has_date,
        "departmentIds": resource.department_sql is not None,
        "status": resource.status_sql is not None,
    }


_FILTER_NAMES = {f.name: f.encode_name for f in msgspec.structs.fields(FiltersIn)}  # date_from -> dateFrom


def _moment_or_day(field: str, text: str | None, bad: Any) -> dt.date | None:
    """A date (YYYY-MM-DD), or an aware datetime (RFC 3339: with Z or an offset); None after `bad`."""
    if text is None:
        return None
    try:
        if _DAY.fullmatch(text):
            return dt.date.fromisoformat(text)
        if _MOMENT.fullmatch(text):
            moment = dt.datetime.fromisoformat(text.upper())
            if moment.tzinfo is None:
                bad(field, f"{_shown(text)} has no offset: add Z for UTC or one such as +09:00")
                return None
            moment.astimezone(dt.UTC)  # OverflowError for a moment before year 1 or after 9999 in UTC
            return moment
    except (ValueError, OverflowError):
        pass
    bad(field, f"expected {_DATE_WORDS}")
    return None


def _bounds(start: dt.date, end: dt.date, zone: zoneinfo.ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """dateFrom's first moment and the moment after dateTo's last, a day read in `zone`."""
    if not isinstance(start, dt.datetime):
        start = dt.datetime.combine(start, dt.time(), zone)
    if isinstance(end, dt.datetime):
        end += dt.timedelta(microseconds=1)
    else:
        end = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), zone)
    return start, end


def _day(value: dt.date) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def _check_filters(raw: FiltersIn, resource: Resource | None, bad: Any, zone: zoneinfo.ZoneInfo) -> Filters:
    offered = _offered(resource)
    given = {_FILTER_NAMES[name]: value for name, value in msgspec.structs.asdict(raw).items() if value is not None}
    lacking = sorted(key for key in given if not offered[key])
    for key in lacking:
        has = [k for k, yes in offered.items() if yes]
        bad(
            f"filters.{key}",
            f"{resource.key if resource else 'this resource'} has no such filter; "
            + (f"it offers: {_choices(has)}" if has else "it offers none"),
        )
    filters = msgspec.structs.replace(raw, **{n: None for n, key in _FILTER_NAMES.items() if key in lacking})
    date_from = _moment_or_day("filters.dateFrom", filters.date_from, bad)
    date_to = _moment_or_day("filters.dateTo", filters.date_to, bad)
    if date_from and date_to:
        try:
            start, end = _bounds(date_from, date_to, zone)
            after = start >= end
        except OverflowError:  # 9999-12-31 and the like, past the last moment Python holds: compare the days
            after = _day(date_from) > _day(date_to)
        if after:
            bad("filters.dateFrom", "must not be after filters.dateTo")

    status = filters.status
    if status is not None and resource is not None and status not in resource.statuses:
        bad(
            "filters.status",
            f"{_shown(status)} is not a status of {resource.key}; one of {_choices(resource.statuses)}",
        )
        status = None
    return Filters(
        date_from=date_from,
        date_to=date_to,
        department_ids=tuple(dict.fromkeys(filters.department_ids or ())),
        status=status,
    )


def _valid_url(value: str) -> bool:
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


# --- msgspec's report of a shape fault, in our field names and in words -------------------------------

_GOT = {
    "str": "a string",
    "int": "a number",
    "float": "a number",
    "bool": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "null",
}
_EXPECTED_GOT = re.compile(r"Expected `[^`]*`, got `(?P<got>\w+)`")
_LENGTH = re.compile(r"Expected `(?P<kind>str|array|object)` of length (?P<op>>=|<=) (?P<n>\d+)")
_BOUND = re.compile(r"Expected `(?P<kind>int|float)` (?P<op>>=|<=|>|<) (?P<n>[-\d.]+)")
_UNKNOWN_FIELD = re.compile(r"Object contains unknown field `(?P<name>.*)`", re.DOTALL)
_MISSING_FIELD = re.compile(r"Object missing required field `(?P<name>.*)`", re.DOTALL)
_BAD_ENUM = re.compile(r"Invalid enum value (?P<value>.*)", re.DOTALL)
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def shape_problem(message: str, at: str, root: Any = ExportRequestIn) -> Problem:
    """One msgspec ValidationError as a Problem. `message` is msgspec's without its " - at `$...`",
    `at` the path after `$.` ("columns[2]", "filters"; "" for the body itself), `root` the type the
    body was converted to: its fields give the words (the choices of an enum, the allowed names)."""
    if match := _MISSING_FIELD.fullmatch(message):
        field = _join(at, match["name"])
        return Problem(field, _required(_type_at(root, field)))
    if match := _UNKNOWN_FIELD.fullmatch(message):
        parent = _unwrap(_type_at(root, at))
        names = sorted(f.encode_name for f in parent.fields) if isinstance(parent, msgspec.inspect.StructType) else []
        allowed = f"; allowed: {_choices(names)}" if names else ""
        return Problem(_join(at, _shorten(match["name"])), "unknown field" + allowed)
    got = _GOT.get(match["got"], match["got"]) if (match := _EXPECTED_GOT.match(message)) else None
    if not at:  # the body itself; also no body at all, which Litestar reports in its own words
        return Problem("body", "expected a JSON object" + (f", got {got}" if got else ""))
    expected = _type_at(root, at)
    if got == "null" and not at.endswith("]") and not _optional(expected):  # a field given as null: left out
        return Problem(at, _required(expected))
    if got:
        return Problem(at, f"expected {_describe(expected)}, got {got}")
    if match := _LENGTH.match(message):
        n, unit = int(match["n"]), {"str": "character", "array": "item", "object": "field"}[match["kind"]]
        if match["op"] == "<=":
            return Problem(at, f"expected at most {n} {unit}{'' if n == 1 else 's'}")
        if n > 1:
            return Problem(at, f"expected at least {n} {unit}s")
        return Problem(
            at, "must not be empty" + (" (leave the field out for the default)" if _optional(expected) else "")
        )
    if match := _BOUND.match(message):
        return Problem(at, f"expected {_describe(expected)} {match['op']} {match['n']}")
    if match := _BAD_ENUM.fullmatch(message):
        return Problem(at, f"unknown {_leaf(at)} {_shorten(match['value'])}; {_describe(expected)}")
    if message.startswith("Invalid RFC3339 encoded date"):
        return Problem(at, "expected a date as YYYY-MM-DD")
    plain = message.replace("`", "")
    return Problem(at, plain[:1].lower() + plain[1:])


def _join(at: str, name: str) -> str:
    return f"{at}.{name}" if at else name


def _leaf(field: str) -> str:
    return field.rsplit(".", 1)[-1].split("[", 1)[0]


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _shown(value: str) -> str:
    return _shorten(repr(value))


def _unwrap(info: msgspec.inspect.Type | None) -> msgspec.inspect.Type | None:
    """The type under Meta and `| None`."""
    while True:
        if isinstance(info, msgspec.inspect.Metadata):
            info = info.type
        elif isinstance(info, msgspec.inspect.UnionType):
            types = [t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)]
            if len(types) != 1:
                return info
            info = types[0]
        else:
            return info


def _optional(info: msgspec.inspect.Type | None) -> bool:
    while isinstance(info, msgspec.inspect.Metadata):
        info = info.type
    return info is None or (
        isinstance(info, msgspec.inspect.UnionType) and any(isinstance(t, msgspec.inspect.NoneType) for t in info.types)
    )


def _type_at(root: Any, path: str) -> msgspec.inspect.Type | None:
    """The declared type at a path such as "filters.departmentIds[3]" (None where there is none),
    still wrapped in its Meta and `| None`."""
    try:
        info: msgspec.inspect.Type | None = msgspec.inspect.type_info(root)
    except TypeError:
        return None
    for name, index in _PATH_PART.findall(path):
        node = _unwrap(info)
        if index and isinstance(node, msgspec.inspect.ListType):
            info = node.item_type
        elif name and isinstance(node, msgspec.inspect.StructType):
            info = next((f.type for f in node.fields if f.encode_name == name), None)
        else:
            return None
    return info


def _required(info: msgspec.inspect.Type | None) -> str:
    node = _unwrap(info)
    if isinstance(node, msgspec.inspect.EnumType | msgspec.inspect.LiteralType):
        return f"required; {_describe(node)}"
    return "required"


def _describe(info: msgspec.inspect.Type | None) -> str:
    """What a value of the type looks like, in words: "one of csv, xlsx, pdf", "a list of strings"; or
    the words a field's Meta gives (`extra={"expected": ...}`)."""
    node = info
    while isinstance(node, msgspec.inspect.Metadata | msgspec.inspect.UnionType):
        if isinstance(node, msgspec.inspect.Metadata):
            if node.extra and "expected" in node.extra:
                return str(node.extra["expected"])
            node = node.type
        else:
            rest = [t for t in node.types if not isinstance(t, msgspec.inspect.NoneType)]
            if len(rest) != 1:
                break
            node = rest[0]
    node = _unwrap(info)
    if isinstance(node, msgspec.inspect.EnumType):
        return f"one of {_choices(m.value for m in node.cls)}"
    if isinstance(node, msgspec.inspect.LiteralType):  # "\t" as JSON writes it, not a bare tab
        return f"one of {_choices(json.dumps(v) if isinstance(v, str) else v for v in node.values)}"
    if isinstance(node, msgspec.inspect.ListType):
        items = {"a string": "strings", "an object": "objects"}.get(_describe(node.item_type))
        return f"a list of {items}" if items else "a list"
    words = {
        msgspec.inspect.StrType: "a string",
        msgspec.inspect.BoolType: "true or false",
        msgspec.inspect.IntType: "a whole number",
        msgspec.inspect.FloatType: "a number",
        msgspec.inspect.DateType: "a date as YYYY-MM-DD",
        msgspec.inspect.StructType: "an object",
        msgspec.inspect.DictType: "an object",
    }
    return next((w for t, w in words.items() if isinstance(node, t)), "a valid value")
