//! The audit log's export as it leaves the bridge: an HTTP body (API and
//! dashboard) or a file (CLI), written a page at a time from
//! [`ExportCursor`], so an export of any size holds one page in memory.

use axum::body::Body;
use futures_util::StreamExt;
use futures_util::stream;

use crate::store::audit::{self, Entry, ExportCursor};

/// The two formats of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object a line, every value as stored.
    Jsonl,
    /// RFC 4180 CSV, cells neutralised against spreadsheet formulas.
    Csv,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Jsonl => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }

    /// What comes before the first entry.
    pub fn header(self) -> &'static str {
        match self {
            Format::Jsonl => "",
            Format::Csv => audit::CSV_HEADER,
        }
    }

    /// One page of entries.
    pub fn page(self, entries: &[Entry]) -> String {
        match self {
            Format::Jsonl => audit::to_jsonl(entries),
            Format::Csv => {
                let mut out = String::new();
                audit::csv_rows(entries, &mut out);
                out
            }
        }
    }
}

/// An export as a streamed HTTP body. The first page is read before the
/// answer starts, so a database that cannot be read is an error status, not
/// a cut file; a later failure ends the body early (the client sees an
/// incomplete transfer, never a silently shorter export).
pub async fn body(mut cursor: ExportCursor, format: Format) -> Result<Body, sqlx::Error> {
    let first = cursor.next_page().await?;
    let mut head = format.header().to_string();
    if let Some(entries) = &first {
        head.push_str(&format.page(entries));
    }
    let rest = stream::try_unfold(
        (cursor, first.is_some()),
        move |(mut cursor, more)| async move {
            if !more {
                return Ok(None);
            }
            match cursor.next_page().await {
                Ok(Some(entries)) => Ok(Some((format.page(&entries), (cursor, true)))),
                Ok(None) => Ok(None),
                Err(e) => {
                    tracing::error!(error = %e, "audit export stopped: the next page cannot be read");
                    Err(e)
                }
            }
        },
    );
    let chunks = stream::once(async move { Ok::<String, sqlx::Error>(head) }).chain(rest);
    Ok(Body::from_stream(chunks))
}

/// Writes an export to `out` a page at a time; returns the entries written.
pub async fn write(
    mut cursor: ExportCursor,
    format: Format,
    out: &mut impl std::io::Write,
) -> anyhow::Result<u64> {
    out.write_all(format.header().as_bytes())?;
    let mut written = 0u64;
    while let Some(entries) = cursor.next_page().await? {
        out.write_all(format.page(&entries).as_bytes())?;
        written += entries.len() as u64;
    }
    out.flush()?;
    Ok(written)
}
