//! The clock is injected wherever deadlines, backoff or schedules are computed,
//! so that tests move time instead of sleeping.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;

    /// Tells the clock how far the database's clock is ahead of this
    /// machine's (`database - wall`). Only [`DatabaseClock`] listens.
    fn observe_offset(&self, _offset: Duration) {}
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(start)))
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *now += by;
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The database's clock, read as this machine's clock plus the offset last
/// measured against PostgreSQL (re-measured by every lease heartbeat), so
/// that leases, backoff and lookup delays written by replicas whose clocks
/// disagree all count on one clock. A replica whose clock runs minutes ahead
/// rescues no live lease and resends nothing early.
#[derive(Debug, Clone, Default)]
pub struct DatabaseClock {
    offset_ms: Arc<std::sync::atomic::AtomicI64>,
}

impl DatabaseClock {
    /// A clock with its offset measured once on `pool`.
    pub async fn measured(pool: &sqlx::PgPool) -> Result<Self, sqlx::Error> {
        let clock = Self::default();
        let mut conn = pool.acquire().await?;
        clock.observe_offset(crate::db::clock_offset(&mut conn).await?);
        Ok(clock)
    }

    pub fn offset(&self) -> Duration {
        Duration::milliseconds(self.offset_ms.load(std::sync::atomic::Ordering::Relaxed))
    }
}

impl Clock for DatabaseClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset()
    }

    fn observe_offset(&self, offset: Duration) {
        self.offset_ms.store(
            offset.num_milliseconds(),
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}

pub type SharedClock = Arc<dyn Clock>;
