-- Fair claims (exports/unscoped.py claim_fair) ask each waiting account when it last started an export.
CREATE INDEX export_jobs_account_started ON export_jobs (account_id, started_at DESC);
