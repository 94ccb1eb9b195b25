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

/// Re-read at least this far before the cursor: LAPOR!'s timestamps have
/// one-second resolution, and its transactions may commit slightly out of
/// order. The engine widens it by the lookup delay (see [`CreatedIndex::new`]).
const OVERLAP: Duration = Duration::seconds(10);
/// Above this many entries the index starts afresh at the next lookup.
const MAX_ENTRIES: usize = 200_000;
/// Once per epoch, entries updated before every window asked for during
/// the epoch are dropped, so that a long-running daemon's index holds only
/// what its pending lookups can need: about the lookup margin plus two
/// epochs of creates. A lookup for an older window later finds the index
/// no longer covers it and re-lists: slower, never wrong.
const EPOCH: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Debug, Default)]
struct Index {
    /// The index holds every complaint created (or updated) since `start`.
    start: Option<DateTime<Utc>>,
    cursor: Option<DateTime<Utc>>,
    /// The complaints carrying each ref (one, unless LAPOR! holds copies),
    /// each with the `updated_at` it was listed with.
    by_ref: HashMap<String, Vec<(Created, DateTime<Utc>)>>,
    /// When the last complete refresh began.
    refreshed_from: Option<std::time::Instant>,
    /// When the current epoch began, and the oldest window asked for in it.
    epoch_began: Option<std::time::Instant>,
    oldest_asked: Option<DateTime<Utc>>,
}

impl Index {
    /// Notes a lookup's window; at the end of an epoch, drops the entries
    /// no window of that epoch reached.
    fn note(&mut self, since: DateTime<Utc>, now: std::time::Instant) {
        self.oldest_asked = Some(self.oldest_asked.map_or(since, |o| o.min(since)));
        let began = *self.epoch_began.get_or_insert(now);
        if now.duration_since(began) < EPOCH {
            return;
        }
        if let Some(keep_from) = self.oldest_asked.map(|o| o - OVERLAP)
            && self.start.is_some_and(|start| start < keep_from)
        {
            self.by_ref.retain(|_, found| {
                found.retain(|(_, updated)| *updated >= keep_from);
                !found.is_empty()
            });
            self.start = Some(keep_from);
        }
        self.epoch_began = Some(now);
        self.oldest_asked = Some(since);
    }
}

/// What a lookup found: the oldest complaint carrying the ref, and the LAPOR!
/// ids of any further copies.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub created: Created,
    pub copies: Vec<i64>,
}

impl Index {
    fn found(&self, local_ref: &str) -> Option<Found> {
        let all = self.by_ref.get(local_ref)?;
        let first = all.iter().min_by_key(|(c, _)| c.complaint_id)?;
        let copies = all
            .iter()
            .map(|(c, _)| c.complaint_id)
            .filter(|id| *id != first.0.complaint_id)
            .collect();
        Some(Found {
            created: first.0.clone(),
            copies,
        })
    }
}

#[derive(Debug)]
pub struct CreatedIndex {
    inner: Mutex<Index>,
    /// How far before the cursor each refresh re-reads.
    overlap: Duration,
}

impl CreatedIndex {
    /// An index whose refreshes re-read `lookup_delay` (plus a margin)
    /// before their cursor. LAPOR!'s backend stamps a complaint when the
    /// request arrives, but it may become visible only when it commits, up
    /// to the lookup delay later: a refresh that read past its stamp before
    /// it was visible must read it again.
    pub fn new(lookup_delay: std::time::Duration) -> Self {
        Self {
            inner: Mutex::new(Index::default()),
            overlap: OVERLAP + Duration::from_std(lookup_delay).unwrap_or(Duration::zero()),
        }
    }

    /// The complaint carrying `ref:<local_ref>`, created since `since`.
    pub async fn find(
        &self,
        client: &LaporClient,
        local_ref: &str,
        since: DateTime<Utc>,
    ) -> Result<Option<Found>, LaporError> {
        let asked = std::time::Instant::now();
        let mut index = self.inner.lock().await;
        let covers = index.start.is_some_and(|start| start <= since);
        if !covers || index.by_ref.len() > MAX_ENTRIES {
            *index = Index {
                start: Some(since),
                cursor: Some(since),
                by_ref: HashMap::new(),
                refreshed_from: None,
                epoch_began: index.epoch_began,
                oldest_asked: index.oldest_asked,
            };
        }
        index.note(since, asked);
        // A refresh that began after this lookup was asked for (while it
        // waited for the lock) saw everything this one would: share it.
        if index.refreshed_from.is_some_and(|began| began > asked) {
            return Ok(index.found(local_ref));
        }
        let began = std::time::Instant::now();
        let from = index.cursor.unwrap_or(since) - self.overlap;
        // A listing that moved while it was read is an error here: the
        // cursor stays, and the lookup is tried again later.
        let listed = client.list_all(Scope::Created, from).await?;
        let mut newest = index.cursor;
        for s in listed {
            newest = newest.max(Some(s.updated_at));
            if let Some(r) = types::ref_in_tags(&s.tags_raw) {
                let created = Created {
                    complaint_id: s.id,
                    tracking_id: s.tracking_id,
                };
                let found = index.by_ref.entry(r.to_string()).or_default();
                found.retain(|(c, _)| c.complaint_id != s.id);
                found.push((created, s.updated_at));
            }
        }
        index.cursor = newest;
        index.refreshed_from = Some(began);
        Ok(index.found(local_ref))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: i64, updated: DateTime<Utc>) -> Vec<(Created, DateTime<Utc>)> {
        let created = Created {
            complaint_id: id,
            tracking_id: id.to_string(),
        };
        vec![(created, updated)]
    }

    #[test]
    fn an_epoch_drops_only_what_no_window_of_it_reached() {
        let t0 = DateTime::<Utc>::from_timestamp(1_780_000_000, 0).unwrap_or_default();
        let clock = std::time::Instant::now();
        let mut index = Index {
            start: Some(t0),
            cursor: Some(t0 + Duration::hours(2)),
            ..Index::default()
        };
        index.by_ref.insert("OLD".into(), entry(1, t0));
        index
            .by_ref
            .insert("MID".into(), entry(2, t0 + Duration::minutes(30)));
        index
            .by_ref
            .insert("NEW".into(), entry(3, t0 + Duration::hours(2)));
        // Within the epoch nothing is dropped, whatever the windows.
        index.note(t0 + Duration::minutes(30), clock);
        index.note(t0 + Duration::hours(2), clock + EPOCH / 2);
        assert_eq!(index.by_ref.len(), 3);
        // At its end, what lies before its oldest window (less the overlap) goes.
        index.note(t0 + Duration::hours(2), clock + EPOCH);
        assert!(!index.by_ref.contains_key("OLD"));
        assert!(index.by_ref.contains_key("MID"));
        assert!(index.by_ref.contains_key("NEW"));
        assert_eq!(index.start, Some(t0 + Duration::minutes(30) - OVERLAP));
        // The next epoch only asked from the newest window: MID goes too,
        // and a lookup for an older window would no longer be covered.
        index.note(t0 + Duration::hours(2), clock + EPOCH * 2);
        assert_eq!(index.by_ref.len(), 1);
        assert_eq!(index.start, Some(t0 + Duration::hours(2) - OVERLAP));
    }
}
