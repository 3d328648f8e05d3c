//! Organisations and their users.

use serde::{Deserialize, Serialize};

use super::tokens::{conflict_on_unique, rfc3339};
use super::{Warrant, check_name};
use crate::authz::{Action, Caller, Target};
use crate::credentials::password;
use crate::identity::{Org, OrgId, OrgRole, Principal, PrincipalId, PrincipalKind};
use crate::store;
use crate::{Error, Result};

/// An organisation as shown over the API.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrgView {
    /// `org_…`
    pub id: String,
    /// Display name.
    pub name: String,
    /// The longest token lifetime allowed, in days.
    pub max_token_days: i64,
    /// Whether workspace policy sets may contain `permit`.
    pub allow_tenant_permits: bool,
    /// Requests per minute per token, or null for the server default.
    pub rate_limit_per_minute: Option<i64>,
    /// RFC 3339.
    pub created_at: String,
    /// Storage in use and the quota (also at `GET /orgs/{org}/usage`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageView>,
}

/// An organisation's storage: what is used and what it may use.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StorageView {
    /// Bytes stored in the organisation's files (every version in force, every workspace).
    pub used_bytes: i64,
    /// The quota in force, in bytes.
    pub quota_bytes: i64,
    /// What is left before writes are refused (0 when over the quota).
    pub available_bytes: i64,
    /// `org` when the organisation set its own quota, `default` for the server's.
    pub quota_source: &'static str,
}

impl From<&Org> for OrgView {
    fn from(o: &Org) -> Self {
        OrgView {
            id: o.id.0.clone(),
            name: o.name.clone(),
            max_token_days: o.max_token_days,
            allow_tenant_permits: o.allow_tenant_permits,
            rate_limit_per_minute: o.rate_limit_per_minute,
            created_at: rfc3339(o.created_at),
            storage: None,
        }
    }
}

/// Organisation settings to change (absent fields stay as they are).
#[derive(Debug, Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgSettings {
    /// The longest token lifetime, in days (1–366).
    pub max_token_days: Option<i64>,
    /// Whether workspace policy sets may contain `permit` policies. Off by default: tenant
    /// sets can then only narrow what the built-in roles grant.
    pub allow_tenant_permits: Option<bool>,
    /// Requests per minute per token of this organisation (tokens may override it).
    pub rate_limit_per_minute: Option<i64>,
    /// The organisation's storage quota in bytes, up to the server's ceiling
    /// (`--storage-quota-max-bytes`); `null` returns to the server's default.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub storage_quota_bytes: Option<Option<i64>>,
}

/// Tells a field that is present (even as `null`) from one that is absent.
fn present<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A user to create in an organisation.
#[derive(Debug, Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// The organisation.
    pub org_id: String,
    /// Sign-in address, unique.
    pub email: String,
    /// Display name (default: the e-mail address).
    pub name: Option<String>,
    /// Initial password (at least 12 characters); without one the user cannot sign in yet.
    pub password: Option<String>,
    /// `admin` or `member` (default).
    pub role: Option<String>,
    /// Group labels for Cedar (`principal in Group::"contractor"`).
    pub groups: Option<Vec<String>>,
}

/// A principal as shown over the API.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PrincipalView {
    /// `usr_…` or `agt_…`
    pub id: String,
    /// user | agent | client
    pub kind: &'static str,
    /// Display name.
    pub name: String,
    /// E-mail address (users).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The organisation.
    pub org_id: String,
    /// Who created it.
    pub created_by: Option<String>,
    /// Group labels.
    pub groups: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
}

impl From<&Principal> for PrincipalView {
    fn from(p: &Principal) -> Self {
        PrincipalView {
            id: p.id.0.clone(),
            kind: p.kind.as_str(),
            name: p.name.clone(),
            email: p.email.clone(),
            org_id: p.org_id.0.clone(),
            created_by: p.created_by.as_ref().map(|c| c.0.clone()),
            groups: p.groups.clone(),
            created_at: rfc3339(p.created_at),
        }
    }
}

