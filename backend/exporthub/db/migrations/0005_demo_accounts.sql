-- Demo accounts are flagged: only they can be signed in to without a key, and only under `exporthub dev`.
ALTER TABLE accounts ADD COLUMN is_demo boolean NOT NULL DEFAULT false;

-- The seeder's accounts: their ids are md5('exporthub-demo/<slug>') (db/seed.py `_account_id`).
UPDATE accounts SET is_demo = true
WHERE id IN (md5('exporthub-demo/acme')::uuid, md5('exporthub-demo/globex')::uuid, md5('exporthub-demo/initech')::uuid);

-- Earlier seeds gave the demo accounts fixed keys that were published in the source and the README:
-- revoke them (SHA-256 of each key, as api_keys stores it). `exporthub dev` prints fresh ones.
UPDATE api_keys SET revoked_at = now()
WHERE revoked_at IS NULL
  AND key_hash IN (
    decode('93116e0f0cfb0d452d999dbdd2bebff149345b51f0ad20e8fdbed59ca1786dbf', 'hex'),
    decode('f89ae77307b4fe99e92aef20603ffe4f84922855bb06418b0120bdd00590801b', 'hex'),
    decode('815ce12e5a12a93c92aab2ae79867e894ed8180ac32e18eca089fb3da88712c4', 'hex')
  );
