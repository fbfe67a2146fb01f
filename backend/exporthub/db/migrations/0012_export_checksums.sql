-- The SHA-256 of each completed export's file (hex), hashed as the file was written: the status,
-- the completion events and the download's Repr-Digest header carry it. NULL for files made before.
ALTER TABLE export_jobs
    ADD COLUMN file_sha256 text CONSTRAINT export_jobs_file_sha256_hex CHECK (file_sha256 ~ '^[0-9a-f]{64}$');
