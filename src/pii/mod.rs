//! Reporter identity: personal data under UU 27/2022 (Pelindungan Data
//! Pribadi). It is kept only as XChaCha20-Poly1305 ciphertext under
//! `BRIDGE_PII_KEY`, bound to its complaint's `local_ref`; it is shown
//! unmasked only to operators and admins on one complaint, and never copied
//! elsewhere. See docs/privacy.md.

pub mod task;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use secrecy::ExposeSecret;
use secrecy::zeroize::{Zeroize, Zeroizing};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{PiiSettings, Role};
use crate::store::complaints::ComplaintRow;

/// Bytes of the random nonce stored in front of each ciphertext.
pub const NONCE_LEN: usize = 24;

/// Separates this use of the key from any other: part of the associated data.
const AAD_CONTEXT: &[u8] = b"lapor-bridge/reporter/v1\0";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{name} is not base64 of 32 bytes (generate one with `openssl rand -base64 32`)")]
    Malformed { name: &'static str },
}

#[derive(Debug, thiserror::Error)]
pub enum PiiError {
    #[error("no key with id {0} (is it in BRIDGE_PII_OLD_KEYS?)")]
    UnknownKey(String),
    #[error("reporter ciphertext of {0} does not open: wrong key or tampered row")]
    Corrupt(String),
    #[error("cannot encrypt the reporter")]
    Seal,
}

/// A reporter's identity in clear, as submitted. Its `Debug` shows only
/// which fields are present, so that it never reaches a log by accident.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nik: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |v: &Option<String>| if v.is_some() { "<redacted>" } else { "-" };
        f.debug_struct("Identity")
            .field("name", &shown(&self.name))
            .field("phone", &shown(&self.phone))
            .field("email", &shown(&self.email))
            .field("nik", &shown(&self.nik))
            .field("address", &shown(&self.address))
            .finish()
    }
}

/// The clear text does not outlive the value in memory.
impl Drop for Identity {
    fn drop(&mut self) {
        self.name.zeroize();
        self.phone.zeroize();
        self.email.zeroize();
        self.nik.zeroize();
        self.address.zeroize();
    }
}

impl Identity {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.phone.is_none()
            && self.email.is_none()
            && self.nik.is_none()
            && self.address.is_none()
    }

    /// Every field masked (see the `mask_*` functions).
    pub fn masked(&self) -> Identity {
        Identity {
            name: self.name.as_deref().map(mask_name),
            phone: self.phone.as_deref().map(mask_phone),
            email: self.email.as_deref().map(mask_email),
            nik: self.nik.as_deref().map(mask_nik),
            address: self.address.as_deref().map(mask_address),
        }
    }
}

/// `Siti Aminah Putri` → `Siti A*** P***`; a single word keeps its first
/// letter only (`Sukarno` → `S***`), so that a one-word name is not shown.
pub fn mask_name(name: &str) -> String {
    let mut words = name.split_whitespace();
    let Some(first) = words.next() else {
        return "***".into();
    };
    let rest: Vec<String> = words.map(initial).collect();
    if rest.is_empty() {
        return initial(first);
    }
    format!("{first} {}", rest.join(" "))
}

fn initial(word: &str) -> String {
    let first: String = word.chars().take(1).collect();
    format!("{first}***")
}

/// `08123456789` → `0812****789` (spaces and dashes dropped first).
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect();
    if digits.len() < 8 {
        return "****".into();
    }
    let head: String = digits[..4].iter().collect();
    let tail: String = digits[digits.len() - 3..].iter().collect();
    format!("{head}****{tail}")
}

/// `siti@example.id` → `s***@example.id`.
pub fn mask_email(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => format!("{}@{domain}", initial(local)),
        None => "***".into(),
    }
}

/// `3171015708900001` → `3171********0001` (region kept, birth date hidden).
pub fn mask_nik(nik: &str) -> String {
    if nik.len() != 16 || !nik.is_ascii() {
        return "****************".into();
    }
    format!("{}********{}", &nik[..4], &nik[12..])
}

/// `Jl. Merdeka No. 5, Menteng` → `Jl. ***`.
pub fn mask_address(address: &str) -> String {
    match address.split_whitespace().next() {
        Some(first) => format!("{first} ***"),
        None => "***".into(),
    }
}

/// One key: its id (first 8 hex digits of SHA-256 of the key) and cipher.
pub struct PiiKey {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for PiiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PiiKey").field("id", &self.id).finish()
    }
}

