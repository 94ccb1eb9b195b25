//! Typed configuration: a TOML file (`--config FILE`), overridden by the
//! environment variables of the design, validated once at start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::lapor::{AuthHeader, LaporSettings};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Parse { path: String, message: String },
    /// `key` names where the value came from once [`Settings::load`] has
    /// seen it: the environment variable, or the key in the file.
    #[error("invalid configuration value for {key}: {problem}")]
    Invalid { key: String, problem: String },
}

fn invalid(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        problem: problem.into(),
    }
}

/// Environment variables and the file keys they override.
const ENV_KEYS: &[(&str, &str)] = &[
    ("DATABASE_URL", "[database] url"),
    ("LAPOR_BASE_URL", "[lapor] base_url"),
    ("LAPOR_API_TOKEN", "[lapor] api_token"),
    ("LAPOR_INSTANSI_TOKEN", "[lapor] instansi_token"),
    ("LAPOR_AUTH_HEADER", "[lapor] auth_header"),
    ("LAPOR_INSTITUTION_ID", "[lapor] institution_id"),
    ("BRIDGE_LISTEN", "[bridge] listen"),
    ("BRIDGE_ADMIN_TOKEN", "[bridge] admin_token"),
    ("BRIDGE_CONCURRENCY", "[bridge] concurrency"),
    ("BRIDGE_RATE_LIMIT_PER_SEC", "[bridge] rate_limit_per_sec"),
    ("BRIDGE_RETRY_BASE_MS", "[bridge] retry_base_ms"),
    ("BRIDGE_RETRY_MAX_MS", "[bridge] retry_max_ms"),
    ("BRIDGE_MAX_ATTEMPTS", "[bridge] max_attempts"),
    ("BRIDGE_HTTP_TIMEOUT_MS", "[bridge] http_timeout_ms"),
    ("BRIDGE_POLL_INTERVAL_SECS", "[bridge] poll_interval_secs"),
    ("BRIDGE_LOOKUP_DELAY_SECS", "[bridge] lookup_delay_secs"),
    ("BRIDGE_LOG_FORMAT", "[bridge] log_format"),
    ("BRIDGE_PII_KEY", "[pii] key"),
    ("BRIDGE_PII_OLD_KEYS", "[pii] old_keys"),
    ("BRIDGE_PII_RETENTION_DAYS", "[pii] retention_days"),
    ("BRIDGE_AUDIT_CHECKPOINT_FILE", "[audit] checkpoint_file"),
    ("BRIDGE_AUDIT_CHECKPOINT_SECS", "[audit] checkpoint_secs"),
];

