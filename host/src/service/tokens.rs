//! Personal access tokens: create (for oneself, or for an agent one administers), list, show,
//! revoke. A token never carries scopes or workspaces its creator's credential does not hold.

use serde::{Deserialize, Serialize};

use super::{Warrant, check_name};
use crate::authz::{Action, Caller, Layer, ScopeSet};
use crate::credentials::pat::TokenSecret;
use crate::identity::{Org, Principal, PrincipalId, PrincipalKind, TokenId, WorkspaceId};
use crate::store::tokens::TokenRecord;
use crate::store::{self, is_unique_violation};
use crate::{Error, Result};

/// The longest lifetime any organisation may allow.
pub const MAX_TOKEN_DAYS_CAP: i64 = 366;
const DAY: i64 = 86_400;

/// What to mint.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What the token is for ("Weekly invoice downloader").
    pub name: String,
    /// Scope names, e.g. `["files:read"]`.
    pub scopes: Vec<String>,
    /// Workspace ids the token is limited to (omit for all of the principal's workspaces).
    pub workspaces: Option<Vec<String>>,
    /// Lifetime in days (default and maximum: the organisation's maximum).
    pub expires_in_days: Option<i64>,
    /// Mint for this agent instead of oneself.
    pub principal_id: Option<String>,
    /// Requests per minute allowed with this token (default: the organisation's limit).
    pub rate_limit_per_minute: Option<i64>,
}

/// A token as shown to its owner: never the secret (except `token`, once, at creation).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenView {
    /// `tok_…`
    pub id: String,
    /// The secret, present only in the response that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// What it is for.
    pub name: String,
    /// Whose token it is.
    pub principal_id: String,
    /// Scope names.
    pub scopes: Vec<String>,
    /// The workspaces it is limited to, or null.
    pub workspaces: Option<Vec<String>>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub expires_at: String,
    /// RFC 3339, or null.
    pub last_used_at: Option<String>,
    /// The address of the last use, or null.
    pub last_used_addr: Option<String>,
    /// RFC 3339, or null.
    pub revoked_at: Option<String>,
    /// Requests per minute allowed, or null for the default.
    pub rate_limit_per_minute: Option<i64>,
}

/// Unix seconds as RFC 3339.
pub fn rfc3339(secs: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(secs).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

impl TokenView {
    fn from_record(t: &TokenRecord, secret: Option<&TokenSecret>) -> Self {
        TokenView {
            id: t.id.0.clone(),
            token: secret.map(|s| s.expose().to_string()),
            name: t.name.clone(),
            principal_id: t.principal_id.0.clone(),
            scopes: t.scopes.split_whitespace().map(str::to_string).collect(),
            workspaces: t
                .workspaces
                .as_ref()
                .map(|ws| ws.iter().map(|w| w.0.clone()).collect()),
            created_at: rfc3339(t.created_at),
            expires_at: rfc3339(t.expires_at),
            last_used_at: t.last_used_at.map(rfc3339),
            last_used_addr: t.last_used_addr.clone(),
            revoked_at: t.revoked_at.map(rfc3339),
            rate_limit_per_minute: t.rate_limit_per_minute,
        }
    }
}

/// A checked request to mint a token, ready to store.
pub(super) struct Mint<'a> {
    pub principal: &'a PrincipalId,
    pub created_by: &'a PrincipalId,
    pub name: &'a str,
    pub scopes: ScopeSet,
    pub workspaces: Option<Vec<WorkspaceId>>,
    pub days: i64,
    pub rate_limit_per_minute: Option<i64>,
}

/// Stores a new token and returns its record and secret.
pub(super) async fn mint<'c>(
    db: impl sqlx::any::AnyExecutor<'c>,
    m: Mint<'_>,
) -> Result<(TokenRecord, TokenSecret)> {
    let secret = TokenSecret::generate();
    let now = store::now();
    let record = TokenRecord {
        id: TokenId::generate(),
        principal_id: m.principal.clone(),
        created_by: m.created_by.clone(),
        name: m.name.to_string(),
        scopes: m.scopes.to_space_separated(),
        workspaces: m.workspaces,
        created_at: now,
        expires_at: now + m.days * DAY,
        revoked_at: None,
        last_used_at: None,
        last_used_addr: None,
        rate_limit_per_minute: m.rate_limit_per_minute,
    };
    store::tokens::insert(db, &record, &secret.hash()).await?;
    Ok((record, secret))
}

/// Parses and checks scope names (non-empty, all known).
pub(super) fn parse_scopes(names: &[String]) -> Result<ScopeSet> {
    let scopes = ScopeSet::parse(names.iter().map(String::as_str))
        .map_err(|s| Error::Unprocessable(format!("unknown scope `{s}`")))?;
    if scopes.is_empty() {
        return Err(Error::Unprocessable(
            "a token needs at least one scope".into(),
        ));
    }
    Ok(scopes)
}

/// Checks a per-minute rate limit override.
pub(super) fn check_rate(rate: Option<i64>) -> Result<Option<i64>> {
    match rate {
        Some(r) if !(1..=1_000_000).contains(&r) => Err(Error::Unprocessable(
            "rate_limit_per_minute must be between 1 and 1000000".into(),
        )),
        other => Ok(other),
    }
}

/// Checks a lifetime against the organisation's maximum; None means the maximum.
pub(super) fn check_days(days: Option<i64>, org: &Org) -> Result<i64> {
    let max = org.max_token_days.min(MAX_TOKEN_DAYS_CAP);
    match days {
        None => Ok(max),
        Some(d) if d < 1 => Err(Error::Unprocessable(
            "expires_in_days must be at least 1: every token expires".into(),
        )),
        Some(d) if d > max => Err(Error::Unprocessable(format!(
            "expires_in_days may be at most {max} in this organisation"
        ))),
        Some(d) => Ok(d),
    }
}

