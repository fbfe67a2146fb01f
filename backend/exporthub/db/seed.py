"""Deterministic demo HR data, generated in set-based SQL (INSERT ... SELECT FROM generate_series).

Three demo accounts are created, flagged `is_demo`, each with a random API key that `seed` returns
(it is stored hashed, so it is shown once; `issue_demo_keys` makes fresh ones):

    acme     Acme Corporation   (the large one)
    globex   Globex GmbH        (2% of acme, floors apply)
    initech  Initech Ltd        (2% of acme, floors apply)

The data is a snapshot "as of" `DATA_AS_OF` (a fixed date, so that re-seeding an empty database
gives identical rows: `setseed()` drives every `random()` call and primary keys of accounts,
departments and employees are derived from md5 of the slug). Every free-text column (employee
notes, payroll memo, timesheet and compliance notes) carries, on every 20th row, one of
`ESCAPE_TEST_VALUES`: spreadsheet-formula look-alikes (`=`, `+`, `-`, `@`, tab, CR) and values with
commas, quotes, newlines, control characters and markup, so that every export format's escaping is
exercised by the demo data. Names include accented Latin, Greek, Cyrillic, CJK and Arabic script.

An account that already exists (by slug) is skipped, so seeding is idempotent. Each account is
generated in one transaction with `synchronous_commit = off`; foreign-key triggers are skipped
(`session_replication_role = replica`) when the role may do so, since the rows reference each other
by construction. `ANALYZE` runs at the end.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
import uuid
from typing import Any

import asyncpg

from exporthub.accounts import create_api_key


@dataclasses.dataclass(frozen=True, slots=True)
class DemoAccount:
    slug: str
    name: str
    scale_factor: float  # fraction of the requested `employees` / `payroll` sizes


DEMO_ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount("acme", "Acme Corporation", 1.0),
    DemoAccount("globex", "Globex GmbH", 0.02),
    DemoAccount("initech", "Initech Ltd", 0.02),
)

DATA_AS_OF = dt.date(2026, 10, 31)
"""The last day covered by the demo data (payroll months end here, pending items fall due after)."""

TABLES = ("departments", "employees", "payroll", "timesheets", "compliance")

# Floors for the smaller accounts and for the derived tables, so that every account has enough rows
# for each of the ten ESCAPE_TEST_VALUES (one every 20th row) to appear in every table.
MIN_EMPLOYEES = 200
MIN_PAYROLL = 1_000
MIN_TIMESHEETS = 500
MIN_COMPLIANCE = 200

_LOCK_KEY = 0x6568736565640  # "ehseed"


@dataclasses.dataclass(frozen=True, slots=True)
class _Profile:
    prefix: str  # employee numbers: ACM-000123
    home_country: str
    home_share: float  # fraction of employees in the home country
    departments: int


_PROFILES = {
    "acme": _Profile("ACM", "US", 0.55, 12),
    "globex": _Profile("GLX", "DE", 0.55, 10),
    "initech": _Profile("INI", "GB", 0.60, 8),
}

ESCAPE_TEST_VALUES: tuple[str, ...] = (
    '=HYPERLINK("http://evil.example","click")',
    "+1 (555) 010-0199",
    "-5 days adjustment",
    "@mention payroll team",
    "\tTab-leading value",
    'Comma, "double quotes" and\na second line',
    "Bell\x07 control character",
    "=cmd|' /C calc'!A0",
    '<b>bold</b> & "ampersand" <not-a-tag>',
    "\rCarriage-return leading; emoji 🎉 and RTL مرحبا",
)

# (code, name, four individual-contributor titles, one manager title)
_DEPARTMENTS: tuple[tuple[str, str, tuple[str, str, str, str, str]], ...] = (
    ("ENG", "Engineering", ("Software Engineer", "Senior Software Engineer", "Site Reliability Engineer",
                            "QA Engineer", "Engineering Manager")),
    ("SAL", "Sales", ("Account Executive", "Sales Development Representative", "Sales Engineer",
                      "Account Manager", "Regional Sales Director")),
    ("OPS", "Operations", ("Operations Analyst", "Logistics Coordinator", "Warehouse Associate",
                           "Operations Specialist", "Head of Operations")),
    ("CS", "Customer Success", ("Support Specialist", "Technical Support Engineer",
                                "Customer Success Associate", "Onboarding Specialist",
                                "Director, Customer Success")),
    ("FIN", "Finance & Accounting", ("Accountant", "Financial Analyst", "Payroll Specialist",
                                     "Accounts Payable Clerk", "Finance Manager")),
    ("MKT", "Marketing", ("Marketing Specialist", "Content Strategist", "Growth Analyst", "Brand Designer",
                          "Marketing Director")),
    ("HR", "People & Culture", ("HR Generalist", "Recruiter", "People Partner", "L&D Coordinator",
                                "Head of People")),
    ("IT", "IT & Security", ("IT Support Technician", "Systems Administrator", "Security Analyst",
                             "Network Engineer", "IT Manager")),
    ("PRD", "Product", ("Product Manager", "Product Designer", "UX Researcher", "Technical Writer",
                        "VP, Product")),
    ("LEG", "Legal & Compliance", ("Paralegal", "Compliance Officer", "Legal Counsel", "Contracts Manager",
                                   "General Counsel")),
    ("RDI", "Research, Development & Innovation", ("Research Scientist", "Data Scientist", "Lab Technician",
                                                   "ML Engineer", "Research Director")),
    ("FAC", "Facilities", ("Facilities Coordinator", "Office Manager", "Maintenance Technician",
                           "Receptionist", "Facilities Manager")),
)  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class _Culture:
    weight: int  # percent; the weights add up to 100
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    countries: tuple[str, ...]


_CULTURES: tuple[_Culture, ...] = (
    _Culture(34,
             ("James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
              "Elizabeth", "William", "Sarah", "Emily", "Daniel", "Olivia", "Liam", "Emma", "Zoë", "Chloe",
              "Noah", "Grace", "Jack", "Amelia", "Oliver"),
             ("Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Taylor",
              "Anderson", "O'Connor", "O'Brien", "McDonald", "Smith-Jones", "Clarke", "Walker", "Hughes",
              "Thompson", "van der Berg", "Murphy"),
             ("US", "US", "US", "GB", "GB", "CA", "IE", "AU")),
    _Culture(8,
             ("José", "María", "Ángela", "Sofía", "Javier", "Lucía", "Andrés", "Begoña"),
             ("Ñúñez", "García", "Jiménez", "Peña", "Ibáñez", "Martínez", "López", "Fernández"),
             ("ES", "ES", "MX", "MX")),
    _Culture(6,
             ("François", "Sébastien", "Anaïs", "Renée", "Hélène", "Jérôme", "Léa", "Maël"),
             ("Lefèvre", "Dubois", "Gérard", "Moreau", "Rousseau", "Bérénger", "Lemaître", "Fournier"),
             ("FR",)),
    _Culture(7,
             ("Jürgen", "Jörg", "Käthe", "Lukas", "Anna", "Björn", "Jürgen-Maria", "Sören"),
             ("Müller", "Schröder", "Weiß", "Groß", "Schäfer", "Köhler", "Becker", "Hoffmann"),
             ("DE", "DE", "DE", "NL")),
    _Culture(4,
             ("Øyvind", "Håkon", "Søren", "Åsa", "Ingrid", "Märta", "Ævar", "Sigrún"),
             ("Sørensen", "Østergaard", "Håland", "Ångström", "Lindqvist", "Bjørnstad", "Nyström", "Dahl"),
             ("NO", "DK", "SE")),
    _Culture(5,
             ("Łukasz", "Małgorzata", "Wojciech", "Zofia", "Jiří", "Kateřina", "Paweł", "Ondřej"),
             ("Kowalski", "Łukaszewicz", "Wiśniewska", "Dvořák", "Nováková", "Zieliński", "Černý", "Wójcik"),
             ("PL", "PL", "CZ")),
    _Culture(4,
             ("João", "Inês", "Conceição", "Gonçalo", "Ana", "Tomás"),
             ("Gonçalves", "Magalhães", "Simões", "Araújo", "Conceição", "Brandão"),
             ("PT", "BR", "BR")),
    _Culture(9,
             ("Priya", "Rahul", "Ananya", "Arjun", "Divya", "Vikram", "Sneha", "Rohan"),
             ("Sharma", "Patel", "Iyer", "Reddy", "Gupta", "Nair", "Singh", "Chatterjee"),
             ("IN", "IN", "IN", "US", "GB", "SG")),
    _Culture(4,
             ("Δημήτρης", "Ελένη", "Γιώργος", "Μαρία", "Νίκος", "Κατερίνα"),
             ("Παπαδόπουλος", "Οικονόμου", "Γεωργίου", "Νικολάου", "Παπαδοπούλου", "Κωνσταντίνου"),
             ("GR", "GR", "CY")),
    _Culture(6,
             ("Светлана", "Дмитрий", "Ольга", "Алексей", "Наталья", "Сергей", "Ирина", "Андрей"),
             ("Иванов", "Смирнова", "Кузнецов", "Попова", "Соколов", "Петренко", "Васильева", "Новиков"),
             ("BG", "RS", "KZ", "UA")),
    _Culture(8,
             ("芳", "伟", "秀英", "静", "磊", "子涵", "浩然", "王芳"),
             ("李", "王", "张", "刘", "陈", "杨", "黄", "欧阳"),
             ("CN", "CN", "SG", "TW", "HK")),
    _Culture(5,
             ("محمد", "فاطمة", "أحمد", "ليلى", "يوسف", "مريم"),
             ("العلي", "حسن", "منصور", "الحربي", "خليل", "السيد"),
             ("AE", "SA", "EG", "JO", "MA")),
)  # fmt: skip

# country -> (currency, salary level relative to the US in local currency, typical tax rate)
_COUNTRIES: dict[str, tuple[str, float, float]] = {
    "US": ("USD", 1.0, 0.22), "GB": ("GBP", 0.62, 0.24), "CA": ("CAD", 1.05, 0.25),
    "IE": ("EUR", 0.72, 0.28), "AU": ("AUD", 1.15, 0.27), "DE": ("EUR", 0.75, 0.32),
    "NL": ("EUR", 0.72, 0.33), "FR": ("EUR", 0.62, 0.30), "ES": ("EUR", 0.45, 0.26),
    "PT": ("EUR", 0.35, 0.25), "MX": ("MXN", 4.5, 0.20), "BR": ("BRL", 2.2, 0.22),
    "NO": ("NOK", 7.5, 0.30), "DK": ("DKK", 5.2, 0.36), "SE": ("SEK", 6.8, 0.31),
    "PL": ("PLN", 1.6, 0.20), "CZ": ("CZK", 12.0, 0.20), "IN": ("INR", 22.0, 0.20),
    "SG": ("SGD", 1.1, 0.12), "GR": ("EUR", 0.32, 0.24), "CY": ("EUR", 0.40, 0.20),
    "BG": ("EUR", 0.20, 0.10), "RS": ("RSD", 18.0, 0.12), "KZ": ("KZT", 90.0, 0.10),
    "UA": ("UAH", 12.0, 0.20), "CN": ("CNY", 2.4, 0.20), "TW": ("TWD", 20.0, 0.12),
    "HK": ("HKD", 5.0, 0.12), "AE": ("AED", 2.8, 0.0), "SA": ("SAR", 2.6, 0.0),
    "EG": ("EGP", 25.0, 0.18), "JO": ("JOD", 0.45, 0.10), "MA": ("MAD", 5.0, 0.25),
}  # fmt: skip

_EMPLOYEE_NOTES = (
    "Relocated from the Berlin office in 2023",
    "Prefers to be contacted by email",
    "Works remotely (Lisbon)",
    "Part of the graduate programme",
    "Visa sponsorship renewed",
    "Returning from parental leave",
    "Mentor for new joiners",
    "Certified first aider",
    "Employee representative on the works council",
    "Transferred after the Globex acquisition",
)
_PAYROLL_MEMOS = (
    "Retroactive salary adjustment",
    "Includes expense reimbursement",
    "Back pay for previous period",
    "Manual correction by payroll",
    "Includes on-call allowance",
)
_TIMESHEET_NOTES = (
    "Client workshop",
    "Bug bash",
    "On-call rotation",
    "Travel to customer site",
    "Sprint planning and retro",
    "Code review backlog",
    "Quarter-end close support",
    "Training session",
)
_COMPLIANCE_NOTES = (
    "Reminder sent by email",
    "Completed in person",
    "Certificate uploaded to HRIS",
    "Escalated to line manager",
    "Extension granted by HR",
)

# (name, billable)
_PROJECTS: tuple[tuple[str, bool], ...] = (
    ("Apollo Migration", True), ("Customer Portal v2", True), ("Client: Umbrella Corp", True),
    ("Client: Wayne Enterprises", True), ("Client: Stark Industries", True),
    ("ERP Rollout, Phase 2", True), ("Mobile App (iOS/Android)", True), ("Data Warehouse", True),
    ("R&D: ML Forecasting", False), ("Internal Tools", False), ("Support Rotation", False),
    ("Q4 Audit", False), ("Onboarding", False), ("Non-billable: Training", False),
    ("Office Relocation", False),
)  # fmt: skip

# (record_type, weight in percent, five titles)
_COMPLIANCE_TYPES: tuple[tuple[str, int, tuple[str, str, str, str, str]], ...] = (
    ("training", 35, ("Information Security Awareness", "Anti-Harassment Training", "GDPR & Data Protection",
                      "Workplace Health & Safety", "Anti-Bribery and Corruption")),
    ("certification", 15, ("First Aid Certificate", "Forklift Operator Licence", "CPA Licence Renewal",
                           "AWS Solutions Architect", "PMP Certification")),
    ("background_check", 12, ("Criminal Record Check", "Employment History Verification", "Credit Check",
                              "Education Verification", "Reference Check")),
    ("right_to_work", 13, ("Passport Verification", "Work Permit Renewal", "Visa Sponsorship Review",
                           "Form I-9 Employment Eligibility", "Residence Permit")),
    ("policy_ack", 25, ("Code of Conduct 2026", "Remote Work Policy", "Acceptable Use Policy",
                        "Travel & Expense Policy", "Whistleblower Policy")),
)  # fmt: skip


# --------------------------------------------------------------------------------------------------
# SQL. `:name` placeholders (outside string literals) are bound by `_bind`. Every `random()` call sits
# in a subquery fenced with OFFSET 0 (or a MATERIALIZED CTE) whose rows come out in a fixed order, so
# the sequence of draws, and hence the data, depends only on `setseed()`. The other OFFSET 0 fences
# stop the planner from inlining a derived column into every expression that uses it.
#
# Speed notes: money is computed as bigint cents (float -> numeric conversion is slow, int -> numeric
# is not); timestamps come from to_timestamp(epoch seconds); and rows referencing employees are
# generated in employee-id order within each date, so the employee_id indexes are filled in ordered
# sweeps instead of random inserts (several times faster) while the date indexes are appended to.

_DEPARTMENTS_SQL = """
INSERT INTO departments (id, account_id, code, name)
SELECT (:ids::uuid[])[i], :account_id, (:codes::text[])[i], (:names::text[])[i]
FROM generate_series(1, cardinality(:ids::uuid[])) AS i
"""

_EMPLOYEES_SQL = """
INSERT INTO employees (id, account_id, department_id, employee_number, first_name, last_name, email,
                       job_title, country, employment_type, status, hire_date, termination_date, salary,
                       fte, is_manager, notes, updated_at)