/// Where the value of `key` (an environment variable's name, or a file key
/// such as `bridge.lease_secs`) came from, in words.
fn key_source(key: &str, file: Option<&Path>, env: &dyn Env) -> String {
    let file_key = ENV_KEYS
        .iter()
        .find(|(e, _)| *e == key)
        .map(|(_, f)| f.to_string())
        .unwrap_or_else(|| match key.split_once('.') {
            Some((table, rest)) => format!("[{table}] {rest}"),
            None => key.to_string(),
        });
    let is_env = ENV_KEYS.iter().any(|(e, _)| *e == key);
    match file {
        _ if is_env && env.var(key).is_some() => {
            format!("environment variable {key}")
        }
        Some(path) => format!("{file_key} in config file {}", path.display()),
        None if is_env => format!("{key} (the default; not set in the environment)"),
        None => format!("{file_key} (the default)"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

pub use crate::domain::Role;

/// An API token of the admin HTTP interface: the token itself is stored only as
/// its SHA-256, in hex.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiToken {
    pub name: String,
    pub role: Role,
    pub sha256: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Holiday {
    pub date: NaiveDate,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub max_connections: u32,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: SecretString::from("postgres://localhost/lapor_bridge"),
            max_connections: 16,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BridgeSettings {
    pub listen: SocketAddr,
    pub admin_token: Option<SecretString>,
    pub concurrency: usize,
    pub rate_limit_per_sec: u32,
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    pub max_attempts: i32,
    pub http_timeout_ms: u64,
    pub poll_interval_secs: u64,
    /// How long a claimed outbox step stays leased without a heartbeat.
    pub lease_secs: u64,
    /// After a write whose outcome is unknown (a gateway's 5xx, a timeout, a
    /// lost answer, a rescued or interrupted step), no lookup and no resend
    /// before this many seconds since that attempt was sent: the backend may
    /// commit it after the gateway gave up.
    pub lookup_delay_secs: u64,
    /// Finished outbox steps are pruned after this many hours (their
    /// attempts and the audit log keep the history).
    pub outbox_retention_hours: u64,
    /// Cron expression (seconds first), in Asia/Jakarta time.
    pub reconcile_cron: String,
    /// Cron expression (seconds first), Asia/Jakarta time, of the deep
    /// reconciliation that reads every tracked complaint's detail.
    pub deep_reconcile_cron: String,
    /// Closed complaints are still reconciled this many days after closing.
    pub reconcile_closed_horizon_days: i64,
    pub log_format: LogFormat,
    /// The admin HTTP server answers `408` to a request not answered in
    /// this many seconds (`POST /api/v1/pull` and `/reconcile` excepted:
    /// they answer when their run ends).
    pub request_timeout_secs: u64,
    /// A connection that has not sent a whole request head in this many
    /// seconds is closed.
    pub header_read_timeout_secs: u64,
    /// The largest request body the admin HTTP server reads; a larger one
    /// is answered `413`.
    pub max_body_bytes: usize,
}

impl Default for BridgeSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_token: None,
            concurrency: 8,
            rate_limit_per_sec: 10,
            retry_base_ms: 1_000,
            retry_max_ms: 600_000,
            max_attempts: 12,
            http_timeout_ms: 30_000,
            poll_interval_secs: 300,
            lease_secs: 60,
            lookup_delay_secs: 120,
            outbox_retention_hours: 24 * 7,
            reconcile_cron: "0 0 2 * * *".into(),
            deep_reconcile_cron: "0 0 3 * * Sun".into(),
            reconcile_closed_horizon_days: 30,
            log_format: LogFormat::Human,
            request_timeout_secs: 30,
            header_read_timeout_secs: 10,
            max_body_bytes: 2 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlaSettings {
    /// Non-working days besides weekends (national holidays and cuti bersama).
    /// Without this key: the list shipped in `data/id-holidays.csv`.
    pub holidays: Vec<Holiday>,
}

/// Indonesia's national holidays and collective leave days shipped with the
/// binary (see `data/README.md` for the decrees).
pub const SHIPPED_HOLIDAYS: &str = include_str!("../data/id-holidays.csv");

/// Parses `date,kind,name` lines (with a header line).
pub fn parse_holiday_csv(text: &str) -> Vec<Holiday> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut parts = line.splitn(3, ',');
            let date = NaiveDate::parse_from_str(parts.next()?.trim(), "%Y-%m-%d").ok()?;
            Some(Holiday {
                date,
                kind: parts.next().unwrap_or_default().trim().to_string(),
                name: parts.next().unwrap_or_default().trim().to_string(),
            })
        })
        .collect()
}

impl Default for SlaSettings {
    fn default() -> Self {
        Self {
            holidays: parse_holiday_csv(SHIPPED_HOLIDAYS),
        }
    }
}

/// Checkpoints of the audit log outside the database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    /// JSON lines `{"id", "hash", "at"}` appended by `run`; `audit verify`
    /// checks them. Unset: no checkpoints.
    pub checkpoint_file: Option<PathBuf>,
    /// How often `run` looks at the head of the audit log.
    pub checkpoint_secs: u64,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            checkpoint_file: None,
            checkpoint_secs: 300,
        }
    }
}

/// Reporter identity (personal data): its key and how long it is kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PiiSettings {
    /// Base64 of 32 bytes; `run` refuses to start without it.
    pub key: Option<SecretString>,
    /// Earlier keys, still able to open what `pii rotate` has not re-encrypted.
    pub old_keys: Vec<SecretString>,
    /// Days after LAPOR! closed a complaint before its reporter is erased.
    pub retention_days: u32,
}

impl Default for PiiSettings {
    fn default() -> Self {
        Self {
            key: None,
            old_keys: Vec::new(),
            retention_days: 730,
        }
    }
}

