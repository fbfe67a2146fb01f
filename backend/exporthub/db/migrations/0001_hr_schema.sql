-- Accounts (tenants), their API keys, and the HR data that gets exported.

CREATE TABLE accounts (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Keys are random 32-byte tokens, so a plain SHA-256 is enough; only the hash is stored.
CREATE TABLE api_keys (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id  uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    key_hash    bytea NOT NULL UNIQUE,
    prefix      text NOT NULL,
    label       text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX api_keys_account ON api_keys (account_id);

CREATE TABLE departments (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id  uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    code        text NOT NULL,
    name        text NOT NULL,
    UNIQUE (account_id, code)
);

CREATE TABLE employees (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id        uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    department_id     uuid NOT NULL REFERENCES departments,
    employee_number   text NOT NULL,
    first_name        text NOT NULL,
    last_name         text NOT NULL,
    email             text NOT NULL,
    job_title         text NOT NULL,
    country           text NOT NULL,
    employment_type   text NOT NULL,
    status            text NOT NULL CHECK (status IN ('active', 'on_leave', 'terminated')),
    hire_date         date NOT NULL,
    termination_date  date,
    salary            numeric(12, 2) NOT NULL,
    fte               numeric(4, 2) NOT NULL,
    is_manager        boolean NOT NULL DEFAULT false,
    notes             text,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, employee_number)
);
CREATE INDEX employees_account_hire ON employees (account_id, hire_date, id);
CREATE INDEX employees_account_department ON employees (account_id, department_id);

CREATE TABLE payroll (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id    uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    employee_id   uuid NOT NULL REFERENCES employees ON DELETE CASCADE,
    period_start  date NOT NULL,
    period_end    date NOT NULL,
    pay_date      date NOT NULL,
    hours_worked  numeric(6, 2) NOT NULL,
    gross_pay     numeric(12, 2) NOT NULL,
    tax           numeric(12, 2) NOT NULL,
    deductions    numeric(12, 2) NOT NULL,
    net_pay       numeric(12, 2) NOT NULL,
    currency      text NOT NULL,
    status        text NOT NULL CHECK (status IN ('draft', 'approved', 'paid', 'void')),
    memo          text,
    processed_at  timestamptz
);
CREATE INDEX payroll_account_pay_date ON payroll (account_id, pay_date, id);
CREATE INDEX payroll_employee ON payroll (employee_id);

CREATE TABLE timesheets (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id      uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    employee_id     uuid NOT NULL REFERENCES employees ON DELETE CASCADE,
    work_date       date NOT NULL,
    project         text NOT NULL,
    hours           numeric(5, 2) NOT NULL,
    overtime_hours  numeric(5, 2) NOT NULL DEFAULT 0,
    billable        boolean NOT NULL,
    status          text NOT NULL CHECK (status IN ('submitted', 'approved', 'rejected')),
    approved_at     timestamptz,
    notes           text
);
CREATE INDEX timesheets_account_work_date ON timesheets (account_id, work_date, id);
CREATE INDEX timesheets_employee ON timesheets (employee_id);

CREATE TABLE compliance (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id    uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    employee_id   uuid NOT NULL REFERENCES employees ON DELETE CASCADE,
    record_type   text NOT NULL,
    title         text NOT NULL,
    status        text NOT NULL CHECK (status IN ('pending', 'completed', 'overdue', 'waived')),
    due_date      date NOT NULL,
    completed_at  timestamptz,
    expires_on    date,
    notes         text
);
CREATE INDEX compliance_account_due_date ON compliance (account_id, due_date, id);
CREATE INDEX compliance_employee ON compliance (employee_id);
