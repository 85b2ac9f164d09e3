//! The MQTT uplink. Events go from the durable outbox to the broker in `seq` order at QoS 1; the highest
//! contiguous acknowledged `seq` is remembered in the store, so after a broker outage or a daemon restart the
//! uplink resumes where the broker stopped acknowledging. Retained state (`status`, line states, queue) is
//! republished whole on every ConnAck.
//!
//! Each connection gets a fresh rumqttc client and event loop: rumqttc keeps requests queued in its channel across
//! reconnects and drops its in-flight queue on a clean session, so replaying from our own outbox on a fresh
//! client is the only way to keep the order. rumqttc has no reconnect backoff of its own; ours is capped,
//! exponential and jittered.
//!
//! Long because the outbox pump, the acknowledgement watermark and the retained state are one session's state.

pub mod command;
pub mod discovery;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

// MQTT 5, so that the broker's reasons come back: a publish its ACL denies is answered "not authorised" and logged.
use rumqttc::v5::mqttbytes::v5::{LastWill, Packet, PubAckReason};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event as MqttEvent, MqttOptions};
use rumqttc::{Outgoing, TlsConfiguration, Transport};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::config::{Config, Mqtt};
use crate::metrics::{inc, Metrics};
use crate::runtime::engine::{EngineHandle, Snapshot};
use crate::store::Store;

/// Events in flight (published, not yet acknowledged) at most.
pub const WINDOW: usize = 64;
/// Acknowledged events kept in the outbox for SSE clients resuming with Last-Event-ID.
pub const KEEP_ACKED: u64 = 1000;
/// Acknowledged events between two outbox prunes.
const PRUNE_EVERY: u64 = 256;
/// MQTT commands waiting to be carried out; more are shed.
pub const COMMAND_QUEUE: usize = 64;

/// Aborts a task when dropped: a helper task that must not outlive its owner.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// The uplink's state, for /healthz and the status page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    Disabled,
    Connecting,
    Connected,
    Down(String),
}

impl LinkState {
    pub fn label(&self) -> String {
        match self {
            LinkState::Disabled => "disabled".into(),
            LinkState::Connecting => "connecting".into(),
            LinkState::Connected => "connected".into(),
            LinkState::Down(r) => format!("down: {r}"),
        }
    }
}

pub struct Uplink {
    engine: EngineHandle,
    site: String,
    site_name: String,
    mqtt: Mqtt,
    prefix: String,
    client_id: String,
    store: Store,
    snapshot: watch::Receiver<Snapshot>,
    metrics: Arc<Metrics>,
    state: watch::Sender<LinkState>,
    shutdown: watch::Receiver<bool>,
    /// Request ids already answered, kept across reconnects.
    recent: crate::outputs::mqtt::command::RecentRequests,
}

enum Ended {
    Lost(String),
    Shutdown,
}