SELECT md5(:slug::text || '/employee/' || g)::uuid,
       :account_id,
       (:department_ids::uuid[])[dept],
       emp_no,
       (:first_names::text[])[(:first_lo::int[])[c] + floor(r_first * (:first_n::int[])[c])::int],
       (:last_names::text[])[(:last_lo::int[])[c] + floor(r_last * (:last_n::int[])[c])::int],
       lower(emp_no) || '@' || :slug::text || '.example.com',
       (:titles::text[])[(dept - 1) * 5 + CASE WHEN mgr THEN 5 ELSE 1 + floor(r_title * 4)::int END],
       country,
       etype,
       status,
       hire,
       term,
       ((CASE WHEN mgr THEN 90000 + 95000 * power(r_salary, 1.5) ELSE 38000 + 92000 * power(r_salary, 2) END
         * CASE WHEN g % 23 = 0 THEN 1.0
                ELSE (:salary_factors::float8[])[array_position(:country_codes::text[], country)] END
         * fte_pct * CASE WHEN etype = 'contractor' THEN 1.2 ELSE 1.0 END)::bigint)::numeric / 100,
       fte_pct::numeric / 100,
       mgr,
       CASE WHEN g % 20 = 3 THEN (:escapes::text[])[1 + (g / 20) % cardinality(:escapes::text[])]
            WHEN r_note < 0.08
                 THEN (:notes::text[])[1 + floor(r_note / 0.08 * cardinality(:notes::text[]))::int] END,
       to_timestamp(((coalesce(term, hire) - DATE '1970-01-01')
                     + r_updated * (:as_of::date - coalesce(term, hire) + 0.75)) * 86400.0)
