-- Each account's active (queued + processing) exports, kept by triggers on export_jobs, so that a
-- submit checks the cap (EXPORTHUB_MAX_ACTIVE_EXPORTS) by locking one small row instead of the
-- account's row plus a count: exports/account_scope.py `AccountJobs.insert_within_cap`.
-- Every way a job is inserted, changes status, is deleted or truncated goes through the triggers, so
-- the worker, the sweeps (recovery, expiry), cancels and disabled accounts need no code of their own.
CREATE TABLE account_active_exports (
    account_id  uuid PRIMARY KEY REFERENCES accounts ON DELETE CASCADE,
    active      integer NOT NULL DEFAULT 0 CHECK (active >= 0)
);

INSERT INTO account_active_exports (account_id, active)
SELECT a.id, count(j.id) FILTER (WHERE j.status IN ('queued', 'processing'))
  FROM accounts a LEFT JOIN export_jobs j ON j.account_id = a.id
 GROUP BY a.id;

-- An account gets its row from its first submit (AccountJobs.submit_state) or its first job.

-- Statement-level, over the statement's transition tables: a statement locks its job rows first and
-- the count rows last, in account order, so that two statements never wait on each other's count
-- row while holding a job row the other one wants. Progress updates change no status: no count row.
CREATE FUNCTION add_active_exports(changes jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    change record;
BEGIN
    FOR change IN
        SELECT key::uuid AS account_id, value::integer AS delta FROM jsonb_each_text(changes) ORDER BY key::uuid
    LOOP
        IF change.delta > 0 THEN  -- (the CHECK would refuse a negative row before ON CONFLICT looks)
            INSERT INTO account_active_exports AS c (account_id, active) VALUES (change.account_id, change.delta)
                ON CONFLICT (account_id) DO UPDATE SET active = c.active + change.delta;
        ELSE
            UPDATE account_active_exports SET active = active + change.delta WHERE account_id = change.account_id;
        END IF;
    END LOOP;
END $$;

CREATE FUNCTION count_inserted_exports() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM add_active_exports((
        SELECT jsonb_object_agg(account_id, n) FROM (
            SELECT account_id, count(*) AS n FROM new_jobs WHERE status IN ('queued', 'processing') GROUP BY account_id
        ) AS d));
    RETURN NULL;
END $$;

CREATE FUNCTION count_updated_exports() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM add_active_exports((
        SELECT jsonb_object_agg(account_id, n) FROM (
            SELECT account_id, sum(d) AS n FROM (
                SELECT account_id, 1 AS d FROM new_jobs WHERE status IN ('queued', 'processing')
                UNION ALL
                SELECT account_id, -1 FROM old_jobs WHERE status IN ('queued', 'processing')
            ) AS both_sides GROUP BY account_id HAVING sum(d) <> 0
        ) AS d));
    RETURN NULL;
END $$;

CREATE FUNCTION count_deleted_exports() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM add_active_exports((
        SELECT jsonb_object_agg(account_id, -n) FROM (
            SELECT account_id, count(*) AS n FROM old_jobs WHERE status IN ('queued', 'processing') GROUP BY account_id
        ) AS d));
    RETURN NULL;
END $$;

CREATE TRIGGER count_inserted_exports AFTER INSERT ON export_jobs
    REFERENCING NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION count_inserted_exports();
CREATE TRIGGER count_updated_exports AFTER UPDATE ON export_jobs
    REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION count_updated_exports();
CREATE TRIGGER count_deleted_exports AFTER DELETE ON export_jobs
    REFERENCING OLD TABLE AS old_jobs FOR EACH STATEMENT EXECUTE FUNCTION count_deleted_exports();

CREATE FUNCTION forget_active_exports() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE account_active_exports SET active = 0 WHERE active <> 0;
    RETURN NULL;
END $$;

CREATE TRIGGER forget_active_exports AFTER TRUNCATE ON export_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION forget_active_exports();
