-- One row per export: the source of truth for its state. Queue messages only point at it.
CREATE TABLE export_jobs (
    id                uuid PRIMARY KEY,
    account_id        uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    resource          text NOT NULL,
    format            text NOT NULL,
    filters           jsonb NOT NULL DEFAULT '{}',
    columns           text[] NOT NULL,
    options           jsonb NOT NULL DEFAULT '{}',
    webhook_url       text,
    status            text NOT NULL DEFAULT 'queued'
                      CHECK (status IN ('queued', 'processing', 'completed', 'failed', 'cancelled', 'expired')),
    progress          smallint NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    processed_rows    bigint NOT NULL DEFAULT 0,
    total_rows        bigint,
    file_key          text,
    file_name         text,
    file_size         bigint,
    error_message     text,
    cancel_requested  boolean NOT NULL DEFAULT false,
    attempts          integer NOT NULL DEFAULT 0,   -- runs started (claims)
    lease_expires_at  timestamptz,                  -- a processing job whose lease ran out is re-queued
    enqueued_at       timestamptz,
    idempotency_key   text,
    request_hash      text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    completed_at      timestamptz,
    expires_at        timestamptz
);
CREATE INDEX export_jobs_account_created ON export_jobs (account_id, created_at DESC);
CREATE INDEX export_jobs_active ON export_jobs (status, lease_expires_at)
    WHERE status IN ('queued', 'processing');
CREATE UNIQUE INDEX export_jobs_idempotency ON export_jobs (account_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
