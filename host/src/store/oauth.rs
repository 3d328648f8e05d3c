//! The OAuth authorization server's tables: clients, codes, grants, refresh tokens, consent,
//! the revocation deny-list, signing keys, per-org settings and sign-in sessions.

use sqlx::any::{AnyExecutor, AnyRow};
use sqlx::{AssertSqlSafe, Row};

use crate::identity::{OrgId, PrincipalId, WorkspaceId};
use crate::oauth::keys::StoredKey;

fn join_ws(ws: Option<&Vec<WorkspaceId>>) -> Option<String> {
    ws.map(|ws| {
        ws.iter()
            .map(WorkspaceId::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    })
}

fn split_ws(s: Option<String>) -> Option<Vec<WorkspaceId>> {
    s.map(|s| {
        s.split_whitespace()
            .map(|w| WorkspaceId(w.to_string()))
            .collect()
    })
}

// ---------------------------------------------------------------------------------------------
// Clients

/// A registered client, without its secret.
#[derive(Debug, Clone)]
pub struct ClientRecord {
    /// The `client_id` (`oac_…`).
    pub id: String,
    /// The owning organisation; None for dynamically registered clients.
    pub org_id: Option<OrgId>,
    /// Display name, shown on the consent page.
    pub name: String,
    /// The SHA-256 of the secret; None for public clients.
    pub secret_hash: Option<String>,
    /// Exact redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Allowed grant types.
    pub grant_types: Vec<String>,
    /// Allowed scopes, space separated.
    pub scopes: String,
    /// Workspaces tokens may be limited to at most; None: no client-side limit.
    pub workspaces: Option<Vec<WorkspaceId>>,
    /// The principal client-credentials tokens act as.
    pub principal_id: Option<PrincipalId>,
    /// Registered through RFC 7591.
    pub dynamic: bool,
    /// Who registered it (None for dynamic registration).
    pub created_by: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// When the secret was last rotated.
    pub secret_rotated_at: Option<i64>,
}

impl ClientRecord {
    /// True when the client has a secret.
    pub fn is_confidential(&self) -> bool {
        self.secret_hash.is_some()
    }

    /// True when the client may use `grant_type`.
    pub fn allows_grant(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }
}

const CLIENT_COLUMNS: &str = "id, org_id, name, secret_hash, redirect_uris, grant_types, scopes, \
    workspaces, principal_id, dynamic, created_by, created_at, secret_rotated_at";

fn client_from_row(r: &AnyRow) -> Result<ClientRecord, sqlx::Error> {
    Ok(ClientRecord {
        id: r.try_get("id")?,
        org_id: r.try_get::<Option<String>, _>("org_id")?.map(OrgId),
        name: r.try_get("name")?,
        secret_hash: r.try_get("secret_hash")?,
        redirect_uris: r
            .try_get::<String, _>("redirect_uris")?
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
        grant_types: r
            .try_get::<String, _>("grant_types")?
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        scopes: r.try_get("scopes")?,
        workspaces: split_ws(r.try_get("workspaces")?),
        principal_id: r
            .try_get::<Option<String>, _>("principal_id")?
            .map(PrincipalId),
        dynamic: r.try_get::<i64, _>("dynamic")? != 0,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        secret_rotated_at: r.try_get("secret_rotated_at")?,
    })
}

/// Stores a new client.
pub async fn insert_client<'c>(
    db: impl AnyExecutor<'c>,
    c: &ClientRecord,
) -> Result<(), sqlx::Error> {
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO oauth_clients ({CLIENT_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    )))
    .bind(&c.id)
    .bind(c.org_id.as_ref().map(OrgId::as_str))
    .bind(&c.name)
    .bind(c.secret_hash.as_deref())
    .bind(c.redirect_uris.join("\n"))
    .bind(c.grant_types.join(" "))
    .bind(&c.scopes)
    .bind(join_ws(c.workspaces.as_ref()))
    .bind(c.principal_id.as_ref().map(PrincipalId::as_str))
    .bind(i64::from(c.dynamic))
    .bind(c.created_by.as_deref())
    .bind(c.created_at)
    .bind(c.secret_rotated_at)
    .execute(db)
    .await?;
    Ok(())
}

