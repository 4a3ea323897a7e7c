-- Usage: one row per signing request, and per-user daily counters for quotas.

-- One partition per UTC day (usage_logs_YYYYMMDD), created ahead of time and dropped
-- past retention by workers/partitions.py: dropping a day is instant and leaves no bloat.
-- There are no foreign keys here on purpose: a check per inserted row would slow the
-- batched COPY, and usage rows must outlive the user or key they mention.
CREATE TABLE usage_logs (
    id bigint GENERATED ALWAYS AS IDENTITY,
    created_at timestamptz NOT NULL DEFAULT now(),
    request_id text NOT NULL,
    user_id uuid,  -- NULL for anonymous callers
    api_key_id uuid,
    key_prefix text,
    client_ip inet,
    route text NOT NULL,
    dialect text NOT NULL,
    target text NOT NULL,  -- signed host and path, or the room URL
    success boolean NOT NULL,
    status_code smallint NOT NULL,
    error_type text,
    error_message text,
    response_time_ms real NOT NULL,
    queue_wait_ms real,
    worker_id text,
    profile text,
    -- Postgres requires the partition key in every unique constraint of the table.
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);

CREATE INDEX usage_logs_user_id_created_at_idx ON usage_logs (user_id, created_at);
CREATE INDEX usage_logs_api_key_id_created_at_idx ON usage_logs (api_key_id, created_at);

-- A safety net, normally empty. The upkeep creates each day's partition days ahead, but
-- without a default partition a row for a day that has none (upkeep not running for a
-- while, a clock far off) would fail its whole COPY batch and be lost. Here it lands
-- instead, and the next upkeep moves it into its day's partition when it creates it.
-- Kept empty, it also keeps cheap the scan Postgres makes of it whenever a day is added.
CREATE TABLE usage_logs_default PARTITION OF usage_logs DEFAULT;

CREATE TABLE quota_usage (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    date date NOT NULL,  -- UTC day
    request_count bigint NOT NULL DEFAULT 0 CHECK (request_count >= 0),
    PRIMARY KEY (user_id, date)
);

-- For the upkeep's retention delete, which goes by date across all users.
CREATE INDEX quota_usage_date_idx ON quota_usage (date);
