//! The outbox engine: claims due steps (`FOR UPDATE SKIP LOCKED`, committed
//! before any call), delivers them in order per complaint and in parallel
//! across complaints, keeps leases alive with a heartbeat, rescues expired
//! leases of dead workers, and stops cleanly.

pub mod deliver;
pub mod lookup;
pub mod retry;
pub mod waiting;
pub mod writer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Duration as ChronoDuration;
use sqlx::postgres::PgListener;
use sqlx::{Connection, PgConnection};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::bridge::Bridge;
use crate::store::notify::{self, ListenError};
use crate::store::outbox::{self, ClaimedStep};
use deliver::StepRunner;
use retry::RetryPolicy;

/// The NOTIFY channel that wakes workers.
pub const CHANNEL: &str = "lapor_bridge_outbox";
/// The longest a worker sleeps without a notification.
const FALLBACK_POLL: Duration = Duration::from_secs(2);
/// How often one replica vacuums the outbox table.
const VACUUM_EVERY: Duration = Duration::from_secs(60);
/// Steps a worker pool holds at once (claimed and not yet recorded), per
/// worker: a worker takes its next step when LAPOR! has answered, while the
/// outcome waits for the writer's next batch.
const HELD_PER_WORKER: usize = 4;
/// How long in-flight calls may finish after SIGTERM.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(20);

#[derive(Debug)]
pub struct Engine {
    bridge: Bridge,
    owner: String,
    policy: RetryPolicy,
    /// Steps in flight: id → fence, for the heartbeat.
    in_flight: Mutex<HashMap<i64, i64>>,
    finished: Notify,
    created: lookup::CreatedIndex,
    writer: writer::Writer,
    last_vacuum: Mutex<Option<std::time::Instant>>,
}

impl Engine {
    pub fn new(bridge: Bridge) -> Arc<Self> {
        let b = &bridge.settings.bridge;
        let policy = RetryPolicy {
            base: Duration::from_millis(b.retry_base_ms),
            max: Duration::from_millis(b.retry_max_ms),
            max_attempts: b.max_attempts,
        };
        let owner = format!(
            "{}:{}:{:08x}",
            hostname(),
            std::process::id(),
            rand::random::<u32>()
        );
        Arc::new(Self {
            owner,
            policy,
            in_flight: Mutex::new(HashMap::new()),
            finished: Notify::new(),
            created: lookup::CreatedIndex::new(Duration::from_secs(b.lookup_delay_secs)),
            last_vacuum: Mutex::new(None),
            writer: writer::Writer::spawn(bridge.pool.clone(), bridge.metrics.clone()),
            bridge,
        })
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    fn lease_secs(&self) -> i64 {
        self.bridge.settings.bridge.lease_secs as i64
    }

    fn held(&self) -> Vec<(i64, i64)> {
        let map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        map.iter().map(|(id, fence)| (*id, *fence)).collect()
    }

    async fn claim(&self, limit: usize) -> Result<Vec<ClaimedStep>, sqlx::Error> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let steps = outbox::claim(
            &self.bridge.pool,
            &self.owner,
            self.bridge.clock.now(),
            self.lease_secs(),
            limit as i64,
        )
        .await?;
        let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        for s in &steps {
            map.insert(s.id, s.fence);
        }
        Ok(steps)
    }

    /// Delivers one claimed step and writes its outcome (fenced by the
    /// claim): what every worker does with a step it claimed.
    pub async fn deliver(&self, step: ClaimedStep) {
        self.deliver_releasing(step, None).await
    }

