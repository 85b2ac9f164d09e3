//! Assembles the daemon: store, engine, line adapters, MQTT uplink, control socket and web server, and runs them
//! until the shutdown future resolves. It also applies configuration reloads (SIGHUP or `POST /api/reload`):
//! the new file is validated as a whole, the old configuration stays on any problem, and only what changed is
//! restarted; calls in progress on kept lines go on.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info, warn};

use crate::adapters::modem::link::{serial_opener, shared, ModemLink, Opener, SharedOpener};
use crate::clock::Clock;
use crate::config::{Config, Line, Mqtt};
use crate::metrics::Metrics;
use crate::outputs::http::{router, AppState};
use crate::outputs::mqtt::{LinkState, Uplink};
use crate::runtime::engine::{Engine, EngineHandle};
use crate::runtime::supervisor::{Supervised, Supervisor, ENGINE};
use crate::store::{Store, StoreError};

/// Events kept in the outbox when no broker is configured (for SSE clients resuming with Last-Event-ID).
const KEEP_WITHOUT_MQTT: u64 = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr} (web.listen): {reason}; is another program using the port?")]
    Listen {
        addr: String,
        reason: std::io::Error,
    },
}

pub struct RunOptions {
    pub clock: Clock,
    /// Replaces a line's device opener (the demo's simulated modem); others open their serial device.
    pub openers: HashMap<String, Opener>,
    /// Told the web address once it listens.
    pub ready: Option<oneshot::Sender<SocketAddr>>,
    /// The file to read again on a reload; none: reloads are refused.
    pub config_path: Option<PathBuf>,
    /// Told the first web login's password when this start created it.
    pub first_login: Option<oneshot::Sender<String>>,
    /// The supervisor of the daemon's tasks: a test passes its own to read the health and inject faults.
    pub supervisor: Option<Supervisor>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            clock: Clock::System,
            openers: HashMap::new(),
            ready: None,
            config_path: None,
            first_login: None,
            supervisor: None,
        }
    }
}

/// A request to re-read the configuration; the answer lists what changed, or every problem.
pub struct ReloadRequest {
    pub reply: Option<oneshot::Sender<Result<Vec<String>, Vec<String>>>>,
}

/// A cloneable handle that asks the daemon to reload.
#[derive(Clone)]
pub struct Reloader(pub mpsc::Sender<ReloadRequest>);

impl Reloader {
    pub async fn reload(&self) -> Result<Vec<String>, Vec<String>> {
        let (tx, rx) = oneshot::channel();
        if self
            .0
            .send(ReloadRequest { reply: Some(tx) })
            .await
            .is_err()
        {
            return Err(vec!["the daemon is shutting down".into()]);
        }
        rx.await
            .unwrap_or_else(|_| Err(vec!["the daemon is shutting down".into()]))
    }
}

/// The running parts that a reload may replace.
struct Parts {
    cfg: Arc<Config>,
    store: Store,
    handle: EngineHandle,
    metrics: Arc<Metrics>,
    lines: HashMap<String, (Line, Supervised)>,
    uplink: Option<(Mqtt, Supervised, watch::Sender<bool>)>,
    mqtt_state: watch::Sender<LinkState>,
    openers: HashMap<String, Opener>,
    sup: Supervisor,
    /// Tells the web server about a new configuration.
    cfg_tx: Option<watch::Sender<Arc<Config>>>,
}

impl Parts {
    fn start_line(&mut self, line: &Line) {
        let opener: SharedOpener = shared(
            self.openers
                .remove(&line.id)
                .unwrap_or_else(|| serial_opener(line.device.clone(), line.baud)),
        );
        let (l, handle, metrics) = (line.clone(), self.handle.clone(), self.metrics.clone());
        let task = self.sup.spawn(format!("line:{}", line.id), move || {
            ModemLink::new(l.clone(), opener.clone(), handle.clone(), metrics.clone()).run()
        });
        self.lines.insert(line.id.clone(), (line.clone(), task));
    }