impl Uplink {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: &Config,
        engine: EngineHandle,
        mqtt: Mqtt,
        store: Store,
        snapshot: watch::Receiver<Snapshot>,
        metrics: Arc<Metrics>,
        state: watch::Sender<LinkState>,
        shutdown: watch::Receiver<bool>,
    ) -> Uplink {
        let client_id = mqtt
            .client_id
            .clone()
            .unwrap_or_else(|| format!("linekeeper-{}", cfg.site.id));
        Uplink {
            engine,
            site: cfg.site.id.clone(),
            site_name: cfg.site.name.clone(),
            prefix: format!("{}/{}", mqtt.topic_prefix, cfg.site.id),
            mqtt,
            client_id,
            store,
            snapshot,
            metrics,
            state,
            shutdown,
            recent: Default::default(),
        }
    }

    pub async fn run(mut self) {
        // rustls needs a process-wide crypto provider; ring keeps cross builds free of a C library build.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut backoff = FIRST_BACKOFF;
        loop {
            self.state.send_replace(LinkState::Connecting);
            let started = Instant::now();
            let reason = match self.connection().await {
                Ended::Shutdown => return,
                Ended::Lost(r) => r,
            };
            self.metrics.mqtt_connected.store(0, Relaxed);
            if started.elapsed() > Duration::from_secs(30) {
                backoff = FIRST_BACKOFF;
            }
            warn!(broker = %format!("{}:{}", self.mqtt.host, self.mqtt.port), retry_in = ?backoff,
                "MQTT connection lost: {reason}");
            self.state.send_replace(LinkState::Down(reason));
            tokio::select! {
                _ = tokio::time::sleep(crate::adapters::modem::link::jitter(backoff)) => {}
                _ = self.shutdown.changed() => return,
            }
            backoff = (backoff * 2).min(self.mqtt.reconnect_max.0);
        }
    }

    /// Announces the device to Home Assistant when the lines differ from what this session announced.
    fn discover(&self, s: &mut Session, snap: &Snapshot) {
        if !self.mqtt.discovery {
            return;
        }
        let lines: Vec<String> = snap.lines.iter().map(|l| l.line.clone()).collect();
        if s.discovered.as_ref() == Some(&lines) {
            return;
        }
        let before: std::collections::BTreeMap<String, String> = self
            .store
            .meta_json("ha_components")
            .ok()
            .flatten()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        let payload = discovery::payload(&s.prefix, &self.site, &self.site_name, &lines, &before);
        let topic = discovery::topic(&self.mqtt.discovery_prefix, &self.site);
        if s.publish(
            topic,
            serde_json::to_vec(&payload).unwrap_or_default(),
            true,
            None,
        ) {
            let now = serde_json::to_value(discovery::announced(&payload)).unwrap_or_default();
            if let Err(e) = self.store.set_meta_json("ha_components", &now) {
                warn!(error = %e, "cannot remember the announced Home Assistant entities");
            }
            s.discovered = Some(lines);
        }
    }

    fn options(&self) -> Result<MqttOptions, String> {
        let mut o = MqttOptions::new(&self.client_id, &self.mqtt.host, self.mqtt.port);
        o.set_keep_alive(self.mqtt.keep_alive.0);
        o.set_clean_start(true);
        o.set_outgoing_inflight_upper_limit(WINDOW as u16 + 32);
        o.set_request_channel_capacity(WINDOW * 2 + 64);
        o.set_max_packet_size(Some(256 * 1024));
        o.set_last_will(LastWill::new(
            format!("{}/status", self.prefix),
            "offline",
            QoS::AtLeastOnce,
            true,
            None,
        ));
        if let Some(ca_file) = &self.mqtt.ca_file {
            let read = |key: &str, p: &std::path::Path| {
                std::fs::read(p).map_err(|e| format!("cannot read mqtt.{key} {}: {e}", p.display()))
            };
            let ca = read("ca_file", ca_file)?;
            let client_auth = match (&self.mqtt.client_cert_file, &self.mqtt.client_key_file) {
                (Some(c), Some(k)) => {
                    Some((read("client_cert_file", c)?, read("client_key_file", k)?))
                }
                _ => None,
            };
            o.set_transport(Transport::Tls(TlsConfiguration::Simple {
                ca,
                alpn: None,
                client_auth,
            }));
        }
        if let Some(user) = &self.mqtt.username {
            let password = match &self.mqtt.password_file {
                Some(p) => std::fs::read_to_string(p)
                    .map_err(|e| format!("cannot read mqtt.password_file {}: {e}", p.display()))?
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string(),
                None => String::new(),
            };
            o.set_credentials(user, password);
        }
        Ok(o)
    }

    async fn connection(&mut self) -> Ended {
        let opts = match self.options() {
            Ok(o) => o,
            Err(e) => return Ended::Lost(e),
        };
        let (client, mut el) = AsyncClient::new(opts, WINDOW * 2 + 64);
        // Commands wait in one bounded queue and are carried out one at a time by one worker (the engine takes them
        // one at a time anyway): a flood is shed with a count, never grows memory. Their answers come back through
        // `answers` and are published by this loop.
        let (answers_tx, mut answers) = mpsc::channel::<(String, Vec<u8>)>(64);
        let (commands, mut queued) = mpsc::channel::<(String, Vec<u8>, bool)>(COMMAND_QUEUE);
        let ctx = crate::runtime::action::Ctx {
            engine: self.engine.clone(),
            store: self.store.clone(),
            reloader: None,
        };
        let actor = crate::runtime::action::Actor::new(
            crate::runtime::action::Door::Mqtt,
            "mqtt",
            self.mqtt.command_role,
        );
        let (topic, mask) = (
            format!("{}/cmd/result", self.prefix),
            self.mqtt.mask_numbers,
        );
        let worker = tokio::spawn(async move {
            while let Some((verb, payload, fresh)) = queued.recv().await {
                let answer =
                    crate::outputs::mqtt::command::run(&ctx, &actor, &verb, &payload, fresh, mask)
                        .await;
                if answers_tx.send((topic.clone(), answer)).await.is_err() {
                    break;
                }
            }
        });
        // The worker ends with the connection.
        let _worker = AbortOnDrop(worker);
        let mut s = Session {
            client,
            prefix: self.prefix.clone(),
            mask: self.mqtt.mask_numbers,
            connected: false,
            tags: VecDeque::new(),
            by_pkid: HashMap::new(),
            acked_above: BTreeSet::new(),
            acked: self.store.mqtt_acked().unwrap_or(0),
            next: 0,
            in_flight: 0,
            pruned: 0,
            retained: HashMap::new(),
            reports: HashMap::new(),
            discovered: None,
            state_behind: false,
            store_failing: false,
        };
        loop {
            tokio::select! {
                ev = el.poll() => match ev {
                    Ok(MqttEvent::Incoming(Packet::ConnAck(ack))) => {
                        info!(session_present = ack.session_present, "MQTT connected");
                        inc(&self.metrics.mqtt_connects);
                        self.metrics.mqtt_connected.store(1, Relaxed);
                        self.state.send_replace(LinkState::Connected);
                        s.connected = true;
                        // A fresh client per connection, so the subscription is made on every ConnAck.
                        if let Err(e) = s.client.try_subscribe(format!("{}/cmd/+", s.prefix), QoS::AtLeastOnce) {
                            warn!(error = %e, "cannot subscribe to the command topics");
                        }
                        if self.mqtt.discovery {
                            // Home Assistant announces its restarts here: discovery is sent again then.
                            let ha = format!("{}/status", self.mqtt.discovery_prefix);
                            if let Err(e) = s.client.try_subscribe(ha, QoS::AtLeastOnce) {
                                warn!(error = %e, "cannot subscribe to Home Assistant's status");
                            }
                        }
                        s.discovered = None;
                        // Birth message, then the whole retained state, then the backlog from the last ack on.
                        s.publish(format!("{}/status", s.prefix), b"online".to_vec(), true, None);
                        s.pruned = s.acked;
                        let snap = self.snapshot.borrow_and_update().clone();
                        self.discover(&mut s, &snap);
                        s.publish_state(&snap);
                        s.next = s.acked + 1;
                        s.pump(&self.store, snap.last_seq, &self.metrics);
                    }
                    Ok(MqttEvent::Outgoing(Outgoing::Publish(pkid))) => {
                        if let Some(tag) = s.tags.pop_front() {
                            s.by_pkid.insert(pkid, tag);
                        }
                    }
                    Ok(MqttEvent::Incoming(Packet::PubAck(ack))) => {
                        let tag = s.by_pkid.remove(&ack.pkid);
                        if !matches!(ack.reason, PubAckReason::Success | PubAckReason::NoMatchingSubscribers) {
                            // The event stays in the outbox and on the other outputs; this broker will not take it.
                            let topic = tag.as_ref().map(|t| t.topic.as_str()).unwrap_or("?");
                            error!(topic, reason = ?ack.reason, "the broker refused a publish (check its ACL for this box's user)");
                            inc(&self.metrics.mqtt_refused);
                        }
                        if let Some(Tag { seq: Some(seq), .. }) = tag {
                            s.in_flight = s.in_flight.saturating_sub(1);
                            s.ack(seq, &self.store, &self.metrics);
                        }
                        if s.state_behind {
                            let snap = self.snapshot.borrow().clone();
                            s.publish_state(&snap);
                        }
                        let last = self.snapshot.borrow().last_seq;
                        s.pump(&self.store, last, &self.metrics);
                    }
                    Ok(MqttEvent::Incoming(Packet::Publish(p)))
                        if p.topic.as_ref() == format!("{}/status", self.mqtt.discovery_prefix).as_bytes() =>
                    {
                        if p.payload.as_ref() == b"online" {
                            info!("Home Assistant came online: sending discovery again");
                            s.discovered = None;
                            let snap = self.snapshot.borrow().clone();
                            self.discover(&mut s, &snap);
                        }
                    }
                    // Our own answers on cmd/result come back through the cmd/+ subscription: not commands.
                    Ok(MqttEvent::Incoming(Packet::Publish(p))) if !p.topic.ends_with(b"/cmd/result") => {
                        let topic = String::from_utf8_lossy(&p.topic).into_owned();
                        let verb = topic.strip_prefix(&format!("{}/cmd/", s.prefix)).unwrap_or("").to_string();
                        let fresh = self.recent.fresh(&p.payload);
                        if commands.try_send((verb, p.payload.to_vec(), fresh)).is_err() {
                            let shed = self.metrics.mqtt_commands_shed.fetch_add(1, Relaxed) + 1;
                            // One line per power of two, so a flood does not flood the log too.
                            if shed.is_power_of_two() {
                                warn!(shed, queue = COMMAND_QUEUE, "MQTT commands arrive faster than they can be carried out: shedding them (no answer is sent for a shed command)");
                            }
                        }
                    }
                    Ok(other) => debug!(event = ?other, "mqtt"),
                    Err(e) => return Ended::Lost(e.to_string()),
                },
                Some((topic, payload)) = answers.recv() => {
                    s.publish(topic, payload, false, None);
                }
                r = self.snapshot.changed() => {
                    if r.is_err() { return Ended::Shutdown; }
                    if s.connected {
                        let snap = self.snapshot.borrow_and_update().clone();
                        self.discover(&mut s, &snap);
                        s.publish_state(&snap);
                        s.pump(&self.store, snap.last_seq, &self.metrics);
                    }
                }
                _ = self.shutdown.changed() => {
                    if s.connected {
                        s.publish(format!("{}/status", s.prefix), b"offline".to_vec(), true, None);
                        let _ = s.client.try_disconnect();
                        // Let the event loop send them; give up after a second.
                        let _ = tokio::time::timeout(Duration::from_secs(1), async {
                            while let Ok(ev) = el.poll().await {
                                if matches!(ev, MqttEvent::Outgoing(Outgoing::Disconnect)) { break; }
                            }
                        }).await;
                    }
                    return Ended::Shutdown;
                }
            }
        }
    }
}

