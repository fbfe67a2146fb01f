"""The catalog's model: resources, their typed columns and the filters each one offers.

Formats and the export domain both read it; it knows nothing of either. The SQL in it is the
operator's (a catalog file is trusted configuration, checked against the database before use).
"""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path


class ColumnType(enum.StrEnum):
    TEXT = "text"
    INTEGER = "integer"
    DECIMAL = "decimal"
    MONEY = "money"
    DATE = "date"
    DATETIME = "datetime"
    BOOLEAN = "boolean"


@dataclasses.dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    type: ColumnType
    sql: str
    width: int = 14  # characters; XLSX column width and PDF proportions


@dataclasses.dataclass(frozen=True, slots=True)
class Tenant:
    """Which rows belong to an account: `sql` equals the account's tenant key, read as `type`."""

    sql: str
    type: str = "text"


@dataclasses.dataclass(frozen=True, slots=True)
class Resource:
    key: str
    label: str
    from_sql: str  # a table or view, with joins
    tenant: Tenant
    order_by: str  # unique, so that a stream can be resumed and two runs agree
    columns: tuple[Column, ...]
    default_columns: tuple[str, ...]
    # A FROM clause with exactly the rows of `from_sql` (the joins only add columns), cheaper to count.
    # Used unless the department filter is set; tenant, date and status must read only it.
    count_from: str | None = None
    date_sql: str | None = None  # dateFrom / dateTo; None: no date filter
    date_label: str = "Date"
    status_sql: str | None = None  # None: no status filter
    statuses: tuple[str, ...] = ()
    department_sql: str | None = None  # None: no department filter

    def column(self, key: str) -> Column | None:
        return next((c for c in self.columns if c.key == key), None)


@dataclasses.dataclass(frozen=True, slots=True)
class Departments:
    """Where the department filter's choices come from (the console's list, the API's check)."""

    from_sql: str
    tenant: Tenant
    id_sql: str
    name_sql: str
    order_by: str


@dataclasses.dataclass(frozen=True, slots=True)
class Catalog:
    path: Path  # where it was read from, for messages
    resources: dict[str, Resource]
    departments: Departments | None = None

    def resource(self, key: object) -> Resource | None:
        return self.resources.get(key) if isinstance(key, str) else None

    def label_of(self, key: str) -> str:
        resource = self.resources.get(key)
        return resource.label if resource else key