impl PiiKey {
    pub fn from_base64(name: &'static str, text: &str) -> Result<Self, KeyError> {
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|_| KeyError::Malformed { name })?;
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::Malformed { name })?;
        let id = hex::encode(&Sha256::digest(key)[..4]);
        Ok(Self {
            id,
            cipher: XChaCha20Poly1305::new(&key.into()),
        })
    }

    /// A fresh random key, and its base64 (for the demo).
    pub fn generate() -> (Self, String) {
        let text = BASE64.encode(rand::random::<[u8; 32]>());
        match Self::from_base64("generated key", &text) {
            Ok(key) => (key, text),
            Err(_) => unreachable!("32 random bytes always make a key"),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The current key, which seals, and older ones, which only open.
#[derive(Debug)]
pub struct Keyring {
    current: PiiKey,
    old: Vec<PiiKey>,
}

/// A sealed identity: `nonce || ciphertext` and the id of its key.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub ciphertext: Vec<u8>,
    pub key_id: String,
}

fn aad(local_ref: &str) -> Vec<u8> {
    let mut aad = AAD_CONTEXT.to_vec();
    aad.extend_from_slice(local_ref.as_bytes());
    aad
}

impl Keyring {
    pub fn new(current: PiiKey, old: Vec<PiiKey>) -> Self {
        Self { current, old }
    }

    /// The keys of the settings; `None` without `BRIDGE_PII_KEY`.
    pub fn from_settings(settings: &PiiSettings) -> Result<Option<Self>, KeyError> {
        let old = settings
            .old_keys
            .iter()
            .map(|k| PiiKey::from_base64("BRIDGE_PII_OLD_KEYS", k.expose_secret()))
            .collect::<Result<Vec<_>, _>>()?;
        let Some(key) = &settings.key else {
            return Ok(None);
        };
        let current = PiiKey::from_base64("BRIDGE_PII_KEY", key.expose_secret())?;
        Ok(Some(Self::new(current, old)))
    }

    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    pub fn knows(&self, key_id: &str) -> bool {
        self.key(key_id).is_some()
    }

    fn key(&self, key_id: &str) -> Option<&PiiKey> {
        std::iter::once(&self.current)
            .chain(&self.old)
            .find(|k| k.id == key_id)
    }

    /// Encrypts under the current key with a fresh random nonce; the
    /// associated data binds the ciphertext to `local_ref`.
    pub fn seal(&self, local_ref: &str, identity: &Identity) -> Result<Sealed, PiiError> {
        let plain = Zeroizing::new(serde_json::to_vec(identity).map_err(|_| PiiError::Seal)?);
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let aad = aad(local_ref);
        let sealed = self
            .current
            .cipher
            .encrypt(
                &XNonce::from(nonce_bytes),
                Payload {
                    msg: &plain,
                    aad: &aad,
                },
            )
            .map_err(|_| PiiError::Seal)?;
        let mut ciphertext = nonce_bytes.to_vec();
        ciphertext.extend_from_slice(&sealed);
        Ok(Sealed {
            ciphertext,
            key_id: self.current.id.clone(),
        })
    }

    pub fn open(
        &self,
        local_ref: &str,
        key_id: &str,
        ciphertext: &[u8],
    ) -> Result<Identity, PiiError> {
        let key = self
            .key(key_id)
            .ok_or_else(|| PiiError::UnknownKey(key_id.to_string()))?;
        let corrupt = || PiiError::Corrupt(local_ref.to_string());
        if ciphertext.len() < NONCE_LEN {
            return Err(corrupt());
        }
        let (nonce, body) = ciphertext.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| corrupt())?;
        let aad = aad(local_ref);
        let plain = Zeroizing::new(
            key.cipher
                .decrypt(
                    &XNonce::from(nonce),
                    Payload {
                        msg: body,
                        aad: &aad,
                    },
                )
                .map_err(|_| corrupt())?,
        );
        serde_json::from_slice(&plain).map_err(|_| corrupt())
    }
}

/// Who looks, and how: one complaint's page or a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Showing {
    One,
    List,
}

/// Whether `role` sees a reporter unmasked. Operators and admins on one
/// complaint; of an anonymous or secret complaint, admins only. Lists,
/// auditors and intake tokens always see it masked.
pub fn sees_unmasked(role: Role, showing: Showing, is_anonymous: bool, is_secret: bool) -> bool {
    if showing != Showing::One {
        return false;
    }
    match role {
        Role::Admin => true,
        Role::Operator => !(is_anonymous || is_secret),
        Role::Intake | Role::Auditor => false,
    }
}

/// What a complaint holds of its reporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReporterState {
    /// No reporter was given.
    None,
    /// Encrypted at rest.
    Held,
    /// Staged by `submit_complaint` and encrypted at the daemon's next pass.
    Sealing,
    /// Erased on request or after retention.
    Erased,
    /// The ciphertext does not open with the configured keys.
    Unreadable,
}

/// The reporter as one viewer is shown it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReporterView {
    pub state: ReporterState,
    pub masked: bool,
    #[serde(flatten)]
    pub identity: Identity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub erased_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub erasure: Option<String>,
}

impl ReporterView {
    /// Whether this view shows identity in clear (what `pii_viewed` records).
    pub fn reveals(&self) -> bool {
        !self.masked && !self.identity.is_empty()
    }
}

