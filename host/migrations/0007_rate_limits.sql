-- Per-token and per-organisation rate-limit overrides (requests per minute; NULL: default).
ALTER TABLE tokens ADD COLUMN rate_limit_per_minute BIGINT;
ALTER TABLE orgs ADD COLUMN rate_limit_per_minute BIGINT;