    fn start_uplink(&mut self, m: &Mqtt) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let (cfg, handle, mqtt, store) = (
            self.cfg.clone(),
            self.handle.clone(),
            m.clone(),
            self.store.clone(),
        );
        let (metrics, state) = (self.metrics.clone(), self.mqtt_state.clone());
        let task = self.sup.spawn("mqtt", move || {
            Uplink::new(
                &cfg,
                handle.clone(),
                mqtt.clone(),
                store.clone(),
                handle.snapshot.clone(),
                metrics.clone(),
                state.clone(),
                stop_rx.clone(),
            )
            .run()
        });
        self.uplink = Some((m.clone(), task, stop_tx));
    }

    async fn stop_uplink(&mut self) {
        if let Some((_, task, stop)) = self.uplink.take() {
            let _ = stop.send(true);
            task.stop_within(std::time::Duration::from_secs(2)).await;
            self.mqtt_state.send_replace(LinkState::Disabled);
        }
    }

    /// Validates `path` and applies what changed. On any problem nothing changes.
    async fn reload(&mut self, path: &std::path::Path) -> Result<Vec<String>, Vec<String>> {
        let started = Instant::now();
        let new = Config::load(path).map_err(|e| match e {
            crate::config::ConfigError::Invalid { problems } => {
                problems.iter().map(|p| p.to_string()).collect()
            }
            other => vec![other.to_string()],
        })?;
        let old = self.cfg.clone();
        let mut refused = Vec::new();
        if new.site.id != old.site.id {
            refused.push(
                "site.id: changes the MQTT topics; restart the daemon to apply it".to_string(),
            );
        }
        if new.store.path != old.store.path {
            refused.push("store.path: restart the daemon to apply it".to_string());
        }
        if new.web.listen != old.web.listen {
            refused.push("web.listen: restart the daemon to apply it".to_string());
        }
        if !refused.is_empty() {
            return Err(refused);
        }
        let new = Arc::new(new);
        let mut changed = Vec::new();
        // Lines: stop removed and changed adapters, start new and changed ones; trackers follow in the engine.
        for (id, (line, task)) in std::mem::take(&mut self.lines) {
            match new.lines.iter().find(|l| l.id == id) {
                Some(l) if same_link(l, &line) => {
                    if l.ring_timeout != line.ring_timeout || l.answer_detect != line.answer_detect
                    {
                        changed.push(format!("line {id}: ring_timeout / answer_detect applied"));
                    }
                    self.lines.insert(id, (l.clone(), task));
                }
                Some(_) => {
                    drop(task);
                    changed.push(format!("line {id}: reopened with the new settings"));
                }
                None => {
                    drop(task);
                    changed.push(format!("line {id}: removed"));
                }
            }
        }
        self.cfg = new.clone();
        if let Some(tx) = &self.cfg_tx {
            tx.send_replace(new.clone());
        }
        if !self.handle.reconfigure(new.clone()).await {
            return Err(vec!["the engine is shutting down".into()]);
        }
        for l in new.lines.clone() {
            if !self.lines.contains_key(&l.id) {
                if !old.lines.iter().any(|o| o.id == l.id) {
                    changed.push(format!("line {}: added", l.id));
                }
                self.start_line(&l);
            }
        }
        let mqtt_changed = match (&old.mqtt, &new.mqtt) {
            (Some(a), Some(b)) => format!("{a:?}") != format!("{b:?}"),
            (None, None) => false,
            _ => true,
        };
        if mqtt_changed {
            self.stop_uplink().await;
            if let Some(m) = new.mqtt.clone() {
                self.start_uplink(&m);
            }
            changed.push("mqtt: reconnected with the new settings".into());
        }
        for (what, differs) in [
            (
                "policy",
                format!("{:?}", old.policy) != format!("{:?}", new.policy),
            ),
            (
                "hours",
                format!("{:?}", old.hours) != format!("{:?}", new.hours),
            ),
            ("shifts", old.shifts != new.shifts),
            ("agents", old.agents != new.agents),
            (
                "site",
                format!("{:?}", old.site) != format!("{:?}", new.site),
            ),
        ] {
            if differs {
                changed.push(format!("{what}: applied"));
            }
        }
        info!(elapsed_ms = started.elapsed().as_millis() as u64, changes = ?changed, "configuration reloaded");
        Ok(changed)
    }
}