    /// [`Engine::deliver`], giving `call` back as soon as LAPOR! has
    /// answered: the concurrency bounds calls to LAPOR!, and outcomes
    /// waiting for the writer's next batch need no worker.
    async fn deliver_releasing(&self, step: ClaimedStep, call: Option<OwnedSemaphorePermit>) {
        // However this ends (a panic included), the step leaves the
        // heartbeat's set: its lease then runs out and it is rescued,
        // instead of being renewed forever with its complaint's queue
        // blocked behind it.
        let _held = InFlight {
            engine: self,
            id: step.id,
        };
        let runner = StepRunner {
            bridge: &self.bridge,
            policy: self.policy,
            created: &self.created,
        };
        let completion = runner.run(&step).await;
        if call.is_some() {
            drop(call);
            // The claim loop may take the next steps while this outcome
            // waits for the writer.
            self.finished.notify_waiters();
        }
        if let Err(e) = self.writer.write(completion).await {
            // The lease runs out and another worker (or this one) retries.
            tracing::error!(step = step.id, local_ref = %step.local_ref, error = %e, "cannot record a delivery outcome");
        }
    }

    /// How long after a write with an unknown outcome (sent by a worker that
    /// stopped, or cut off) before it is looked up: the lookup delay, and at
    /// least until the previous holder's request has timed out.
    fn lookup_delay_secs(&self) -> i64 {
        let b = &self.bridge.settings.bridge;
        (b.lookup_delay_secs as i64).max((b.http_timeout_ms / 1000) as i64 + 1)
    }

    /// Rescues expired leases and prunes finished steps.
    pub async fn maintain(&self) -> Result<(), sqlx::Error> {
        // Rescue compares leases with "now": measure the database clock's
        // offset again first, so that a local clock that just jumped rescues
        // nothing early.
        {
            let mut conn = self.bridge.pool.acquire().await?;
            let offset = crate::db::clock_offset(&mut conn).await?;
            self.bridge.clock.observe_offset(offset);
        }
        let now = self.bridge.clock.now();
        let lookup_delay = self.lookup_delay_secs();
        for (id, local_ref) in outbox::rescue_expired(&self.bridge.pool, now, lookup_delay).await? {
            tracing::warn!(step = id, %local_ref, "rescued a step whose lease expired");
            self.bridge.metrics.inc("outbox_rescued_total", &[]);
        }
        let retention =
            ChronoDuration::hours(self.bridge.settings.bridge.outbox_retention_hours as i64);
        outbox::prune(&self.bridge.pool, now - retention).await?;
        let due = {
            let mut last = self.last_vacuum.lock().unwrap_or_else(|p| p.into_inner());
            let due = last.is_none_or(|t| t.elapsed() >= VACUUM_EVERY);
            if due {
                *last = Some(std::time::Instant::now());
            }
            due
        };
        if due {
            // The hot queue churns: vacuum it without waiting for (or relying
            // on) the server's autovacuum settings.
            outbox::vacuum(&self.bridge.pool).await?;
        }
        Ok(())
    }

    /// Claims what is due now (up to the concurrency) and delivers it all,
    /// waiting for every call. For tests and one-shot runs; the daemon uses
    /// [`Engine::run`].
    pub async fn drain_once(self: &Arc<Self>) -> Result<usize, sqlx::Error> {
        if self.bridge.gate.is_paused() {
            return Ok(0);
        }
        let steps = self.claim(self.bridge.settings.bridge.concurrency).await?;
        let n = steps.len();
        let mut set = JoinSet::new();
        for step in steps {
            let engine = self.clone();
            set.spawn(async move { engine.deliver(step).await });
        }
        while set.join_next().await.is_some() {}
        Ok(n)
    }

    /// Drains until nothing is due (tests).
    pub async fn drain_all(self: &Arc<Self>) -> Result<usize, sqlx::Error> {
        let mut total = 0;
        loop {
            let n = self.drain_once().await?;
            if n == 0 {
                return Ok(total);
            }
            total += n;
        }
    }

