-- Download audit: one row per download of an export's file (the file served, or a 307 to the
-- bucket), with who asked: the API key or console session the request carried, or the signed
-- link alone. Kept EXPORTHUB_AUDIT_RETENTION_DAYS, then pruned by the scheduler's retention sweep.

-- Composite references below need (account_id, id) to be unique on the rows they name.
ALTER TABLE console_sessions ADD CONSTRAINT console_sessions_account_row UNIQUE (account_id, id);

CREATE TABLE export_downloads (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- insertion order: the list's order and cursor
    account_id          uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    export_id           uuid NOT NULL,
    downloaded_at       timestamptz NOT NULL DEFAULT now(),
    via                 text NOT NULL CHECK (via IN ('signed_link', 'api_key', 'console')),
    api_key_id          uuid,   -- the key sent along, or the one the console session was made with
    console_session_id  uuid,
    redirected          boolean NOT NULL,  -- answered 307 to a presigned URL (S3) instead of the file
    client_ip           text,
    user_agent          text,
    CONSTRAINT export_downloads_export_same_account
        FOREIGN KEY (account_id, export_id) REFERENCES export_jobs (account_id, id) ON DELETE CASCADE,
    -- An audit row outlives the key or session it names (MATCH SIMPLE: NULL skips the check).
    CONSTRAINT export_downloads_key_same_account
        FOREIGN KEY (account_id, api_key_id) REFERENCES api_keys (account_id, id) ON DELETE SET NULL (api_key_id),
    CONSTRAINT export_downloads_session_same_account
        FOREIGN KEY (account_id, console_session_id) REFERENCES console_sessions (account_id, id)
        ON DELETE SET NULL (console_session_id),
    CONSTRAINT export_downloads_user_agent_length CHECK (length(user_agent) <= 512),
    CONSTRAINT export_downloads_client_ip_length CHECK (length(client_ip) <= 64)
);
CREATE INDEX export_downloads_export ON export_downloads (account_id, export_id, id DESC);
CREATE INDEX export_downloads_age ON export_downloads (downloaded_at);
-- ON DELETE SET NULL from api_keys and console_sessions looks rows up by these.
CREATE INDEX export_downloads_api_key ON export_downloads (api_key_id) WHERE api_key_id IS NOT NULL;
CREATE INDEX export_downloads_session ON export_downloads (console_session_id) WHERE console_session_id IS NOT NULL;

-- The retention sweep deletes finished webhook events (their attempts cascade) oldest first.
CREATE INDEX webhook_events_finished_age ON webhook_events (created_at) WHERE state <> 'pending';
