//! SQL of the audit log: append (hash-chained by the database function
//! `lapor_bridge.audit_append`), verify, export.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

/// One entry to append.
#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    pub at: DateTime<Utc>,
    pub actor: &'a str,
    pub local_ref: Option<&'a str>,
    pub action: &'a str,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

pub async fn append(conn: &mut PgConnection, entry: &NewEntry<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT lapor_bridge.audit_append($1, $2, $3, $4, $5, $6)")
        .bind(entry.at)
        .bind(entry.actor)
        .bind(entry.local_ref)
        .bind(entry.action)
        .bind(&entry.before)
        .bind(&entry.after)
        .fetch_one(conn)
        .await
}

/// Several entries in one statement, chained in the order given (the
/// outcome writer's batches). Columns as parallel slices.
pub async fn append_many(
    conn: &mut PgConnection,
    at: &[DateTime<Utc>],
    actor: &[&str],
    local_ref: &[&str],
    action: &[String],
    before: &[Option<Value>],
    after: &[Option<Value>],
) -> Result<(), sqlx::Error> {
    if at.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT lapor_bridge.audit_append_many($1, $2, $3, $4, $5, $6)")
        .bind(at)
        .bind(actor)
        .bind(local_ref)
        .bind(action)
        .bind(before)
        .bind(after)
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Entry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub local_ref: Option<String>,
    pub action: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub prev_hash: String,
    pub hash: String,
}

/// The answer of `audit verify`: the chain first, then the checkpoints
/// kept outside the database (see [`crate::checkpoints`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Verification {
    Ok {
        ok: bool,
        entries: i64,
        /// Checkpoints checked; absent when none were given.
        #[serde(skip_serializing_if = "Option::is_none")]
        checkpoints: Option<usize>,
    },
    /// An entry's hash or link does not match: the log was changed.
    Broken {
        ok: bool,
        first_bad_id: i64,
        entries: i64,
    },
    /// The chain is whole but a checkpointed entry is missing or carries
    /// another hash: the log was cut short or rewritten from there on.
    CheckpointMismatch {
        ok: bool,
        #[schema(value_type = String)]
        reason: &'static str,
        checkpoint_id: i64,
        entries: i64,
    },
    /// The checkpoints could not be read, so nothing is vouched for.
    CheckpointsUnreadable {
        ok: bool,
        #[schema(value_type = String)]
        reason: &'static str,
        error: String,
    },
}

impl Verification {
    pub fn is_ok(&self) -> bool {
        matches!(self, Verification::Ok { .. })
    }
}

/// Recomputes every hash and every link of the chain, in id order. The first
/// entry whose stored hash or link does not match is named.
///
/// The hash is recomputed here from PostgreSQL's built-in functions only
/// (schema-qualified), never through `lapor_bridge.audit_hash`: the schema's
/// owner could replace that function with one that answers the stored hash
/// of a rewritten entry. The encoding is `audit_canonical`'s, version 1.
pub async fn verify(pool: &PgPool) -> Result<Verification, sqlx::Error> {
    let (entries, first_bad): (i64, Option<i64>) = sqlx::query_as(
        "WITH chain AS (
             SELECT id, hash, prev_hash,
                    coalesce(lag(hash) OVER (ORDER BY id), repeat('0', 64)) AS expected_prev,
                    pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(
                        pg_catalog.jsonb_build_array(
                            prev_hash, id,
                            pg_catalog.to_char(pg_catalog.timezone('UTC', at),
                                               'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
                            actor, local_ref, action, before, after)::text,
                        'UTF8')), 'hex') AS recomputed
               FROM lapor_bridge.audit_log)
         SELECT (SELECT count(*) FROM chain),
                (SELECT min(id) FROM chain
                  WHERE hash <> recomputed OR prev_hash <> expected_prev)",
    )
    .fetch_one(pool)
    .await?;
    Ok(match first_bad {
        None => Verification::Ok {
            ok: true,
            entries,
            checkpoints: None,
        },
        Some(id) => Verification::Broken {
            ok: false,
            first_bad_id: id,
            entries,
        },
    })
}

/// The newest entry's id and hash.
pub async fn head(pool: &PgPool) -> Result<Option<(i64, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, hash FROM lapor_bridge.audit_log ORDER BY id DESC LIMIT 1")
        .fetch_optional(pool)
        .await
}

/// The highest id (0 for an empty log), read from the primary key's index.
pub async fn head_id(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM lapor_bridge.audit_log")
        .fetch_one(pool)
        .await
}

/// The hashes of the entries with these ids (those that exist).
pub async fn hashes_of(pool: &PgPool, ids: &[i64]) -> Result<Vec<(i64, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, hash FROM lapor_bridge.audit_log WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(pool)
        .await
}

/// Entries an export reads at a time.
pub const EXPORT_PAGE: i64 = 1000;

