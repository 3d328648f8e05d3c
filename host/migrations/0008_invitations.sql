-- Invitations: a single-use, expiring token that lets a person join an organisation with a
-- role by signing up. Only the token's SHA-256 is stored.
CREATE TABLE invitations (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    email           TEXT NOT NULL,
    role            TEXT NOT NULL,
    token_hash      TEXT NOT NULL UNIQUE,
    created_by      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    accepted_at     BIGINT,
    accepted_by     TEXT,
    revoked_at      BIGINT
);
CREATE INDEX invitations_org ON invitations (org_id, created_at);
