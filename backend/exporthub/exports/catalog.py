"""What can be exported: resources, their columns (typed, labelled, sized) and the filters they accept.

Column keys are the API's camelCase names; `sql` is an expression over the resource's FROM clause,
where `r` is the resource's own table, `e` the employee and `d` the department. Those joins only
add columns: each follows a NOT NULL foreign key, so a row of `r` is exactly one row of the export
(which lets the row count skip them).
"""

from __future__ import annotations

import dataclasses
import enum


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
class Resource:
    key: str
    label: str
    table: str  # the resource's own table, `r`
    joins: str  # the lookups the columns read (`e`, `d`), one row each
    columns: tuple[Column, ...]
    default_columns: tuple[str, ...]
    date_column: str  # the column key that dateFrom / dateTo filter
    statuses: tuple[str, ...]
    status_sql: str = "r.status"
    department_sql: str = "e.department_id"

    @property
    def from_sql(self) -> str:
        return f"{self.table} r {self.joins}"

    def column(self, key: str) -> Column | None:
        return next((c for c in self.columns if c.key == key), None)

    @property
    def date_sql(self) -> str:
        column = self.column(self.date_column)
        assert column is not None
        return column.sql


T, INT, DEC, M, D, DT, B = (
    ColumnType.TEXT,
    ColumnType.INTEGER,
    ColumnType.DECIMAL,
    ColumnType.MONEY,
    ColumnType.DATE,
    ColumnType.DATETIME,
    ColumnType.BOOLEAN,
)

_EMPLOYEE_JOIN = "JOIN employees e ON e.id = r.employee_id JOIN departments d ON d.id = e.department_id"


def _who() -> tuple[Column, ...]:
    """The readable employee columns shared by payroll, timesheets and compliance."""
    return (
        Column("employeeNumber", "Employee No.", T, "e.employee_number", 12),
        Column("employeeName", "Employee", T, "e.first_name || ' ' || e.last_name", 26),
        Column("department", "Department", T, "d.name", 20),
    )


EMPLOYEES = Resource(
    key="employees",
    label="Employees",
    table="employees",
    joins="JOIN departments d ON d.id = r.department_id",
    columns=(
        Column("employeeNumber", "Employee No.", T, "r.employee_number", 12),
        Column("firstName", "First name", T, "r.first_name", 16),
        Column("lastName", "Last name", T, "r.last_name", 18),
        Column("email", "Email", T, "r.email", 30),
        Column("department", "Department", T, "d.name", 20),
        Column("departmentCode", "Dept. code", T, "d.code", 10),
        Column("jobTitle", "Job title", T, "r.job_title", 24),
        Column("country", "Country", T, "r.country", 8),
        Column("employmentType", "Employment type", T, "r.employment_type", 14),
        Column("status", "Status", T, "r.status", 11),
        Column("hireDate", "Hire date", D, "r.hire_date", 12),
        Column("terminationDate", "Termination date", D, "r.termination_date", 12),
        Column("salary", "Salary", M, "r.salary", 13),
        Column("fte", "FTE", DEC, "r.fte", 6),
        Column("isManager", "Manager", B, "r.is_manager", 8),
        Column("notes", "Notes", T, "r.notes", 30),
        Column("updatedAt", "Updated at", DT, "r.updated_at", 20),
    ),
    default_columns=(
        "employeeNumber",
        "firstName",
        "lastName",
        "email",
        "department",
        "jobTitle",
        "status",
        "hireDate",
        "salary",
    ),
    date_column="hireDate",
    statuses=("active", "on_leave", "terminated"),
    department_sql="r.department_id",
)

PAYROLL = Resource(
    key="payroll",
    label="Payroll",
    table="payroll",
    joins=_EMPLOYEE_JOIN,
    columns=(
        Column("payrollId", "Payroll ID", INT, "r.id", 10),
        *_who(),
        Column("periodStart", "Period start", D, "r.period_start", 12),
        Column("periodEnd", "Period end", D, "r.period_end", 12),
        Column("payDate", "Pay date", D, "r.pay_date", 12),
        Column("hoursWorked", "Hours", DEC, "r.hours_worked", 8),
        Column("grossPay", "Gross pay", M, "r.gross_pay", 13),
        Column("tax", "Tax", M, "r.tax", 12),
        Column("deductions", "Deductions", M, "r.deductions", 12),
        Column("netPay", "Net pay", M, "r.net_pay", 13),
        Column("currency", "Currency", T, "r.currency", 8),
        Column("status", "Status", T, "r.status", 10),
        Column("memo", "Memo", T, "r.memo", 30),
        Column("processedAt", "Processed at", DT, "r.processed_at", 20),
    ),
    default_columns=(
        "employeeNumber",
        "employeeName",
        "department",
        "periodStart",
        "periodEnd",
        "payDate",
        "grossPay",
        "tax",
        "deductions",
        "netPay",
        "currency",
        "status",
    ),
    date_column="payDate",
    statuses=("draft", "approved", "paid", "void"),
)

TIMESHEETS = Resource(
    key="timesheets",
    label="Timesheets",
    table="timesheets",
    joins=_EMPLOYEE_JOIN,
    columns=(
        Column("entryId", "Entry ID", INT, "r.id", 10),
        *_who(),
        Column("workDate", "Work date", D, "r.work_date", 12),
        Column("project", "Project", T, "r.project", 22),
        Column("hours", "Hours", DEC, "r.hours", 8),
        Column("overtimeHours", "Overtime", DEC, "r.overtime_hours", 9),
        Column("billable", "Billable", B, "r.billable", 8),
        Column("status", "Status", T, "r.status", 10),
        Column("approvedAt", "Approved at", DT, "r.approved_at", 20),
        Column("notes", "Notes", T, "r.notes", 30),
    ),
    default_columns=(
        "employeeNumber",
        "employeeName",
        "department",
        "workDate",
        "project",
        "hours",
        "overtimeHours",
        "billable",
        "status",
    ),
    date_column="workDate",
    statuses=("submitted", "approved", "rejected"),
)

COMPLIANCE = Resource(
    key="compliance",
    label="Compliance records",
    table="compliance",
    joins=_EMPLOYEE_JOIN,
    columns=(
        Column("recordId", "Record ID", INT, "r.id", 10),
        *_who(),
        Column("recordType", "Type", T, "r.record_type", 18),
        Column("title", "Title", T, "r.title", 30),
        Column("status", "Status", T, "r.status", 10),
        Column("dueDate", "Due date", D, "r.due_date", 12),
        Column("completedAt", "Completed at", DT, "r.completed_at", 20),
        Column("expiresOn", "Expires on", D, "r.expires_on", 12),
        Column("notes", "Notes", T, "r.notes", 30),
    ),
    default_columns=(
        "employeeNumber",
        "employeeName",
        "department",
        "recordType",
        "title",
        "status",
        "dueDate",
        "completedAt",
        "expiresOn",
    ),
    date_column="dueDate",
    statuses=("pending", "completed", "overdue", "waived"),
)

RESOURCES: dict[str, Resource] = {r.key: r for r in (EMPLOYEES, PAYROLL, TIMESHEETS, COMPLIANCE)}