/// Checks labels (groups, tags): 1–64 characters of `a-z`, `0-9`, `-`, `_`; at most 32.
pub(super) fn check_labels(what: &str, groups: Vec<String>) -> Result<Vec<String>> {
    if groups.len() > 32 {
        return Err(Error::Unprocessable(format!("at most 32 {what}s")));
    }
    for g in &groups {
        let ok = !g.is_empty()
            && g.len() <= 64
            && g.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !ok {
            return Err(Error::Unprocessable(format!(
                "{what} `{g}` must have 1 to 64 characters of a-z, 0-9, - and _"
            )));
        }
    }
    let mut groups = groups;
    groups.sort();
    groups.dedup();
    Ok(groups)
}

/// Checks the shape of an e-mail address (the mailbox itself is proven elsewhere).
pub(super) fn check_email(email: &str) -> Result<()> {
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') || domain == "localhost"
        });
    if ok {
        Ok(())
    } else {
        Err(Error::Unprocessable(format!(
            "`{email}` is not an e-mail address"
        )))
    }
}

impl Warrant {
    /// Founds an organisation; the caller becomes its owner.
    pub async fn create_org(&self, caller: &Caller, name: &str) -> Result<OrgView> {
        check_name("an organisation name", name)?;
        let org = Org {
            id: OrgId::generate(),
            name: name.trim().to_string(),
            max_token_days: 90,
            allow_tenant_permits: false,
            rate_limit_per_minute: None,
            created_at: store::now(),
        };
        self.authorize(
            caller,
            Action::CreateOrg,
            Target::Org {
                org: &org.id,
                role: None,
            },
        )?;
        let mut tx = self.store.pool().begin().await?;
        store::orgs::insert(&mut *tx, &org).await?;
        store::orgs::set_member(&mut *tx, &org.id, &caller.principal.id, OrgRole::Owner).await?;
        tx.commit().await?;
        self.audit(caller, "org.create", org.id.as_str(), None)
            .await;
        Ok(OrgView::from(&org))
    }

    /// An organisation the caller belongs to.
    pub async fn get_org(&self, caller: &Caller, id: &str) -> Result<OrgView> {
        let id = OrgId(id.to_string());
        self.org_access(caller, &id, Action::ReadOrg).await?;
        let org = store::orgs::get(self.store.pool(), &id)
            .await?
            .ok_or(Error::NotFound("organisation"))?;
        let mut view = OrgView::from(&org);
        view.storage = Some(self.storage_view(&id).await?);
        Ok(view)
    }

    /// An organisation's storage use and quota (any member may see it).
    pub async fn org_usage(&self, caller: &Caller, id: &str) -> Result<StorageView> {
        let id = OrgId(id.to_string());
        self.org_access(caller, &id, Action::ReadOrg).await?;
        self.storage_view(&id).await
    }

    async fn storage_view(&self, org: &OrgId) -> Result<StorageView> {
        let usage = store::quotas::usage(self.store.pool(), org)
            .await?
            .ok_or(Error::NotFound("organisation"))?;
        let quota = usage.quota.unwrap_or(self.settings.storage_quota_default);
        Ok(StorageView {
            used_bytes: usage.used,
            quota_bytes: quota,
            available_bytes: quota.saturating_sub(usage.used).max(0),
            quota_source: if usage.quota.is_some() {
                "org"
            } else {
                "default"
            },
        })
    }

    /// Hands the organisation to `to`, a human member: `to` becomes its owner (and owner of
    /// every workspace in it), every previous owner a `maintainer` with at most `viewer` in
    /// the workspaces it belonged to. One transaction; the caller must be an owner.
    pub async fn transfer_ownership(&self, caller: &Caller, id: &str, to: &str) -> Result<OrgView> {
        let id = OrgId(id.to_string());
        self.org_access(caller, &id, Action::TransferOwnership)
            .await?;
        let to = PrincipalId(to.to_string());
        let target = store::principals::get(self.store.pool(), &to)
            .await?
            .ok_or(Error::NotFound("principal"))?;
        if store::orgs::member_role(self.store.pool(), &id, &to)
            .await?
            .is_none()
        {
            return Err(Error::NotFound("principal"));
        }
        if target.kind != PrincipalKind::User {
            return Err(Error::Unprocessable(format!(
                "an organisation can only be handed to a human user, not to {} {}",
                target.kind.as_str(),
                target.id
            )));
        }
        if to == caller.principal.id {
            return Err(Error::Conflict(
                "the caller already owns the organisation".into(),
            ));
        }
        let mut tx = self.store.pool().begin().await?;
        let previous = store::orgs::transfer_ownership(&mut tx, &id, &to).await?;
        tx.commit().await?;
        self.audit(
            caller,
            "org.transfer_ownership",
            id.as_str(),
            Some(format!(
                "to={} previous_owners_now_maintainers={}",
                to,
                previous.join(",")
            )),
        )
        .await;
        // A maintainer may still read the organisation.
        self.get_org(caller, id.as_str()).await
    }