/// Whether the line adapter can stay as it is (the tracker's settings change without it).
fn same_link(a: &Line, b: &Line) -> bool {
    a.kind == b.kind
        && a.device == b.device
        && a.baud == b.baud
        && a.init == b.init
        && a.init_timeout == b.init_timeout
        && a.reconnect_max == b.reconnect_max
}

pub async fn run(
    cfg: Config,
    mut opts: RunOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    let cfg = Arc::new(cfg);
    let sup = opts.supervisor.take().unwrap_or_default();
    let store = Store::open(&cfg.store.path)?;
    let metrics = Arc::new(Metrics::default());
    let (engine, handle) = Engine::new(
        cfg.clone(),
        store.clone(),
        opts.clock.clone(),
        metrics.clone(),
    )?;
    let (cfg_tx, cfg_rx) = watch::channel(cfg.clone());
    info!(
        site = %cfg.site.id,
        store = %cfg.store.path.display(),
        next_seq = store.next_seq()?,
        "store opened"
    );
    // The engine under the supervisor: the first run is the one built above; after a failure a new one is built
    // from the store on the same queue and outputs (with the configuration of the moment).
    let engine_task = {
        let wiring = engine.wiring();
        let mut first = Some(engine);
        let (cfg, store, clock, metrics) = (
            cfg_rx.clone(),
            store.clone(),
            opts.clock.clone(),
            metrics.clone(),
        );
        sup.spawn(ENGINE, move || {
            let engine = first.take().map(Ok).unwrap_or_else(|| {
                Engine::restart(
                    cfg.borrow().clone(),
                    store.clone(),
                    clock.clone(),
                    metrics.clone(),
                    wiring.clone(),
                )
            });
            async move {
                match engine {
                    Ok(e) => e.run().await,
                    Err(e) => {
                        error!(error = %e, "the engine cannot start: the store cannot be read")
                    }
                }
            }
        })
    };
    match crate::accounts::ensure_admin(&store, chrono::Utc::now()) {
        Ok(Some(password)) => {
            warn!(
                user = "admin",
                password = %password,
                "first start: web page login created; it must be changed at the first login (shown only now; \
                 `linekeeper passwd admin` makes a new one)"
            );
            if let Some(tx) = opts.first_login.take() {
                let _ = tx.send(password);
            }
        }
        Ok(None) => {}
        Err(e) => error!(error = %e, "could not create the first web login"),
    }

    let (mqtt_state_tx, mqtt_state) = watch::channel(LinkState::Disabled);
    let mut parts = Parts {
        cfg: cfg.clone(),
        store: store.clone(),
        handle: handle.clone(),
        metrics: metrics.clone(),
        lines: HashMap::new(),
        uplink: None,
        mqtt_state: mqtt_state_tx,
        openers: std::mem::take(&mut opts.openers),
        sup: sup.clone(),
        cfg_tx: None,
    };
    for line in cfg.lines.clone() {
        parts.start_line(&line);
    }
    if let Some(m) = cfg.mqtt.clone() {
        parts.start_uplink(&m);
    }
    let prune_task = {
        let (store, snapshot, mqtt) = (
            store.clone(),
            handle.snapshot.clone(),
            parts.mqtt_state.clone(),
        );
        sup.spawn("outbox-prune", move || {
            prune_without_mqtt(store.clone(), snapshot.clone(), mqtt.subscribe())
        })
    };

    // Kept as a std listener, so a restarted web server listens on the same socket.
    let listener = tokio::net::TcpListener::bind(&cfg.web.listen)
        .await
        .and_then(|l| l.into_std())
        .map_err(|reason| DaemonError::Listen {
            addr: cfg.web.listen.clone(),
            reason,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|reason| DaemonError::Listen {
            addr: cfg.web.listen.clone(),
            reason,
        })?;
    info!(%addr, "web server listening");
    if let Some(ready) = opts.ready.take() {
        let _ = ready.send(addr);
    }
    let (reload_tx, mut reload_rx) = mpsc::channel::<ReloadRequest>(4);
    parts.cfg_tx = Some(cfg_tx);
    let control_task = {
        let (store, cfg) = (store.clone(), cfg_rx.clone());
        sup.spawn("control", move || {
            let (store, cfg) = (store.clone(), cfg.clone());
            async move {
                if let Err(e) = crate::outputs::control::serve(store, cfg).await {
                    error!(error = %e, "control socket failed; `token create` and `export` need the daemon stopped");
                }
            }
        })
    };
    let scheduler_task = {
        let (store, handle, cfg, clock) = (
            store.clone(),
            handle.clone(),
            cfg_rx.clone(),
            opts.clock.clone(),
        );
        sup.spawn("scheduler", move || {
            crate::runtime::reporting::scheduler(
                store.clone(),
                handle.clone(),
                cfg.clone(),
                clock.clone(),
            )
        })
    };
    let app = router(AppState {
        cfg: cfg_rx,
        store: store.clone(),
        engine: handle.clone(),
        metrics,
        mqtt: mqtt_state,
        reloader: Reloader(reload_tx.clone()),
        ui: std::sync::Arc::new(crate::outputs::http::ui::UiState {
            config_path: opts.config_path.clone(),
            ..Default::default()
        }),
        tasks: sup.clone(),
    });
    let (stop_tx, web_stop) = watch::channel(false);
    let web_task = sup.spawn("http", move || {
        let (app, mut web_stop) = (app.clone(), web_stop.clone());
        let listener = listener
            .try_clone()
            .and_then(tokio::net::TcpListener::from_std);
        async move {
            let listener = match listener {
                Ok(l) => l,
                Err(e) => return error!(error = %e, "the web server cannot use its socket"),
            };
            let web = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = web_stop.wait_for(|s| *s).await;
            });
            if let Err(e) = web.await {
                error!(error = %e, "web server failed");
            }
        }
    });
    let hup_task = sup.spawn("sighup", move || forward_sighup(reload_tx.clone()));

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(req) = reload_rx.recv() => {
                let result = match &opts.config_path {
                    Some(path) => parts.reload(path).await,
                    None => Err(vec!["this daemon was started without a configuration file; nothing to reload".into()]),
                };
                if let Err(problems) = &result {
                    warn!("reload refused, the running configuration stays:");
                    for p in problems {
                        warn!("  {p}");
                    }
                }
                if let Some(reply) = req.reply {
                    let _ = reply.send(result);
                }
            }
        }
    }
    info!("shutting down");
    drop(hup_task);
    drop(scheduler_task);
    drop(prune_task);
    let _ = stop_tx.send(true);
    parts.lines.clear();
    drop(control_task);
    let _ = std::fs::remove_file(store.path().join(crate::outputs::control::SOCKET));
    parts.stop_uplink().await;
    // SSE streams keep the web server open; don't wait long for them.
    web_task
        .stop_within(std::time::Duration::from_secs(2))
        .await;
    drop(engine_task);
    if let Err(e) = store.check() {
        warn!(error = %e, "store check at shutdown failed");
    }
    Ok(())
}

/// Without a broker nothing acknowledges events: keep the last KEEP_WITHOUT_MQTT of them.
async fn prune_without_mqtt(
    store: Store,
    mut snapshot: watch::Receiver<crate::runtime::engine::Snapshot>,
    mqtt: watch::Receiver<LinkState>,
) {
    let mut pruned_at = 0;
    while snapshot.changed().await.is_ok() {
        if *mqtt.borrow() != LinkState::Disabled {
            continue;
        }
        let last = snapshot.borrow_and_update().last_seq;
        if last >= pruned_at + 1000 {
            pruned_at = last;
            if let Err(e) = store.prune_outbox(last.saturating_sub(KEEP_WITHOUT_MQTT)) {
                warn!(error = %e, "cannot prune the outbox");
            }
        }
    }
}

/// SIGHUP asks for a reload.
async fn forward_sighup(tx: mpsc::Sender<ReloadRequest>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        error!("cannot install the SIGHUP handler; reload with POST /api/reload");
        return;
    };
    while hup.recv().await.is_some() {
        info!("SIGHUP: reloading the configuration");
        if tx.send(ReloadRequest { reply: None }).await.is_err() {
            return;
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn signals() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        error!("cannot install signal handlers; stop the daemon with SIGKILL");
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
