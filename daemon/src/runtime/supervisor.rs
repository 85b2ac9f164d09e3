//! Every long-running task of the daemon (the engine, each line, the MQTT uplink, the web server, the control
//! socket, the report scheduler, ...) runs under one [`Supervisor`]. A task that panics or ends is logged with the
//! reason and started again after a backoff (1 s doubling to 30 s; back to 1 s once it ran for a minute), and its
//! health (running or restarting, how often it restarted, the last failure and when) is what `/healthz`,
//! `/api/status` and the diagnostics page show.
//!
//! [`Faults`] is the test switch: a test that holds the daemon's `Faults` can make a named task panic, to check
//! that the supervisor restarts it and the health answers say so. Nothing outside the library API can reach it.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::{error, info};

use crate::model::Time;

pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A task that ran this long before failing starts again after the first backoff.
pub const STABLE: Duration = Duration::from_secs(60);
/// A failure this recent still makes the box "degraded" after the task is running again.
pub const RECENT: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// The engine task's name: without it nothing is recorded, so `/healthz` answers 503 while it is not running.
pub const ENGINE: &str = "engine";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Running,
    /// It failed and waits for its restart.
    Restarting,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskHealth {
    pub state: RunState,
    pub restarts: u32,
    /// Why it last failed (the panic message, or "it ended").
    pub last_failure: Option<String>,
    pub failed_at: Option<Time>,
}

impl TaskHealth {
    /// Not running, or failed within [`RECENT`].
    pub fn degraded(&self, now: Time) -> bool {
        self.state != RunState::Running || self.failed_at.is_some_and(|t| now - t < RECENT)
    }
}

#[derive(Default)]
struct Inner {
    /// By name: the run's number (a task stopped and started again under the same name is a new run) and health.
    tasks: Mutex<BTreeMap<String, (u64, TaskHealth)>>,
    next_run: std::sync::atomic::AtomicU64,
    faults: Faults,
}

/// The supervisor: cheap to clone; every clone sees the same tasks.
#[derive(Clone, Default)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

/// A supervised task: aborting (or dropping) it stops the task for good and takes it off the health list.
pub struct Supervised {
    name: String,
    run: u64,
    handle: JoinHandle<()>,
    sup: Supervisor,
}

impl Supervised {
    /// For a task told to stop by other means (a shutdown signal): it is not started again when it ends; waits at
    /// most `grace` for that, then aborts it.
    pub async fn stop_within(mut self, grace: Duration) {
        self.sup.forget(&self.name, self.run);
        let _ = tokio::time::timeout(grace, &mut self.handle).await;
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.handle.abort();
        self.sup.forget(&self.name, self.run);
    }
}

/// Aborts the task when dropped (a supervised child must not outlive its supervising loop).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Supervisor {
    pub fn new() -> Supervisor {
        Supervisor::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (u64, TaskHealth)>> {
        self.inner
            .tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn forget(&self, name: &str, run: u64) {
        let mut tasks = self.lock();
        if tasks.get(name).is_some_and(|(r, _)| *r == run) {
            tasks.remove(name);
        }
    }

    /// Changes the health of this run of `name`; false when the run was stopped (then it must not start again).
    fn update(&self, name: &str, run: u64, f: impl FnOnce(&mut TaskHealth)) -> bool {
        match self.lock().get_mut(name) {
            Some((r, h)) if *r == run => {
                f(h);
                true
            }
            _ => false,
        }
    }

    /// The test switch of this supervisor's tasks.
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    /// Runs `make()` as the task `name`, and again after each failure.
    pub fn spawn<F, Fut>(&self, name: impl Into<String>, mut make: F) -> Supervised
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let name = name.into();
        let run = self
            .inner
            .next_run
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.lock().insert(
            name.clone(),
            (
                run,
                TaskHealth {
                    state: RunState::Running,
                    restarts: 0,
                    last_failure: None,
                    failed_at: None,
                },
            ),
        );
        let sup = self.clone();
        let task = name.clone();
        let handle = tokio::spawn(async move {
            let mut backoff = FIRST_BACKOFF;
            loop {
                let started = tokio::time::Instant::now();
                let faults = sup.clone();
                let fault_name = task.clone();
                let work = make();
                let child = AbortOnDrop(tokio::spawn(async move {
                    tokio::select! {
                        _ = work => {}
                        _ = faults.inner.faults.wait(&fault_name) => {
                            panic!("fault injected into {fault_name} by a test");
                        }
                    }
                }));
                let reason = match wait(child).await {
                    Ok(()) => "it ended".to_string(),
                    Err(e) => e,
                };
                if started.elapsed() >= STABLE {
                    backoff = FIRST_BACKOFF;
                }
                let mut restarts = 0;
                let live = sup.update(&task, run, |h| {
                    h.state = RunState::Restarting;
                    h.restarts += 1;
                    h.last_failure = Some(reason.clone());
                    h.failed_at = Some(chrono::Utc::now());
                    restarts = h.restarts;
                });
                if !live {
                    return;
                }
                error!(task = %task, reason = %reason, restarts, backoff_ms = backoff.as_millis() as u64,
                    "a task failed; it starts again after the backoff (report this log)");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                if !sup.update(&task, run, |h| h.state = RunState::Running) {
                    return;
                }
                info!(task = %task, restarts, "task started again");
            }
        });
        Supervised {
            name,
            run,
            handle,
            sup: self.clone(),
        }
    }

    /// Every task's health, by name.
    pub fn health(&self) -> BTreeMap<String, TaskHealth> {
        self.lock()
            .iter()
            .map(|(n, (_, h))| (n.clone(), h.clone()))
            .collect()
    }

    /// Whether the engine runs (or no engine is supervised here, as in unit tests of other parts).
    pub fn engine_running(&self) -> bool {
        self.lock()
            .get(ENGINE)
            .is_none_or(|(_, h)| h.state == RunState::Running)
    }
}