/// One webhook endpoint (`[[webhooks]]`, or `BRIDGE_WEBHOOK_URL` with
/// `BRIDGE_WEBHOOK_SECRET`): every event of the change feed (or those named
/// in `events`) is POSTed to `url`, signed with `secret` (Standard Webhooks).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    pub url: String,
    /// `whsec_` followed by the base64 of the key's bytes.
    pub secret: SecretString,
    /// Event types to send; absent: all.
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// Set when the endpoint came from the environment (for error messages).
    #[serde(skip)]
    pub from_env: bool,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub lapor: LaporSettings,
    pub bridge: BridgeSettings,
    pub sla: SlaSettings,
    pub audit: AuditSettings,
    pub pii: PiiSettings,
    pub tokens: Vec<ApiToken>,
    pub webhooks: Vec<WebhookSettings>,
}

/// Where the environment comes from; tests pass a map instead of the process
/// environment.
pub trait Env {
    fn var(&self, key: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }
}

impl Env for std::collections::HashMap<&str, &str> {
    fn var(&self, key: &str) -> Option<String> {
        self.get(key).map(|v| v.to_string())
    }
}

fn parse_env<T: std::str::FromStr>(
    env: &dyn Env,
    key: &'static str,
    target: &mut T,
) -> Result<(), ConfigError>
where
    T::Err: std::fmt::Display,
{
    if let Some(raw) = env.var(key) {
        *target = raw.trim().parse().map_err(|e: T::Err| {
            invalid(
                &format!("environment variable {key}"),
                format!("{e} (got {raw:?})"),
            )
        })?;
    }
    Ok(())
}

impl Settings {
    /// Reads the optional file, applies the environment, validates.
    pub fn load(file: Option<&Path>, env: &dyn Env) -> Result<Self, ConfigError> {
        let mut settings = match file {
            Some(path) => Self::from_toml_file(path)?,
            None => Self::default(),
        };
        settings.apply_env(env)?;
        settings.validate().map_err(|e| match e {
            ConfigError::Invalid { key, problem } => ConfigError::Invalid {
                key: key_source(&key, file, env),
                problem,
            },
            other => other,
        })?;
        Ok(settings)
    }