/// An export of the entries of `[since, until)` read a page at a time by
/// id (the primary key), never the whole log at once. It stops at the head
/// the log had when the export began, so an export is the log up to one
/// entry however long it takes. Ids are handed out under the log's append
/// lock and committed in order, so no entry below the head can appear later.
#[derive(Debug, Clone)]
pub struct ExportCursor {
    pool: PgPool,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    after: i64,
    head: i64,
    page: i64,
    done: bool,
}

impl ExportCursor {
    pub async fn start(
        pool: PgPool,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Self, sqlx::Error> {
        let head = head_id(&pool).await?;
        Ok(Self::with_page(pool, since, until, head, EXPORT_PAGE))
    }

    /// A cursor up to `head` reading `page` entries at a time.
    pub fn with_page(
        pool: PgPool,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        head: i64,
        page: i64,
    ) -> Self {
        Self {
            pool,
            since,
            until,
            after: 0,
            head,
            page: page.max(1),
            done: false,
        }
    }

    /// The next entries in id order; `None` when the export is complete.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Entry>>, sqlx::Error> {
        if self.done {
            return Ok(None);
        }
        let entries: Vec<Entry> = sqlx::query_as(
            "SELECT id, at, actor, local_ref, action, before, after, prev_hash, hash
               FROM lapor_bridge.audit_log
              WHERE id > $1 AND id <= $2
                AND ($3::timestamptz IS NULL OR at >= $3)
                AND ($4::timestamptz IS NULL OR at < $4)
              ORDER BY id
              LIMIT $5",
        )
        .bind(self.after)
        .bind(self.head)
        .bind(self.since)
        .bind(self.until)
        .bind(self.page)
        .fetch_all(&self.pool)
        .await?;
        match entries.last() {
            Some(last) if entries.len() as i64 == self.page => self.after = last.id,
            Some(_) => self.done = true,
            None => {
                self.done = true;
                return Ok(None);
            }
        }
        Ok(Some(entries))
    }
}

pub async fn of_complaint(pool: &PgPool, local_ref: &str) -> Result<Vec<Entry>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, at, actor, local_ref, action, before, after, prev_hash, hash
           FROM lapor_bridge.audit_log WHERE local_ref = $1 ORDER BY id",
    )
    .bind(local_ref)
    .fetch_all(pool)
    .await
}

pub async fn count(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM lapor_bridge.audit_log")
        .fetch_one(pool)
        .await
}

/// The first line of a CSV export.
pub const CSV_HEADER: &str = "id,at,actor,local_ref,action,before,after,prev_hash,hash\r\n";

/// Entries as RFC 4180 CSV lines (without the header): every field quoted
/// when it holds a comma, quote or line break. A cell that begins with `=`,
/// `+`, `-`, `@`, a tab or a carriage return is prefixed with `'`, so that a
/// spreadsheet opening the export never runs it as a formula (the JSON
/// lines export carries every value unchanged).
pub fn csv_rows(entries: &[Entry], out: &mut String) {
    fn field(out: &mut String, value: &str) {
        let guarded;
        let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            guarded = format!("'{value}");
            guarded.as_str()
        } else {
            value
        };
        if value.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&value.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(value);
        }
    }
    for e in entries {
        let json = |v: &Option<Value>| v.as_ref().map(Value::to_string).unwrap_or_default();
        let cells = [
            e.id.to_string(),
            e.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            e.actor.clone(),
            e.local_ref.clone().unwrap_or_default(),
            e.action.clone(),
            json(&e.before),
            json(&e.after),
            e.prev_hash.clone(),
            e.hash.clone(),
        ];
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            field(out, cell);
        }
        out.push_str("\r\n");
    }
}

/// The audit log as CSV, header included (see [`csv_rows`]).
pub fn to_csv(entries: &[Entry]) -> String {
    let mut out = String::from(CSV_HEADER);
    csv_rows(entries, &mut out);
    out
}

/// One JSON object a line (entries, or the checkpoints of `crate::checkpoints`).
pub fn to_jsonl<T: Serialize>(entries: &[T]) -> String {
    let mut out = String::new();
    for e in entries {
        if let Ok(line) = serde_json::to_string(e) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_that_a_spreadsheet_would_run_are_neutralised() {
        let entry = Entry {
            id: 1,
            at: DateTime::<Utc>::from_timestamp(1_790_000_000, 0).unwrap_or_default(),
            actor: "=HYPERLINK(\"http://x\")".into(),
            local_ref: Some("-2+3".into()),
            action: "@SUM(A1)".into(),
            before: None,
            after: None,
            prev_hash: "0".repeat(64),
            hash: "a".repeat(64),
        };
        let csv = to_csv(&[entry]);
        let row = csv.lines().nth(1).unwrap_or_default();
        assert!(row.contains("\"'=HYPERLINK(\"\"http://x\"\")\""), "{row}");
        assert!(row.contains(",'-2+3,"), "{row}");
        assert!(row.contains(",'@SUM(A1),"), "{row}");
    }
}
