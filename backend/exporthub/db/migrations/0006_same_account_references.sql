-- A row can only point at a row of its own account: every reference between tenant tables is a
-- composite foreign key over (account_id, id), so that a payroll row can never name another
-- account's employee, whatever the code that wrote it.

ALTER TABLE departments ADD CONSTRAINT departments_account_row UNIQUE (account_id, id);
ALTER TABLE employees ADD CONSTRAINT employees_account_row UNIQUE (account_id, id);
ALTER TABLE api_keys ADD CONSTRAINT api_keys_account_row UNIQUE (account_id, id);
ALTER TABLE export_jobs ADD CONSTRAINT export_jobs_account_row UNIQUE (account_id, id);

ALTER TABLE employees
    DROP CONSTRAINT employees_department_id_fkey,
    ADD CONSTRAINT employees_department_same_account
        FOREIGN KEY (account_id, department_id) REFERENCES departments (account_id, id);

ALTER TABLE payroll
    DROP CONSTRAINT payroll_employee_id_fkey,
    ADD CONSTRAINT payroll_employee_same_account
        FOREIGN KEY (account_id, employee_id) REFERENCES employees (account_id, id) ON DELETE CASCADE;

ALTER TABLE timesheets
    DROP CONSTRAINT timesheets_employee_id_fkey,
    ADD CONSTRAINT timesheets_employee_same_account
        FOREIGN KEY (account_id, employee_id) REFERENCES employees (account_id, id) ON DELETE CASCADE;

ALTER TABLE compliance
    DROP CONSTRAINT compliance_employee_id_fkey,
    ADD CONSTRAINT compliance_employee_same_account
        FOREIGN KEY (account_id, employee_id) REFERENCES employees (account_id, id) ON DELETE CASCADE;

ALTER TABLE webhook_events
    DROP CONSTRAINT webhook_events_export_id_fkey,
    ADD CONSTRAINT webhook_events_export_same_account
        FOREIGN KEY (account_id, export_id) REFERENCES export_jobs (account_id, id) ON DELETE CASCADE;

-- A demo sign-in has no key (NULL): MATCH SIMPLE skips the check for it.
ALTER TABLE console_sessions
    DROP CONSTRAINT console_sessions_api_key_id_fkey,
    ADD CONSTRAINT console_sessions_key_same_account
        FOREIGN KEY (account_id, api_key_id) REFERENCES api_keys (account_id, id) ON DELETE CASCADE;
