//! Finding complaints our account created, by the `ref:` tag, before any
//! resend of a create whose outcome is unknown.
//!
//! LAPOR! has no search by tag, so the bridge keeps an index of what
//! `scope=created` lists, refreshed incrementally from a cursor: a lookup
//! costs one page in the steady state instead of paging through every
//! complaint created in the window. A lookup answers "not there" only when
//! the index covers the whole window and its refresh just succeeded.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use tokio::sync::Mutex;

use crate::lapor::types::{self, Created, Scope};
use crate::lapor::{LaporClient, LaporError};

/// Re-read this far before the cursor: LAPOR!'s timestamps have one-second
/// resolution, and its transactions may commit slightly out of order.
const OVERLAP: Duration = Duration::seconds(10);
/// Above this many entries the index starts afresh at the next lookup.
const MAX_ENTRIES: usize = 200_000;
/// Attempts per page: reads are safe to repeat at once.
const PAGE_ATTEMPTS: usize = 3;

#[derive(Debug, Default)]
struct Index {
    /// The index holds every complaint created (or updated) since `start`.
    start: Option<DateTime<Utc>>,
    cursor: Option<DateTime<Utc>>,
    by_ref: HashMap<String, Created>,
    /// When the last complete refresh began.
    refreshed_from: Option<std::time::Instant>,
}

#[derive(Debug, Default)]
pub struct CreatedIndex {
    inner: Mutex<Index>,
}

impl CreatedIndex {
    /// The complaint carrying `ref:<local_ref>`, created since `since`.
    pub async fn find(
        &self,
        client: &LaporClient,
        local_ref: &str,
        since: DateTime<Utc>,
    ) -> Result<Option<Created>, LaporError> {
        let asked = std::time::Instant::now();
        let mut index = self.inner.lock().await;
        let covers = index.start.is_some_and(|start| start <= since);
        if !covers || index.by_ref.len() > MAX_ENTRIES {
            *index = Index {
                start: Some(since),
                cursor: Some(since),
                by_ref: HashMap::new(),
                refreshed_from: None,
            };
        }
        // A refresh that began after this lookup was asked for (while it
        // waited for the lock) saw everything this one would: share it.
        if index.refreshed_from.is_some_and(|began| began > asked) {
            return Ok(index.by_ref.get(local_ref).cloned());
        }
        let began = std::time::Instant::now();
        let from = index.cursor.unwrap_or(since) - OVERLAP;
        let mut page = 1;
        let mut newest = index.cursor;
        loop {
            let found = list_page(client, from, page).await?;
            for s in &found.items {
                if let Some(r) = types::ref_in_tags(&s.tags_raw) {
                    index.by_ref.insert(
                        r.to_string(),
                        Created {
                            complaint_id: s.id,
                            tracking_id: s.tracking_id.clone(),
                        },
                    );
                }
                newest = newest.max(Some(s.updated_at));
            }
            if found.items.is_empty() || page * found.page_size >= found.total {
                break;
            }
            page += 1;
        }
        index.cursor = newest;
        index.refreshed_from = Some(began);
        Ok(index.by_ref.get(local_ref).cloned())
    }
}

async fn list_page(
    client: &LaporClient,
    from: DateTime<Utc>,
    page: i64,
) -> Result<types::SummaryPage, LaporError> {
    let mut last = None;
    for _ in 0..PAGE_ATTEMPTS {
        match client
            .list(
                Scope::Created,
                from,
                page,
                crate::lapor::client::MAX_PAGE_SIZE,
            )
            .await
        {
            Ok(p) => return Ok(p),
            Err(e @ LaporError::Retryable { .. }) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| LaporError::malformed("no attempt made", None)))
}
