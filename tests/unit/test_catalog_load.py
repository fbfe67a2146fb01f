"""The catalog file: the shipped HR catalog loads, and every mistake in a file is named at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporthub.catalog import ColumnType, default_catalog_path, load_catalog
from exporthub.errors import CatalogInvalid, ConfigError
from exporthub.settings import load_settings


def problems_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "catalog.toml"
    path.write_text(text)
    with pytest.raises(CatalogInvalid) as info:
        load_catalog(path)
    assert str(info.value).splitlines() == [f"{path}: {p}" for p in info.value.problems]
    return info.value.problems


def test_the_shipped_catalog_is_the_default_and_describes_the_hr_schema() -> None:
    catalog = load_catalog()
    assert catalog.path == default_catalog_path()
    assert list(catalog.resources) == ["employees", "payroll", "timesheets", "compliance"]
    payroll = catalog.resources["payroll"]
    assert payroll.tenant.sql == "r.account_id" and payroll.tenant.type == "uuid"
    assert payroll.order_by == "r.pay_date, r.id" and payroll.count_from == "payroll r"
    assert payroll.column("grossPay").type is ColumnType.MONEY  # type: ignore[union-attr]
    assert payroll.default_columns[:3] == ("employeeNumber", "employeeName", "department")
    assert catalog.departments is not None and catalog.departments.id_sql == "d.id"


def test_a_minimal_resource_has_no_filters(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[[resources]]\nkey = "teams"\nlabel = "Teams"\nfrom = "teams t"\ntenant = "t.company"\norder_by = "t.id"\n'
        'columns = [{ key = "name", label = "Name", type = "text", sql = "t.name", default = true }]\n'
    )
    teams = load_catalog(path).resources["teams"]
    assert (teams.date_sql, teams.status_sql, teams.department_sql, teams.statuses) == (None, None, None, ())
    assert teams.tenant.type == "text" and teams.default_columns == ("name",)


def test_every_mistake_in_the_file_is_named(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        """
colour = "red"

[[resources]]
key = "people"
label = "People"
from = "staff s"
tenant_type = "uuid; DROP TABLE x"
order_by = 7
status = "s.state"
department = "s.team"
extra = true
columns = [
  { key = "name", label = "Name", type = "txt", sql = "s.name" },
  { key = "name", label = "Again", type = "text", sql = "s.name2", width = 500 },
  { key = "bad key", label = "B", type = "text", sql = "s.b" },
]

[[resources]]
key = "people"
label = "Twice"
from = "staff s"
tenant = "s.company"
order_by = "s.id"
columns = [{ key = "id", label = "Id", type = "integer", sql = "s.id", default = true }]
""",
    )
    assert problems == [
        "colour: unknown section; a catalog has [[resources]] and an optional [departments]",
        "people.order_by: expected a string, got an integer",
        "people.extra: unknown field; allowed: key, label, from, tenant, tenant_type, order_by, count_from, date, "
        "date_label, status, statuses, department, columns",
        "people.tenant: required",
        "people.tenant_type: 'uuid; DROP TABLE x' is not a type name (such as text, uuid, integer)",
        "people.columns.name.type: unknown type 'txt'; one of text, integer, decimal, money, date, datetime, boolean",
        "people.columns.name.width: expected 1 to 200 characters, got 500",
        "people.columns.name: a second column with this key",
        "people.columns[2].key: 'bad key' must start with a letter and hold only letters, digits and _",
        "people.statuses: list the status values that people.status can take",
        "people.department: a department filter needs a [departments] table saying where departments come from",
        "people: a second resource with this key",
    ]


def test_no_resources_at_all(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "# nothing\n") == ["resources: declare at least one [[resources]] table"]


@pytest.mark.parametrize(("raw", "seconds"), [("600", 600.0), ("90s", 90.0), ("10min", 600.0), ("2h", 7200.0)])
def test_the_source_statement_timeout_reads_durations(raw: str, seconds: float) -> None:
    settings = load_settings({"EXPORTHUB_SOURCE_STATEMENT_TIMEOUT": raw})
    assert settings.db.source_statement_timeout_seconds == seconds


@pytest.mark.parametrize("raw", ["soon", "-5", "0", "10 days"])
def test_a_bad_statement_timeout_names_the_setting(raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"EXPORTHUB_SOURCE_STATEMENT_TIMEOUT": raw})
    assert info.value.name == "EXPORTHUB_SOURCE_STATEMENT_TIMEOUT"


def test_the_source_database_defaults_to_exporthubs_own() -> None:
    assert load_settings({"DATABASE_URL": "postgresql://a/own"}).db.source_url == "postgresql://a/own"
    split = load_settings({"DATABASE_URL": "postgresql://a/own", "SOURCE_DATABASE_URL": "postgresql://b/hr"})
    assert split.db.source_url == "postgresql://b/hr"
    assert load_settings({"EXPORTHUB_CATALOG": "/etc/exporthub/catalog.toml"}).exports.catalog_path == Path(
        "/etc/exporthub/catalog.toml"
    )