FROM (
    SELECT d.*,
           :prefix::text || '-' || lpad(g::text, :digits::int, '0') AS emp_no,
           CASE WHEN r_home < :home_share::float8 THEN :home_country::text
                ELSE (:country_pool::text[])[(:country_lo::int[])[c]
                                             + floor(r_country * (:country_n::int[])[c])::int] END
               AS country,
           CASE WHEN status = 'terminated' THEN hire + 1 + floor(r_term * (tenure - 1))::int END AS term,
           CASE etype WHEN 'full_time' THEN 100
                      WHEN 'part_time' THEN (ARRAY[80, 60, 50, 40])[1 + floor(r_fte * 4)::int]
                      ELSE (ARRAY[100, 100, 80, 50])[1 + floor(r_fte * 4)::int] END AS fte_pct
    FROM (
        SELECT r.*,
               (:culture_by_pct::int[])[1 + floor(r_culture * 100)::int] AS c,
               1 + floor(cardinality(:department_ids::uuid[]) * power(r_dept, 1.6))::int AS dept,
               r_mgr < 0.10 AS mgr,
               1 + floor(5474 * power(r_tenure, 1.35))::int AS tenure,
               :as_of::date - (1 + floor(5474 * power(r_tenure, 1.35))::int) AS hire,
               CASE WHEN r_status < 0.82 THEN 'active' WHEN r_status < 0.86 THEN 'on_leave'
                    ELSE 'terminated' END AS status,
               CASE WHEN r_mgr < 0.10 OR r_type < 0.80 THEN 'full_time' WHEN r_type < 0.92 THEN 'part_time'
                    ELSE 'contractor' END AS etype
        FROM (
            SELECT g, random() AS r_culture, random() AS r_first, random() AS r_last, random() AS r_home,
                   random() AS r_country, random() AS r_dept, random() AS r_mgr, random() AS r_title,
                   random() AS r_type, random() AS r_fte, random() AS r_status, random() AS r_tenure,
                   random() AS r_term, random() AS r_salary, random() AS r_note, random() AS r_updated
            FROM generate_series(1, :n::int) AS g
            OFFSET 0
        ) AS r
        OFFSET 0
    ) AS d
    OFFSET 0
) AS x
"""

# How many employees are on the payroll each month, as +/- events per month index (0 = the as-of
# month, 1 = the month before, ...): used to pick how far back `payroll` rows must go.
_PAYROLL_MONTHS_SQL = """
WITH e AS (
    SELECT (:as_of_month::int - (extract(year FROM hire_date)::int * 12 + extract(month FROM hire_date)::int))
               AS first_idx,
           (:as_of_month::int - (extract(year FROM coalesce(termination_date, :as_of::date))::int * 12
                                 + extract(month FROM coalesce(termination_date, :as_of::date))::int))
               AS last_idx
    FROM employees WHERE account_id = :account_id
)
SELECT m, sum(d)::int AS delta
FROM (SELECT last_idx AS m, 1 AS d FROM e UNION ALL SELECT first_idx + 1, -1 FROM e) AS ev
GROUP BY m ORDER BY m
"""

# One row per employee per month they were employed in, for the months `oldest` .. 0 (oldest first,
# employees in id order within a month), leaving out the first `skip` rows of the oldest month.
_PAYROLL_SQL = """
WITH months AS MATERIALIZED (
    SELECT idx, period_start, period_end,
           period_end - CASE extract(isodow FROM period_end) WHEN 6 THEN 1 WHEN 7 THEN 2 ELSE 0 END
               AS pay_date,  -- the last weekday of the month
           (period_end - period_start + 1)::float8 AS days
    FROM (
        SELECT idx,
               (date_trunc('month', :as_of::timestamp) - make_interval(months => idx))::date AS period_start,
               (date_trunc('month', :as_of::timestamp) - make_interval(months => idx - 1)
                - interval '1 day')::date AS period_end
        FROM generate_series(:oldest::int, 0, -1) AS idx
    ) AS m
), staff AS MATERIALIZED (
    SELECT id, employee_number, hire_date, termination_date,
           coalesce(termination_date, 'infinity'::date) AS end_date,
           salary::float8 / 12 AS monthly,
           fte::float8 AS fte,
           employment_type = 'contractor' AS contractor,
           CASE WHEN split_part(employee_number, '-', 2)::int % 23 = 0 THEN 'USD'
                ELSE (:currencies::text[])[array_position(:country_codes::text[], country)] END AS currency,
           (:tax_rates::float8[])[array_position(:country_codes::text[], country)] AS tax_rate
    FROM employees WHERE account_id = :account_id
    ORDER BY id
)
INSERT INTO payroll (account_id, employee_id, period_start, period_end, pay_date, hours_worked, gross_pay,
                     tax, deductions, net_pay, currency, status, memo, processed_at)
