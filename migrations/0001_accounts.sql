-- Accounts: the people who use the service and the API keys they sign requests with.
-- gen_random_uuid() is built into Postgres since 13, so no extension is needed.

CREATE TABLE users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Kept as typed; uniqueness ignores case through the index on lower(email) below,
    -- so a caller that forgets to lower-case cannot create a second account.
    email text NOT NULL CHECK (email LIKE '_%@_%'),
    created_at timestamptz NOT NULL DEFAULT now(),
    last_login timestamptz,
    is_active boolean NOT NULL DEFAULT true,
    tier text NOT NULL DEFAULT 'free' CHECK (tier IN ('free', 'api_key'))
);

-- Look-ups by address go through this index: WHERE lower(email) = lower($1).
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

CREATE TABLE api_keys (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- A user's keys go with the user; usage rows keep the key's id and prefix.
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Only the hex digest is stored (SHA-256 or HMAC-SHA-256): a leaked table leaks no key.
    key_hash text NOT NULL UNIQUE CHECK (key_hash ~ '^[0-9a-f]{64}$'),
    -- The visible start of the key, e.g. sk_live_AbCd1234, shown in listings and used by
    -- `revoke PREFIX`; unique so that revoking by prefix can only ever hit one key.
    prefix text NOT NULL UNIQUE,
    name text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used timestamptz,
    is_active boolean NOT NULL DEFAULT true,
    -- Limits of this key alone; NULL means the tier's limits apply.
    per_minute integer CHECK (per_minute > 0),
    per_day integer CHECK (per_day > 0)
);

CREATE INDEX api_keys_user_id_idx ON api_keys (user_id);
