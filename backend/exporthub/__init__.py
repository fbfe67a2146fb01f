"""ExportHub: asynchronous, constant-memory exports of HR and payroll data."""

__version__ = "0.1.0"