SELECT :account_id, id, period_start, period_end, pay_date,
       hours_c::numeric / 100, gross_c::numeric / 100, tax_c::numeric / 100, ded_c::numeric / 100,
       (gross_c - tax_c - ded_c)::numeric / 100,
       currency, status,
       CASE WHEN g % 20 = 3 THEN (:escapes::text[])[1 + (g / 20) % cardinality(:escapes::text[])]
            WHEN status = 'void' THEN 'Voided: duplicate run'
            WHEN termination_date <= period_end THEN 'Final pay, includes accrued leave'
            WHEN hire_date > period_start THEN 'Pro-rated: joined mid-period'
            WHEN bonus > 0 THEN 'Includes performance bonus'
            WHEN r_memo < 0.015
                 THEN (:memos::text[])[1 + floor(r_memo / 0.015 * cardinality(:memos::text[]))::int] END,
       CASE WHEN status IN ('approved', 'paid')
            THEN to_timestamp(((pay_date - DATE '1970-01-01') - 1 - floor(r_proc * 3)) * 86400.0
                              + 25200 + r_time * 39600) END
FROM (
    SELECT y.*,
           CASE WHEN contractor THEN 0 ELSE (gross_c * tax_rate * (0.9 + 0.2 * r_tax))::bigint END AS tax_c,
           CASE WHEN contractor THEN 0 ELSE (gross_c * (0.03 + 0.07 * r_ded))::bigint END AS ded_c
    FROM (
        SELECT src.*,
               (monthly * frac * hours_factor * (1 + bonus) * 100)::bigint AS gross_c,
               (17333 * fte * frac * hours_factor)::bigint AS hours_c,
               CASE WHEN idx = 0 THEN CASE WHEN r_status < 0.30 THEN 'draft' WHEN r_status < 0.85
                                           THEN 'approved' ELSE 'paid' END
                    WHEN idx = 1 THEN CASE WHEN r_status < 0.08 THEN 'approved' WHEN r_status < 0.985
                                           THEN 'paid' ELSE 'void' END
                    ELSE CASE WHEN r_status < 0.98 THEN 'paid' ELSE 'void' END END AS status
        FROM (
            SELECT w.*,
                   (least(period_end, end_date) - greatest(period_start, hire_date) + 1) / days AS frac,
                   CASE WHEN contractor THEN 0.75 + 0.5 * r_hours ELSE 0.97 + 0.06 * r_hours END
                       AS hours_factor,
                   CASE WHEN NOT contractor AND r_bonus < 0.05 THEN 0.05 + 0.25 * r_bonus_size ELSE 0 END
                       AS bonus
            FROM (
                SELECT row_number() OVER () AS g, p.*,
                       random() AS r_hours, random() AS r_bonus, random() AS r_bonus_size, random() AS r_tax,
                       random() AS r_ded, random() AS r_status, random() AS r_proc, random() AS r_time,
                       random() AS r_memo
                FROM (
                    SELECT mo.idx, mo.period_start, mo.period_end, mo.pay_date, mo.days, s.*
                    FROM months AS mo
                    CROSS JOIN LATERAL (
                        SELECT * FROM staff
                        WHERE staff.hire_date <= mo.period_end AND staff.end_date >= mo.period_start
                        OFFSET 0
                    ) AS s
                    OFFSET :skip::bigint
                ) AS p
                OFFSET 0
            ) AS w
            OFFSET 0
        ) AS src
        OFFSET 0
    ) AS y
    OFFSET 0
) AS z
"""

# `n` rows spread evenly over the weekdays in `days`; within a day, row j of R picks a random active
# employee from the j-th of R equal slices of the staff list (a stratified sample, in id order).
_TIMESHEETS_SQL = """
WITH staff AS MATERIALIZED (
    SELECT coalesce(
               array_agg(id ORDER BY id) FILTER (WHERE status = 'active' AND hire_date <= (:days::date[])[1]),
               array_agg(id ORDER BY id)  -- tiny accounts: anyone at all
           ) AS ids
    FROM employees
    WHERE account_id = :account_id
)
INSERT INTO timesheets (account_id, employee_id, work_date, project, hours, overtime_hours, billable, status,
                        approved_at, notes)
