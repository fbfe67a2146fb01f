-- The console pages through an account's exports by (created_at, id), newest first: with the id in the
-- index each page is one index range, however far back. It serves everything the old index did.
CREATE INDEX export_jobs_account_created_id ON export_jobs (account_id, created_at, id);
DROP INDEX export_jobs_account_created;