/// The retained `P/health` payload: `status` `ok` or `degraded`, `store` `ok` or `failing`, and while failing
/// `since` and `error`.
fn health_json(snap: &Snapshot) -> Vec<u8> {
    let v = match &snap.store_error {
        Some(f) => serde_json::json!({
            "status": "degraded",
            "store": "failing",
            "since": f.since,
            "error": f.error,
        }),
        None => serde_json::json!({"status": "ok", "store": "ok"}),
    };
    serde_json::to_vec(&v).unwrap_or_default()
}

/// What a QoS 1 publish carried: its topic, and the event `seq` if it was an event.
struct Tag {
    seq: Option<u64>,
    topic: String,
}

/// One broker connection's bookkeeping.
struct Session {
    client: AsyncClient,
    prefix: String,
    mask: bool,
    connected: bool,
    /// One entry per QoS 1 publish handed to rumqttc, in order: the event `seq` it carries, if any. rumqttc reports
    /// `Outgoing::Publish(pkid)` in the same order, which pairs each packet id with its event.
    tags: VecDeque<Tag>,
    by_pkid: HashMap<u16, Tag>,
    /// Acknowledged events above the contiguous watermark.
    acked_above: BTreeSet<u64>,
    acked: u64,
    next: u64,
    in_flight: usize,
    /// The watermark at the last outbox prune.
    pruned: u64,
    /// The last payload published on each retained topic in this session.
    retained: HashMap<String, Vec<u8>>,
    /// The lines announced to Home Assistant in this session.
    discovered: Option<Vec<String>>,
    /// A retained state publish could not be queued.
    state_behind: bool,
    /// `alert.store_failing` was sent in this session and not yet `alert.store_recovered`.
    store_failing: bool,
    reports: HashMap<String, Arc<Vec<u8>>>,
}

