-- The console: people sign in with a password, prove their address, and operators run it.

-- argon2id in its PHC string form ($argon2id$v=19$...); NULL until one is set (an invited
-- user, or the first operator made by `signer users create --admin`, sets it by a link).
ALTER TABLE users ADD COLUMN password_hash text CHECK (password_hash LIKE '$argon2id$%');
-- When the address was last proven by a link mailed to it; NULL: not yet.
ALTER TABLE users ADD COLUMN email_verified_at timestamptz;
-- Operators see every user and the service's health in the console.
ALTER TABLE users ADD COLUMN is_admin boolean NOT NULL DEFAULT false;

-- Links mailed for one use: verify an address, reset a password, accept an invitation.
-- Only the SHA-256 hex of the token is stored, so a leaked table opens nothing.
CREATE TABLE one_time_tokens (
    token_hash text PRIMARY KEY CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose text NOT NULL CHECK (purpose IN ('verify', 'reset', 'invite')),
    -- The address the link went to: for a change of email, the new one, taken on use.
    email text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);

CREATE INDEX one_time_tokens_user_id_idx ON one_time_tokens (user_id);

-- The console's request detail goes by request id within one user's rows.
CREATE INDEX usage_logs_user_id_request_id_idx ON usage_logs (user_id, request_id);

-- The requests page searches target and message for any words: without this, a search
-- that matches nothing reads every row the user has. pg_trgm ships with Postgres
-- (contrib) and is a trusted extension: a database owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX usage_logs_search_idx ON usage_logs
    USING gin ((target || ' ' || coalesce(error_message, '')) gin_trgm_ops);

-- The console's overview reads these instead of a month of raw rows: each user's requests
-- per UTC hour and latency bucket (bucket = width_bucket(ln(ms), ln(0.1), ln(100000), 96),
-- so 0 below 0.1 ms, 97 above 100 s, each bucket 15 % wider than the one before). Filled
-- by the console itself (accounts/usage_rollup.py) for hours that have ended.
CREATE TABLE usage_rollup (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hour timestamptz NOT NULL,
    bucket smallint NOT NULL,
    requests integer NOT NULL,
    failures integer NOT NULL,
    PRIMARY KEY (user_id, hour, bucket)
);

-- Up to which hour (exclusive) each user's rows have been rolled up.
CREATE TABLE usage_rollup_marks (
    user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    through timestamptz NOT NULL
);