    /// The worker loop with its heartbeat and maintenance, until `shutdown`
    /// (the daemon runs the three as tasks of its supervisor instead: see
    /// [`Engine::work`]).
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let background = CancellationToken::new();
        tokio::spawn(self.clone().heartbeat(background.clone()));
        tokio::spawn(self.clone().maintenance(background.clone()));
        self.work(shutdown).await;
        background.cancel();
    }

    /// The worker loop: claims and delivers until `shutdown`, then drains.
    /// The lease heartbeat ([`Engine::heartbeat`]) and maintenance
    /// ([`Engine::maintenance`]) must run meanwhile and stop only after this
    /// returns: the steps in flight keep their leases until then.
    pub async fn work(self: &Arc<Self>, shutdown: CancellationToken) {
        let concurrency = self.bridge.settings.bridge.concurrency;
        let slots = Slots::new(concurrency);
        let mut tasks = JoinSet::new();
        let mut listener = self.listen().await;
        tracing::info!(owner = %self.owner, concurrency, "outbox workers started");
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            if self.writer.is_stopped() {
                // Every outcome would be lost and every step sent again
                // after a lookup: stop, so that the daemon stops with an
                // error and is restarted.
                tracing::error!("the outcome writer has stopped; outbox workers stop");
                break;
            }
            // Listen for finished steps before counting free slots: one
            // that finishes in between still wakes this loop.
            let finished = self.finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            reap(&mut tasks);
            let free = slots.free();
            let mut claimed = 0;
            // Claim in batches: while most workers are busy, wait for more
            // to finish rather than paying a claim transaction per step.
            let batch_ready = free * 2 >= concurrency || tasks.is_empty();
            if free > 0 && batch_ready && !self.bridge.gate.is_paused() {
                claimed = self.claim_and_start(&slots, &mut tasks, free).await;
            }
            if claimed > 0 && claimed == free {
                continue; // more may be due
            }
            let wait = if batch_ready {
                self.wait_hint().await
            } else {
                FALLBACK_POLL
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = &mut finished, if !tasks.is_empty() => {}
                _ = recv(&mut listener) => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        tracing::info!(
            in_flight = tasks.len(),
            "outbox workers stopping: no new claims"
        );
        let drained = tokio::time::timeout(DRAIN_DEADLINE, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
            self.release_held().await;
        }
        tracing::info!("outbox workers stopped");
    }

    /// Claims up to `free` steps and starts a worker for each; returns how
    /// many were claimed.
    async fn claim_and_start(
        self: &Arc<Self>,
        slots: &Slots,
        tasks: &mut JoinSet<()>,
        free: usize,
    ) -> usize {
        let steps = match self.claim(free).await {
            Ok(steps) => steps,
            Err(e) => {
                tracing::error!(error = %e, "cannot claim outbox steps");
                return 0;
            }
        };
        let claimed = steps.len();
        for step in steps {
            // As many steps as both have free were claimed; should one not
            // get its slots, it leaves the heartbeat's set and is rescued.
            let Some((call, hold)) = slots.take() else {
                drop(InFlight {
                    engine: self,
                    id: step.id,
                });
                continue;
            };
            let engine = self.clone();
            tasks.spawn(async move {
                engine.deliver_releasing(step, Some(call)).await;
                drop(hold);
            });
        }
        claimed
    }

    /// Gives back every step still held, marked for a lookup (their calls
    /// may have reached LAPOR!).
    async fn release_held(&self) {
        let held = self.held();
        let Ok(mut conn) = self.bridge.pool.acquire().await else {
            return; // the leases expire and other replicas rescue them
        };
        for (id, fence) in held {
            let now = self.bridge.clock.now();
            let delay = self.lookup_delay_secs();
            match outbox::release(&mut conn, id, fence, now, delay).await {
                Ok(true) => tracing::info!(step = id, "released an unfinished step"),
                Ok(false) => {}
                Err(e) => tracing::warn!(step = id, error = %e, "cannot release a step"),
            }
        }
    }

    async fn wait_hint(&self) -> Duration {
        match outbox::next_due(&self.bridge.pool).await {
            Ok(Some(at)) => (at - self.bridge.clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .clamp(Duration::from_millis(5), FALLBACK_POLL),
            _ => FALLBACK_POLL,
        }
    }

    async fn listen(&self) -> Option<PgListener> {
        match notify::listen(&self.bridge.pool, CHANNEL).await {
            Ok(l) => Some(l),
            Err(ListenError::Listen(e)) => {
                tracing::warn!(error = %e, "LISTEN failed; polling only");
                None
            }
            Err(ListenError::Connect(e)) => {
                tracing::warn!(error = %e, "LISTEN connection failed; polling only");
                None
            }
        }
    }

    /// Lease rescue, pruning and vacuum every 10 s, and the token probe
    /// every 15 s while delivery is paused, until `stop` (after the drain).
    pub async fn maintenance(self: Arc<Self>, stop: CancellationToken) {
        let mut maintenance = tokio::time::interval(Duration::from_secs(10));
        let mut probe = tokio::time::interval(Duration::from_secs(15));
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = maintenance.tick() => {
                    if let Err(e) = self.maintain().await {
                        tracing::warn!(error = %e, "outbox maintenance failed");
                    }
                }
                _ = probe.tick(), if self.bridge.gate.is_paused() => {
                    match self.bridge.client.institutions().await {
                        Ok(_) => self.bridge.gate.resume(),
                        Err(crate::lapor::LaporError::Unauthorized { message, .. }) => self.bridge.gate.pause(&message),
                        Err(_) => {}
                    }
                }
            }
        }
    }
}

