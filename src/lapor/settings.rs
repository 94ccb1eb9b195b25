//! The LAPOR! client's settings (`[lapor]` in the config file, `LAPOR_*` in
//! the environment): what they hold and what makes them valid. `config`
//! reads them from the file and the environment.

use secrecy::SecretString;
use serde::Deserialize;

/// Which header carries the LAPOR! API token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum AuthHeader {
    /// `Authorization: Bearer <token>` (development accounts).
    #[serde(rename = "Authorization")]
    AuthorizationBearer,
    /// `auth: <token>` (production accounts).
    #[serde(rename = "auth")]
    Auth,
}

impl AuthHeader {
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim() {
            v if v.eq_ignore_ascii_case("authorization") => Some(Self::AuthorizationBearer),
            v if v.eq_ignore_ascii_case("auth") => Some(Self::Auth),
            _ => None,
        }
    }

    /// The header as the configuration names it (`Authorization`, `auth`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationBearer => "Authorization",
            Self::Auth => "auth",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LaporSettings {
    pub base_url: String,
    pub api_token: SecretString,
    pub instansi_token: SecretString,
    pub auth_header: AuthHeader,
    pub institution_id: i64,
    /// Path of the create call (ASSUMED in the wire contract).
    pub create_path: String,
    /// Extra or corrected status names: LAPOR! name to the bridge's status.
    pub status_names: std::collections::BTreeMap<String, String>,
    /// How far LAPOR!'s clock may run behind the database's when an upstream
    /// follow-up is compared with the first send of a local one.
    pub clock_tolerance_secs: u64,
}

impl Default for LaporSettings {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:8081/api".into(),
            api_token: SecretString::from(""),
            instansi_token: SecretString::from(""),
            auth_header: AuthHeader::AuthorizationBearer,
            institution_id: 101,
            create_path: "/complaints/complaint".into(),
            status_names: Default::default(),
            clock_tolerance_secs: 120,
        }
    }
}

/// A `[lapor]` setting that is not valid: its key (the environment
/// variable's name, or the file key) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub key: &'static str,
    pub problem: String,
}

fn invalid(key: &'static str, problem: impl Into<String>) -> Invalid {
    Invalid {
        key,
        problem: problem.into(),
    }
}

impl LaporSettings {
    /// The checks `config` runs at start.
    pub fn validate(&self) -> Result<(), Invalid> {
        let base = &self.base_url;
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(invalid(
                "LAPOR_BASE_URL",
                format!("must be an http:// or https:// URL, got {base:?}"),
            ));
        }
        if self.institution_id <= 0 {
            return Err(invalid(
                "LAPOR_INSTITUTION_ID",
                "must be a positive integer",
            ));
        }
        if self.clock_tolerance_secs > 86_400 {
            return Err(invalid(
                "lapor.clock_tolerance_secs",
                "must be at most 86400 (a day)",
            ));
        }
        if !self.create_path.starts_with('/') {
            return Err(invalid("lapor.create_path", "must start with /"));
        }
        for (name, status) in &self.status_names {
            if super::Status::from_canonical(status).is_none() {
                return Err(invalid(
                    "lapor.status_names",
                    format!("{name:?} maps to unknown status {status:?}"),
                ));
            }
        }
        Ok(())
    }
}
