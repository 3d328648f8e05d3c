//! The audit log: who did what, with which credential (its id, never its secret).

use sqlx::any::AnyExecutor;

/// One audited change.
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    /// The acting principal.
    pub principal_id: Option<&'a str>,
    /// The credential used (token id).
    pub credential_id: Option<&'a str>,
    /// What was done, e.g. `token.create`.
    pub action: &'a str,
    /// What it was done to, e.g. a token or workspace id.
    pub target: &'a str,
    /// Extra facts (never secrets).
    pub detail: Option<String>,
    /// The client's address.
    pub client_addr: Option<String>,
}

/// Appends an entry.
pub async fn record<'c>(db: impl AnyExecutor<'c>, e: &AuditEntry<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (id, at, principal_id, credential_id, action, target, detail, client_addr) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(crate::identity::new_id("aud"))
    .bind(super::now())
    .bind(e.principal_id)
    .bind(e.credential_id)
    .bind(e.action)
    .bind(e.target)
    .bind(e.detail.as_deref())
    .bind(e.client_addr.as_deref())
    .execute(db)
    .await?;
    Ok(())
}
