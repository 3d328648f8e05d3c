//! URL import: the server fetches a URL into a workspace. Authorized twice on the target
//! path — as `files:import` (so policies and plugins can refuse imports as such) and as the
//! same `files:write` a PUT asks for — before the URL is even parsed, so a refused caller
//! learns nothing about what the server can reach. The fetch itself is
//! [`crate::files::import`]: public addresses only, checked per hop, pinned, capped.
//!
//! Imports run synchronously within the time cap (default 30 s) and answer like a PUT: a
//! caller gets the file or a clear error in one round trip, with no job table to poll or
//! clean up, and a dropped request cancels the fetch. A job queue with a status endpoint
//! would be the next step if imports of very large or slow sources are wanted.

use super::Warrant;
use super::files::{PutOutcome, WriteConditions};
use crate::Result;
use crate::authz::{Action, Caller};
use crate::files::import;

/// What an import did.
#[derive(Debug)]
pub struct ImportOutcome {
    /// The file written.
    pub put: PutOutcome,
    /// The URL that answered, after redirects.
    pub source_url: String,
    /// How many redirects were followed.
    pub redirects: usize,
}

impl Warrant {
    /// Fetches `url` into the file at `path`, creating or replacing it.
    pub async fn import_url(
        &self,
        caller: &Caller,
        ws: &str,
        url: &str,
        path: &str,
    ) -> Result<ImportOutcome> {
        let deadline = tokio::time::Instant::now() + self.settings.import.timeout;
        let allowed = self
            .authorize_write(
                caller,
                ws,
                path,
                None,
                None,
                None,
                &[Action::ImportUrl, Action::WriteFile],
                None,
            )
            .await?;
        let url = import::parse_url(url)?;
        let fetched = import::fetch(url, &self.settings.import, deadline).await?;
        let failure = fetched.failure.clone();
        let put = self
            .store_write(
                caller,
                allowed,
                fetched.content_type.as_deref(),
                fetched.content_length,
                &WriteConditions::default(),
                fetched.body,
            )
            .await
            // A body that failed upstream is the upstream's fault (502/504), not a bad request.
            .map_err(|e| failure.take().unwrap_or(e))?;
        let source_url = fetched.final_url.to_string();
        // The audit log keeps where the bytes came from, but not a query string, which may
        // hold a signature (presigned URLs).
        let mut logged = fetched.final_url.clone();
        logged.set_query(None);
        logged.set_fragment(None);
        self.audit(
            caller,
            "file.import",
            &format!("{}/{}", put.meta.workspace_id, put.meta.path),
            Some(format!("from {logged} sha256 {}", put.meta.sha256)),
        )
        .await;
        Ok(ImportOutcome {
            put,
            source_url,
            redirects: fetched.redirects,
        })
    }
}
