//! What every part of the daemon shares: the pool, settings, LAPOR! client,
//! clock, metrics and the token-health gate.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::lapor::LaporClient;
use crate::metrics::Metrics;
use crate::pii::Keyring;
use crate::sla::WorkingCalendar;

#[derive(Debug, Clone)]
pub struct Bridge {
    pub pool: PgPool,
    pub settings: Arc<Settings>,
    pub client: LaporClient,
    pub clock: SharedClock,
    pub metrics: Arc<Metrics>,
    pub gate: Arc<AuthGate>,
    pub calendar: Arc<WorkingCalendar>,
    /// The keys of reporter identity; `None` without `BRIDGE_PII_KEY`
    /// (`run` refuses to start then; host commands that need it say so).
    pub pii: Option<Arc<Keyring>>,
    /// The last database readiness check, shared by `/readyz` requests.
    pub readiness: Arc<Readiness>,
}

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error(transparent)]
    Client(#[from] crate::lapor::client::ClientBuildError),
    #[error(transparent)]
    Pii(#[from] crate::pii::KeyError),
}

impl Bridge {
    pub fn new(pool: PgPool, settings: Settings, clock: SharedClock) -> Result<Self, BridgeError> {
        let pii = Keyring::from_settings(&settings.pii)?.map(Arc::new);
        let metrics = Arc::new(Metrics::default());
        let client = LaporClient::new(
            &settings.lapor,
            Duration::from_millis(settings.bridge.http_timeout_ms),
            settings.bridge.rate_limit_per_sec,
            metrics.clone(),
        )?;
        let calendar = Arc::new(WorkingCalendar::from_settings(&settings.sla));
        Ok(Self {
            pool,
            settings: Arc::new(settings),
            client,
            clock,
            metrics,
            gate: Arc::new(AuthGate::default()),
            calendar,
            pii,
            readiness: Arc::new(Readiness::default()),
        })
    }

    pub fn institution_id(&self) -> i64 {
        self.settings.lapor.institution_id
    }
}

/// Token health: a 401 from LAPOR! pauses all delivery until a probe works.
#[derive(Debug, Default)]
pub struct AuthGate {
    paused: AtomicBool,
    last_log: std::sync::Mutex<Option<Instant>>,
}

impl AuthGate {
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    /// Pauses delivery; logs at most once a minute.
    pub fn pause(&self, message: &str) {
        self.paused.store(true, Ordering::SeqCst);
        let mut last = self.last_log.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
            tracing::error!(
                lapor_message = message,
                "LAPOR! rejected the bridge's tokens: delivery paused until they work again"
            );
            *last = Some(Instant::now());
        }
    }

    pub fn resume(&self) {
        if self.paused.swap(false, Ordering::SeqCst) {
            tracing::info!("LAPOR! accepts the tokens again: delivery resumed");
        }
    }
}

/// What the database readiness check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseReadiness {
    Ok,
    MigrationsPending,
    Unreachable,
}

impl DatabaseReadiness {
    pub fn as_str(self) -> &'static str {
        match self {
            DatabaseReadiness::Ok => "ok",
            DatabaseReadiness::MigrationsPending => "migrations pending",
            DatabaseReadiness::Unreachable => "unreachable",
        }
    }
}

/// The database's readiness, checked at most once per [`Readiness::TTL`]:
/// a flood of unauthenticated `/readyz` requests costs the database one
/// query a second, and requests that arrive while a check runs wait for it
/// instead of starting their own.
#[derive(Debug, Default)]
pub struct Readiness {
    last: tokio::sync::Mutex<Option<(Instant, DatabaseReadiness)>>,
}

impl Readiness {
    /// How long one check answers for.
    pub const TTL: Duration = Duration::from_secs(1);
    /// A check that takes longer says `unreachable`.
    const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

    /// The database's readiness, from the last check when it is recent.
    /// Each check made is counted in `lapor_bridge_readiness_checks_total`.
    pub async fn database(&self, pool: &PgPool, metrics: &Metrics) -> DatabaseReadiness {
        let mut last = self.last.lock().await;
        if let Some((at, found)) = *last
            && at.elapsed() < Self::TTL
        {
            return found;
        }
        metrics.inc("readiness_checks_total", &[]);
        let found =
            match tokio::time::timeout(Self::CHECK_TIMEOUT, crate::db::migrations_current(pool))
                .await
            {
                Ok(Ok(true)) => DatabaseReadiness::Ok,
                Ok(Ok(false)) => DatabaseReadiness::MigrationsPending,
                Ok(Err(_)) | Err(_) => DatabaseReadiness::Unreachable,
            };
        *last = Some((Instant::now(), found));
        found
    }
}