/// One client.
pub async fn get_client<'c>(
    db: impl AnyExecutor<'c>,
    id: &str,
) -> Result<Option<ClientRecord>, sqlx::Error> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {CLIENT_COLUMNS} FROM oauth_clients WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await?
    .map(|r| client_from_row(&r))
    .transpose()
}

/// The clients of an organisation, oldest first.
pub async fn list_clients<'c>(
    db: impl AnyExecutor<'c>,
    org: &OrgId,
) -> Result<Vec<ClientRecord>, sqlx::Error> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {CLIENT_COLUMNS} FROM oauth_clients WHERE org_id = $1 ORDER BY created_at, id"
    )))
    .bind(org.as_str())
    .fetch_all(db)
    .await?
    .iter()
    .map(client_from_row)
    .collect()
}

/// Replaces a client's secret hash.
pub async fn set_client_secret<'c>(
    db: impl AnyExecutor<'c>,
    id: &str,
    secret_hash: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE oauth_clients SET secret_hash = $2, secret_rotated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(secret_hash)
        .bind(at)
        .execute(db)
        .await?;
    Ok(())
}

/// Deletes a client; its codes, grants, refresh tokens and consents cascade.
pub async fn delete_client<'c>(db: impl AnyExecutor<'c>, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM oauth_clients WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() > 0)
}

// ---------------------------------------------------------------------------------------------
// Grants (refresh-token families)

/// What a user (or a client for itself) granted a client.
#[derive(Debug, Clone)]
pub struct GrantRecord {
    /// `grt_…`
    pub id: String,
    /// The client.
    pub client_id: String,
    /// The principal tokens act as.
    pub principal_id: PrincipalId,
    /// Space-separated scopes.
    pub scopes: String,
    /// Workspace limits.
    pub workspaces: Option<Vec<WorkspaceId>>,
    /// The token audience.
    pub resource: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Absolute expiry of the family.
    pub expires_at: i64,
    /// When revoked.
    pub revoked_at: Option<i64>,
}

const GRANT_COLUMNS: &str = "g.id, g.client_id, g.principal_id, g.scopes, g.workspaces, g.resource, g.created_at, g.expires_at, g.revoked_at";

