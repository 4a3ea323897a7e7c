-- Usage rows of the connect routes (issue 11): which room, how the connect was answered,
-- what TikTok said and how long it took; and what a request cost against its limits.
-- All nullable (or defaulted) so sign rows and rows written before this file stay valid;
-- on a partitioned table ADD COLUMN reaches every partition at once, without a rewrite.
ALTER TABLE usage_logs
    ADD COLUMN room_id text,            -- decimal text: room ids exceed 2^53
    ADD COLUMN strategy text,           -- fetch | socket (connect routes only)
    ADD COLUMN upstream_status smallint,  -- TikTok's HTTP status, when it answered
    ADD COLUMN upstream_ms real,        -- TikTok's part of the answer time
    ADD COLUMN cost smallint NOT NULL DEFAULT 1;  -- requests it counted as (SIGNER_LIMIT_CONNECT_WEIGHT)
