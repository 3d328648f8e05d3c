//! Invitations to an organisation (accepting one is a person's act over REST).

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::identity::OrgId;
use super::{Kind, ToolSpec, add, done, structured};
use crate::api::bodies::NewInvitation;
use crate::authz::Scope;

/// An invitation to create.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct InviteInput {
    /// The organisation's id (`org_…`).
    pub org_id: String,
    #[serde(flatten)]
    pub body: NewInvitation,
}

/// An invitation to withdraw.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InvitationRef {
    /// The organisation's id (`org_…`).
    pub org_id: String,
    /// The invitation's id (`inv_…`).
    pub invitation_id: String,
}

pub(super) fn register(tools: &mut Vec<ToolSpec>) {
    add(
        tools,
        "invite_person",
        "Invites a person by e-mail to an organisation with a role (member or admin). Returns a \
         single-use `wrt_inv_…` token, shown only this once: pass it to the person, who signs up \
         with it at POST /api/v1/invitations/accept. Expires after expires_in_hours (default 168).",
        Some(Scope::OrgAdmin),
        Kind::Write,
        |w, caller, req: InviteInput| async move {
            structured(&w.invite(&caller, &req.org_id, req.body).await?)
        },
    );
    add(
        tools,
        "list_invitations",
        "Lists an organisation's invitations with their status (open, accepted, expired, revoked); \
         never their tokens.",
        Some(Scope::OrgAdmin),
        Kind::Read,
        |w, caller, req: OrgId| async move {
            structured(&json!({ "invitations": w.list_invitations(&caller, &req.org_id).await? }))
        },
    );
    add(
        tools,
        "revoke_invitation",
        "Withdraws an open invitation: its token stops working at once.",
        Some(Scope::OrgAdmin),
        Kind::Destructive,
        |w, caller, req: InvitationRef| async move {
            w.revoke_invitation(&caller, &req.org_id, &req.invitation_id)
                .await?;
            done(format!("invitation {} withdrawn", req.invitation_id))
        },
    );
}