fn grant_from_row(r: &AnyRow) -> Result<GrantRecord, sqlx::Error> {
    Ok(GrantRecord {
        id: r.try_get("id")?,
        client_id: r.try_get("client_id")?,
        principal_id: PrincipalId(r.try_get("principal_id")?),
        scopes: r.try_get("scopes")?,
        workspaces: split_ws(r.try_get("workspaces")?),
        resource: r.try_get("resource")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

/// Stores a grant.
pub async fn insert_grant<'c>(
    db: impl AnyExecutor<'c>,
    g: &GrantRecord,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO oauth_grants (id, client_id, principal_id, scopes, workspaces, resource, \
         created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&g.id)
    .bind(&g.client_id)
    .bind(g.principal_id.as_str())
    .bind(&g.scopes)
    .bind(join_ws(g.workspaces.as_ref()))
    .bind(&g.resource)
    .bind(g.created_at)
    .bind(g.expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// One grant.
pub async fn get_grant<'c>(
    db: impl AnyExecutor<'c>,
    id: &str,
) -> Result<Option<GrantRecord>, sqlx::Error> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {GRANT_COLUMNS} FROM oauth_grants g WHERE g.id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await?
    .map(|r| grant_from_row(&r))
    .transpose()
}

/// Revokes a grant; true when it was live.
pub async fn revoke_grant<'c>(
    db: impl AnyExecutor<'c>,
    id: &str,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE oauth_grants SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(at)
            .execute(db)
            .await?;
    Ok(done.rows_affected() > 0)
}

// ---------------------------------------------------------------------------------------------
// Authorization codes

/// An authorization code, stored by hash.
#[derive(Debug, Clone)]
pub struct CodeRecord {
    /// The client it was issued to.
    pub client_id: String,
    /// The user who approved.
    pub principal_id: PrincipalId,
    /// The redirect URI of the authorization request.
    pub redirect_uri: String,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    /// The token audience.
    pub resource: String,
    /// Approved scopes.
    pub scopes: String,
    /// Approved workspaces.
    pub workspaces: Option<Vec<WorkspaceId>>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// When first redeemed.
    pub used_at: Option<i64>,
    /// The grant its redemption created.
    pub grant_id: Option<String>,
}

/// Stores a code.
pub async fn insert_code<'c>(
    db: impl AnyExecutor<'c>,
    hash: &str,
    c: &CodeRecord,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO oauth_codes (code_hash, client_id, principal_id, redirect_uri, code_challenge, \
         resource, scopes, workspaces, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(hash)
    .bind(&c.client_id)
    .bind(c.principal_id.as_str())
    .bind(&c.redirect_uri)
    .bind(&c.code_challenge)
    .bind(&c.resource)
    .bind(&c.scopes)
    .bind(join_ws(c.workspaces.as_ref()))
    .bind(c.created_at)
    .bind(c.expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// A code by hash.
pub async fn get_code<'c>(
    db: impl AnyExecutor<'c>,
    hash: &str,
) -> Result<Option<CodeRecord>, sqlx::Error> {
    sqlx::query(
        "SELECT client_id, principal_id, redirect_uri, code_challenge, resource, scopes, workspaces, \
         created_at, expires_at, used_at, grant_id FROM oauth_codes WHERE code_hash = $1",
    )
    .bind(hash)
    .fetch_optional(db)
    .await?
    .map(|r| {
        Ok(CodeRecord {
            client_id: r.try_get("client_id")?,
            principal_id: PrincipalId(r.try_get("principal_id")?),
            redirect_uri: r.try_get("redirect_uri")?,
            code_challenge: r.try_get("code_challenge")?,
            resource: r.try_get("resource")?,
            scopes: r.try_get("scopes")?,
            workspaces: split_ws(r.try_get("workspaces")?),
            created_at: r.try_get("created_at")?,
            expires_at: r.try_get("expires_at")?,
            used_at: r.try_get("used_at")?,
            grant_id: r.try_get("grant_id")?,
        })
    })
    .transpose()
}

/// Marks a code used; true only for the one caller that got there first.
pub async fn claim_code<'c>(
    db: impl AnyExecutor<'c>,
    hash: &str,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE oauth_codes SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL")
            .bind(hash)
            .bind(at)
            .execute(db)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Records the grant a code's redemption created (so a replay can revoke it).
pub async fn set_code_grant<'c>(
    db: impl AnyExecutor<'c>,
    hash: &str,
    grant_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE oauth_codes SET grant_id = $2 WHERE code_hash = $1")
        .bind(hash)
        .bind(grant_id)
        .execute(db)
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Refresh tokens

/// A refresh token, stored by hash.
#[derive(Debug, Clone)]
pub struct RefreshRecord {
    /// Its family.
    pub grant_id: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Idle expiry.
    pub expires_at: i64,
    /// When it was exchanged (rotated); a second use is a reuse.
    pub used_at: Option<i64>,
}

/// Stores a refresh token.
pub async fn insert_refresh<'c>(
    db: impl AnyExecutor<'c>,
    hash: &str,
    r: &RefreshRecord,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO oauth_refresh_tokens (token_hash, grant_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(hash)
    .bind(&r.grant_id)
    .bind(r.created_at)
    .bind(r.expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// A refresh token by hash, with its grant.
pub async fn find_refresh<'c>(
    db: impl AnyExecutor<'c>,
    hash: &str,
) -> Result<Option<(RefreshRecord, GrantRecord)>, sqlx::Error> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {GRANT_COLUMNS}, r.grant_id AS r_grant_id, r.created_at AS r_created_at, \
         r.expires_at AS r_expires_at, r.used_at AS r_used_at \
         FROM oauth_refresh_tokens r JOIN oauth_grants g ON g.id = r.grant_id WHERE r.token_hash = $1"
    )))
    .bind(hash)
    .fetch_optional(db)
    .await?
    .map(|r| {
        Ok((
            RefreshRecord {
                grant_id: r.try_get("r_grant_id")?,
                created_at: r.try_get("r_created_at")?,
                expires_at: r.try_get("r_expires_at")?,
                used_at: r.try_get("r_used_at")?,
            },
            grant_from_row(&r)?,
        ))
    })
    .transpose()
}

/// Marks a refresh token used; true only for the first caller.
pub async fn claim_refresh<'c>(
    db: impl AnyExecutor<'c>,
    hash: &str,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE oauth_refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL",
    )
    .bind(hash)
    .bind(at)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

// ---------------------------------------------------------------------------------------------
// Consent

