//! LAPOR! status names. LAPOR!'s numeric codes are not known for the live
//! system, so statuses are mapped by name (trimmed, case-insensitive) through a
//! table that configuration can extend. An unknown name is kept raw.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Unverified,
    Verified,
    InProcess,
    Completed,
    Rejected,
    Archived,
    Postponed,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Unverified,
        Status::Verified,
        Status::InProcess,
        Status::Completed,
        Status::Rejected,
        Status::Archived,
        Status::Postponed,
    ];

    /// The bridge's own name, used in the database and the status document.
    pub fn canonical(self) -> &'static str {
        match self {
            Status::Unverified => "unverified",
            Status::Verified => "verified",
            Status::InProcess => "in_process",
            Status::Completed => "completed",
            Status::Rejected => "rejected",
            Status::Archived => "archived",
            Status::Postponed => "postponed",
        }
    }

    pub fn from_canonical(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.canonical() == name)
    }

    /// The name LAPOR! uses.
    pub fn lapor_name(self) -> &'static str {
        match self {
            Status::Unverified => "Belum Terverifikasi",
            Status::Verified => "Terverifikasi",
            Status::InProcess => "Dalam Proses",
            Status::Completed => "Selesai",
            Status::Rejected => "Ditolak",
            Status::Archived => "Diarsipkan",
            Status::Postponed => "Tertunda",
        }
    }

    /// The simulator's numeric code (live codes are unknown).
    pub fn sim_code(self) -> i64 {
        match self {
            Status::Unverified => 1,
            Status::Verified => 2,
            Status::InProcess => 3,
            Status::Completed => 4,
            Status::Rejected => 5,
            Status::Archived => 6,
            Status::Postponed => 7,
        }
    }

    /// Closed: no follow-up or forward is possible any more.
    pub fn is_closed(self) -> bool {
        matches!(
            self,
            Status::Completed | Status::Rejected | Status::Archived
        )
    }

    /// Not yet verified by LAPOR!'s admin: follow-ups and forwards must wait.
    pub fn awaits_verification(self) -> bool {
        matches!(self, Status::Unverified | Status::Postponed)
    }
}

/// What a status name from LAPOR! means to the bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusName {
    Known(Status),
    /// Stored raw and flagged for an operator; never mapped to a default.
    Unknown(String),
}

/// The name table: LAPOR!'s names plus configured corrections.
#[derive(Debug, Clone)]
pub struct StatusTable {
    by_name: BTreeMap<String, Status>,
}

fn normalize(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

impl Default for StatusTable {
    fn default() -> Self {
        let by_name = Status::ALL
            .into_iter()
            .map(|s| (normalize(s.lapor_name()), s))
            .collect();
        Self { by_name }
    }
}

impl StatusTable {
    /// The default table with configured `name = canonical` entries on top.
    /// Unknown canonical names are rejected by configuration validation.
    pub fn with_overrides(overrides: &BTreeMap<String, String>) -> Self {
        let mut table = Self::default();
        for (name, canonical) in overrides {
            if let Some(status) = Status::from_canonical(canonical) {
                table.by_name.insert(normalize(name), status);
            }
        }
        table
    }

    pub fn map(&self, name: &str) -> StatusName {
        match self.by_name.get(&normalize(name)) {
            Some(status) => StatusName::Known(*status),
            None => StatusName::Unknown(name.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_trimmed_and_case_insensitive_and_unknown_stays_raw() {
        let table = StatusTable::default();
        assert_eq!(
            table.map("  dalam   PROSES "),
            StatusName::Known(Status::InProcess)
        );
        assert_eq!(
            table.map("Menunggu Tanggapan"),
            StatusName::Unknown("Menunggu Tanggapan".into())
        );
        let table = StatusTable::with_overrides(&BTreeMap::from([(
            "Menunggu Tanggapan".to_string(),
            "in_process".to_string(),
        )]));
        assert_eq!(
            table.map("menunggu tanggapan"),
            StatusName::Known(Status::InProcess)
        );
    }
}
