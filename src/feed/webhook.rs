//! Webhooks: the change feed POSTed to the city's endpoints the way the
//! Standard Webhooks specification says (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature: v1,<base64 HMAC-SHA256>`).
//!
//! Delivery follows the outbox engine's patterns on a queue of its own
//! (`webhook_deliveries`, one row per event and endpoint), so a failing
//! receiver never holds up delivery to LAPOR! and never spends LAPOR!'s rate
//! budget: a claim with `FOR UPDATE SKIP LOCKED`, a lease and a fence on the
//! database clock, rescue of expired leases, the same backoff
//! ([`crate::outbox::retry::RetryPolicy`]), one attempt row per try, dead
//! letters for an operator's Retry or Discard, and order per complaint per
//! endpoint. Redirects are not followed; a `410 Gone` disables the endpoint.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::ExposeSecret;
use serde_json::json;
use sha2::Sha256;
use sqlx::PgConnection;
use sqlx::postgres::PgListener;
use subtle::ConstantTimeEq;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::ChangeItem;
use crate::bridge::Bridge;
use crate::domain::AttemptOutcome;
use crate::outbox::retry::RetryPolicy;
use crate::store::audit::{self, NewEntry};
use crate::store::notify::{self, ListenError};
use crate::store::webhooks::{self, ClaimedDelivery, DeliveryNext, WebhookAttempt};

/// The prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// How many events one fan-out statement reads.
const FAN_OUT_BATCH: i64 = 500;
/// The longest the dispatcher sleeps without a notification.
const FALLBACK_POLL: Duration = Duration::from_secs(1);
/// How often leases are rescued and finished deliveries pruned.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(10);
/// How much of a receiver's answer an attempt row keeps.
const KEPT_BODY: usize = 256;

/// A webhook secret: the bytes after `whsec_`, base64-decoded. Never shown.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret([REDACTED])")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("must start with whsec_ (whsec_ followed by the base64 of random bytes)")]
    NoPrefix,
    #[error("the part after whsec_ is not base64")]
    NotBase64,
    #[error("the key must be 24 to 64 bytes (generate one: echo whsec_$(openssl rand -base64 32))")]
    Length,
}

impl WebhookSecret {
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let b64 = text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::NoPrefix)?;
        let bytes = BASE64.decode(b64).map_err(|_| SecretError::NotBase64)?;
        if !(24..=64).contains(&bytes.len()) {
            return Err(SecretError::Length);
        }
        Ok(Self(bytes))
    }

    /// `v1,<base64 of HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", BASE64.encode(self.mac(id, timestamp, body)))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
        // An HMAC takes keys of any length: this cannot fail.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.0) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC accepts any key length"),
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }

    /// Whether a `webhook-signature` header (space-separated `v1,<sig>`
    /// entries) carries this key's signature, compared in constant time.
    pub fn verify(&self, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        let expected = self.mac(id, timestamp, body);
        header
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .filter_map(|s| BASE64.decode(s).ok())
            .any(|sig| bool::from(sig.as_slice().ct_eq(&expected)))
    }
}

/// A URL as logs and audit entries show it: without credentials or query
/// (either may carry a token).
pub fn shown_url(url: &reqwest::Url) -> String {
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown.push_str(url.path());
    shown
}

/// [`shown_url`] of a stored URL (empty when it does not parse).
pub fn shown(url: &str) -> String {
    reqwest::Url::parse(url)
        .map(|u| shown_url(&u))
        .unwrap_or_default()
}

/// A configured endpoint, registered in the database.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: i64,
    pub url: reqwest::Url,
    pub shown: String,
    pub secret: WebhookSecret,
}

/// What one attempt achieved.
#[derive(Debug)]
enum Answer {
    Delivered(u16),
    Gone,
    Failed {
        status: Option<u16>,
        message: String,
        retry_after: Option<Duration>,
    },
}

/// The webhook delivery loop of one replica.
#[derive(Debug)]
pub struct Dispatcher {
    bridge: Bridge,
    endpoints: HashMap<i64, Endpoint>,
    http: reqwest::Client,
    owner: String,
    policy: RetryPolicy,
    /// Deliveries in flight: id → fence (released on shutdown).
    in_flight: std::sync::Mutex<HashMap<i64, i64>>,
}