SELECT :account_id, employee_id, work_date, (:projects::text[])[p],
       hours_x4::numeric / 4, overtime_x2::numeric / 2,
       (:project_billable::bool[])[p] AND r_billable < 0.95,
       status,
       CASE WHEN status = 'approved'
            THEN to_timestamp(least((work_date - DATE '1970-01-01' + 1 + floor(r_appr * 6)) * 86400.0
                                    + 28800 + r_time * 36000,
                                    (:as_of::date - DATE '1970-01-01') * 86400.0 + 61200 + r_time * 21600))
       END,
       CASE WHEN g % 20 = 3 THEN (:escapes::text[])[1 + (g / 20) % cardinality(:escapes::text[])]
            WHEN r_note < 0.25
                 THEN (:notes::text[])[1 + floor(r_note / 0.25 * cardinality(:notes::text[]))::int] END
FROM (
    SELECT x.*,
           (:days::date[])[1 + di] AS work_date,
           staff.ids[1 + floor((g - first_g + r_emp) * cardinality(staff.ids) / (next_g - first_g))::int]
               AS employee_id,
           1 + floor(power(r_project, 1.3) * cardinality(:projects::text[]))::int AS p,
           CASE WHEN r_full < 0.55 THEN 32 ELSE 2 * (1 + floor(r_hours * 15)::int) END AS hours_x4,
           CASE WHEN r_ot < 0.12 THEN 1 + floor(r_ot_hours * 6)::int ELSE 0 END AS overtime_x2,
           CASE WHEN (:days::date[])[1 + di] > :as_of::date - 14
                THEN CASE WHEN r_status < 0.55 THEN 'submitted' WHEN r_status < 0.98 THEN 'approved'
                          ELSE 'rejected' END
                ELSE CASE WHEN r_status < 0.93 THEN 'approved' WHEN r_status < 0.96 THEN 'rejected'
                          ELSE 'submitted' END END AS status
    FROM (
        SELECT r.*, di,
               (di * :n::bigint + nd - 1) / nd AS first_g,  -- first row of the day
               ((di + 1) * :n::bigint + nd - 1) / nd AS next_g  -- the next day's first row
        FROM (
            SELECT g, random() AS r_emp, random() AS r_project, random() AS r_billable, random() AS r_full,
                   random() AS r_hours, random() AS r_ot, random() AS r_ot_hours, random() AS r_status,
                   random() AS r_appr, random() AS r_time, random() AS r_note
            FROM generate_series(0::bigint, :n::bigint - 1) AS g
            OFFSET 0
        ) AS r
        CROSS JOIN LATERAL (SELECT cardinality(:days::date[])::bigint AS nd) AS k
        CROSS JOIN LATERAL (SELECT g * nd / :n::bigint AS di) AS dd
        OFFSET 0
    ) AS x
    CROSS JOIN staff
    OFFSET 0
) AS z
"""

# Stratified like timesheets: record g of n belongs to the employee in the g-th of n slices of the
# staff list (id order), so the employee_id index is filled in one ordered sweep.
_COMPLIANCE_SQL = """
WITH staff AS MATERIALIZED (
    SELECT array_agg(id ORDER BY id) AS ids,
           array_agg(hire_date ORDER BY id) AS hires,
           array_agg(coalesce(termination_date, :as_of::date) ORDER BY id) AS ends
    FROM employees WHERE account_id = :account_id
)
INSERT INTO compliance (account_id, employee_id, record_type, title, status, due_date, completed_at,
                        expires_on, notes)
