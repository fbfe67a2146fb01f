-- Accounts that an operator administers, mapped to their tenant in the source database; keys that
-- can be named, limited to some resources, revoked; console sessions that end.

-- The value that a catalog resource's tenant expression must equal in the source database. The demo
-- catalog compares it with the account id, which is the default for an account made without one.
ALTER TABLE accounts ADD COLUMN tenant_key text;
UPDATE accounts SET tenant_key = id::text;
ALTER TABLE accounts ALTER COLUMN tenant_key SET NOT NULL;
ALTER TABLE accounts ADD CONSTRAINT accounts_tenant_key_not_blank CHECK (tenant_key <> '');

CREATE FUNCTION accounts_default_tenant_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.tenant_key := coalesce(NEW.tenant_key, NEW.id::text);
    RETURN NEW;
END
$$;
CREATE TRIGGER accounts_default_tenant_key BEFORE INSERT ON accounts
    FOR EACH ROW EXECUTE FUNCTION accounts_default_tenant_key();

-- A disabled account's keys stop working and its console sessions end.
ALTER TABLE accounts ADD COLUMN disabled_at timestamptz;

-- NULL: every resource of the catalog; otherwise only these resource keys.
ALTER TABLE api_keys ADD COLUMN resources text[];
ALTER TABLE api_keys ADD COLUMN last_used_at timestamptz;
CREATE INDEX api_keys_prefix ON api_keys (prefix);

-- Console sessions, kept server-side so that sign-out, key revocation and account disabling end
-- them. The cookie holds only the session id.
CREATE TABLE console_sessions (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id  uuid NOT NULL REFERENCES accounts ON DELETE CASCADE,
    api_key_id  uuid REFERENCES api_keys ON DELETE CASCADE,  -- NULL for a demo sign-in
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    ended_at    timestamptz
);
CREATE INDEX console_sessions_account ON console_sessions (account_id);
CREATE INDEX console_sessions_api_key ON console_sessions (api_key_id);
