-- Signed webhooks: a signing secret per account, one row per event to deliver, one row per attempt.

-- Made on first need (whsec_...). A rotation keeps the previous secret signing until
-- previous_expires_at, so receivers can switch over without dropping events.
CREATE TABLE webhook_secrets (
    account_id           uuid PRIMARY KEY REFERENCES accounts ON DELETE CASCADE,
    secret               text NOT NULL,
    previous_secret      text,
    previous_expires_at  timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now()
);

-- The outbox: an event is recorded when its export ends; workers claim due rows and send them.
CREATE TABLE webhook_events (
    id               uuid PRIMARY KEY,                 -- the eventId receivers see, the same on every retry
    account_id       uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    export_id        uuid NOT NULL REFERENCES export_jobs ON DELETE CASCADE,
    event            text NOT NULL,                    -- export.completed | export.failed | export.cancelled
    url              text NOT NULL,
    body             text NOT NULL,                    -- the exact JSON sent (and signed) on every attempt
    state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,       -- claims; fences an attempt whose claim lapsed
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    locked_until     timestamptz,                      -- a claim; a dead worker's lapses and the row is sent again
    give_up_at       timestamptz NOT NULL,             -- no retry is scheduled after this
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    UNIQUE (export_id, event)
);
CREATE INDEX webhook_events_due ON webhook_events (next_attempt_at) WHERE state = 'pending';

CREATE TABLE webhook_attempts (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id       uuid NOT NULL REFERENCES webhook_events ON DELETE CASCADE,
    account_id     uuid NOT NULL,
    export_id      uuid NOT NULL,
    attempt        integer NOT NULL,
    url            text NOT NULL,
    status_code    integer,                            -- the receiver's answer, if any
    error          text,                               -- timeout, connection refused, refused address...
    duration_ms    integer NOT NULL,
    attempted_at   timestamptz NOT NULL DEFAULT now(),
    next_retry_at  timestamptz,                        -- NULL: delivered, or no more retries
    UNIQUE (event_id, attempt)
);
CREATE INDEX webhook_attempts_export ON webhook_attempts (export_id, attempted_at);

-- Finished exports with a webhook but no event yet (ended outside a worker, or the worker died first).
CREATE INDEX export_jobs_webhook_finished ON export_jobs (completed_at) WHERE webhook_url IS NOT NULL;
