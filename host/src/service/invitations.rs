//! Invitations: an org admin (a person or an agent) invites someone by e-mail with a role;
//! the invited person signs up with the single-use, expiring token and joins. The token is
//! shown once and stored only as a hash.

use serde::{Deserialize, Serialize};

use super::orgs::{PrincipalView, check_email};
use super::{Warrant, check_name, rfc3339};
use crate::authz::{Action, Caller};
use crate::credentials::password;
use crate::identity::{OrgId, OrgRole, Principal, PrincipalId, PrincipalKind, new_id};
use crate::oauth::secrets::{self, Secret};
use crate::store::{self, invitations::Invitation};
use crate::{Error, Result};

/// The prefix of invitation tokens.
pub const INVITATION_PREFIX: &str = "wrt_inv_";
/// How long an invitation lasts unless told otherwise, and at most, in hours.
pub const DEFAULT_INVITATION_HOURS: i64 = 7 * 24;
/// The longest an invitation may last, in hours.
pub const MAX_INVITATION_HOURS: i64 = 30 * 24;

/// An invitation to create.
#[derive(Debug, Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvitation {
    /// The invited person's e-mail address.
    pub email: String,
    /// `member` (default) or `admin`.
    pub role: Option<String>,
    /// Hours until the token expires (1–720, default 168).
    pub expires_in_hours: Option<i64>,
}

/// Joining an organisation as a person who already has an account.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Joining {
    /// The `wrt_inv_…` token.
    pub token: String,
}

/// A membership of an organisation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Membership {
    /// The organisation joined.
    pub org_id: String,
    /// The member.
    pub principal_id: String,
    /// The org role held there.
    pub role: String,
}

/// An invitation as shown over the API.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvitationView {
    /// `inv_…`
    pub id: String,
    /// The organisation.
    pub org_id: String,
    /// Who is invited.
    pub email: String,
    /// The org role they get.
    pub role: String,
    /// `open`, `accepted`, `expired` or `revoked`.
    pub status: &'static str,
    /// Who invited.
    pub created_by: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub expires_at: String,
    /// The user who accepted, if any.
    pub accepted_by: Option<String>,
    /// The token, shown only in the answer that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl InvitationView {
    fn of(i: Invitation, token: Option<String>) -> Self {
        let status = if i.accepted_at.is_some() {
            "accepted"
        } else if i.revoked_at.is_some() {
            "revoked"
        } else if i.expires_at <= store::now() {
            "expired"
        } else {
            "open"
        };
        InvitationView {
            id: i.id,
            org_id: i.org_id,
            email: i.email,
            role: i.role,
            status,
            created_by: i.created_by,
            created_at: rfc3339(i.created_at),
            expires_at: rfc3339(i.expires_at),
            accepted_by: i.accepted_by,
            token,
        }
    }
}

/// Accepting an invitation by signing up.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Acceptance {
    /// The `wrt_inv_…` token.
    pub token: String,
    /// The new user's password (at least 12 characters).
    pub password: String,
    /// Display name (default: the e-mail address).
    pub name: Option<String>,
}

impl Warrant {
    /// Invites a person to an organisation (owners and admins, `org:admin`).
    pub async fn invite(
        &self,
        caller: &Caller,
        org: &str,
        req: NewInvitation,
    ) -> Result<InvitationView> {
        let org = OrgId(org.to_string());
        self.org_access(caller, &org, Action::ManageUsers).await?;
        check_email(&req.email)?;
        let role = match req.role.as_deref() {
            None | Some("member") => OrgRole::Member,
            Some("admin") => OrgRole::Admin,
            Some(other) => {
                return Err(Error::Unprocessable(format!(
                    "role `{other}` cannot be given by invitation; use `admin` or `member` (ownership is handed over with transfer-ownership)"
                )));
            }
        };
        let hours = req.expires_in_hours.unwrap_or(DEFAULT_INVITATION_HOURS);
        if !(1..=MAX_INVITATION_HOURS).contains(&hours) {
            return Err(Error::Unprocessable(format!(
                "expires_in_hours must be between 1 and {MAX_INVITATION_HOURS}"
            )));
        }
        let secret = Secret::generate(INVITATION_PREFIX);
        let now = store::now();
        let inv = Invitation {
            id: new_id("inv"),
            org_id: org.0.clone(),
            email: req.email,
            role: role.as_str().to_string(),
            created_by: caller.principal.id.0.clone(),
            created_at: now,
            expires_at: now + hours * 3600,
            accepted_at: None,
            accepted_by: None,
            revoked_at: None,
        };
        store::invitations::insert(self.store.pool(), &inv, &secret.hash()).await?;
        self.audit(
            caller,
            "invitation.create",
            &inv.id,
            Some(format!("org={} role={}", org, inv.role)),
        )
        .await;
        Ok(InvitationView::of(inv, Some(secret.expose().to_string())))
    }

    /// The invitations of an organisation (never their tokens).
    pub async fn list_invitations(
        &self,
        caller: &Caller,
        org: &str,
    ) -> Result<Vec<InvitationView>> {
        let org = OrgId(org.to_string());
        self.org_access(caller, &org, Action::ManageUsers).await?;
        Ok(store::invitations::list(self.store.pool(), &org)
            .await?
            .into_iter()
            .map(|i| InvitationView::of(i, None))
            .collect())
    }