impl Session {
    /// Hands a QoS 1 publish to rumqttc; false when its request queue is full (try again later).
    fn publish(&mut self, topic: String, payload: Vec<u8>, retain: bool, seq: Option<u64>) -> bool {
        match self
            .client
            .try_publish(&topic, QoS::AtLeastOnce, retain, payload)
        {
            Ok(()) => {
                self.tags.push_back(Tag { seq, topic });
                true
            }
            Err(e) => {
                debug!(topic, error = %e, "MQTT request queue full; will retry");
                false
            }
        }
    }

    fn publish_state(&mut self, snap: &Snapshot) {
        let mut items: Vec<(String, Vec<u8>)> = snap
            .lines
            .iter()
            .map(|l| {
                let l = if self.mask { l.masked() } else { l.clone() };
                (
                    format!("{}/line/{}/state", self.prefix, l.line),
                    serde_json::to_vec(&l).unwrap_or_default(),
                )
            })
            .collect();
        for a in &snap.agents {
            items.push((
                format!("{}/agent/{}/state", self.prefix, a.agent),
                serde_json::to_vec(a).unwrap_or_default(),
            ));
        }
        items.push((
            format!("{}/queue", self.prefix),
            serde_json::to_vec(&snap.queue).unwrap_or_default(),
        ));
        items.push((format!("{}/health", self.prefix), health_json(snap)));
        self.store_alert(snap);
        // Reports are large and change rarely: compare them by pointer, not by content.
        for (kind, json) in &snap.reports {
            if self
                .reports
                .get(kind)
                .is_some_and(|old| Arc::ptr_eq(old, json))
            {
                continue;
            }
            if self.publish(
                format!("{}/report/{kind}", self.prefix),
                json.to_vec(),
                true,
                None,
            ) {
                self.reports.insert(kind.clone(), json.clone());
            }
        }
        self.state_behind = false;
        for (topic, payload) in items {
            if self.retained.get(&topic) != Some(&payload) {
                if self.publish(topic.clone(), payload.clone(), true, None) {
                    self.retained.insert(topic, payload);
                } else {
                    // rumqttc's queue is full: try again at the next acknowledgement, not only at the next change.
                    self.state_behind = true;
                }
            }
        }
    }

