//! Bringing up an empty database, and the operator's own helpers. These run with direct
//! database access (the operator is the root of trust), never over the network.

use serde::Serialize;

use super::Warrant;
use super::tokens::{Mint, check_days, mint, parse_scopes};
use crate::authz::ScopeSet;
use crate::credentials::password;
use crate::identity::{Org, OrgId, OrgRole, Principal, PrincipalId, PrincipalKind, WorkspaceId};
use crate::store;
use crate::{Error, Result};

/// The one JSON line `warrant bootstrap` prints.
#[derive(Debug, Serialize)]
pub struct BootstrapOutput {
    /// The owner.
    pub user_id: String,
    /// The first organisation.
    pub org_id: String,
    /// The owner's personal access token (shown this once).
    pub token: String,
}

/// The JSON line `warrant token issue` prints.
#[derive(Debug, Serialize)]
pub struct IssuedToken {
    /// The token id.
    pub id: String,
    /// The secret (shown this once).
    pub token: String,
}

impl Warrant {
    /// True when the database has no owner yet.
    pub async fn needs_bootstrap(&self) -> Result<bool> {
        Ok(!store::orgs::has_owner(self.store.pool()).await?)
    }

    /// Creates the first organisation, its owner and an owner token with every scope. Refuses,
    /// changing nothing, when the database already has an owner.
    pub async fn bootstrap(
        &self,
        email: &str,
        password: Option<String>,
        org_name: &str,
    ) -> Result<BootstrapOutput> {
        super::orgs::check_email(email)?;
        let password_hash = match password {
            Some(p) => {
                password::check_strength(&p)?;
                Some(
                    tokio::task::spawn_blocking(move || password::hash(&p))
                        .await
                        .map_err(|e| Error::Internal(e.to_string()))??,
                )
            }
            None => None,
        };
        let mut tx = self.store.pool().begin().await?;
        if store::orgs::has_owner(&mut *tx).await? {
            return Err(Error::Conflict(
                "this database already has an owner; bootstrap runs only once".into(),
            ));
        }
        let now = store::now();
        let org = Org {
            id: OrgId::generate(),
            name: org_name.to_string(),
            max_token_days: 90,
            allow_tenant_permits: false,
            rate_limit_per_minute: None,
            created_at: now,
        };
        store::orgs::insert(&mut *tx, &org).await?;
        let user = Principal {
            id: PrincipalId(crate::identity::new_id("usr")),
            kind: PrincipalKind::User,
            name: email.to_string(),
            email: Some(email.to_string()),
            org_id: org.id.clone(),
            created_by: None,
            created_at: now,
            groups: Vec::new(),
        };
        store::principals::insert(&mut *tx, &user, password_hash.as_deref()).await?;
        store::orgs::set_member(&mut *tx, &org.id, &user.id, OrgRole::Owner).await?;
        let (record, secret) = mint(
            &mut *tx,
            Mint {
                principal: &user.id,
                created_by: &user.id,
                name: "bootstrap owner token",
                scopes: ScopeSet::all(),
                workspaces: None,
                days: org.max_token_days,
                rate_limit_per_minute: None,
            },
        )
        .await?;
        store::audit::record(
            &mut *tx,
            &store::audit::AuditEntry {
                principal_id: Some(user.id.as_str()),
                credential_id: Some(record.id.as_str()),
                action: "bootstrap",
                target: org.id.as_str(),
                detail: None,
                client_addr: None,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(BootstrapOutput {
            user_id: user.id.0,
            org_id: org.id.0,
            token: secret.expose().to_string(),
        })
    }

    /// Operator helper: mints a personal access token for a user, found by e-mail.
    pub async fn issue_user_token(
        &self,
        email: &str,
        name: &str,
        scopes: &[String],
        workspaces: Option<Vec<String>>,
        days: Option<i64>,
    ) -> Result<IssuedToken> {
        super::check_name("a token name", name)?;
        let user = store::principals::find_user_by_email(self.store.pool(), email)
            .await?
            .ok_or(Error::NotFound("user"))?;
        let org = store::orgs::get(self.store.pool(), &user.org_id)
            .await?
            .ok_or(Error::NotFound("organisation"))?;
        let (record, secret) = mint(
            self.store.pool(),
            Mint {
                principal: &user.id,
                created_by: &user.id,
                name,
                scopes: parse_scopes(scopes)?,
                workspaces: workspaces.map(|ws| ws.into_iter().map(WorkspaceId).collect()),
                days: check_days(days, &org)?,
                rate_limit_per_minute: None,
            },
        )
        .await?;
        Ok(IssuedToken {
            id: record.id.0,
            token: secret.expose().to_string(),
        })
    }
}
