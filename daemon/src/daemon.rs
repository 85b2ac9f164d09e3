//! Assembles the daemon: store, engine, line adapters, MQTT uplink, control socket and web server, and runs them
//! until the shutdown future resolves.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::{oneshot, watch};
use tracing::{error, info, warn};

use crate::clock::Clock;
use crate::config::Config;
use crate::engine::Engine;
use crate::metrics::Metrics;
use crate::modem::link::{serial_opener, ModemLink, Opener};
use crate::mqtt::{LinkState, Uplink};
use crate::store::{Store, StoreError};
use crate::web::{router, AppState};

/// Events kept in the outbox when no broker is configured (for SSE clients resuming with Last-Event-ID).
const KEEP_WITHOUT_MQTT: u64 = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr} (web.listen): {source}; is another program using the port?")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

pub struct RunOptions {
    pub clock: Clock,
    /// Replaces a line's device opener (the demo's simulated modem); others open their serial device.
    pub openers: HashMap<String, Opener>,
    /// Told the web address once it listens.
    pub ready: Option<oneshot::Sender<SocketAddr>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            clock: Clock::System,
            openers: HashMap::new(),
            ready: None,
        }
    }
}

pub async fn run(
    cfg: Config,
    mut opts: RunOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    let cfg = Arc::new(cfg);
    let store = Store::open(&cfg.store.path)?;
    let metrics = Arc::new(Metrics::default());
    let (engine, handle) = Engine::new(
        cfg.clone(),
        store.clone(),
        opts.clock.clone(),
        metrics.clone(),
    )?;
    info!(
        site = %cfg.site.id,
        store = %cfg.store.path.display(),
        next_seq = store.next_seq()?,
        "store opened"
    );
    let engine_task = tokio::spawn(engine.run());

    let mut line_tasks = Vec::new();
    for line in &cfg.lines {
        let opener = opts
            .openers
            .remove(&line.id)
            .unwrap_or_else(|| serial_opener(line.device.clone(), line.baud));
        let link = ModemLink::new(line.clone(), opener, handle.clone(), metrics.clone());
        line_tasks.push(tokio::spawn(link.run()));
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let (mqtt_state_tx, mqtt_state) = watch::channel(LinkState::Disabled);
    let uplink_task = match &cfg.mqtt {
        Some(m) => {
            let up = Uplink::new(
                &cfg,
                handle.clone(),
                m.clone(),
                store.clone(),
                handle.snapshot.clone(),
                metrics.clone(),
                mqtt_state_tx,
                stop_rx.clone(),
            );
            Some(tokio::spawn(up.run()))
        }
        None => {
            tokio::spawn(prune_without_mqtt(store.clone(), handle.snapshot.clone()));
            None
        }
    };

    let tz = cfg.timezone();
    let control_task = tokio::spawn({
        let store = store.clone();
        async move {
            if let Err(e) = crate::control::serve(store, tz).await {
                error!(error = %e, "control socket failed; `token create` and `export` need the daemon stopped");
            }
        }
    });

    let listener = tokio::net::TcpListener::bind(&cfg.web.listen)
        .await
        .map_err(|source| DaemonError::Listen {
            addr: cfg.web.listen.clone(),
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| DaemonError::Listen {
            addr: cfg.web.listen.clone(),
            source,
        })?;
    info!(%addr, "web server listening");
    if let Some(ready) = opts.ready.take() {
        let _ = ready.send(addr);
    }
    let app = router(AppState {
        cfg: cfg.clone(),
        store: store.clone(),
        engine: handle.clone(),
        metrics,
        mqtt: mqtt_state,
    });
    let mut web_stop = stop_rx.clone();
    let web = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = web_stop.wait_for(|s| *s).await;
    });
    let web_task = tokio::spawn(async move {
        if let Err(e) = web.await {
            error!(error = %e, "web server failed");
        }
    });

    shutdown.await;
    info!("shutting down");
    let _ = stop_tx.send(true);
    for t in line_tasks {
        t.abort();
    }
    control_task.abort();
    let _ = std::fs::remove_file(store.path().join(crate::control::SOCKET));
    if let Some(t) = uplink_task {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), t).await;
    }
    // SSE streams keep the web server open; don't wait long for them.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), web_task).await;
    engine_task.abort();
    if let Err(e) = store.check() {
        warn!(error = %e, "store check at shutdown failed");
    }
    Ok(())
}

/// Without a broker nothing acknowledges events: keep the last KEEP_WITHOUT_MQTT of them.
async fn prune_without_mqtt(store: Store, mut snapshot: watch::Receiver<crate::engine::Snapshot>) {
    let mut pruned_at = 0;
    while snapshot.changed().await.is_ok() {
        let last = snapshot.borrow_and_update().last_seq;
        if last >= pruned_at + 1000 {
            pruned_at = last;
            if let Err(e) = store.prune_outbox(last.saturating_sub(KEEP_WITHOUT_MQTT)) {
                warn!(error = %e, "cannot prune the outbox");
            }
        }
    }
}

/// Resolves on SIGTERM or SIGINT. SIGHUP (reload) is logged and otherwise ignored until live reload arrives, so
/// `systemctl reload` never kills the daemon.
pub async fn signals() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        error!("cannot install signal handlers; stop the daemon with SIGKILL");
        std::future::pending::<()>().await;
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => warn!("SIGHUP: live reload is not available in this version; restart to apply a new configuration"),
        }
    }
}