    pub fn from_toml_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.display().to_string(),
            message,
        })
    }

    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Applies the environment variables over the file's values. A bad
    /// value is named by its variable.
    pub fn apply_env(&mut self, env: &dyn Env) -> Result<(), ConfigError> {
        self.apply_lapor_env(env)?;
        self.apply_bridge_env(env)?;
        self.apply_pii_env(env)?;
        parse_env(
            env,
            "BRIDGE_LOOKUP_DELAY_SECS",
            &mut self.bridge.lookup_delay_secs,
        )?;
        self.apply_audit_env(env)?;
        self.apply_webhook_env(env)?;
        self.apply_log_format_env(env)
    }

    /// `DATABASE_URL` and `LAPOR_*`.
    fn apply_lapor_env(&mut self, env: &dyn Env) -> Result<(), ConfigError> {
        if let Some(url) = env.var("DATABASE_URL") {
            self.database.url = SecretString::from(url);
        }
        if let Some(url) = env.var("LAPOR_BASE_URL") {
            self.lapor.base_url = url;
        }
        if let Some(token) = env.var("LAPOR_API_TOKEN") {
            self.lapor.api_token = SecretString::from(token);
        }
        if let Some(token) = env.var("LAPOR_INSTANSI_TOKEN") {
            self.lapor.instansi_token = SecretString::from(token);
        }
        if let Some(raw) = env.var("LAPOR_AUTH_HEADER") {
            self.lapor.auth_header = AuthHeader::parse(&raw).ok_or_else(|| {
                invalid(
                    "environment variable LAPOR_AUTH_HEADER",
                    format!("must be `Authorization` or `auth`, got {raw:?}"),
                )
            })?;
        }
        parse_env(env, "LAPOR_INSTITUTION_ID", &mut self.lapor.institution_id)
    }

    /// `BRIDGE_*` of `[bridge]`: listening, delivery and the HTTP edge.
    fn apply_bridge_env(&mut self, env: &dyn Env) -> Result<(), ConfigError> {
        parse_env(env, "BRIDGE_LISTEN", &mut self.bridge.listen)?;
        if let Some(token) = env.var("BRIDGE_ADMIN_TOKEN") {
            self.bridge.admin_token = Some(SecretString::from(token));
        }
        let b = &mut self.bridge;
        parse_env(env, "BRIDGE_CONCURRENCY", &mut b.concurrency)?;
        parse_env(env, "BRIDGE_RATE_LIMIT_PER_SEC", &mut b.rate_limit_per_sec)?;
        parse_env(env, "BRIDGE_RETRY_BASE_MS", &mut b.retry_base_ms)?;
        parse_env(env, "BRIDGE_RETRY_MAX_MS", &mut b.retry_max_ms)?;
        parse_env(env, "BRIDGE_MAX_ATTEMPTS", &mut b.max_attempts)?;
        parse_env(env, "BRIDGE_HTTP_TIMEOUT_MS", &mut b.http_timeout_ms)?;
        parse_env(env, "BRIDGE_POLL_INTERVAL_SECS", &mut b.poll_interval_secs)?;
        parse_env(
            env,
            "BRIDGE_REQUEST_TIMEOUT_SECS",
            &mut b.request_timeout_secs,
        )?;
        parse_env(
            env,
            "BRIDGE_HEADER_READ_TIMEOUT_SECS",
            &mut b.header_read_timeout_secs,
        )?;
        parse_env(env, "BRIDGE_MAX_BODY_BYTES", &mut b.max_body_bytes)
    }

    /// `BRIDGE_PII_*`.
    fn apply_pii_env(&mut self, env: &dyn Env) -> Result<(), ConfigError> {
        if let Some(key) = env.var("BRIDGE_PII_KEY").filter(|k| !k.trim().is_empty()) {
            self.pii.key = Some(SecretString::from(key));
        }
        if let Some(keys) = env.var("BRIDGE_PII_OLD_KEYS") {
            self.pii.old_keys = keys
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(SecretString::from)
                .collect();
        }
        parse_env(
            env,
            "BRIDGE_PII_RETENTION_DAYS",
            &mut self.pii.retention_days,
        )
    }

    /// `BRIDGE_AUDIT_*`.
    fn apply_audit_env(&mut self, env: &dyn Env) -> Result<(), ConfigError> {
        if let Some(path) = env.var("BRIDGE_AUDIT_CHECKPOINT_FILE") {
            self.audit.checkpoint_file = (!path.trim().is_empty()).then(|| PathBuf::from(path));
        }
        parse_env(
            env,
            "BRIDGE_AUDIT_CHECKPOINT_SECS",
            &mut self.audit.checkpoint_secs,
        )
    }

    /// `BRIDGE_WEBHOOK_URL` with `BRIDGE_WEBHOOK_SECRET`: one more webhook,
    /// or the secret of the file's webhook with that URL.
    fn apply_webhook_env(&mut self, env: &dyn Env) -> Result<(), ConfigError> {
        let webhook_url = env
            .var("BRIDGE_WEBHOOK_URL")
            .filter(|v| !v.trim().is_empty());
        let webhook_secret = env
            .var("BRIDGE_WEBHOOK_SECRET")
            .filter(|v| !v.trim().is_empty());
        match (webhook_url, webhook_secret) {
            (Some(url), Some(secret)) => {
                let url = url.trim().to_string();
                let secret = SecretString::from(secret.trim().to_string());
                match self.webhooks.iter_mut().find(|w| w.url == url) {
                    Some(existing) => {
                        existing.secret = secret;
                        existing.from_env = true;
                    }
                    None => self.webhooks.push(WebhookSettings {
                        url,
                        secret,
                        events: None,
                        from_env: true,
                    }),
                }
            }
            (Some(_), None) => {
                return Err(invalid(
                    "BRIDGE_WEBHOOK_SECRET",
                    "must be set with BRIDGE_WEBHOOK_URL (whsec_ followed by base64)",
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "BRIDGE_WEBHOOK_URL",
                    "must be set with BRIDGE_WEBHOOK_SECRET",
                ));
            }
            (None, None) => {}
        }
        Ok(())
    }

    /// `BRIDGE_LOG_FORMAT`.
    fn apply_log_format_env(&mut self, env: &dyn Env) -> Result<(), ConfigError> {
        if let Some(raw) = env.var("BRIDGE_LOG_FORMAT") {
            self.bridge.log_format = match raw.trim() {
                "json" => LogFormat::Json,
                "human" => LogFormat::Human,
                other => {
                    return Err(invalid(
                        "environment variable BRIDGE_LOG_FORMAT",
                        format!("must be `human` or `json`, got {other:?}"),
                    ));
                }
            };
        }
        Ok(())
    }

    /// Every check of the settings, the first problem as an error naming
    /// its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = self.database.url.expose_secret();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(invalid(
                "DATABASE_URL",
                "must start with postgres:// or postgresql://",
            ));
        }
        self.lapor
            .validate()
            .map_err(|e| invalid(e.key, e.problem))?;
        self.validate_pii()?;
        self.validate_bridge()?;
        if self.audit.checkpoint_secs == 0 {
            return Err(invalid(
                "BRIDGE_AUDIT_CHECKPOINT_SECS",
                "must be at least 1",
            ));
        }
        self.validate_webhooks()?;
        self.validate_tokens()
    }

    fn validate_pii(&self) -> Result<(), ConfigError> {
        if self.pii.retention_days > 36_500 {
            return Err(invalid(
                "BRIDGE_PII_RETENTION_DAYS",
                "must be at most 36500 (a hundred years)",
            ));
        }
        crate::pii::Keyring::from_settings(&self.pii).map_err(|e| match e {
            crate::pii::KeyError::Malformed { name } => invalid(name, e.to_string()),
        })?;
        Ok(())
    }

    fn validate_bridge(&self) -> Result<(), ConfigError> {
        let b = &self.bridge;
        if b.concurrency == 0 || b.concurrency > 1024 {
            return Err(invalid("BRIDGE_CONCURRENCY", "must be between 1 and 1024"));
        }
        if b.retry_base_ms == 0 {
            return Err(invalid("BRIDGE_RETRY_BASE_MS", "must be at least 1"));
        }
        if b.retry_max_ms < b.retry_base_ms {
            return Err(invalid(
                "BRIDGE_RETRY_MAX_MS",
                "must be at least BRIDGE_RETRY_BASE_MS",
            ));
        }
        if b.max_attempts < 1 {
            return Err(invalid("BRIDGE_MAX_ATTEMPTS", "must be at least 1"));
        }
        if b.http_timeout_ms < 100 {
            return Err(invalid("BRIDGE_HTTP_TIMEOUT_MS", "must be at least 100"));
        }
        if b.poll_interval_secs == 0 {
            return Err(invalid("BRIDGE_POLL_INTERVAL_SECS", "must be at least 1"));
        }
        if b.lease_secs < 5 {
            return Err(invalid("bridge.lease_secs", "must be at least 5"));
        }
        if b.lookup_delay_secs > 86_400 {
            return Err(invalid(
                "BRIDGE_LOOKUP_DELAY_SECS",
                "must be at most 86400 (a day)",
            ));
        }
        if !(1..=3600).contains(&b.request_timeout_secs) {
            return Err(invalid(
                "BRIDGE_REQUEST_TIMEOUT_SECS",
                "must be between 1 and 3600",
            ));
        }
        if !(1..=300).contains(&b.header_read_timeout_secs) {
            return Err(invalid(
                "BRIDGE_HEADER_READ_TIMEOUT_SECS",
                "must be between 1 and 300",
            ));
        }
        if !(1024..=1024 * 1024 * 1024).contains(&b.max_body_bytes) {
            return Err(invalid(
                "BRIDGE_MAX_BODY_BYTES",
                "must be between 1024 and 1073741824 (1 GiB)",
            ));
        }
        if let Some(token) = &b.admin_token
            && token.expose_secret().len() < 16
        {
            return Err(invalid(
                "BRIDGE_ADMIN_TOKEN",
                "must be at least 16 characters",
            ));
        }
        Ok(())
    }

    fn validate_tokens(&self) -> Result<(), ConfigError> {
        for token in &self.tokens {
            if token.name.trim().is_empty() {
                return Err(invalid("tokens.name", "must not be empty"));
            }
            if token.sha256.len() != 64 || hex::decode(&token.sha256).is_err() {
                return Err(invalid(
                    "tokens.sha256",
                    format!("token {:?}: must be 64 hex digits", token.name),
                ));
            }
        }
        Ok(())
    }
}

