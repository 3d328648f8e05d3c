-- Temporary file and folder locks. A path ending in `/` locks everything below it.
CREATE TABLE file_locks (
    id              TEXT PRIMARY KEY,
    workspace_id    TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    path            TEXT NOT NULL,
    holder_id       TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    created_at_ms   BIGINT NOT NULL,
    expires_at_ms   BIGINT NOT NULL,
    UNIQUE (workspace_id, path)
);
CREATE INDEX file_locks_expiry ON file_locks (workspace_id, expires_at_ms);
