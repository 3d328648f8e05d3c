-- Wasm policy plugins: uploaded components (every version kept, bytes in the database so
-- every replica can compile them), their attachment to workspaces, and plugin verdicts in
-- the decision log.

CREATE TABLE plugins (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    latest_version  BIGINT NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE plugin_versions (
    plugin_id       TEXT NOT NULL REFERENCES plugins (id) ON DELETE CASCADE,
    version         BIGINT NOT NULL,
    digest          TEXT NOT NULL,
    size_bytes      BIGINT NOT NULL,
    wasm            BYTEA NOT NULL,
    uploaded_by     TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (plugin_id, version)
);

CREATE TABLE plugin_attachments (
    workspace_id    TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    plugin_id       TEXT NOT NULL REFERENCES plugins (id),
    config          TEXT NOT NULL,
    mode            TEXT NOT NULL,
    position        BIGINT NOT NULL,
    attached_by     TEXT NOT NULL,
    attached_at     BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, plugin_id)
);
CREATE INDEX plugin_attachments_plugin ON plugin_attachments (plugin_id);

-- Bumped on every attach, detach, config change and new version of an attached plugin, so
-- every replica reloads the workspace's plugin list on its next request.
ALTER TABLE workspaces ADD COLUMN plugins_version BIGINT NOT NULL DEFAULT 0;

ALTER TABLE decision_log ADD COLUMN plugins TEXT;