/// The workspaces a user last granted `client` for exactly `scopes`, if remembered.
pub async fn get_consent<'c>(
    db: impl AnyExecutor<'c>,
    principal: &PrincipalId,
    client: &str,
    scopes: &str,
) -> Result<Option<Vec<WorkspaceId>>, sqlx::Error> {
    sqlx::query(
        "SELECT workspaces FROM oauth_consents WHERE principal_id = $1 AND client_id = $2 AND scopes = $3",
    )
    .bind(principal.as_str())
    .bind(client)
    .bind(scopes)
    .fetch_optional(db)
    .await?
    .map(|r| Ok(split_ws(Some(r.try_get("workspaces")?)).unwrap_or_default()))
    .transpose()
}

/// Remembers a consent (replacing an earlier one for the same scopes).
pub async fn put_consent<'c>(
    db: impl AnyExecutor<'c>,
    principal: &PrincipalId,
    client: &str,
    scopes: &str,
    workspaces: &[WorkspaceId],
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO oauth_consents (principal_id, client_id, scopes, workspaces, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (principal_id, client_id, scopes) \
         DO UPDATE SET workspaces = excluded.workspaces, created_at = excluded.created_at",
    )
    .bind(principal.as_str())
    .bind(client)
    .bind(scopes)
    .bind(
        workspaces
            .iter()
            .map(WorkspaceId::as_str)
            .collect::<Vec<_>>()
            .join(" "),
    )
    .bind(at)
    .execute(db)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The revocation deny-list

/// Denies `id` (a token id, grant id or client id) until `expires_at`.
pub async fn insert_revocation<'c>(
    db: impl AnyExecutor<'c>,
    id: &str,
    revoked_at: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO oauth_revocations (id, revoked_at, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(revoked_at)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// Live revocations made at or after `since`: (id, revoked_at, expires_at).
pub async fn revocations_since<'c>(
    db: impl AnyExecutor<'c>,
    since: i64,
    now: i64,
) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    sqlx::query(
        "SELECT id, revoked_at, expires_at FROM oauth_revocations WHERE revoked_at >= $1 AND expires_at > $2",
    )
    .bind(since)
    .bind(now)
    .fetch_all(db)
    .await?
    .iter()
    .map(|r| Ok((r.try_get("id")?, r.try_get("revoked_at")?, r.try_get("expires_at")?)))
    .collect()
}

/// Forgets revocations whose tokens have all expired.
pub async fn prune_revocations<'c>(db: impl AnyExecutor<'c>, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM oauth_revocations WHERE expires_at <= $1")
        .bind(now)
        .execute(db)
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Signing keys

/// Stores a signing key.
pub async fn insert_key<'c>(db: impl AnyExecutor<'c>, k: &StoredKey) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO oauth_signing_keys (kid, alg, private_pkcs8, public_x, created_at, retired_at) \
         VALUES ($1, 'EdDSA', $2, $3, $4, $5)",
    )
    .bind(&k.kid)
    .bind(&k.private_pkcs8)
    .bind(&k.public_x)
    .bind(k.created_at)
    .bind(k.retired_at)
    .execute(db)
    .await?;
    Ok(())
}

/// Every signing key, oldest first.
pub async fn list_keys<'c>(db: impl AnyExecutor<'c>) -> Result<Vec<StoredKey>, sqlx::Error> {
    sqlx::query(
        "SELECT kid, private_pkcs8, public_x, created_at, retired_at FROM oauth_signing_keys \
         ORDER BY created_at, kid",
    )
    .fetch_all(db)
    .await?
    .iter()
    .map(|r| {
        Ok(StoredKey {
            kid: r.try_get("kid")?,
            private_pkcs8: r.try_get("private_pkcs8")?,
            public_x: r.try_get("public_x")?,
            created_at: r.try_get("created_at")?,
            retired_at: r.try_get("retired_at")?,
        })
    })
    .collect()
}

/// Retires every live key but `keep`.
pub async fn retire_keys_except<'c>(
    db: impl AnyExecutor<'c>,
    keep: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE oauth_signing_keys SET retired_at = $2 WHERE kid <> $1 AND retired_at IS NULL",
    )
    .bind(keep)
    .bind(at)
    .execute(db)
    .await?;
    Ok(())
}

