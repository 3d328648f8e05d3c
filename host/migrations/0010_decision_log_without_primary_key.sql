-- The decision log is written on every request, and each index is written with every row. The
-- primary key's index on the id served only the hourly retention purge (0009), which now goes
-- workspace by workspace through the per-workspace index (store::decisions::purge_older_than).
-- Ids stay unique by construction (UUIDv7 after `dec_`) and still order decisions made in the
-- same millisecond. Neither database can drop a primary key in a way the other accepts, so
-- the table is rebuilt: the same columns, the rows copied, the index made again.
CREATE TABLE decision_log_rebuilt (
    id                  TEXT NOT NULL,
    at_ms               BIGINT NOT NULL,
    workspace_id        TEXT,
    principal_id        TEXT NOT NULL,
    principal_kind      TEXT NOT NULL,
    credential_id       TEXT NOT NULL,
    action              TEXT NOT NULL,
    resource            TEXT NOT NULL,
    transport           TEXT NOT NULL,
    allowed             BIGINT NOT NULL,
    layer               TEXT,
    policy_ids          TEXT NOT NULL,
    reasons             TEXT NOT NULL,
    elapsed_us          BIGINT NOT NULL,
    policy_version      BIGINT,
    shadow_version      BIGINT,
    shadow_allowed      BIGINT,
    shadow_policy_ids   TEXT,
    plugins             TEXT
);
INSERT INTO decision_log_rebuilt (id, at_ms, workspace_id, principal_id, principal_kind,
    credential_id, action, resource, transport, allowed, layer, policy_ids, reasons, elapsed_us,
    policy_version, shadow_version, shadow_allowed, shadow_policy_ids, plugins)
SELECT id, at_ms, workspace_id, principal_id, principal_kind, credential_id, action, resource,
    transport, allowed, layer, policy_ids, reasons, elapsed_us, policy_version, shadow_version,
    shadow_allowed, shadow_policy_ids, plugins
FROM decision_log;
DROP TABLE decision_log;
ALTER TABLE decision_log_rebuilt RENAME TO decision_log;
CREATE INDEX decision_log_workspace ON decision_log (workspace_id, at_ms);