SELECT :account_id, employee_id, (:types::text[])[t],
       (:titles::text[])[(t - 1) * 5 + 1 + floor(r_title * 5)::int],
       status, due_date,
       CASE WHEN status = 'completed'
            THEN to_timestamp((done_on - DATE '1970-01-01') * 86400.0 + 28800 + r_time * 36000) END,
       CASE WHEN status = 'completed'
            THEN CASE (:types::text[])[t]
                     WHEN 'training' THEN done_on + interval '1 year'
                     WHEN 'certification' THEN done_on + (2 + floor(r_exp * 2)::int) * interval '1 year'
                     WHEN 'right_to_work' THEN done_on + (1 + floor(r_exp * 5)::int) * interval '1 year'
                 END::date END,
       CASE WHEN g % 20 = 3 THEN (:escapes::text[])[1 + (g / 20) % cardinality(:escapes::text[])]
            WHEN status = 'waived' THEN 'Waived by HR: equivalent certification on file'
            WHEN r_note < 0.12
                 THEN (:notes::text[])[1 + floor(r_note / 0.12 * cardinality(:notes::text[]))::int] END
FROM (
    SELECT y.*, greatest(hire, least(ends_on, due_date - 30 + floor(r_done * 36)::int)) AS done_on
    FROM (
        SELECT x.*,
               CASE WHEN status IN ('completed', 'waived')
                    THEN span_start + floor(r_due * (ends_on - span_start + 1))::int
                    WHEN status = 'pending' THEN :as_of::date + 1 + floor(r_due * 120)::int
                    ELSE :as_of::date - 1
                         - floor(r_due * least(90, greatest(:as_of::date - hire - 1, 0)))::int
               END AS due_date
        FROM (
            SELECT src.*, staff.ids[k] AS employee_id, staff.hires[k] AS hire, staff.ends[k] AS ends_on,
                   least(greatest(staff.hires[k], :as_of::date - 1095), staff.ends[k]) AS span_start,
                   (:type_by_pct::int[])[1 + floor(r_type * 100)::int] AS t,
                   CASE WHEN staff.ends[k] < :as_of::date
                        THEN CASE WHEN r_status < 0.85 THEN 'completed' ELSE 'waived' END
                        ELSE CASE WHEN r_status < 0.68 THEN 'completed' WHEN r_status < 0.83 THEN 'pending'
                                  WHEN r_status < 0.95 THEN 'overdue' ELSE 'waived' END END AS status
            FROM (
                SELECT g, random() AS r_emp, random() AS r_type, random() AS r_title, random() AS r_status,
                       random() AS r_due, random() AS r_done, random() AS r_time, random() AS r_exp,
                       random() AS r_note
                FROM generate_series(1, :n::int) AS g
                OFFSET 0
            ) AS src
            CROSS JOIN staff
            CROSS JOIN LATERAL (
                SELECT 1 + floor((src.g - 1 + src.r_emp) * cardinality(staff.ids) / :n::int)::int AS k
            ) AS pick
            OFFSET 0
        ) AS x
        OFFSET 0
    ) AS y
    OFFSET 0
) AS z
"""


_PLACEHOLDER = re.compile(r"--[^\n]*|'(?:[^']|'')*'|(?<![:\w]):([a-z_][a-z0-9_]*)")


def _bind(sql: str, params: dict[str, Any]) -> tuple[str, list[Any]]:
    """Turn `:name` placeholders into `$n` and return the matching argument list."""
    order: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:  # a string literal or a comment: leave it alone
            return match.group(0)
        if name not in order:
            order.append(name)
        return f"${order.index(name) + 1}"

    text = _PLACEHOLDER.sub(replace, sql)
    missing = [n for n in order if n not in params]
    if missing:
        raise KeyError(f"unbound SQL parameters: {missing}")
    return text, [params[n] for n in order]


async def _run(conn: asyncpg.Connection, sql: str, **params: Any) -> int:
    text, args = _bind(sql, params)
    status = await conn.execute(text, *args)
    return int(status.rsplit(" ", 1)[-1])


def _flatten(groups: list[tuple[str, ...]]) -> tuple[list[str], list[int], list[int]]:
    """Concatenate groups into one array, with each group's 1-based start and length."""
    flat: list[str] = []
    lo: list[int] = []
    n: list[int] = []
    for group in groups:
        lo.append(len(flat) + 1)
        n.append(len(group))
        flat.extend(group)
    return flat, lo, n


