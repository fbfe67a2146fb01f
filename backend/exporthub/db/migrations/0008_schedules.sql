-- Scheduled exports: an export request run at the due times of a cron expression in a time zone.
-- Each run is a normal export (export_jobs); the schedule keeps its next due time and its last run.
CREATE TABLE schedules (
    id              uuid PRIMARY KEY,
    account_id      uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    name            text NOT NULL DEFAULT '',
    export          jsonb NOT NULL,        -- the export request as given (POST /api/v1/exports' body)
    cron            text NOT NULL,
    time_zone       text NOT NULL,         -- IANA name: the cron expression and the window are read in it
    date_window     jsonb,                 -- {"kind": ..., "days": ...}: sets dateFrom/dateTo at each run
    enabled         boolean NOT NULL DEFAULT true,
    -- The due time of the next run (UTC), NULL while paused. A run claims its due time by moving this
    -- on, in the transaction that holds the row (FOR UPDATE SKIP LOCKED): one run per due time.
    next_run_at     timestamptz,
    retry_at        timestamptz,           -- a due run that found the account at its cap waits until then
    last_due_at     timestamptz,
    last_run_at     timestamptz,
    last_outcome    text CHECK (last_outcome IN ('submitted', 'waiting', 'failed')),
    last_error      text,
    last_export_id  uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT schedules_account_row UNIQUE (account_id, id),
    CONSTRAINT schedules_paused_has_no_next_run CHECK (enabled = (next_run_at IS NOT NULL)),
    -- The last run's export is one of the schedule's account's; deleting the export forgets it.
    CONSTRAINT schedules_last_export_same_account FOREIGN KEY (account_id, last_export_id)
        REFERENCES export_jobs (account_id, id) ON DELETE SET NULL (last_export_id)
);
CREATE INDEX schedules_due ON schedules (next_run_at) WHERE enabled;
CREATE INDEX schedules_account ON schedules (account_id, created_at);