/// Deletes keys retired before `before` (every token they signed has expired).
pub async fn delete_keys_retired_before<'c>(
    db: impl AnyExecutor<'c>,
    before: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM oauth_signing_keys WHERE retired_at IS NOT NULL AND retired_at < $1")
        .bind(before)
        .execute(db)
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Organisation settings

/// Whether the organisation accepts dynamically registered clients (default: yes).
pub async fn dynamic_registration<'c>(
    db: impl AnyExecutor<'c>,
    org: &OrgId,
) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("SELECT dynamic_registration FROM oauth_org_settings WHERE org_id = $1")
            .bind(org.as_str())
            .fetch_optional(db)
            .await?
            .map(|r| r.try_get::<i64, _>("dynamic_registration"))
            .transpose()?
            .is_none_or(|v| v != 0),
    )
}

/// Turns dynamic registration on or off for an organisation.
pub async fn set_dynamic_registration<'c>(
    db: impl AnyExecutor<'c>,
    org: &OrgId,
    on: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO oauth_org_settings (org_id, dynamic_registration) VALUES ($1, $2) \
         ON CONFLICT (org_id) DO UPDATE SET dynamic_registration = excluded.dynamic_registration",
    )
    .bind(org.as_str())
    .bind(i64::from(on))
    .execute(db)
    .await?;
    Ok(())
}

/// True when at least one organisation accepts dynamically registered clients.
pub async fn any_org_allows_dynamic<'c>(db: impl AnyExecutor<'c>) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "SELECT COUNT(*) AS n FROM orgs o LEFT JOIN oauth_org_settings s ON s.org_id = o.id \
         WHERE s.dynamic_registration IS NULL OR s.dynamic_registration <> 0",
    )
    .fetch_one(db)
    .await?;
    Ok(r.try_get::<i64, _>("n")? > 0)
}

// ---------------------------------------------------------------------------------------------
// Users and sessions

/// A user's id and password hash, by e-mail address.
pub async fn user_password<'c>(
    db: impl AnyExecutor<'c>,
    email: &str,
) -> Result<Option<(PrincipalId, Option<String>)>, sqlx::Error> {
    sqlx::query("SELECT id, password_hash FROM principals WHERE kind = 'user' AND email = $1")
        .bind(email)
        .fetch_optional(db)
        .await?
        .map(|r| Ok((PrincipalId(r.try_get("id")?), r.try_get("password_hash")?)))
        .transpose()
}

/// Stores a sign-in session.
pub async fn insert_session<'c>(
    db: impl AnyExecutor<'c>,
    id_hash: &str,
    principal: &PrincipalId,
    csrf: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO web_sessions (id_hash, principal_id, csrf_token, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id_hash)
    .bind(principal.as_str())
    .bind(csrf)
    .bind(now)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// A live session: its principal and CSRF token.
pub async fn get_session<'c>(
    db: impl AnyExecutor<'c>,
    id_hash: &str,
    now: i64,
) -> Result<Option<(PrincipalId, String)>, sqlx::Error> {
    sqlx::query(
        "SELECT principal_id, csrf_token FROM web_sessions WHERE id_hash = $1 AND expires_at > $2",
    )
    .bind(id_hash)
    .bind(now)
    .fetch_optional(db)
    .await?
    .map(|r| {
        Ok((
            PrincipalId(r.try_get("principal_id")?),
            r.try_get("csrf_token")?,
        ))
    })
    .transpose()
}

/// Every dynamically registered client, oldest first.
pub async fn list_dynamic_clients<'c>(
    db: impl AnyExecutor<'c>,
) -> Result<Vec<ClientRecord>, sqlx::Error> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT {CLIENT_COLUMNS} FROM oauth_clients WHERE dynamic <> 0 ORDER BY created_at, id"
    )))
    .fetch_all(db)
    .await?
    .iter()
    .map(client_from_row)
    .collect()
}

/// Forgets expired sign-in sessions and authorization codes older than a day.
pub async fn prune_expired<'c, E>(db: E, now: i64) -> Result<(), sqlx::Error>
where
    E: AnyExecutor<'c> + Copy,
{
    sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(db)
        .await?;
    sqlx::query("DELETE FROM oauth_codes WHERE expires_at <= $1")
        .bind(now - 86_400)
        .execute(db)
        .await?;
    Ok(())
}