/// The reporter of `row`, unmasked or masked. Nothing is decrypted for an
/// erased complaint; a ciphertext that does not open reads as unreadable.
pub fn view(keyring: Option<&Keyring>, row: &ComplaintRow, unmasked: bool) -> ReporterView {
    let mut view = ReporterView {
        state: ReporterState::None,
        masked: !unmasked,
        identity: Identity::default(),
        erased_at: row.reporter_erased_at,
        erasure: row.reporter_erasure.clone(),
    };
    if row.reporter_erased_at.is_some() {
        view.state = ReporterState::Erased;
    } else if let (Some(ciphertext), Some(key_id)) =
        (&row.reporter_ciphertext, &row.reporter_key_id)
    {
        match keyring.map(|k| k.open(&row.local_ref, key_id, ciphertext)) {
            Some(Ok(identity)) => {
                view.state = ReporterState::Held;
                view.identity = if unmasked {
                    identity
                } else {
                    identity.masked()
                };
            }
            Some(Err(e)) => {
                tracing::warn!(local_ref = %row.local_ref, error = %e, "reporter identity unreadable");
                view.state = ReporterState::Unreadable;
            }
            None => view.state = ReporterState::Unreadable,
        }
    } else if row.reporter_staged {
        view.state = ReporterState::Sealing;
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring() -> Keyring {
        Keyring::new(PiiKey::generate().0, vec![])
    }

    fn siti() -> Identity {
        Identity {
            name: Some("Siti Aminah".into()),
            phone: Some("08123456789".into()),
            email: Some("siti@example.id".into()),
            nik: Some("3171015708900001".into()),
            address: Some("Jl. Merdeka No. 5".into()),
        }
    }

    #[test]
    fn masks_as_documented() {
        let m = siti().masked();
        assert_eq!(m.name.as_deref(), Some("Siti A***"));
        assert_eq!(m.phone.as_deref(), Some("0812****789"));
        assert_eq!(m.email.as_deref(), Some("s***@example.id"));
        assert_eq!(m.nik.as_deref(), Some("3171********0001"));
        assert_eq!(m.address.as_deref(), Some("Jl. ***"));
        assert_eq!(mask_name("Sukarno"), "S***");
        assert_eq!(mask_name("Siti Aminah Putri"), "Siti A*** P***");
        assert_eq!(mask_phone("0812"), "****");
    }

    #[test]
    fn debug_never_shows_values() {
        let text = format!("{:?}", siti());
        assert!(!text.contains("Siti") && !text.contains("0812") && !text.contains("3171"));
        assert!(text.contains("<redacted>"));
    }

    #[test]
    fn sealed_identity_opens_only_for_its_complaint_and_key() {
        let ring = keyring();
        let sealed = ring.seal("PLG-1", &siti()).unwrap();
        assert_eq!(sealed.key_id, ring.current_id());
        assert_eq!(sealed.key_id.len(), 8);
        assert_eq!(
            ring.open("PLG-1", &sealed.key_id, &sealed.ciphertext)
                .unwrap(),
            siti()
        );
        // Swapped onto another row: the associated data does not match.
        assert!(matches!(
            ring.open("PLG-2", &sealed.key_id, &sealed.ciphertext),
            Err(PiiError::Corrupt(_))
        ));
        // Another key does not open it.
        let other = keyring();
        assert!(matches!(
            other.open("PLG-1", &sealed.key_id, &sealed.ciphertext),
            Err(PiiError::UnknownKey(_))
        ));
        // Fresh nonces: sealing twice never gives the same bytes.
        let again = ring.seal("PLG-1", &siti()).unwrap();
        assert_ne!(again.ciphertext, sealed.ciphertext);
        // No value in the ciphertext.
        let text = String::from_utf8_lossy(&sealed.ciphertext);
        assert!(!text.contains("Siti") && !text.contains("3171"));
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert!(PiiKey::from_base64("BRIDGE_PII_KEY", "c2hvcnQ=").is_err());
        assert!(PiiKey::from_base64("BRIDGE_PII_KEY", "not base64!").is_err());
        let (_, text) = PiiKey::generate();
        assert!(PiiKey::from_base64("BRIDGE_PII_KEY", &text).is_ok());
    }

    #[test]
    fn who_sees_what() {
        use Role::*;
        assert!(sees_unmasked(Operator, Showing::One, false, false));
        assert!(!sees_unmasked(Operator, Showing::One, true, false));
        assert!(!sees_unmasked(Operator, Showing::One, false, true));
        assert!(sees_unmasked(Admin, Showing::One, true, true));
        assert!(!sees_unmasked(Admin, Showing::List, false, false));
        assert!(!sees_unmasked(Auditor, Showing::One, false, false));
        assert!(!sees_unmasked(Intake, Showing::One, false, false));
    }
}
