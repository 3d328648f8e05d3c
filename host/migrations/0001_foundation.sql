-- Warrant's foundation schema. Portable SQL: the same file runs on SQLite and PostgreSQL.
-- Times are unix seconds (BIGINT). Secrets never appear: only their SHA-256 or argon2id hashes.

CREATE TABLE orgs (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    max_token_days  BIGINT NOT NULL DEFAULT 90 CHECK (max_token_days BETWEEN 1 AND 366),
    created_at      BIGINT NOT NULL
);

CREATE TABLE principals (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('user', 'agent', 'client')),
    name            TEXT NOT NULL,
    email           TEXT UNIQUE,
    password_hash   TEXT,
    org_id          TEXT NOT NULL REFERENCES orgs (id),
    created_by      TEXT REFERENCES principals (id) ON DELETE SET NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX principals_org ON principals (org_id, kind);

CREATE TABLE org_members (
    org_id          TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    principal_id    TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    role            TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'maintainer')),
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (org_id, principal_id)
);
CREATE INDEX org_members_principal ON org_members (principal_id);

CREATE TABLE workspaces (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE workspace_members (
    workspace_id    TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    principal_id    TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    role            TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'editor', 'viewer')),
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, principal_id)
);
CREATE INDEX workspace_members_principal ON workspace_members (principal_id);

CREATE TABLE tokens (
    id              TEXT PRIMARY KEY,
    secret_hash     TEXT NOT NULL UNIQUE,
    principal_id    TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    created_by      TEXT NOT NULL,
    name            TEXT NOT NULL,
    scopes          TEXT NOT NULL,
    workspaces      TEXT,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    revoked_at      BIGINT,
    last_used_at    BIGINT,
    last_used_addr  TEXT
);
CREATE INDEX tokens_principal ON tokens (principal_id);

CREATE TABLE files (
    workspace_id    TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    path            TEXT NOT NULL,
    blob_id         TEXT NOT NULL,
    size            BIGINT NOT NULL,
    sha256          TEXT NOT NULL,
    content_type    TEXT NOT NULL,
    etag            TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    updated_by      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, path)
);

CREATE TABLE audit_log (
    id              TEXT PRIMARY KEY,
    at              BIGINT NOT NULL,
    principal_id    TEXT,
    credential_id   TEXT,
    action          TEXT NOT NULL,
    target          TEXT NOT NULL,
    detail          TEXT,
    client_addr     TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