impl Warrant {
    /// Mints a token for the caller or for an agent the caller administers.
    pub async fn create_token(&self, caller: &Caller, req: NewToken) -> Result<TokenView> {
        check_name("a token name", &req.name)?;
        let subject = self
            .token_subject(caller, req.principal_id.as_deref())
            .await?;
        let scopes = parse_scopes(&req.scopes)?;
        if let Some(missing) = caller.grant.scopes.first_missing(scopes) {
            return Err(Error::forbidden(
                Layer::Scope,
                format!("cannot grant `{missing}`: the creating credential does not hold it"),
            ));
        }
        let workspaces = self.token_workspaces(caller, req.workspaces).await?;
        let org = store::orgs::get(self.store.pool(), &subject.org_id)
            .await?
            .ok_or(Error::NotFound("organisation"))?;
        let days = check_days(req.expires_in_days, &org)?;
        let (record, secret) = mint(
            self.store.pool(),
            Mint {
                principal: &subject.id,
                created_by: &caller.principal.id,
                name: &req.name,
                scopes,
                workspaces,
                days,
                rate_limit_per_minute: check_rate(req.rate_limit_per_minute)?,
            },
        )
        .await?;
        self.audit(
            caller,
            "token.create",
            record.id.as_str(),
            Some(format!("for {} scopes {}", subject.id, record.scopes)),
        )
        .await;
        Ok(TokenView::from_record(&record, Some(&secret)))
    }

    /// Whom a new token is for: the caller, or an agent the caller administers.
    async fn token_subject(
        &self,
        caller: &Caller,
        principal_id: Option<&str>,
    ) -> Result<Principal> {
        let own_org = caller.principal.org_id.clone();
        match principal_id.filter(|p| *p != caller.principal.id.as_str()) {
            None => {
                self.org_access(caller, &own_org, Action::ManageOwnTokens)
                    .await?;
                Ok(Principal::clone(&caller.principal))
            }
            Some(other) => {
                let agent =
                    store::principals::get(self.store.pool(), &PrincipalId(other.to_string()))
                        .await?
                        .filter(|p| p.kind == PrincipalKind::Agent)
                        .ok_or(Error::NotFound("agent"))?;
                self.org_access(caller, &own_org, Action::ManageOwnTokens)
                    .await?;
                self.org_access(caller, &agent.org_id, Action::ManageAgents)
                    .await?;
                Ok(agent)
            }
        }
    }

    /// The workspace limits of a new token: within the creator's own limits, and only
    /// workspaces where the creator holds a role.
    async fn token_workspaces(
        &self,
        caller: &Caller,
        requested: Option<Vec<String>>,
    ) -> Result<Option<Vec<WorkspaceId>>> {
        let Some(requested) = requested else {
            return Ok(caller.grant.workspaces.clone());
        };
        if requested.is_empty() {
            return Err(Error::Unprocessable(
                "workspaces, when given, must name at least one workspace".into(),
            ));
        }
        let mut out: Vec<WorkspaceId> = Vec::with_capacity(requested.len());
        for ws in requested {
            let ws = WorkspaceId(ws);
            let holds = caller.grant.covers_workspace(&ws)
                && store::workspaces::member_role(self.store.pool(), &ws, &caller.principal.id)
                    .await?
                    .is_some();
            if !holds {
                return Err(Error::forbidden(
                    Layer::Workspace,
                    format!(
                        "cannot grant workspace {ws}: the creating credential does not hold it"
                    ),
                ));
            }
            if !out.contains(&ws) {
                out.push(ws);
            }
        }
        Ok(Some(out))
    }

    /// The tokens the caller holds or minted.
    pub async fn list_tokens(&self, caller: &Caller) -> Result<Vec<TokenView>> {
        self.org_access(caller, &caller.principal.org_id, Action::ManageOwnTokens)
            .await?;
        let records =
            store::tokens::list_visible_to(self.store.pool(), &caller.principal.id).await?;
        Ok(records
            .iter()
            .map(|t| TokenView::from_record(t, None))
            .collect())
    }

    /// One token the caller holds or minted (404 otherwise).
    pub async fn get_token(&self, caller: &Caller, id: &str) -> Result<TokenView> {
        let record = self.visible_token(caller, id).await?;
        Ok(TokenView::from_record(&record, None))
    }

    /// Revokes a token the caller holds or minted; takes effect on the next request.
    pub async fn revoke_token(&self, caller: &Caller, id: &str) -> Result<()> {
        let record = self.visible_token(caller, id).await?;
        store::tokens::revoke(self.store.pool(), &record.id, store::now()).await?;
        self.credentials_changed().await;
        self.audit(caller, "token.revoke", record.id.as_str(), None)
            .await;
        Ok(())
    }

    async fn visible_token(&self, caller: &Caller, id: &str) -> Result<TokenRecord> {
        self.org_access(caller, &caller.principal.org_id, Action::ManageOwnTokens)
            .await?;
        store::tokens::get(self.store.pool(), &TokenId(id.to_string()))
            .await?
            .filter(|t| {
                t.principal_id == caller.principal.id || t.created_by == caller.principal.id
            })
            .ok_or(Error::NotFound("token"))
    }
}

/// Maps a unique violation on insert to a 409 with `what`.
pub(super) fn conflict_on_unique(what: &str) -> impl FnOnce(sqlx::Error) -> Error + '_ {
    move |e| {
        if is_unique_violation(&e) {
            Error::Conflict(format!("{what} already exists"))
        } else {
            Error::Database(e)
        }
    }
}
