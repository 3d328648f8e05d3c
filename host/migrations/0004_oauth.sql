-- The OAuth 2.1 authorization server: clients, authorization codes, grants (refresh-token
-- families), refresh tokens, remembered consent, revoked access tokens, signing keys, and
-- sign-in sessions for the consent pages. Secrets are stored only as SHA-256 hashes.

CREATE TABLE oauth_clients (
    id              TEXT PRIMARY KEY,
    -- NULL for dynamically registered clients, which belong to no organisation.
    org_id          TEXT REFERENCES orgs (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    -- NULL for public clients.
    secret_hash     TEXT,
    -- One URI per line.
    redirect_uris   TEXT NOT NULL,
    grant_types     TEXT NOT NULL,
    scopes          TEXT NOT NULL,
    workspaces      TEXT,
    -- The principal a client-credentials token acts as (an agent, or the client's own).
    principal_id    TEXT REFERENCES principals (id) ON DELETE CASCADE,
    dynamic         BIGINT NOT NULL DEFAULT 0,
    created_by      TEXT,
    created_at      BIGINT NOT NULL,
    secret_rotated_at BIGINT
);
CREATE INDEX oauth_clients_org ON oauth_clients (org_id);

CREATE TABLE oauth_grants (
    id              TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    principal_id    TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    scopes          TEXT NOT NULL,
    workspaces      TEXT,
    resource        TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    revoked_at      BIGINT
);
CREATE INDEX oauth_grants_client ON oauth_grants (client_id);

CREATE TABLE oauth_codes (
    code_hash       TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    principal_id    TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    redirect_uri    TEXT NOT NULL,
    code_challenge  TEXT NOT NULL,
    resource        TEXT NOT NULL,
    scopes          TEXT NOT NULL,
    workspaces      TEXT,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT,
    grant_id        TEXT
);

CREATE TABLE oauth_refresh_tokens (
    token_hash      TEXT PRIMARY KEY,
    grant_id        TEXT NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT
);
CREATE INDEX oauth_refresh_tokens_grant ON oauth_refresh_tokens (grant_id);

CREATE TABLE oauth_consents (
    principal_id    TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    client_id       TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    scopes          TEXT NOT NULL,
    workspaces      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (principal_id, client_id, scopes)
);

-- Revoked access-token ids, grant ids and client ids: the deny-list every verification checks.
CREATE TABLE oauth_revocations (
    id              TEXT PRIMARY KEY,
    revoked_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);
CREATE INDEX oauth_revocations_revoked ON oauth_revocations (revoked_at);

CREATE TABLE oauth_signing_keys (
    kid             TEXT PRIMARY KEY,
    alg             TEXT NOT NULL,
    private_pkcs8   TEXT NOT NULL,
    public_x        TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    -- When a newer key took over signing; the public key is published until every token it
    -- signed has expired.
    retired_at      BIGINT
);

CREATE TABLE oauth_org_settings (
    org_id                  TEXT PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    dynamic_registration    BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE web_sessions (
    id_hash         TEXT PRIMARY KEY,
    principal_id    TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    csrf_token      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);
