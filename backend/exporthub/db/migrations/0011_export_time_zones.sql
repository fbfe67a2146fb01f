-- The time zone an export shows its datetimes in and reads its date filters in (an IANA name, checked
-- by the application against the tz database), and each account's default for exports that name none
-- (`exporthub accounts set-timezone`). Exports made before keep UTC, as their files were.
ALTER TABLE accounts
    ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC' CHECK (length(time_zone) BETWEEN 1 AND 64);
ALTER TABLE export_jobs
    ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC' CHECK (length(time_zone) BETWEEN 1 AND 64);