def _by_percent(weights: list[int]) -> list[int]:
    """A 100-entry lookup table: entry i is the 1-based index whose weight band covers percentile i."""
    assert sum(weights) == 100, weights
    return [i + 1 for i, w in enumerate(weights) for _ in range(w)]


def _md5_uuid(text: str) -> uuid.UUID:
    return uuid.UUID(hashlib.md5(text.encode()).hexdigest())  # noqa: S324


def _account_id(slug: str) -> uuid.UUID:
    return _md5_uuid(f"exporthub-demo/{slug}")


def _sizes(account: DemoAccount, employees: int, payroll: int) -> dict[str, int]:
    if account.scale_factor >= 1:
        n_emp, n_pay = employees, payroll
    else:
        n_emp = max(MIN_EMPLOYEES, round(employees * account.scale_factor))
        n_pay = max(MIN_PAYROLL, round(payroll * account.scale_factor))
    return {
        "employees": n_emp,
        "payroll": n_pay,
        "timesheets": max(MIN_TIMESHEETS, n_pay // 2),
        "compliance": max(MIN_COMPLIANCE, n_emp // 2),
    }


def _weekdays(first: dt.date, last: dt.date) -> list[dt.date]:
    days = (first + dt.timedelta(days=i) for i in range((last - first).days + 1))
    return [d for d in days if d.isoweekday() < 6]


def _months_back(deltas: list[asyncpg.Record], rows: int) -> tuple[int, int]:
    """Given per-month +/- events, return (oldest month index, rows to skip in it) for `rows` rows."""
    events = {r["m"]: r["delta"] for r in deltas}
    last = max(events, default=0)
    active = total = 0
    for m in range(last + 1):
        active += events.get(m, 0)
        total += active
        if total >= rows:
            return m, total - rows
    return last, 0  # fewer employee-months than requested: take them all


async def _seed_account(
    conn: asyncpg.Connection, account: DemoAccount, account_id: uuid.UUID, sizes: dict[str, int]
) -> dict[str, int]:
    profile = _PROFILES[account.slug]
    slug = account.slug
    as_of = DATA_AS_OF
    codes = list(_COUNTRIES)
    escapes = list(ESCAPE_TEST_VALUES)
    counts: dict[str, int] = {}

    # tenant_key spelled out: under session_replication_role = replica its default-setting trigger does not fire.
    await conn.execute(
        "INSERT INTO accounts (id, slug, name, tenant_key, is_demo) VALUES ($1, $2, $3, $4, true)",
        account_id,
        slug,
        account.name,
        str(account_id),
    )

    departments = _DEPARTMENTS[: profile.departments]
    department_ids = [_md5_uuid(f"{slug}/department/{i}") for i in range(1, len(departments) + 1)]
    counts["departments"] = await _run(
        conn,
        _DEPARTMENTS_SQL,
        account_id=account_id,
        ids=department_ids,
        codes=[d[0] for d in departments],
        names=[d[1] for d in departments],
    )

    firsts, first_lo, first_n = _flatten([c.first_names for c in _CULTURES])
    lasts, last_lo, last_n = _flatten([c.last_names for c in _CULTURES])
    pool, pool_lo, pool_n = _flatten([c.countries for c in _CULTURES])
    counts["employees"] = await _run(
        conn,
        _EMPLOYEES_SQL,
        slug=slug,
        account_id=account_id,
        n=sizes["employees"],
        prefix=profile.prefix,
        digits=max(6, len(str(sizes["employees"]))),
        home_country=profile.home_country,
        home_share=profile.home_share,
        department_ids=department_ids,
        as_of=as_of,
        culture_by_pct=_by_percent([c.weight for c in _CULTURES]),
        first_names=firsts,
        first_lo=first_lo,
        first_n=first_n,
        last_names=lasts,
        last_lo=last_lo,
        last_n=last_n,
        country_pool=pool,
        country_lo=pool_lo,
        country_n=pool_n,
        titles=[t for d in departments for t in d[2]],
        escapes=escapes,
        notes=list(_EMPLOYEE_NOTES),
        country_codes=codes,
        salary_factors=[_COUNTRIES[c][1] for c in codes],
    )

    as_of_month = as_of.year * 12 + as_of.month
    text, args = _bind(_PAYROLL_MONTHS_SQL, dict(as_of_month=as_of_month, as_of=as_of, account_id=account_id))
    oldest, skip = _months_back(await conn.fetch(text, *args), sizes["payroll"])
    counts["payroll"] = await _run(
        conn,
        _PAYROLL_SQL,
        account_id=account_id,
        oldest=oldest,
        skip=skip,
        as_of=as_of,
        country_codes=codes,
        currencies=[_COUNTRIES[c][0] for c in codes],
        tax_rates=[_COUNTRIES[c][2] for c in codes],
        escapes=escapes,
        memos=list(_PAYROLL_MEMOS),
    )

    counts["timesheets"] = await _run(
        conn,
        _TIMESHEETS_SQL,
        account_id=account_id,
        n=sizes["timesheets"],
        as_of=as_of,
        days=_weekdays(as_of - dt.timedelta(weeks=26), as_of),
        projects=[p[0] for p in _PROJECTS],
        project_billable=[p[1] for p in _PROJECTS],
        escapes=escapes,
        notes=list(_TIMESHEET_NOTES),
    )

    counts["compliance"] = await _run(
        conn,
        _COMPLIANCE_SQL,
        account_id=account_id,
        n=sizes["compliance"],
        as_of=as_of,
        types=[t[0] for t in _COMPLIANCE_TYPES],
        type_by_pct=_by_percent([t[1] for t in _COMPLIANCE_TYPES]),
        titles=[title for t in _COMPLIANCE_TYPES for title in t[2]],
        escapes=escapes,
        notes=list(_COMPLIANCE_NOTES),
    )
    return counts


def _account_seed(seed_value: float, index: int) -> float:
    """A per-account seed in [-1, 1], so an account's rows do not depend on which others exist."""
    if index == 0:
        return seed_value
    return ((seed_value + 1 + 0.618034 * index) % 2) - 1


@dataclasses.dataclass(frozen=True, slots=True)
class Seeded:
    rows: dict[str, dict[str, int]]  # rows inserted per account slug and table (all zero: it existed)
    api_keys: dict[str, str]  # slug -> the new account's API key, in clear (only accounts made now)


async def seed(
    conn: asyncpg.Connection, *, employees: int = 50_000, payroll: int = 500_000, seed_value: float = 0.42
) -> Seeded:
    """Create the demo accounts that do not exist yet, each with a new random API key.

    Accounts that already exist are skipped (their counts are all zero, and they get no key).
    """
    if not -1.0 <= seed_value <= 1.0:
        raise ValueError("seed_value must be between -1 and 1")
    if employees < 1 or payroll < 0:
        raise ValueError("employees must be positive and payroll non-negative")
    await conn.execute("SELECT setseed($1)", seed_value)
    superuser = await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    result: dict[str, dict[str, int]] = {}
    api_keys: dict[str, str] = {}
    for index, account in enumerate(DEMO_ACCOUNTS):
        account_id = _account_id(account.slug)
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
            if await conn.fetchval("SELECT 1 FROM accounts WHERE slug = $1", account.slug):
                result[account.slug] = dict.fromkeys(TABLES, 0)
                continue
            await conn.execute("SELECT setseed($1)", _account_seed(seed_value, index))
            saved = await conn.fetchrow(
                "SELECT current_setting('synchronous_commit') AS sc, current_setting('work_mem') AS wm,"
                " current_setting('session_replication_role') AS srr"
            )
            await conn.execute("SET LOCAL synchronous_commit = off; SET LOCAL work_mem = '64MB'")
            if superuser:
                # Rows reference each other by construction: skip the per-row foreign-key triggers.
                await conn.execute("SET LOCAL session_replication_role = replica")
            result[account.slug] = await _seed_account(conn, account, account_id, _sizes(account, employees, payroll))
            api_keys[account.slug] = await create_api_key(conn, account_id, label="demo")
            # Restore, in case the caller's connection is inside an outer transaction.
            await conn.execute(
                "SELECT set_config('synchronous_commit', $1, true), set_config('work_mem', $2, true)",
                saved["sc"],
                saved["wm"],
            )
            if superuser:
                await conn.execute("SELECT set_config('session_replication_role', $1, true)", saved["srr"])
    if any(any(counts.values()) for counts in result.values()):
        await conn.execute("ANALYZE accounts, api_keys, departments, employees, payroll, timesheets, compliance")
    return Seeded(result, api_keys)


async def is_seeded(conn: asyncpg.Connection | asyncpg.Pool) -> bool:
    """True when every demo account exists."""
    found = await conn.fetchval(
        "SELECT count(*) FROM accounts WHERE is_demo AND slug = ANY($1::text[])", [a.slug for a in DEMO_ACCOUNTS]
    )
    return found == len(DEMO_ACCOUNTS)


async def non_demo_accounts(conn: asyncpg.Connection) -> int:
    """How many accounts the seeder did not make: real customers, whom demo data must never join."""
    return int(await conn.fetchval("SELECT count(*) FROM accounts WHERE NOT is_demo"))


async def issue_demo_keys(conn: asyncpg.Connection, label: str) -> dict[str, str]:
    """A new API key (slug -> key, in clear) for every demo account; earlier keys with this label are revoked.

    `exporthub dev` calls it at every start with label "dev": keys are stored hashed, so the only way to
    show working keys is to make new ones, and revoking the previous run's leaves one set alive."""
    keys: dict[str, str] = {}
    async with conn.transaction():
        await conn.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE label = $1 AND revoked_at IS NULL"
            " AND account_id IN (SELECT id FROM accounts WHERE is_demo)",
            label,
        )
        for row in await conn.fetch("SELECT id, slug FROM accounts WHERE is_demo ORDER BY slug"):
            keys[row["slug"]] = await create_api_key(conn, row["id"], label=label)
    return keys
