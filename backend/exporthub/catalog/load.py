"""Read a catalog file (TOML) into the model, naming every mistake at once.

The file's shape, with the optional parts marked:

    [departments]                      # optional: the department filter's choices
    from = "departments d"
    tenant = "d.account_id"
    tenant_type = "uuid"               # optional, default "text"
    id = "d.id"
    name = "d.name"
    order_by = "d.name"                # optional, default: name

    [[resources]]
    key = "payroll"
    label = "Payroll"
    from = "payroll r JOIN employees e ON e.id = r.employee_id"
    tenant = "r.account_id"            # equals the account's tenant key
    tenant_type = "uuid"               # optional, default "text"
    order_by = "r.pay_date, r.id"      # unique
    count_from = "payroll r"           # optional
    date = "r.pay_date"                # optional: dateFrom / dateTo
    date_label = "Pay date"            # optional
    status = "r.status"                # optional, with statuses
    statuses = ["draft", "paid"]
    department = "e.department_id"     # optional: needs [departments]
    columns = [
      { key = "grossPay", label = "Gross pay", type = "money", sql = "r.gross_pay", width = 13, default = true },
    ]
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from importlib import resources as package_files
from pathlib import Path
from typing import Any

from exporthub.catalog.model import Catalog, Column, ColumnType, Departments, Resource, Tenant
from exporthub.errors import CatalogInvalid

DEFAULT_CATALOG = "hr.toml"

# Keys become SQL aliases ("key") and JSON names; type names are spliced into a cast.
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
_TYPE_NAME = re.compile(r"^[a-z_][a-z0-9_ ]{0,62}$")
_RESOURCE_FIELDS = {
    "key": str,
    "label": str,
    "from": str,
    "tenant": str,
    "tenant_type": str,
    "order_by": str,
    "count_from": str,
    "date": str,
    "date_label": str,
    "status": str,
    "statuses": list,
    "department": str,
    "columns": list,
}
_REQUIRED = ("key", "label", "from", "tenant", "order_by", "columns")
_COLUMN_FIELDS = {"key": str, "label": str, "type": str, "sql": str, "width": int, "default": bool}
_DEPARTMENT_FIELDS = {"from": str, "tenant": str, "tenant_type": str, "id": str, "name": str, "order_by": str}


def default_catalog_path() -> Path:
    return Path(str(package_files.files("exporthub.catalog") / DEFAULT_CATALOG))


def load_catalog(path: Path | None = None) -> Catalog:
    """The catalog in `path` (default: the HR catalog shipped in the package). Raises CatalogInvalid."""
    path = path or default_catalog_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogInvalid(path, [f"cannot read the file: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError:
        raise CatalogInvalid(path, ["not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogInvalid(path, [f"not valid TOML: {exc}"]) from None
    return parse_catalog(data, path)


def parse_catalog(data: dict[str, Any], path: Path) -> Catalog:
    problems: list[str] = []
    for key in sorted(set(data) - {"resources", "departments"}):
        problems.append(f"{key}: unknown section; a catalog has [[resources]] and an optional [departments]")
    departments = None
    if "departments" in data:
        departments = _departments(data["departments"], problems)
    raw_resources = data.get("resources")
    resources: dict[str, Resource] = {}
    if not isinstance(raw_resources, list) or not raw_resources:
        problems.append("resources: declare at least one [[resources]] table")
        raw_resources = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_resources):
        raw_key = raw.get("key") if isinstance(raw, dict) else None
        if isinstance(raw_key, str) and raw_key in seen:
            problems.append(f"{raw_key}: a second resource with this key")
            continue
        if isinstance(raw_key, str):
            seen.add(raw_key)
        resource = _resource(raw, index, departments is not None, problems)
        if resource is not None:
            resources[resource.key] = resource
    if problems:
        raise CatalogInvalid(path, problems)
    return Catalog(path=path, resources=resources, departments=departments)


def _fields(raw: Any, where: str, allowed: Mapping[str, type], problems: list[str]) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected a table")
        return None
    out: dict[str, Any] = {}
    for name, value in raw.items():
        expected = allowed.get(name)
        if expected is None:
            problems.append(f"{where}.{name}: unknown field; allowed: {', '.join(allowed)}")
        elif not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            problems.append(f"{where}.{name}: expected {_type_word(expected)}, got {_type_word(type(value))}")
        elif isinstance(value, str) and not value.strip():
            problems.append(f"{where}.{name}: must not be empty")
        else:
            out[name] = value
    return out


def _type_word(t: type) -> str:
    return {str: "a string", int: "an integer", bool: "true or false", list: "a list", dict: "a table"}.get(
        t, t.__name__
    )


def _tenant(fields: dict[str, Any], where: str, problems: list[str]) -> Tenant | None:
    type_name = fields.get("tenant_type", "text")
    if not _TYPE_NAME.match(type_name):
        problems.append(f"{where}.tenant_type: {type_name!r} is not a type name (such as text, uuid, integer)")
        return None
    return Tenant(fields["tenant"], type_name) if "tenant" in fields else None


def _departments(raw: Any, problems: list[str]) -> Departments | None:
    fields = _fields(raw, "departments", _DEPARTMENT_FIELDS, problems)
    if fields is None:
        return None
    missing = [name for name in ("from", "tenant", "id", "name") if name not in fields]
    for name in missing:
        problems.append(f"departments.{name}: required")
    tenant = _tenant(fields, "departments", problems)
    if missing or tenant is None:
        return None
    return Departments(
        from_sql=fields["from"],
        tenant=tenant,
        id_sql=fields["id"],
        name_sql=fields["name"],
        order_by=fields.get("order_by", fields["name"]),
    )


def _resource(raw: Any, index: int, has_departments: bool, problems: list[str]) -> Resource | None:
    key = raw.get("key") if isinstance(raw, dict) else None
    where = key if isinstance(key, str) and _KEY.match(key) else f"resources[{index}]"
    before = len(problems)
    fields = _fields(raw, where, _RESOURCE_FIELDS, problems)
    if fields is None:
        return None
    for name in _REQUIRED:
        if name not in fields and not any(p.startswith(f"{where}.{name}:") for p in problems):
            problems.append(f"{where}.{name}: required")
    if isinstance(key, str) and not _KEY.match(key):
        problems.append(f"{where}.key: {key!r} must start with a letter and hold only letters, digits and _")
    tenant = _tenant(fields, where, problems)
    columns = _columns(fields.get("columns", []), where, problems)
    statuses = fields.get("statuses", [])
    if "status" in fields and not statuses:
        problems.append(f"{where}.statuses: list the status values that {where}.status can take")
    if statuses and "status" not in fields:
        problems.append(f"{where}.status: the expression that statuses are compared with is missing")
    if not all(isinstance(s, str) and s for s in statuses):
        problems.append(f"{where}.statuses: expected a list of non-empty strings")
    if "department" in fields and not has_departments:
        problems.append(
            f"{where}.department: a department filter needs a [departments] table saying where departments come from"
        )
    if "date_label" in fields and "date" not in fields:
        problems.append(f"{where}.date_label: there is no date filter (date) to label")
    defaults = tuple(c.key for c, is_default in columns if is_default)
    if columns and not defaults:
        problems.append(f"{where}.columns: mark at least one column with default = true")
    if len(problems) > before or tenant is None:
        return None
    return Resource(
        key=fields["key"],
        label=fields["label"],
        from_sql=fields["from"],
        tenant=tenant,
        order_by=fields["order_by"],
        columns=tuple(c for c, _ in columns),
        default_columns=defaults,
        count_from=fields.get("count_from"),
        date_sql=fields.get("date"),
        date_label=fields.get("date_label", "Date"),
        status_sql=fields.get("status"),
        statuses=tuple(statuses),
        department_sql=fields.get("department"),
    )


def _columns(raw: list[Any], where: str, problems: list[str]) -> list[tuple[Column, bool]]:
    out: list[tuple[Column, bool]] = []
    seen: set[str] = set()
    if not raw:
        problems.append(f"{where}.columns: declare at least one column")
    for index, item in enumerate(raw):
        key = item.get("key") if isinstance(item, dict) else None
        at = f"{where}.columns.{key}" if isinstance(key, str) and _KEY.match(key) else f"{where}.columns[{index}]"
        before = len(problems)
        fields = _fields(item, at, _COLUMN_FIELDS, problems)
        if fields is None:
            continue
        for name in ("key", "label", "type", "sql"):
            if name not in fields and not any(p.startswith(f"{at}.{name}:") for p in problems):
                problems.append(f"{at}.{name}: required")
        if isinstance(key, str) and not _KEY.match(key):
            problems.append(f"{at}.key: {key!r} must start with a letter and hold only letters, digits and _")
        type_name = fields.get("type")
        if type_name is not None and type_name not in ColumnType._value2member_map_:
            problems.append(f"{at}.type: unknown type {type_name!r}; one of {', '.join(t.value for t in ColumnType)}")
        width = fields.get("width", 14)
        if not 1 <= width <= 200:
            problems.append(f"{at}.width: expected 1 to 200 characters, got {width}")
        if isinstance(key, str) and key in seen:
            problems.append(f"{at}: a second column with this key")
        if isinstance(key, str):
            seen.add(key)
        if len(problems) > before:
            continue
        column = Column(fields["key"], fields["label"], ColumnType(fields["type"]), fields["sql"], width)
        out.append((column, fields.get("default", False)))
    return out