    /// `alert.store_failing` when commits start failing, `alert.store_recovered` when they work again. These two
    /// cannot be in the outbox (the store is what fails), so they carry no `seq`; they are sent once per session.
    fn store_alert(&mut self, snap: &Snapshot) {
        let failing = !snap.store_ok();
        if failing == self.store_failing {
            return;
        }
        let now = chrono::Utc::now();
        let (kind, level, message) = match &snap.store_error {
            Some(f) => (
                "alert.store_failing",
                "critical",
                format!(
                    "the store cannot write ({}): calls are not being recorded durably and nothing is published \
                     or acknowledged until it can; check free disk space and the disk",
                    f.error
                ),
            ),
            None => (
                "alert.store_recovered",
                "info",
                "the store writes again; the held events follow".to_string(),
            ),
        };
        let payload = serde_json::json!({
            "event_id": crate::model::new_id(now),
            "type": kind,
            "at": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "alert": {
                "rule": kind.trim_start_matches("alert."),
                "level": level,
                "message": message,
                "since": snap.store_error.as_ref().map(|f| f.since),
            },
        });
        if self.publish(
            format!("{}/alert", self.prefix),
            serde_json::to_vec(&payload).unwrap_or_default(),
            false,
            None,
        ) {
            self.store_failing = failing;
        } else {
            self.state_behind = true;
        }
    }

    /// Publishes outbox events from `next` on, keeping at most WINDOW in flight.
    fn pump(&mut self, store: &Store, last_seq: u64, metrics: &Metrics) {
        while self.connected && self.in_flight < WINDOW && self.next <= last_seq {
            let want = WINDOW - self.in_flight;
            let events = match store.events_from(self.next, want) {
                Ok(e) => e,
                Err(e) => {
                    warn!(error = %e, "cannot read the outbox");
                    return;
                }
            };
            if events.is_empty() {
                return;
            }
            for ev in events {
                let seq = ev.seq;
                let ev = if self.mask { ev.masked() } else { ev };
                let topic = format!("{}/{}", self.prefix, ev.topic_suffix());
                let payload = serde_json::to_vec(&ev).unwrap_or_default();
                if !self.publish(topic, payload, false, Some(seq)) {
                    // Not sent: `next` stays, and the next acknowledgement or change tries again.
                    return;
                }
                self.next = seq + 1;
                self.in_flight += 1;
                inc(&metrics.mqtt_published);
            }
        }
    }

    fn ack(&mut self, seq: u64, store: &Store, metrics: &Metrics) {
        if seq <= self.acked {
            return;
        }
        self.acked_above.insert(seq);
        let before = self.acked;
        while let Some(&first) = self.acked_above.first() {
            // The outbox may have gaps only below what was pruned; anything at or below `acked + 1` is contiguous.
            if first == self.acked + 1 {
                self.acked = first;
                self.acked_above.pop_first();
            } else {
                break;
            }
        }
        if self.acked != before {
            metrics.mqtt_acked_seq.store(self.acked, Relaxed);
            // The watermark is cheap to record; pruning scans the outbox, so it runs every PRUNE_EVERY events.
            let prune = self.acked >= self.pruned + PRUNE_EVERY;
            if let Err(e) = store.set_mqtt_acked(self.acked, prune.then_some(KEEP_ACKED)) {
                warn!(error = %e, "cannot record the MQTT acknowledgement");
            }
            if prune {
                self.pruned = self.acked;
            }
        }
    }
}