impl Settings {
    fn validate_webhooks(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for (i, w) in self.webhooks.iter().enumerate() {
            let (url_key, secret_key) = if w.from_env {
                ("BRIDGE_WEBHOOK_URL", "BRIDGE_WEBHOOK_SECRET")
            } else {
                ("webhooks.url", "webhooks.secret")
            };
            let url = reqwest::Url::parse(&w.url)
                .map_err(|e| invalid(url_key, format!("webhook {}: not a URL ({e})", i + 1)))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(invalid(
                    url_key,
                    format!("webhook {}: must be an http:// or https:// URL", i + 1),
                ));
            }
            if !seen.insert(w.url.as_str()) {
                return Err(invalid(
                    url_key,
                    format!("webhook {}: the same URL twice", i + 1),
                ));
            }
            crate::feed::webhook::WebhookSecret::parse(w.secret.expose_secret()).map_err(|e| {
                invalid(
                    secret_key,
                    format!(
                        "webhook {} ({}): {e}",
                        i + 1,
                        crate::feed::webhook::shown_url(&url)
                    ),
                )
            })?;
            if w.events.as_ref().is_some_and(Vec::is_empty) {
                return Err(invalid(
                    "webhooks.events",
                    format!(
                        "webhook {}: an empty list sends nothing (leave it out for every event)",
                        i + 1
                    ),
                ));
            }
            for event in w.events.iter().flatten() {
                if !crate::feed::EVENT_TYPES.contains(&event.as_str()) {
                    return Err(invalid(
                        "webhooks.events",
                        format!(
                            "webhook {}: unknown event type {event:?} (known: {})",
                            i + 1,
                            crate::feed::EVENT_TYPES.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn a_bad_value_names_its_key_and_where_it_came_from() {
        // From the environment.
        let env: HashMap<&str, &str> = HashMap::from([("BRIDGE_CONCURRENCY", "0")]);
        let err = Settings::load(None, &env).unwrap_err().to_string();
        assert!(
            err.contains("environment variable BRIDGE_CONCURRENCY"),
            "{err}"
        );
        // From the file.
        let dir = std::env::temp_dir().join(format!("lb-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bridge.toml");
        std::fs::write(&path, "[bridge]\nconcurrency = 0\n").unwrap();
        let none: HashMap<&str, &str> = HashMap::new();
        let err = Settings::load(Some(&path), &none).unwrap_err().to_string();
        assert!(
            err.contains("[bridge] concurrency in config file") && err.contains("bridge.toml"),
            "{err}"
        );
        std::fs::write(&path, "[database]\nurl = \"mysql://x\"\n").unwrap();
        let err = Settings::load(Some(&path), &none).unwrap_err().to_string();
        assert!(err.contains("[database] url in config file"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn environment_overrides_file_and_bad_values_name_their_key() {
        let mut settings = Settings::from_toml("[bridge]\nconcurrency = 3\n").unwrap();
        let env: HashMap<&str, &str> = HashMap::from([("BRIDGE_CONCURRENCY", "5")]);
        settings.apply_env(&env).unwrap();
        assert_eq!(settings.bridge.concurrency, 5);

        let env: HashMap<&str, &str> = HashMap::from([("BRIDGE_MAX_ATTEMPTS", "many")]);
        let err = Settings::load(None, &env).unwrap_err().to_string();
        assert!(err.contains("BRIDGE_MAX_ATTEMPTS"), "{err}");

        let env: HashMap<&str, &str> = HashMap::from([("LAPOR_AUTH_HEADER", "X-Token")]);
        let err = Settings::load(None, &env).unwrap_err().to_string();
        assert!(err.contains("LAPOR_AUTH_HEADER"), "{err}");
    }

    #[test]
    fn pii_keys_come_from_the_environment_and_bad_ones_are_named() {
        let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let env: HashMap<&str, &str> = HashMap::from([
            ("BRIDGE_PII_KEY", key),
            (
                "BRIDGE_PII_OLD_KEYS",
                " , AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            ),
            ("BRIDGE_PII_RETENTION_DAYS", "0"),
        ]);
        let settings = Settings::load(None, &env).unwrap();
        assert_eq!(settings.pii.retention_days, 0);
        assert_eq!(settings.pii.old_keys.len(), 1);
        assert!(!format!("{settings:?}").contains(key));
        assert_eq!(Settings::default().pii.retention_days, 730);

        let env: HashMap<&str, &str> = HashMap::from([("BRIDGE_PII_KEY", "c2hvcnQ=")]);
        let err = Settings::load(None, &env).unwrap_err().to_string();
        assert!(
            err.contains("BRIDGE_PII_KEY") && err.contains("openssl rand -base64 32"),
            "{err}"
        );
        let env: HashMap<&str, &str> = HashMap::from([("BRIDGE_PII_OLD_KEYS", "nope")]);
        let err = Settings::load(None, &env).unwrap_err().to_string();
        assert!(err.contains("BRIDGE_PII_OLD_KEYS"), "{err}");
    }

    #[test]
    fn tokens_never_show_in_debug_output() {
        let env: HashMap<&str, &str> = HashMap::from([
            ("LAPOR_API_TOKEN", "super-secret-api-token"),
            ("BRIDGE_ADMIN_TOKEN", "admin-secret-0123456789"),
        ]);
        let settings = Settings::load(None, &env).unwrap();
        let shown = format!("{settings:?}");
        assert!(!shown.contains("super-secret-api-token"));
        assert!(!shown.contains("admin-secret-0123456789"));
    }

    #[test]
    fn the_example_config_parses_and_validates() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/lapor-bridge.example.toml");
        let settings = Settings::from_toml_file(&path).unwrap();
        settings.validate().unwrap();
        assert!(settings.sla.holidays.len() >= 50);
    }

    #[test]
    fn the_shipped_holidays_are_the_default_and_match_the_example_config() {
        let shipped = SlaSettings::default().holidays;
        assert_eq!(shipped.len(), 53);
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/lapor-bridge.example.toml");
        let example = Settings::from_toml_file(&path).unwrap().sla.holidays;
        let dates = |h: &[Holiday]| h.iter().map(|d| d.date).collect::<Vec<_>>();
        assert_eq!(dates(&shipped), dates(&example));
    }

    #[test]
    fn audit_checkpoint_keys_load_from_the_file_and_the_environment() {
        let settings = Settings::default();
        assert_eq!(settings.audit.checkpoint_file, None);
        assert_eq!(settings.audit.checkpoint_secs, 300);

        let mut settings = Settings::from_toml(
            "[audit]\ncheckpoint_file = \"/var/lib/lapor-bridge/cp.jsonl\"\ncheckpoint_secs = 60\n",
        )
        .unwrap();
        assert_eq!(
            settings.audit.checkpoint_file.as_deref(),
            Some(Path::new("/var/lib/lapor-bridge/cp.jsonl"))
        );
        assert_eq!(settings.audit.checkpoint_secs, 60);
        let env: HashMap<&str, &str> = HashMap::from([
            ("BRIDGE_AUDIT_CHECKPOINT_FILE", "/srv/audit/cp.jsonl"),
            ("BRIDGE_AUDIT_CHECKPOINT_SECS", "30"),
        ]);
        settings.apply_env(&env).unwrap();
        assert_eq!(
            settings.audit.checkpoint_file.as_deref(),
            Some(Path::new("/srv/audit/cp.jsonl"))
        );
        assert_eq!(settings.audit.checkpoint_secs, 30);

        let env: HashMap<&str, &str> = HashMap::from([("BRIDGE_AUDIT_CHECKPOINT_SECS", "0")]);
        let err = Settings::load(None, &env).unwrap_err().to_string();
        assert!(err.contains("BRIDGE_AUDIT_CHECKPOINT_SECS"), "{err}");
        let env: HashMap<&str, &str> = HashMap::from([("BRIDGE_AUDIT_CHECKPOINT_SECS", "soon")]);
        let err = Settings::load(None, &env).unwrap_err().to_string();
        assert!(err.contains("BRIDGE_AUDIT_CHECKPOINT_SECS"), "{err}");
        assert!(Settings::from_toml("[audit]\ncheckpoint_sec = 3\n").is_err());
    }

    #[test]
    fn http_edge_limits_load_and_bad_ones_are_named() {
        let b = Settings::default().bridge;
        assert_eq!(
            (
                b.request_timeout_secs,
                b.header_read_timeout_secs,
                b.max_body_bytes
            ),
            (30, 10, 2 * 1024 * 1024)
        );
        let env: HashMap<&str, &str> = HashMap::from([
            ("BRIDGE_REQUEST_TIMEOUT_SECS", "5"),
            ("BRIDGE_HEADER_READ_TIMEOUT_SECS", "3"),
            ("BRIDGE_MAX_BODY_BYTES", "65536"),
        ]);
        let b = Settings::load(None, &env).unwrap().bridge;
        assert_eq!(
            (
                b.request_timeout_secs,
                b.header_read_timeout_secs,
                b.max_body_bytes
            ),
            (5, 3, 65536)
        );
        for (key, value) in [
            ("BRIDGE_REQUEST_TIMEOUT_SECS", "0"),
            ("BRIDGE_HEADER_READ_TIMEOUT_SECS", "0"),
            ("BRIDGE_MAX_BODY_BYTES", "10"),
        ] {
            let env: HashMap<&str, &str> = HashMap::from([(key, value)]);
            let err = Settings::load(None, &env).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn webhooks_come_from_the_file_and_the_environment_and_bad_ones_are_named() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let mut settings = Settings::from_toml(&format!(
            "[[webhooks]]\nurl = \"https://city.example/hooks\"\nsecret = \"{secret}\"\nevents = [\"complaint.linked\"]\n"
        ))
        .unwrap();
        settings.validate().unwrap();
        assert_eq!(settings.webhooks.len(), 1);
        assert!(!format!("{settings:?}").contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
        let env: HashMap<&str, &str> = HashMap::from([
            ("BRIDGE_WEBHOOK_URL", "http://127.0.0.1:9000/in"),
            ("BRIDGE_WEBHOOK_SECRET", secret),
        ]);
        settings.apply_env(&env).unwrap();
        settings.validate().unwrap();
        assert_eq!(settings.webhooks.len(), 2);
        assert!(settings.webhooks[1].events.is_none());

        let env: HashMap<&str, &str> = HashMap::from([
            ("BRIDGE_WEBHOOK_URL", "http://127.0.0.1:9000/in"),
            ("BRIDGE_WEBHOOK_SECRET", "whsec_not base64!"),
        ]);
        let err = Settings::load(None, &env).unwrap_err().to_string();
        assert!(err.contains("BRIDGE_WEBHOOK_SECRET"), "{err}");
        assert!(
            !err.contains("not base64!"),
            "the secret is never shown: {err}"
        );
        let env: HashMap<&str, &str> =
            HashMap::from([("BRIDGE_WEBHOOK_URL", "http://127.0.0.1:9000/in")]);
        let err = Settings::load(None, &env).unwrap_err().to_string();
        assert!(err.contains("BRIDGE_WEBHOOK_SECRET"), "{err}");

        let bad = Settings::from_toml(
            "[[webhooks]]\nurl = \"https://city.example/hooks\"\nsecret = \"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n",
        )
        .unwrap();
        let err = bad.validate().unwrap_err().to_string();
        assert!(
            err.contains("webhooks.secret") && err.contains("whsec_"),
            "{err}"
        );
        let bad = Settings::from_toml(&format!(
            "[[webhooks]]\nurl = \"https://city.example/hooks\"\nsecret = \"{secret}\"\nevents = [\"complaint.created\"]\n"
        ))
        .unwrap();
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("webhooks.events"), "{err}");
        let bad = Settings::from_toml(&format!(
            "[[webhooks]]\nurl = \"ftp://city.example/\"\nsecret = \"{secret}\"\n"
        ))
        .unwrap();
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("webhooks.url")
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(Settings::from_toml("[bridge]\nconcurency = 3\n").is_err());
    }
}