#[derive(Debug, thiserror::Error)]
pub enum DispatcherError {
    #[error("webhook {0}: {1}")]
    Config(String, String),
    #[error("cannot build the webhook HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

impl Dispatcher {
    /// Registers the configured endpoints; `None` when there are none.
    pub async fn start(bridge: Bridge) -> Result<Option<Arc<Self>>, DispatcherError> {
        if bridge.settings.webhooks.is_empty() {
            return Ok(None);
        }
        let mut endpoints = HashMap::new();
        for (i, w) in bridge.settings.webhooks.iter().enumerate() {
            let url = reqwest::Url::parse(&w.url)
                .map_err(|e| DispatcherError::Config(format!("#{}", i + 1), e.to_string()))?;
            let shown = shown_url(&url);
            let secret = WebhookSecret::parse(w.secret.expose_secret())
                .map_err(|e| DispatcherError::Config(shown.clone(), e.to_string()))?;
            let id = webhooks::register(&bridge.pool, url.as_str(), w.events.as_deref()).await?;
            endpoints.insert(
                id,
                Endpoint {
                    id,
                    url,
                    shown,
                    secret,
                },
            );
        }
        let b = &bridge.settings.bridge;
        // A call ends well within its lease: no heartbeat is needed.
        let timeout =
            Duration::from_millis(b.http_timeout_ms).min(Duration::from_secs(b.lease_secs / 2));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .user_agent(concat!("lapor-bridge/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let policy = RetryPolicy {
            base: Duration::from_millis(b.retry_base_ms),
            max: Duration::from_millis(b.retry_max_ms),
            max_attempts: b.max_attempts,
        };
        let owner = format!(
            "webhooks:{}:{:08x}",
            std::process::id(),
            rand::random::<u32>()
        );
        Ok(Some(Arc::new(Self {
            bridge,
            endpoints,
            http,
            owner,
            policy,
            in_flight: std::sync::Mutex::new(HashMap::new()),
        })))
    }

    pub fn endpoint_ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.endpoints.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Turns new events into deliveries, for every endpoint.
    pub async fn fan_out(&self) -> Result<(), sqlx::Error> {
        let now = self.bridge.clock.now();
        for id in self.endpoint_ids() {
            while webhooks::fan_out(&self.bridge.pool, id, now, FAN_OUT_BATCH).await?
                == FAN_OUT_BATCH
            {}
        }
        Ok(())
    }

    /// Fans out, claims what is due (up to the concurrency) and delivers it,
    /// waiting for every call. Returns how many were claimed. The loop of
    /// `run` and the tests' driver.
    pub async fn run_once(self: &Arc<Self>) -> Result<usize, sqlx::Error> {
        self.fan_out().await?;
        let claimed = webhooks::claim(
            &self.bridge.pool,
            &self.owner,
            &self.endpoint_ids(),
            self.bridge.clock.now(),
            self.bridge.settings.bridge.lease_secs as i64,
            self.bridge.settings.bridge.concurrency as i64,
        )
        .await?;
        let n = claimed.len();
        {
            let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            for d in &claimed {
                map.insert(d.id, d.fence);
            }
        }
        let mut set = JoinSet::new();
        for d in claimed {
            let me = self.clone();
            set.spawn(async move {
                let id = d.id;
                if let Err(e) = me.deliver(d).await {
                    tracing::error!(delivery = id, error = %e, "cannot record a webhook outcome; the lease runs out and it is sent again");
                }
                me.in_flight
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
            });
        }
        while set.join_next().await.is_some() {}
        Ok(n)
    }

    /// Returns expired leases and prunes finished deliveries.
    pub async fn maintain(&self) -> Result<(), sqlx::Error> {
        let now = self.bridge.clock.now();
        let rescued = webhooks::rescue_expired(&self.bridge.pool, now).await?;
        if rescued > 0 {
            tracing::warn!(rescued, "rescued webhook deliveries whose lease expired");
        }
        let retention =
            chrono::Duration::hours(self.bridge.settings.bridge.outbox_retention_hours as i64);
        webhooks::prune(&self.bridge.pool, now - retention).await?;
        Ok(())
    }

    /// The loop of `lapor-bridge run`, until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut listener = match notify::listen(&self.bridge.pool, super::CHANNEL).await {
            Ok(l) => Some(l),
            Err(ListenError::Listen(e)) => {
                tracing::warn!(error = %e, "LISTEN failed; webhooks poll only");
                None
            }
            Err(ListenError::Connect(e)) => {
                tracing::warn!(error = %e, "LISTEN connection failed; webhooks poll only");
                None
            }
        };
        let mut last_maintenance: Option<Instant> = None;
        tracing::info!(endpoints = self.endpoints.len(), "webhook delivery started");
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            if last_maintenance.is_none_or(|t| t.elapsed() >= MAINTENANCE_EVERY) {
                last_maintenance = Some(Instant::now());
                if let Err(e) = self.maintain().await {
                    tracing::warn!(error = %e, "webhook maintenance failed");
                }
            }
            let claimed = match self.run_once().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, "webhook delivery round failed");
                    0
                }
            };
            if claimed > 0 {
                continue;
            }
            let wait = self.wait_hint().await;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = recv(&mut listener) => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        tracing::info!("webhook delivery stopped");
    }

    async fn wait_hint(&self) -> Duration {
        match webhooks::next_due(&self.bridge.pool, &self.endpoint_ids()).await {
            Ok(Some(at)) => (at - self.bridge.clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .clamp(Duration::from_millis(5), FALLBACK_POLL),
            _ => FALLBACK_POLL,
        }
    }

    /// Gives back what this replica still holds (after a cut-off drain).
    pub async fn release_held(&self) {
        let held: Vec<(i64, i64)> = self
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(a, b)| (*a, *b))
            .collect();
        for (id, fence) in held {
            if let Err(e) = webhooks::release(&self.bridge.pool, id, fence).await {
                tracing::warn!(delivery = id, error = %e, "cannot release a webhook delivery");
            }
        }
    }

    /// Sends one claimed delivery and records its outcome (fenced).
    async fn deliver(&self, d: ClaimedDelivery) -> Result<(), sqlx::Error> {
        let Some(endpoint) = self.endpoints.get(&d.endpoint_id) else {
            return Ok(()); // not claimable: claims name only our endpoints
        };
        let item = ChangeItem::new(
            d.event_txid,
            d.event_id,
            &d.event_type,
            d.event_at,
            d.event_data.clone(),
        );
        let body = serde_json::to_vec(&item).unwrap_or_default();
        let started_at = self.bridge.clock.now();
        let timer = Instant::now();
        let answer = self.send(endpoint, &item.id, started_at, body).await;
        let elapsed = timer.elapsed();
        self.bridge
            .metrics
            .observe("webhook_duration_seconds", &[], elapsed);
        self.record(endpoint, &d, answer, started_at, elapsed).await
    }

    async fn send(
        &self,
        endpoint: &Endpoint,
        msg_id: &str,
        now: DateTime<Utc>,
        body: Vec<u8>,
    ) -> Answer {
        let timestamp = now.timestamp();
        let signature = endpoint.secret.sign(msg_id, timestamp, &body);
        let sent = self
            .http
            .post(endpoint.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", msg_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => {
                let what = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "cannot connect"
                } else {
                    "request failed"
                };
                return Answer::Failed {
                    status: None,
                    message: format!("{what}: {}", e.without_url()),
                    retry_after: None,
                };
            }
        };
        let status = resp.status();
        if status.is_success() {
            return Answer::Delivered(status.as_u16());
        }
        if status == reqwest::StatusCode::GONE {
            return Answer::Gone;
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let message = if status.is_redirection() {
            "answered with a redirect, which is not followed: configure the final URL".to_string()
        } else {
            let text = resp.text().await.unwrap_or_default();
            let mut cut: String = text.chars().take(KEPT_BODY).collect();
            if cut.len() < text.len() {
                cut.push('…');
            }
            format!("HTTP {}: {cut}", status.as_u16())
        };
        Answer::Failed {
            status: Some(status.as_u16()),
            message,
            retry_after,
        }
    }

    async fn record(
        &self,
        endpoint: &Endpoint,
        d: &ClaimedDelivery,
        answer: Answer,
        started_at: DateTime<Utc>,
        elapsed: Duration,
    ) -> Result<(), sqlx::Error> {
        let now = self.bridge.clock.now();
        let attempt_no = d.attempts + 1;
        let mut attempt = WebhookAttempt {
            delivery_id: d.id,
            attempt: attempt_no,
            started_at,
            duration_ms: elapsed.as_millis().min(i32::MAX as u128) as i32,
            http_status: None,
            message: None,
            // Set below, from the answer.
            outcome: AttemptOutcome::Delivered,
        };
        let gone = matches!(answer, Answer::Gone);
        let (next, error) = self.next_after(answer, &mut attempt, now);
        let mut tx = self.bridge.pool.begin().await?;
        let held = webhooks::complete(&mut tx, d.id, d.fence, &next, error.as_deref(), now).await?;
        if !held {
            attempt.outcome = AttemptOutcome::LeaseLost;
        }
        webhooks::record_attempt(&mut tx, &attempt).await?;
        if gone && held {
            disable_gone(&mut tx, endpoint, now).await?;
        }
        if held && matches!(next, DeliveryNext::Dead) {
            audit_dead(&mut tx, endpoint, d, error.as_deref(), now).await?;
        }
        tx.commit().await?;
        self.bridge.metrics.inc(
            "webhook_deliveries_total",
            &[("outcome", attempt.outcome.as_str())],
        );
        Ok(())
    }

    /// The delivery's next state and error after an answer; the attempt's
    /// status, message and outcome are filled in.
    fn next_after(
        &self,
        answer: Answer,
        attempt: &mut WebhookAttempt,
        now: DateTime<Utc>,
    ) -> (DeliveryNext, Option<String>) {
        let attempt_no = attempt.attempt;
        match answer {
            Answer::Delivered(status) => {
                attempt.http_status = Some(i32::from(status));
                attempt.outcome = AttemptOutcome::Delivered;
                (DeliveryNext::Done, None)
            }
            Answer::Gone => {
                attempt.http_status = Some(410);
                attempt.outcome = AttemptOutcome::Gone;
                let message = "410 Gone: the endpoint is disabled".to_string();
                attempt.message = Some(message.clone());
                // Not the event's fault: it waits, uncounted, for the
                // endpoint to be enabled again.
                let next = DeliveryNext::Pending {
                    at: now,
                    count_attempt: false,
                };
                (next, Some(message))
            }
            Answer::Failed {
                status,
                message,
                retry_after,
            } => {
                attempt.http_status = status.map(i32::from);
                attempt.message = Some(message.clone());
                if self.policy.exhausted(attempt_no) {
                    attempt.outcome = AttemptOutcome::Dead;
                    (DeliveryNext::Dead, Some(message))
                } else {
                    attempt.outcome = AttemptOutcome::Retry;
                    let mut wait = self.policy.delay_random(attempt_no, None);
                    if let Some(floor) = retry_after {
                        wait = wait.max(floor.min(self.policy.max));
                    }
                    let at =
                        now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
                    let next = DeliveryNext::Pending {
                        at,
                        count_attempt: true,
                    };
                    (next, Some(message))
                }
            }
        }
    }
}