impl Engine {
    /// Renews the leases of the steps in flight every `lease_secs / 3`, on a
    /// connection of its own (a busy pool, a slow vacuum or a hanging token
    /// probe cannot delay it), and re-measures the database clock's offset
    /// each time. Until `stop` (after the drain).
    pub async fn heartbeat(self: Arc<Self>, stop: CancellationToken) {
        let beat = Duration::from_secs((self.lease_secs() as u64 / 3).max(1));
        let mut tick = tokio::time::interval(beat);
        let mut conn: Option<PgConnection> = None;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            if conn.is_none() {
                let options = self.bridge.pool.connect_options();
                match PgConnection::connect_with(&options).await {
                    Ok(c) => conn = Some(c),
                    Err(e) => {
                        tracing::warn!(error = %e, "lease heartbeat cannot connect");
                        continue;
                    }
                }
            }
            let Some(c) = conn.as_mut() else { continue };
            if let Err(e) = self.beat(c).await {
                tracing::warn!(error = %e, "lease heartbeat failed");
                conn = None;
            }
        }
        if let Some(c) = conn {
            let _ = c.close().await;
        }
    }

    async fn beat(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        let offset = crate::db::clock_offset(conn).await?;
        self.bridge.clock.observe_offset(offset);
        let held = self.held();
        outbox::heartbeat(conn, &held, self.bridge.clock.now(), self.lease_secs()).await?;
        Ok(())
    }
}

/// A worker pool's slots: calls to LAPOR! in flight (the concurrency), and
/// steps held until their outcome is recorded.
struct Slots {
    calls: Arc<Semaphore>,
    held: Arc<Semaphore>,
}

impl Slots {
    fn new(concurrency: usize) -> Self {
        Self {
            calls: Arc::new(Semaphore::new(concurrency)),
            held: Arc::new(Semaphore::new(concurrency * HELD_PER_WORKER)),
        }
    }

    fn free(&self) -> usize {
        self.calls
            .available_permits()
            .min(self.held.available_permits())
    }

    fn take(&self) -> Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)> {
        let call = self.calls.clone().try_acquire_owned().ok()?;
        let hold = self.held.clone().try_acquire_owned().ok()?;
        Some((call, hold))
    }
}

/// Collects the workers that finished; a panic is logged (its step left the
/// heartbeat's set and is rescued when its lease runs out).
fn reap(tasks: &mut JoinSet<()>) {
    while let Some(joined) = tasks.try_join_next() {
        if let Err(e) = joined
            && e.is_panic()
        {
            tracing::error!(error = %e, "an outbox worker panicked; its step is rescued when its lease runs out");
        }
    }
}

/// A step in this engine's heartbeat set until dropped.
struct InFlight<'a> {
    engine: &'a Engine,
    id: i64,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.engine
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
        self.engine.finished.notify_waiters();
    }
}

async fn recv(listener: &mut Option<PgListener>) {
    notify::notified(listener, FALLBACK_POLL).await
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into())
}
