-- An account's own start rate (`exporthub accounts set-rate`): at most start_rate_limit new exports in
-- any start_rate_window_seconds. Both NULL: the deployment's EXPORTHUB_START_RATE. The bounds are
-- settings.py's MAX_RATE_LIMIT and MAX_RATE_WINDOW_SECONDS.
ALTER TABLE accounts
    ADD COLUMN start_rate_limit integer,
    ADD COLUMN start_rate_window_seconds integer,
    ADD CONSTRAINT accounts_start_rate CHECK (
        (start_rate_limit IS NULL AND start_rate_window_seconds IS NULL)
        OR (start_rate_limit BETWEEN 1 AND 100000 AND start_rate_window_seconds BETWEEN 1 AND 86400)
    );