/// An endpoint that answered 410 Gone is disabled until an operator enables
/// it; audited when it was enabled.
async fn disable_gone(
    conn: &mut PgConnection,
    endpoint: &Endpoint,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if !webhooks::disable_endpoint(conn, endpoint.id, "the endpoint answered 410 Gone", now).await?
    {
        return Ok(());
    }
    audit::append(
        conn,
        &NewEntry {
            at: now,
            actor: "bridge",
            local_ref: None,
            action: "webhook.endpoint_disabled",
            before: None,
            after: Some(json!({
                "endpoint_id": endpoint.id,
                "url": endpoint.shown,
                "reason": "410 Gone",
            })),
        },
    )
    .await?;
    tracing::warn!(endpoint = %endpoint.shown, "webhook endpoint answered 410 Gone: disabled until an operator enables it");
    Ok(())
}

/// Audits a delivery dead-lettered after its last attempt.
async fn audit_dead(
    conn: &mut PgConnection,
    endpoint: &Endpoint,
    d: &ClaimedDelivery,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let local_ref = webhooks::local_ref_of(conn, d.complaint_id).await?;
    audit::append(
        conn,
        &NewEntry {
            at: now,
            actor: "bridge",
            local_ref: local_ref.as_deref(),
            action: "webhook.dead",
            before: None,
            after: Some(json!({
                "delivery_id": d.id,
                "endpoint_id": endpoint.id,
                "event_id": super::event_id(d.event_id),
                "attempts": d.attempts + 1,
                "message": error,
            })),
        },
    )
    .await?;
    Ok(())
}

async fn recv(listener: &mut Option<PgListener>) {
    notify::notified(listener, FALLBACK_POLL).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks test vector (svix's libraries' tests).
    #[test]
    fn signs_the_standard_webhooks_test_vector() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let sig = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(secret.verify(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            body,
            "v1,bm9ldmVu v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        ));
        assert!(!secret.verify("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_331, body, &sig));
        assert!(!secret.verify("msg_other", 1_614_265_330, body, &sig));
    }

    #[test]
    fn secrets_must_be_whsec_base64_and_never_show() {
        assert_eq!(
            WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err(),
            SecretError::NoPrefix
        );
        assert_eq!(
            WebhookSecret::parse("whsec_not base64!").unwrap_err(),
            SecretError::NotBase64
        );
        assert_eq!(
            WebhookSecret::parse("whsec_c2hvcnQ=").unwrap_err(),
            SecretError::Length
        );
        let s = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert!(!format!("{s:?}").contains("MfKQ"));
    }

    #[test]
    fn shown_urls_drop_credentials_and_query() {
        let url = reqwest::Url::parse("https://user:pw@city.example:8443/hook?token=abc").unwrap();
        assert_eq!(shown_url(&url), "https://city.example:8443/hook");
    }
}