/// Waits for the child; a panic becomes its message.
async fn wait(mut child: AbortOnDrop) -> Result<(), String> {
    match (&mut child.0).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_panic() => {
            let p = e.into_panic();
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            Err(format!("panicked: {msg}"))
        }
        Err(e) => Err(format!("cancelled: {e}")),
    }
}

/// The test switch: makes a named task panic once.
#[derive(Default)]
pub struct Faults {
    armed: Mutex<HashSet<String>>,
    notify: Notify,
}

impl Faults {
    /// Makes the task `name` panic now (once).
    pub fn inject(&self, name: &str) {
        self.armed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string());
        self.notify.notify_waiters();
    }

    async fn wait(&self, name: &str) {
        loop {
            let notified = self.notify.notified();
            if self
                .armed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(name)
            {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_panicking_task_is_restarted_with_backoff_and_reported() {
        let sup = Supervisor::new();
        let starts = Arc::new(AtomicU32::new(0));
        let s = starts.clone();
        let _t = sup.spawn("flaky", move || {
            let n = s.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 3 {
                    panic!("boom {n}");
                }
                std::future::pending::<()>().await;
            }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let h = &sup.health()["flaky"];
        assert_eq!((h.state, h.restarts), (RunState::Restarting, 1));
        assert_eq!(h.last_failure.as_deref(), Some("panicked: boom 0"));
        // 1 s, then 2 s, then 4 s between the starts.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(starts.load(Ordering::SeqCst), 2);
        tokio::time::sleep(Duration::from_millis(2000)).await;
        assert_eq!(starts.load(Ordering::SeqCst), 3);
        tokio::time::sleep(Duration::from_millis(3990)).await;
        assert_eq!(starts.load(Ordering::SeqCst), 3, "not before 4 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(starts.load(Ordering::SeqCst), 4);
        let h = &sup.health()["flaky"];
        assert_eq!((h.state, h.restarts), (RunState::Running, 3));
        assert!(
            h.degraded(chrono::Utc::now()),
            "a recent failure is degraded"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_injected_fault_panics_the_named_task_and_dropping_stops_it() {
        let sup = Supervisor::new();
        let starts = Arc::new(AtomicU32::new(0));
        let s = starts.clone();
        let t = sup.spawn(ENGINE, move || {
            s.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<()>()
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(sup.engine_running());
        sup.faults().inject(ENGINE);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!sup.engine_running());
        let h = &sup.health()[ENGINE];
        assert!(
            h.last_failure
                .as_deref()
                .unwrap()
                .contains("fault injected"),
            "{h:?}"
        );
        tokio::time::sleep(FIRST_BACKOFF).await;
        assert!(sup.engine_running());
        assert_eq!(starts.load(Ordering::SeqCst), 2);
        drop(t);
        assert!(sup.health().is_empty(), "a stopped task is off the list");
        tokio::time::sleep(MAX_BACKOFF).await;
        assert_eq!(starts.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_ends_is_restarted_too() {
        let sup = Supervisor::new();
        let starts = Arc::new(AtomicU32::new(0));
        let s = starts.clone();
        let _t = sup.spawn("once", move || {
            s.fetch_add(1, Ordering::SeqCst);
            async {}
        });
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(starts.load(Ordering::SeqCst), 2);
        assert_eq!(
            sup.health()["once"].last_failure.as_deref(),
            Some("it ended")
        );
    }
}
