//! The daemon's background work as named tasks of one `JoinSet`, stopped by
//! the shutdown token and waited for at shutdown.
//!
//! Every task runs until shutdown. One that ends before (or panics, or
//! returns an error) is logged with its name; then either the daemon stops
//! ([`OnExit::Stop`]: the shutdown token is cancelled and [`Supervisor::wait`]
//! reports the failure, so `run` exits non-zero and a container restarts it)
//! or the task starts again after [`RESTART_DELAY`] ([`OnExit::Restart`]).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::{Id, JoinSet};
use tokio_util::sync::CancellationToken;

/// How long a task that ended unexpectedly waits before it starts again.
pub const RESTART_DELAY: Duration = Duration::from_secs(5);

/// What a task that ends before shutdown does to the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExit {
    /// The daemon cannot do its work without it: stop everything and fail.
    Stop,
    /// Auxiliary work: log it and start the task again.
    Restart,
}

type TaskFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;
type Factory = Arc<dyn Fn() -> TaskFuture + Send + Sync>;

struct Task {
    name: &'static str,
    on_exit: OnExit,
    /// Builds the task again (only for [`OnExit::Restart`]).
    factory: Option<Factory>,
}

/// The owner of the daemon's background tasks.
pub struct Supervisor {
    set: JoinSet<anyhow::Result<()>>,
    tasks: HashMap<Id, Task>,
    shutdown: CancellationToken,
    failed: Vec<&'static str>,
}

impl Supervisor {
    pub fn new(shutdown: CancellationToken) -> Self {
        Self {
            set: JoinSet::new(),
            tasks: HashMap::new(),
            shutdown,
            failed: Vec::new(),
        }
    }

    /// Starts a task whose end before shutdown stops the daemon.
    pub fn spawn<F>(&mut self, name: &'static str, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.spawn_fallible(name, async move {
            task.await;
            Ok(())
        });
    }

    /// Starts a task that may fail with an error; its end before shutdown
    /// (failed or not) stops the daemon.
    pub fn spawn_fallible<F>(&mut self, name: &'static str, task: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.start(name, OnExit::Stop, None, Box::pin(task), Duration::ZERO);
    }

    /// Starts a task that is started again (by calling `make` anew) when it
    /// ends before shutdown.
    pub fn spawn_restarting<M, F>(&mut self, name: &'static str, make: M)
    where
        M: Fn() -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let factory: Factory = Arc::new(move || {
            let task = make();
            Box::pin(async move {
                task.await;
                Ok(())
            })
        });
        let first = factory();
        self.start(name, OnExit::Restart, Some(factory), first, Duration::ZERO);
    }

    fn start(
        &mut self,
        name: &'static str,
        on_exit: OnExit,
        factory: Option<Factory>,
        task: TaskFuture,
        delay: Duration,
    ) {
        let shutdown = self.shutdown.clone();
        let handle = self.set.spawn(async move {
            if !delay.is_zero() {
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
            tracing::info!(task = name, "task started");
            task.await
        });
        self.tasks.insert(
            handle.id(),
            Task {
                name,
                on_exit,
                factory,
            },
        );
    }

    /// Waits until every task has ended (they end at shutdown), restarting
    /// or stopping on the way as each task's [`OnExit`] says. An error names
    /// the tasks that stopped the daemon.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        while let Some(joined) = self.set.join_next_with_id().await {
            let (id, outcome) = match joined {
                Ok((id, result)) => (id, result.map_err(|e| format!("{e:#}"))),
                Err(e) => (
                    e.id(),
                    Err(if e.is_panic() {
                        "panicked".to_string()
                    } else {
                        "was aborted".to_string()
                    }),
                ),
            };
            let Some(task) = self.tasks.remove(&id) else {
                continue;
            };
            self.ended(task, outcome);
        }
        if self.failed.is_empty() {
            Ok(())
        } else {
            anyhow::bail!(
                "stopped because a task ended unexpectedly: {}",
                self.failed.join(", ")
            )
        }
    }

    fn ended(&mut self, task: Task, outcome: Result<(), String>) {
        let name = task.name;
        let stopping = self.shutdown.is_cancelled();
        match outcome {
            Ok(()) if stopping => {
                tracing::info!(task = name, "task stopped");
                return;
            }
            Ok(()) => tracing::error!(task = name, "task ended before shutdown"),
            Err(problem) => tracing::error!(task = name, "task failed: {problem}"),
        }
        match (task.on_exit, task.factory) {
            (OnExit::Restart, Some(factory)) if !stopping => {
                tracing::warn!(
                    task = name,
                    "task starts again in {}s",
                    RESTART_DELAY.as_secs()
                );
                let next = factory();
                self.start(name, OnExit::Restart, Some(factory), next, RESTART_DELAY);
            }
            (OnExit::Restart, _) => {}
            (OnExit::Stop, _) => {
                if !stopping {
                    tracing::error!(task = name, "stopping the daemon");
                }
                self.failed.push(name);
                self.shutdown.cancel();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn tasks_stop_at_shutdown_without_failing() {
        let shutdown = CancellationToken::new();
        let mut s = Supervisor::new(shutdown.clone());
        let token = shutdown.clone();
        s.spawn("a", async move { token.cancelled().await });
        let token = shutdown.clone();
        s.spawn_restarting("b", move || {
            let token = token.clone();
            async move { token.cancelled().await }
        });
        shutdown.cancel();
        assert!(s.wait().await.is_ok());
    }

    #[tokio::test]
    async fn an_essential_task_that_ends_stops_everything_and_fails() {
        let shutdown = CancellationToken::new();
        let mut s = Supervisor::new(shutdown.clone());
        let token = shutdown.clone();
        s.spawn("waits", async move { token.cancelled().await });
        s.spawn_fallible("breaks", async { anyhow::bail!("broken") });
        let err = s.wait().await.expect_err("the daemon fails");
        assert!(shutdown.is_cancelled());
        assert!(err.to_string().contains("breaks"), "{err}");
        assert!(!err.to_string().contains("waits"), "{err}");
    }

    #[tokio::test]
    async fn a_panic_is_a_failure() {
        let shutdown = CancellationToken::new();
        let mut s = Supervisor::new(shutdown.clone());
        s.spawn("panics", async { panic!("boom") });
        let err = s.wait().await.expect_err("the daemon fails");
        assert!(err.to_string().contains("panics"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_auxiliary_task_starts_again() {
        let shutdown = CancellationToken::new();
        let mut s = Supervisor::new(shutdown.clone());
        let runs = Arc::new(AtomicUsize::new(0));
        let (counter, token) = (runs.clone(), shutdown.clone());
        s.spawn_restarting("flaky", move || {
            let (counter, token) = (counter.clone(), token.clone());
            async move {
                if counter.fetch_add(1, Ordering::SeqCst) < 2 {
                    panic!("flaky");
                }
                token.cancelled().await
            }
        });
        let stop = shutdown.clone();
        let watcher = runs.clone();
        tokio::spawn(async move {
            while watcher.load(Ordering::SeqCst) < 3 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            stop.cancel();
        });
        assert!(s.wait().await.is_ok());
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }
}
