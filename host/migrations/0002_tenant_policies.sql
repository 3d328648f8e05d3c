-- Tenant Cedar policy sets (immutable versions), the decision log, and the facts tenant
-- policies speak of: principal groups, file tags, the org switch for tenant permits.

ALTER TABLE workspaces ADD COLUMN policy_version BIGINT;
ALTER TABLE workspaces ADD COLUMN shadow_version BIGINT;
ALTER TABLE orgs ADD COLUMN allow_tenant_permits BIGINT NOT NULL DEFAULT 0;
ALTER TABLE principals ADD COLUMN groups TEXT NOT NULL DEFAULT '';
ALTER TABLE files ADD COLUMN tags TEXT NOT NULL DEFAULT '';

CREATE TABLE policy_versions (
    workspace_id    TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    version         BIGINT NOT NULL,
    source          TEXT NOT NULL,
    author          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    note            TEXT,
    PRIMARY KEY (workspace_id, version)
);

CREATE TABLE decision_log (
    id                  TEXT PRIMARY KEY,
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
    shadow_policy_ids   TEXT
);
CREATE INDEX decision_log_workspace ON decision_log (workspace_id, at_ms);
CREATE INDEX decision_log_at ON decision_log (at_ms);
