"""What can be exported, as data: a TOML catalog of resources, their typed columns and filters."""

from exporthub.catalog.load import default_catalog_path, load_catalog
from exporthub.catalog.model import Catalog, Column, ColumnType, Departments, Resource, Tenant

__all__ = [
    "Catalog",
    "Column",
    "ColumnType",
    "Departments",
    "Resource",
    "Tenant",
    "default_catalog_path",
    "load_catalog",
]