    /// Withdraws an open invitation.
    pub async fn revoke_invitation(&self, caller: &Caller, org: &str, id: &str) -> Result<()> {
        let org = OrgId(org.to_string());
        self.org_access(caller, &org, Action::ManageUsers).await?;
        if !store::invitations::revoke(self.store.pool(), &org, id).await? {
            return Err(Error::NotFound("open invitation"));
        }
        self.audit(caller, "invitation.revoke", id, None).await;
        Ok(())
    }

    /// Signs a person up with an invitation: creates the user in the organisation with the
    /// invited role, and uses the token up. Needs no credential — the token is one.
    pub async fn accept_invitation(&self, req: Acceptance) -> Result<PrincipalView> {
        let inv = self.open_invitation(&req.token).await?;
        let now = store::now();
        let name = req.name.unwrap_or_else(|| inv.email.clone());
        check_name("a user name", &name)?;
        password::check_strength(&req.password)?;
        let p = req.password;
        let password_hash = tokio::task::spawn_blocking(move || password::hash(&p))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        let org = OrgId(inv.org_id.clone());
        let role = OrgRole::parse(&inv.role)
            .ok_or_else(|| Error::Internal(format!("stored invitation role {}", inv.role)))?;
        let user = Principal {
            id: PrincipalId(new_id("usr")),
            kind: PrincipalKind::User,
            name,
            email: Some(inv.email.clone()),
            org_id: org.clone(),
            created_by: Some(PrincipalId(inv.created_by.clone())),
            created_at: now,
            groups: Vec::new(),
        };
        let mut tx = self.store.pool().begin().await?;
        // First the conditional update: of two racing acceptances exactly one gets here.
        if !store::invitations::accept(&mut *tx, &inv.id, user.id.as_str(), now).await? {
            return Err(Error::Gone("this invitation has already been used".into()));
        }
        store::principals::insert(&mut *tx, &user, Some(&password_hash))
            .await
            .map_err(super::tokens::conflict_on_unique(
                "a user with this e-mail address",
            ))?;
        store::orgs::set_member(&mut *tx, &org, &user.id, role).await?;
        tx.commit().await?;
        let entry = store::audit::AuditEntry {
            principal_id: Some(user.id.as_str()),
            credential_id: None,
            action: "invitation.accept",
            target: &inv.id,
            detail: Some(format!("org={} role={}", inv.org_id, inv.role)),
            client_addr: None,
        };
        if let Err(e) = store::audit::record(self.store.pool(), &entry).await {
            tracing::error!(error = %e, "could not write the audit log");
        }
        Ok(PrincipalView::from(&user))
    }

    /// Joins the signed-in caller to the organisation an invitation is for, with the invited
    /// role: for people who already have an account (in this organisation's instance, in any
    /// organisation). The invitation must be addressed to the caller's e-mail address, so a
    /// leaked token is of no use to another account; agents and clients cannot accept one.
    pub async fn join_with_invitation(&self, caller: &Caller, token: &str) -> Result<Membership> {
        let inv = self.open_invitation(token).await?;
        let user = &caller.principal;
        if user.kind != PrincipalKind::User {
            return Err(Error::Unprocessable(
                "only a person can accept an invitation; this credential is an agent's or a \
                 client's"
                    .into(),
            ));
        }
        if !user
            .email
            .as_deref()
            .is_some_and(|e| e.eq_ignore_ascii_case(&inv.email))
        {
            return Err(Error::Unprocessable(
                "this invitation is addressed to another e-mail address".into(),
            ));
        }
        let org = OrgId(inv.org_id.clone());
        let role = OrgRole::parse(&inv.role)
            .ok_or_else(|| Error::Internal(format!("stored invitation role {}", inv.role)))?;
        if store::orgs::member_role(self.store.pool(), &org, &user.id)
            .await?
            .is_some()
        {
            return Err(Error::Conflict(
                "you are already a member of this organisation; the invitation stays open".into(),
            ));
        }
        let now = store::now();
        let mut tx = self.store.pool().begin().await?;
        // First the conditional update: of two racing acceptances exactly one gets here.
        if !store::invitations::accept(&mut *tx, &inv.id, user.id.as_str(), now).await? {
            return Err(Error::Gone("this invitation has already been used".into()));
        }
        store::orgs::set_member(&mut *tx, &org, &user.id, role).await?;
        tx.commit().await?;
        self.audit(
            caller,
            "invitation.accept",
            &inv.id,
            Some(format!(
                "org={} role={} existing user",
                inv.org_id, inv.role
            )),
        )
        .await;
        Ok(Membership {
            org_id: inv.org_id,
            principal_id: user.id.0.clone(),
            role: inv.role,
        })
    }

    /// The invitation a token names, if it can still be accepted.
    async fn open_invitation(&self, token: &str) -> Result<Invitation> {
        if !token.starts_with(INVITATION_PREFIX) {
            return Err(Error::InvalidToken("not an invitation token"));
        }
        let hash = secrets::hash(token);
        let inv = store::invitations::by_token_hash(self.store.pool(), &hash)
            .await?
            .ok_or(Error::InvalidToken("unknown invitation token"))?;
        if inv.accepted_at.is_some() {
            return Err(Error::Gone("this invitation has already been used".into()));
        }
        if inv.revoked_at.is_some() {
            return Err(Error::Gone("this invitation has been withdrawn".into()));
        }
        if inv.expires_at <= store::now() {
            return Err(Error::Gone(
                "this invitation has expired; ask for a new one".into(),
            ));
        }
        Ok(inv)
    }
}
