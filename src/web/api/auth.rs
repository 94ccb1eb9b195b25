//! Bearer tokens with names and roles. Only SHA-256 digests are kept, and a
//! presented token is compared with each of them in constant time.

use axum::http::HeaderMap;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{Role, Settings};

#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Clone)]
struct KnownToken {
    name: String,
    role: Role,
    digest: [u8; 32],
}

#[derive(Debug, Clone, Default)]
pub struct TokenStore {
    tokens: Vec<KnownToken>,
}

pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenStore {
    pub fn from_settings(settings: &Settings) -> Self {
        let mut tokens: Vec<KnownToken> = settings
            .tokens
            .iter()
            .filter_map(|t| {
                let bytes = hex::decode(&t.sha256).ok()?;
                let digest: [u8; 32] = bytes.try_into().ok()?;
                Some(KnownToken {
                    name: t.name.clone(),
                    role: t.role,
                    digest,
                })
            })
            .collect();
        if let Some(admin) = &settings.bridge.admin_token {
            tokens.push(KnownToken {
                name: "admin".into(),
                role: Role::Admin,
                digest: digest(admin.expose_secret()),
            });
        }
        Self { tokens }
    }

    /// The caller a token belongs to. Every known digest is compared, so the
    /// time taken does not tell which one matched.
    pub fn identify(&self, presented: &str) -> Option<Caller> {
        let d = digest(presented);
        let mut found = None;
        for t in &self.tokens {
            if bool::from(t.digest.ct_eq(&d)) {
                found = Some(Caller {
                    name: t.name.clone(),
                    role: t.role,
                });
            }
        }
        found
    }

    /// Whether a token of this name still holds this role: a dashboard
    /// session ends when its token is removed or its role changed.
    pub fn still_holds(&self, name: &str, role: Role) -> bool {
        self.tokens.iter().any(|t| t.name == name && t.role == role)
    }
}

/// The token of a request: `Authorization: Bearer <token>` (the scheme is
/// case-insensitive, RFC 9110 section 11.1).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