    /// Changes an organisation's settings.
    pub async fn update_org(&self, caller: &Caller, id: &str, req: OrgSettings) -> Result<OrgView> {
        let id = OrgId(id.to_string());
        self.org_access(caller, &id, Action::ManageOrg).await?;
        let mut org = store::orgs::get(self.store.pool(), &id)
            .await?
            .ok_or(Error::NotFound("organisation"))?;
        if let Some(days) = req.max_token_days {
            if !(1..=super::tokens::MAX_TOKEN_DAYS_CAP).contains(&days) {
                return Err(Error::Unprocessable(format!(
                    "max_token_days must be between 1 and {}",
                    super::tokens::MAX_TOKEN_DAYS_CAP
                )));
            }
            org.max_token_days = days;
        }
        if let Some(allow) = req.allow_tenant_permits {
            org.allow_tenant_permits = allow;
        }
        if req.rate_limit_per_minute.is_some() {
            org.rate_limit_per_minute = super::tokens::check_rate(req.rate_limit_per_minute)?;
        }
        let max = self.settings.storage_quota_max;
        if let Some(Some(q)) = req.storage_quota_bytes
            && !(0..=max).contains(&q)
        {
            return Err(Error::Unprocessable(format!(
                "storage_quota_bytes must be between 0 and {max} (the server's ceiling, set by \
                 its operator with --storage-quota-max-bytes)"
            )));
        }
        store::orgs::update_settings(self.store.pool(), &org).await?;
        self.credentials_changed().await;
        if let Some(quota) = req.storage_quota_bytes {
            store::quotas::set_quota(self.store.pool(), &id, quota).await?;
        }
        self.audit(
            caller,
            "org.update",
            id.as_str(),
            Some(format!(
                "max_token_days={} allow_tenant_permits={}{}",
                org.max_token_days,
                org.allow_tenant_permits,
                match req.storage_quota_bytes {
                    Some(Some(q)) => format!(" storage_quota_bytes={q}"),
                    Some(None) => " storage_quota_bytes=default".to_string(),
                    None => String::new(),
                }
            )),
        )
        .await;
        let mut view = OrgView::from(&org);
        view.storage = Some(self.storage_view(&id).await?);
        Ok(view)
    }

    /// Creates a user in an organisation the caller administers.
    pub async fn create_user(&self, caller: &Caller, req: NewUser) -> Result<PrincipalView> {
        let org = OrgId(req.org_id);
        self.org_access(caller, &org, Action::ManageUsers).await?;
        check_email(&req.email)?;
        let name = req.name.unwrap_or_else(|| req.email.clone());
        check_name("a user name", &name)?;
        let role = match req.role.as_deref() {
            None | Some("member") => OrgRole::Member,
            Some("admin") => OrgRole::Admin,
            Some(other) => {
                return Err(Error::Unprocessable(format!(
                    "role `{other}` cannot be given here; use `admin` or `member`"
                )));
            }
        };
        let password_hash = match req.password {
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
        let user = Principal {
            id: PrincipalId(crate::identity::new_id("usr")),
            kind: PrincipalKind::User,
            name,
            email: Some(req.email),
            org_id: org.clone(),
            created_by: Some(caller.principal.id.clone()),
            created_at: store::now(),
            groups: check_labels("group", req.groups.unwrap_or_default())?,
        };
        let mut tx = self.store.pool().begin().await?;
        store::principals::insert(&mut *tx, &user, password_hash.as_deref())
            .await
            .map_err(conflict_on_unique("a user with this e-mail address"))?;
        store::orgs::set_member(&mut *tx, &org, &user.id, role).await?;
        tx.commit().await?;
        self.audit(caller, "user.create", user.id.as_str(), None)
            .await;
        Ok(PrincipalView::from(&user))
    }
}
