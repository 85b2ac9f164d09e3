//! `mqttbench`: what the MQTT uplink of the built linekeeper daemon delivers, driven from the outside.
//!
//! ```text
//! cargo build --release -p linekeeper
//! cargo run --release -p linekeeper-e2e --bin mqttbench -- [--events N] [--backlog N] [--quick]
//! ```
//!
//! It starts a real mosquitto on a free loopback port, a socat pty pair and the release daemon
//! (`target/release/linekeeper`, or `$LINEKEEPER_BIN`) with a one-line modem config
//! (`answer_detect = true`, `init = ["AT"]`, `mask_numbers = true`, `[mqtt] reconnect_max = "1s"`).
//! The bench plays the modem on the far side of the pty (it answers each command line with `OK`).
//! One answered call on the wire is
//!
//! ```text
//! RING / NMBR = 1380013xxxx / NAME = BENCH / OFFHOOK / ONHOOK
//! ```
//!
//! which gives three events: `call.ringing`, `call.answered` and `call.ended`.
//!
//! Phases, in this order:
//!
//! 1. **live**: a subscriber (clean session, QoS 1, `linekeeper/bench/#`) while the broker stays
//!    up; `--events`/3 calls written back to back; the time from the first byte written to the
//!    arrival of the last `call.ended`. Every event must arrive, first arrivals in `seq` order
//!    (repeats with the same `event_id` are allowed and counted). The same run gives the bytes on
//!    the wire per call (events, and the retained line state and queue apart) and the CPU of the
//!    daemon and of mosquitto per 1,000 events.
//! 2. **drain**: a second subscriber with a persistent session (so it gets every event even when
//!    the daemon reconnects before it does), then mosquitto is killed (SIGKILL), `--backlog`/3
//!    calls are written, and once `/healthz` shows them all committed mosquitto starts again on
//!    the same port. Measured: from the broker accepting connections to the first event (the
//!    reconnect delay, which the daemon's backoff dominates) and to the last; the drain rate;
//!    order and completeness.
//!
//! The broker runs with persistence on (`autosave_interval 1`), which is what lets the drain
//! subscriber's session survive the SIGKILL; the bench waits for an autosave after subscribing.
//!
//! Everything runs on the same machine, so the bench, socat and mosquitto compete with the
//! daemon for the CPUs. The table ends with one line of JSON (`MQTTBENCH_JSON {...}`). No
//! targets are asserted, but the bench fails (exit 1) when an event is lost, garbled or out of
//! order.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use linekeeper::model::mask_number;
use linekeeper_e2e::bench::{
    self, call_number, cpu_secs, find_program, json_report, machine, modem_config, round, Broker,
    Commits, Daemon, Heard, Http, Machine, Modem, Subscription, Table, STARTUP,
};
use linekeeper_e2e::{tail, PtyPair};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// Topics are `linekeeper/bench/...` (the site id of the generated config).
const PREFIX: &str = "linekeeper/bench";
const SUBSCRIPTION: &str = "linekeeper/bench/#";
/// How long CPU is still sampled after the last event (acknowledgements, retained state, pruning).
const SETTLE: Duration = Duration::from_millis(500);
/// The NCID reference printed for context (its latency p99; nothing here measures latency).
const NCID_P99_MS: f64 = 0.67;
const CALL_KINDS: [&str; 3] = ["call.ringing", "call.answered", "call.ended"];

// ---------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Options {
    /// Events of the live phase (calls = events / 3, rounded up).
    events: usize,
    /// Events queued while the broker is down (calls = backlog / 3, rounded up).
    backlog: usize,
    /// The broker stays down at least this long, so the daemon's backoff reaches its cap.
    outage: Duration,
    quick: bool,
    dir: Option<PathBuf>,
    keep: bool,
}

const USAGE: &str = "\
usage: mqttbench [--events N] [--backlog N] [--outage SECS] [--quick] [--dir DIR] [--keep]

  --events N    events delivered live, as N/3 answered calls back to back (default 30000)
  --backlog N   events queued while the broker is down, then drained (default 10000)
  --outage SECS the broker stays down at least this long (default 5), so the daemon's
                reconnect backoff (250 ms doubling, capped at reconnect_max = 1s) reaches its
                cap; 0 restarts it as soon as the backlog is committed
  --quick       N=3000, backlog 1000 (other flags still apply)
  --dir DIR     put the work dir (and the daemon's store) under DIR (default: $TMPDIR)
  --keep        keep the work dir (config, store, daemon and broker logs) afterwards

The daemon binary is $LINEKEEPER_BIN, else <target>/release/linekeeper
(build it with `cargo build --release -p linekeeper`).";

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let quick = bench::quick(args);
        let mut o = Options {
            events: if quick { 3_000 } else { 30_000 },
            backlog: if quick { 1_000 } else { 10_000 },
            outage: Duration::from_secs(5),
            quick,
            dir: None,
            keep: false,
        };
        bench::parse_flags(args, USAGE, |flag, args| {
            match flag {
                "--keep" => o.keep = true,
                "--events" | "-n" => o.events = args.number("--events")? as usize,
                "--backlog" => o.backlog = args.number(flag)? as usize,
                "--outage" => {
                    let v = args.value(flag)?;
                    let secs: f64 = v
                        .parse()
                        .ok()
                        .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                        .ok_or_else(|| anyhow!("--outage needs seconds, got `{v}`"))?;
                    o.outage = Duration::from_secs_f64(secs);
                }
                "--dir" => o.dir = Some(PathBuf::from(args.value(flag)?)),
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        if o.events < 3 || o.backlog < 3 {
            bail!("--events and --backlog must be at least 3 (one call)");
        }
        Ok(o)
    }

    fn calls(&self) -> usize {
        self.events.div_ceil(3)
    }

    fn backlog_calls(&self) -> usize {
        self.backlog.div_ceil(3)
    }
}

// ---------------------------------------------------------------------------------------
// The broker, the daemon, the modem's calls and CPU
// ---------------------------------------------------------------------------------------

/// The first line `mosquitto -h` prints (and exits non-zero): its version.
fn mosquitto_version() -> String {
    Command::new(find_program("mosquitto"))
        .arg("-h")
        .stdin(Stdio::null())
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.trim().to_string())
        })
        .unwrap_or_else(|| "mosquitto (version unknown)".into())
}

/// mosquitto with persistence on (an autosave every second), which lets the drain subscriber's persistent
/// session survive a SIGKILL; and the file it saves to.
fn new_broker(dir: &Path) -> Result<(Broker, PathBuf)> {
    let data = dir.join("mosquitto-data");
    fs::create_dir_all(&data)?;
    let settings = format!(
        "# the drain subscriber's persistent session must survive a SIGKILL\n\
         persistence true\n\
         persistence_location {}/\n\
         autosave_interval 1\n\
         log_type information\n\
         connection_messages true\n\
         log_timestamp true\n",
        data.display()
    );
    let broker = Broker::new("mqttbench", dir, &settings)?;
    Ok((broker, data.join("mosquitto.db")))
}

fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The daemon with one modem line (answer detection on), masked numbers and a 1 s reconnect cap.
fn new_daemon(dir: &Path, device: &Path, mqtt_port: u16) -> Result<Daemon> {
    Daemon::new("mqttbench", dir, |store, web_port| {
        let mqtt = "mask_numbers = true\nreconnect_max = \"1s\"\n";
        modem_config("mqttbench", store, device, mqtt_port, mqtt, web_port)
    })
}

/// Waits until the uplink has had every committed event acknowledged.
async fn wait_all_acked(http: &Http) -> Result<u64> {
    let deadline = Instant::now() + STARTUP;
    loop {
        let last = http.last_seq().await?;
        let acked = http.metric("linekeeper_mqtt_acked_seq").await? as u64;
        if acked >= last {
            return Ok(last);
        }
        if Instant::now() > deadline {
            bail!("the broker had acknowledged seq {acked} of {last} after {STARTUP:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Calls `first..first + n` on the wire, each answered and hung up.
fn calls_bytes(first: usize, n: usize) -> Vec<Vec<u8>> {
    (first..first + n)
        .map(|i| {
            format!(
                "RING\r\nNMBR = {}\r\nNAME = BENCH\r\nOFFHOOK\r\nONHOOK\r\n",
                call_number(i)
            )
            .into_bytes()
        })
        .collect()
}

/// CPU seconds of the daemon, mosquitto and the bench itself, read together.
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    daemon: f64,
    broker: f64,
    bench: f64,
}

impl Cpu {
    fn read(daemon: u32, broker: u32) -> Result<Cpu> {
        Ok(Cpu {
            daemon: cpu_secs(daemon)?,
            broker: cpu_secs(broker)?,
            bench: cpu_secs("self")?,
        })
    }

    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            daemon: self.daemon - before.daemon,
            broker: self.broker - before.broker,
            bench: self.bench - before.bench,
        }
    }

    fn per_1000(self, events: usize) -> Cpu {
        let k = 1000.0 / events.max(1) as f64;
        Cpu {
            daemon: self.daemon * k,
            broker: self.broker * k,
            bench: self.bench * k,
        }
    }
}

// ---------------------------------------------------------------------------------------
// The MQTT subscriber
// ---------------------------------------------------------------------------------------

/// What a message is, by topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Class {
    Event,
    LineState,
    Queue,
    Status,
    Other,
}

impl Class {
    fn of(topic: &str) -> Class {
        let Some(rest) = topic.strip_prefix(PREFIX).and_then(|r| r.strip_prefix('/')) else {
            return Class::Other;
        };
        if rest.starts_with("events/") || rest == "alert" {
            Class::Event
        } else if rest.starts_with("line/") && rest.ends_with("/state") {
            Class::LineState
        } else if rest == "queue" {
            Class::Queue
        } else if rest == "status" {
            Class::Status
        } else {
            Class::Other
        }
    }

    fn label(self) -> &'static str {
        match self {
            Class::Event => "events",
            Class::LineState => "line state (retained)",
            Class::Queue => "queue (retained)",
            Class::Status => "status (retained)",
            Class::Other => "other",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Class::Event => "events",
            Class::LineState => "line_state",
            Class::Queue => "queue",
            Class::Status => "status",
            Class::Other => "other",
        }
    }
}

/// The envelope of an event.
#[derive(Debug, Clone)]
struct Ev {
    id: String,
    seq: u64,
    kind: String,
    call_id: Option<String>,
    number: Option<String>,
}

#[derive(Debug)]
struct Msg {
    at: Instant,
    class: Class,
    topic_len: usize,
    payload_len: usize,
    /// Set for events with `event_id`, `seq` and `type`.
    ev: Option<Ev>,
    /// `state` of a line state, `answered` of the queue.
    state: Option<String>,
    answered: Option<u64>,
    /// An event topic whose payload lacked the envelope.
    garbled: bool,
}

fn parse(at: Instant, topic: &str, payload: &[u8]) -> Msg {
    let class = Class::of(topic);
    let v: Option<Value> = if matches!(class, Class::Event | Class::LineState | Class::Queue) {
        serde_json::from_slice(payload).ok()
    } else {
        None
    };
    let mut msg = Msg {
        at,
        class,
        topic_len: topic.len(),
        payload_len: payload.len(),
        ev: None,
        state: None,
        answered: None,
        garbled: false,
    };
    match (class, v) {
        (Class::Event, Some(v)) => {
            if let (Some(id), Some(seq), Some(kind)) = (
                v["event_id"].as_str(),
                v["seq"].as_u64(),
                v["type"].as_str(),
            ) {
                msg.ev = Some(Ev {
                    id: id.to_string(),
                    seq,
                    kind: kind.to_string(),
                    call_id: v["call"]["id"].as_str().map(str::to_string),
                    number: v["call"]["number"].as_str().map(str::to_string),
                });
            } else {
                msg.garbled = true;
            }
        }
        (Class::Event, None) => msg.garbled = true,
        (Class::LineState, Some(v)) => msg.state = v["state"].as_str().map(str::to_string),
        (Class::Queue, Some(v)) => msg.answered = v["answered"].as_u64(),
        _ => {}
    }
    msg
}

enum SubEvent {
    Connected { at: Instant, session_present: bool },
    Subscribed,
    Msg(Msg),
}

/// A QoS 1 subscriber to `linekeeper/bench/#` (see `Subscription`).
struct Subscriber {
    rx: mpsc::UnboundedReceiver<SubEvent>,
    mqtt: Subscription,
}

impl Subscriber {
    async fn start(port: u16, client_id: &str, clean: bool) -> Result<Subscriber> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mqtt = Subscription::start(port, client_id, SUBSCRIPTION, clean, move |heard| {
            let _ = tx.send(match heard {
                Heard::Connected {
                    at,
                    session_present,
                } => SubEvent::Connected {
                    at,
                    session_present,
                },
                Heard::Subscribed => SubEvent::Subscribed,
                Heard::Message { at, publish } => {
                    SubEvent::Msg(parse(at, &publish.topic, &publish.payload))
                }
            });
        })
        .await?;
        Ok(Subscriber { rx, mqtt })
    }

    /// Drops what has arrived so far (retained messages sent on subscribing, say).
    async fn settle(&mut self, quiet: Duration) -> usize {
        let mut n = 0;
        while let Ok(Some(_)) = tokio::time::timeout(quiet, self.rx.recv()).await {
            n += 1;
        }
        n
    }
}

// ---------------------------------------------------------------------------------------
// Checking a run of events
// ---------------------------------------------------------------------------------------

/// The events of one phase: those with `seq` in `after + 1 ..= last`, from `calls` calls whose
/// numbers start at `first_call`.
struct Tally {
    after: u64,
    last: u64,
    first_call: usize,
    calls: usize,
    /// event_id -> seq of every event seen.
    ids: HashMap<String, u64>,
    /// seq -> event_id of the phase's events.
    seqs: HashMap<u64, String>,
    distinct: u64,
    duplicates: u64,
    /// First arrivals whose seq was not the one after the previous first arrival.
    out_of_order: u64,
    prev_seq: u64,
    /// Events at or below `after` (replays of an earlier phase) and above `last`.
    earlier: u64,
    later: u64,
    /// The same event_id with another seq, or the same seq with another event_id.
    conflicts: u64,
    garbled: u64,
    first_at: Option<Instant>,
    last_at: Option<Instant>,
    /// When the event with seq == `last` first arrived.
    final_at: Option<Instant>,
    kinds: BTreeMap<String, u64>,
    /// call id -> the kinds of its events, in arrival order (first arrivals only).
    per_call: HashMap<String, Vec<String>>,
    /// Call ids in the order of their first event, with the number it carried.
    call_order: Vec<(String, Option<String>)>,
}

impl Tally {
    fn new(after: u64, events: u64, first_call: usize, calls: usize) -> Tally {
        Tally {
            after,
            last: after + events,
            first_call,
            calls,
            ids: HashMap::new(),
            seqs: HashMap::new(),
            distinct: 0,
            duplicates: 0,
            out_of_order: 0,
            prev_seq: after,
            earlier: 0,
            later: 0,
            conflicts: 0,
            garbled: 0,
            first_at: None,
            last_at: None,
            final_at: None,
            kinds: BTreeMap::new(),
            per_call: HashMap::new(),
            call_order: Vec::new(),
        }
    }

    fn expected(&self) -> u64 {
        self.last - self.after
    }

    fn add(&mut self, m: &Msg) {
        if m.garbled {
            self.garbled += 1;
            return;
        }
        let Some(ev) = &m.ev else { return };
        if let Some(&seq) = self.ids.get(&ev.id) {
            if seq != ev.seq {
                self.conflicts += 1;
            }
            if ev.seq > self.after && ev.seq <= self.last {
                self.duplicates += 1;
            }
            return;
        }
        self.ids.insert(ev.id.clone(), ev.seq);
        if ev.seq <= self.after {
            self.earlier += 1;
            return;
        }
        if ev.seq > self.last {
            self.later += 1;
            return;
        }
        if self.seqs.insert(ev.seq, ev.id.clone()).is_some() {
            self.conflicts += 1;
            return;
        }
        if ev.seq != self.prev_seq + 1 {
            self.out_of_order += 1;
        }
        self.prev_seq = ev.seq;
        self.distinct += 1;
        self.first_at.get_or_insert(m.at);
        self.last_at = Some(m.at);
        if ev.seq == self.last {
            self.final_at = Some(m.at);
        }
        *self.kinds.entry(ev.kind.clone()).or_default() += 1;
        if let Some(call) = &ev.call_id {
            let kinds = self.per_call.entry(call.clone()).or_default();
            if kinds.is_empty() {
                self.call_order.push((call.clone(), ev.number.clone()));
            }
            kinds.push(ev.kind.clone());
        }
    }

    /// Everything arrived (or the last one did: then the wait stops and `problems` tells).
    fn complete(&self) -> bool {
        self.distinct >= self.expected()
    }

    fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.distinct != self.expected() {
            out.push(format!(
                "{} of {} events arrived (seq {}..={})",
                self.distinct,
                self.expected(),
                self.after + 1,
                self.last
            ));
        }
        if self.out_of_order > 0 {
            out.push(format!(
                "{} first arrivals out of seq order",
                self.out_of_order
            ));
        }
        if self.conflicts > 0 {
            out.push(format!(
                "{} event_id/seq conflicts (a repeated event_id with another seq, or a seq with two event_ids)",
                self.conflicts
            ));
        }
        if self.garbled > 0 {
            out.push(format!(
                "{} messages on event topics without event_id/seq/type",
                self.garbled
            ));
        }
        if self.later > 0 {
            out.push(format!(
                "{} events above seq {} (more events than the calls make)",
                self.later, self.last
            ));
        }
        let call_events: u64 = CALL_KINDS
            .iter()
            .map(|k| self.kinds.get(*k).copied().unwrap_or(0))
            .sum();
        if call_events != self.distinct {
            out.push(format!(
                "{} events other than call events: {:?}",
                self.distinct - call_events,
                self.kinds
            ));
        }
        if self.distinct == self.expected() {
            if self.call_order.len() != self.calls {
                out.push(format!(
                    "events of {} calls instead of {}",
                    self.call_order.len(),
                    self.calls
                ));
            }
            let bad_calls = self
                .per_call
                .values()
                .filter(|k| k.iter().map(String::as_str).ne(CALL_KINDS))
                .count();
            if bad_calls > 0 {
                out.push(format!(
                    "{bad_calls} calls without exactly ringing, answered, ended in this order"
                ));
            }
            let wrong_numbers = self
                .call_order
                .iter()
                .enumerate()
                .filter(|(i, (_, n))| {
                    n.as_deref() != Some(mask_number(&call_number(self.first_call + i)).as_str())
                })
                .count();
            if wrong_numbers > 0 {
                out.push(format!(
                    "{wrong_numbers} calls whose (masked) number is not the one written in that place"
                ));
            }
        }
        out
    }
}

/// Receives until the tally is complete (or the last event came and 2 s more passed), feeding
/// every message to `each`.
async fn collect(
    sub: &mut Subscriber,
    tally: &mut Tally,
    timeout: Duration,
    mut each: impl FnMut(&SubEvent),
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut grace: Option<tokio::time::Instant> = None;
    while !tally.complete() {
        let until = grace.map_or(deadline, |g| g.min(deadline));
        match tokio::time::timeout_at(until, sub.rx.recv()).await {
            Ok(Some(e)) => {
                if let SubEvent::Msg(m) = &e {
                    tally.add(m);
                    if tally.final_at.is_some() && grace.is_none() {
                        grace = Some(tokio::time::Instant::now() + Duration::from_secs(2));
                    }
                }
                each(&e);
            }
            Ok(None) => bail!("the MQTT subscriber stopped"),
            Err(_) if grace.is_some() => return Ok(()),
            Err(_) => bail!(
                "timed out after {timeout:?}: {} of {} events arrived (seq {}..={}), last seq seen {}; \
                 subscriber connection errors: {}",
                tally.distinct,
                tally.expected(),
                tally.after + 1,
                tally.last,
                tally.prev_seq,
                sub.mqtt.errors()
            ),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Bytes on the wire
// ---------------------------------------------------------------------------------------

/// Bytes of an MQTT 3.1.1 PUBLISH at QoS 1 with its PUBACK: fixed header (1 + remaining
/// length, 1-4 bytes), topic length (2), topic, packet id (2), payload; PUBACK 4.
fn packet_bytes(topic: usize, payload: usize) -> usize {
    let remaining = 2 + topic + 2 + payload;
    let len_bytes = match remaining {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    };
    1 + len_bytes + remaining + 4
}

#[derive(Debug, Default, Clone, Copy)]
struct Bytes {
    messages: u64,
    topic: u64,
    payload: u64,
    packet: u64,
}

impl Bytes {
    fn add(&mut self, topic: usize, payload: usize) {
        self.messages += 1;
        self.topic += topic as u64;
        self.payload += payload as u64;
        self.packet += packet_bytes(topic, payload) as u64;
    }
}

// ---------------------------------------------------------------------------------------
// Phases
// ---------------------------------------------------------------------------------------

struct Live {
    calls: usize,
    events: u64,
    secs: f64,
    write_secs: f64,
    events_per_s: f64,
    duplicates: u64,
    kinds: BTreeMap<String, u64>,
    /// Per class of message (events, line state, queue, ...).
    bytes: BTreeMap<Class, Bytes>,
    /// Per event type.
    kind_bytes: BTreeMap<String, Bytes>,
    cpu: Cpu,
    /// Store commits (each with a flush) and their total time.
    commits: Commits,
    last_line_state: Option<String>,
    last_queue_answered: Option<u64>,
    health_line_state: String,
    problems: Vec<String>,
}

/// Phase 1: `calls` calls back to back while the broker stays up.
async fn live_phase(
    modem: &Modem,
    sub: &mut Subscriber,
    daemon: &Daemon,
    broker: &Broker,
    calls: usize,
) -> Result<Live> {
    let after = daemon.http.last_seq().await?;
    let events = 3 * calls as u64;
    let (dpid, bpid) = (daemon.pid()?, broker.pid()?);
    let commits0 = daemon.http.commits().await?;
    let cpu0 = Cpu::read(dpid, bpid)?;
    let started = Instant::now();
    let writer = modem.play(calls_bytes(0, calls));

    let mut tally = Tally::new(after, events, 0, calls);
    let mut bytes: BTreeMap<Class, Bytes> = BTreeMap::new();
    let mut kind_bytes: BTreeMap<String, Bytes> = BTreeMap::new();
    let mut last_line_state = None;
    let mut last_queue_answered = None;
    let mut account = |e: &SubEvent| {
        if let SubEvent::Msg(m) = e {
            bytes
                .entry(m.class)
                .or_default()
                .add(m.topic_len, m.payload_len);
            if let Some(ev) = &m.ev {
                kind_bytes
                    .entry(ev.kind.clone())
                    .or_default()
                    .add(m.topic_len, m.payload_len);
            }
            if let Some(s) = &m.state {
                last_line_state = Some(s.clone());
            }
            if m.answered.is_some() {
                last_queue_answered = m.answered;
            }
        }
    };
    let timeout = Duration::from_secs(60) + Duration::from_millis(50) * calls as u32;
    collect(sub, &mut tally, timeout, &mut account)
        .await
        .with_context(|| daemon.log_tail())?;
    let write_done = writer.await.context("writer task")??;
    // The retained state and acknowledgements that trail the last event belong to the phase.
    let settle_until = tokio::time::Instant::now() + SETTLE;
    while let Ok(Some(e)) = tokio::time::timeout_at(settle_until, sub.rx.recv()).await {
        if let SubEvent::Msg(m) = &e {
            tally.add(m);
        }
        account(&e);
    }
    let cpu = Cpu::read(dpid, bpid)?.since(cpu0);
    let end = tally
        .final_at
        .or(tally.last_at)
        .ok_or_else(|| anyhow!("no event arrived"))?;
    let secs = end.saturating_duration_since(started).as_secs_f64();
    let health = daemon.http.health().await?;
    let commits = daemon.http.commits().await?.since(commits0);
    Ok(Live {
        commits,
        calls,
        events,
        secs,
        write_secs: write_done.saturating_duration_since(started).as_secs_f64(),
        events_per_s: events as f64 / secs,
        duplicates: tally.duplicates,
        kinds: tally.kinds.clone(),
        bytes,
        kind_bytes,
        cpu,
        last_line_state,
        last_queue_answered,
        health_line_state: health["lines"][0]["state"]
            .as_str()
            .unwrap_or("?")
            .to_string(),
        problems: tally.problems(),
    })
}

struct Drain {
    calls: usize,
    events: u64,
    /// Writing the calls until /healthz showed them all committed, broker down.
    commit_secs: f64,
    commits: Commits,
    /// SIGKILL -> restart.
    down_secs: f64,
    session_present: Option<bool>,
    /// From the broker accepting connections:
    subscriber_connected_s: Option<f64>,
    daemon_connected_s: Option<f64>,
    first_event_s: f64,
    last_event_s: f64,
    /// Events / (last event - broker accepting).
    events_per_s: f64,
    /// Events / (last event - first event).
    events_per_s_flowing: f64,
    duplicates: u64,
    earlier: u64,
    cpu: Cpu,
    problems: Vec<String>,
}

/// Phase 2: the broker is killed, `calls` calls are committed, the broker comes back.
async fn drain_phase(
    modem: &Modem,
    daemon: &mut Daemon,
    broker: &mut Broker,
    broker_db: &Path,
    first_call: usize,
    calls: usize,
    outage: Duration,
) -> Result<Drain> {
    let events = 3 * calls as u64;
    // Start clean: everything so far acknowledged, so the backlog is exactly these calls.
    wait_all_acked(&daemon.http).await?;

    // A persistent session, saved by an autosave before the broker dies.
    let mut sub = Subscriber::start(
        broker.port,
        &format!("mqttbench-drain-{}", std::process::id()),
        false,
    )
    .await?;
    let subscribed = SystemTime::now();
    sub.settle(Duration::from_millis(300)).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // mtime has a coarse granularity on some filesystems: ask for a save after a full second.
        if modified(broker_db).is_some_and(|t| t > subscribed + Duration::from_secs(1)) {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "mosquitto did not save its persistence file {} within 20 s of the subscription",
                broker_db.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    eprintln!("mqttbench: drain: killing mosquitto (SIGKILL)");
    broker.kill();
    let killed = Instant::now();
    // Wait until the daemon has noticed, so its backoff is running when the calls come.
    let deadline = Instant::now() + STARTUP;
    while daemon.http.health().await?["mqtt"] == "connected" {
        if Instant::now() > deadline {
            bail!("the daemon still reports MQTT connected {STARTUP:?} after the broker died");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after = daemon.http.last_seq().await?;
    let commits0 = daemon.http.commits().await?;
    eprintln!("mqttbench: drain: writing {calls} calls with the broker down");
    let started = Instant::now();
    let writer = modem.play(calls_bytes(first_call, calls));
    let deadline = started + Duration::from_secs(60) + Duration::from_millis(50) * calls as u32;
    loop {
        let seq = daemon.http.last_seq().await?;
        if seq >= after + events {
            break;
        }
        daemon.assert_running("while the broker was down")?;
        if Instant::now() > deadline {
            bail!(
                "only {} of {events} events committed (last_seq {seq}) after {:?}\n{}",
                seq.saturating_sub(after),
                deadline - started,
                daemon.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let commit_secs = started.elapsed().as_secs_f64();
    let commits = daemon.http.commits().await?.since(commits0);
    writer.await.context("writer task")??;
    // Anything the subscriber got meanwhile (nothing: no broker) is dropped.
    while sub.rx.try_recv().is_ok() {}
    tokio::time::sleep(outage.saturating_sub(killed.elapsed())).await;
    let down_secs = killed.elapsed().as_secs_f64();

    eprintln!(
        "mqttbench: drain: starting mosquitto again on port {}",
        broker.port
    );
    let dpid = daemon.pid()?;
    let cpu_d0 = cpu_secs(dpid)?;
    let cpu_self0 = cpu_secs("self")?;
    let accepting = broker.start()?;
    let bpid = broker.pid()?;
    // When did the daemon's uplink connect again? /healthz, polled.
    let poller = {
        let http = daemon.http.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + STARTUP;
            while Instant::now() < deadline {
                if let Ok(h) = http.health().await {
                    if h["mqtt"] == "connected" {
                        return Some(Instant::now());
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            None
        })
    };
    let mut tally = Tally::new(after, events, first_call, calls);
    let mut session_present = None;
    let mut sub_connected = None;
    let timeout = Duration::from_secs(60) + Duration::from_millis(10) * events as u32;
    collect(&mut sub, &mut tally, timeout, |e| {
        if let SubEvent::Connected {
            at,
            session_present: p,
        } = e
        {
            if sub_connected.is_none() {
                sub_connected = Some(*at);
                session_present = Some(*p);
            }
        }
    })
    .await
    .with_context(|| daemon.log_tail())?;
    tokio::time::sleep(SETTLE).await;
    let cpu = Cpu {
        daemon: cpu_secs(dpid)? - cpu_d0,
        broker: cpu_secs(bpid)?,
        bench: cpu_secs("self")? - cpu_self0,
    };
    let daemon_connected = poller.await.ok().flatten();
    let since = |t: Instant| t.saturating_duration_since(accepting).as_secs_f64();
    let first = tally
        .first_at
        .ok_or_else(|| anyhow!("no event arrived after the broker came back"))?;
    let last = tally.final_at.or(tally.last_at).unwrap_or(first);
    let mut problems = tally.problems();
    if session_present == Some(false) {
        problems.push(
            "the broker had lost the drain subscriber's session, so events published before it \
             subscribed again were not kept for it"
                .into(),
        );
    }
    let flowing = last.saturating_duration_since(first).as_secs_f64();
    Ok(Drain {
        calls,
        events,
        commit_secs,
        commits,
        down_secs,
        session_present,
        subscriber_connected_s: sub_connected.map(since),
        daemon_connected_s: daemon_connected.map(since),
        first_event_s: since(first),
        last_event_s: since(last),
        events_per_s: events as f64 / since(last),
        events_per_s_flowing: if flowing > 0.0 {
            (events - 1) as f64 / flowing
        } else {
            f64::NAN
        },
        duplicates: tally.duplicates,
        earlier: tally.earlier,
        cpu,
        problems,
    })
}

// ---------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------

struct Results {
    machine: Machine,
    /// `mosquitto -h`'s first line.
    mosquitto: String,
    opts: Options,
    live: Live,
    drain: Drain,
}

async fn run(opts: Options) -> Result<Results> {
    let machine = machine();
    let mosquitto = mosquitto_version();
    let dir = bench::work_dir("mqttbench", opts.dir.as_deref(), opts.keep)?;
    run_in(opts, machine, mosquitto, dir.path()).await
}

async fn run_in(opts: Options, machine: Machine, mosquitto: String, dir: &Path) -> Result<Results> {
    eprintln!(
        "mqttbench: working in {}; {} events live ({} calls), {} events of backlog ({} calls)",
        dir.display(),
        3 * opts.calls(),
        opts.calls(),
        3 * opts.backlog_calls(),
        opts.backlog_calls()
    );
    let (mut broker, broker_db) = new_broker(dir)?;
    broker.start()?;
    let mut sub = Subscriber::start(
        broker.port,
        &format!("mqttbench-live-{}", std::process::id()),
        true,
    )
    .await
    .with_context(|| format!("mosquitto log:\n{}", tail(&broker.log, 30)))?;
    let pty = PtyPair::new();
    let modem = Modem::open(pty.modem_side())?;
    let mut daemon = new_daemon(dir, pty.daemon_side(), broker.port)?;
    daemon.spawn("daemon.stdout.log", "daemon.stderr.log")?;
    daemon.wait_ready().await?;
    if modem.commands() == 0 {
        bail!("the daemon reports the line up but sent no init command to the modem");
    }
    // The retained state and birth message of the connection are not the phase's.
    sub.settle(Duration::from_millis(500)).await;

    eprintln!(
        "mqttbench: live: {} calls back to back, broker up",
        opts.calls()
    );
    let live = live_phase(&modem, &mut sub, &daemon, &broker, opts.calls()).await?;
    // Only the drain subscriber from here on.
    drop(sub);

    eprintln!(
        "mqttbench: drain: {} calls queued while the broker is down",
        opts.backlog_calls()
    );
    let drain = drain_phase(
        &modem,
        &mut daemon,
        &mut broker,
        &broker_db,
        opts.calls(),
        opts.backlog_calls(),
        opts.outage,
    )
    .await?;
    daemon.assert_running("at the end of the run")?;
    daemon.stop();
    broker.kill();
    drop(pty);
    Ok(Results {
        machine,
        mosquitto,
        opts,
        live,
        drain,
    })
}

// ---------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------

fn opt_s(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".into(), |x| format!("{x:.3}"))
}

fn report(r: &Results) -> String {
    let mut table = Table::new(46, 12);
    let mut row = |metric: &str, value: String, note: &str| table.row(metric, value, note);
    let l = &r.live;
    let d = &r.drain;
    let f = |x: f64, p: usize| format!("{x:.p$}");
    let calls = l.calls as f64;
    let ok = |p: &[String]| {
        if p.is_empty() {
            "yes".to_string()
        } else {
            "NO".to_string()
        }
    };

    row("metric", "value".into(), "note");
    row(&"-".repeat(46), "-".repeat(12), "----");
    row(
        &format!("1. live delivery ({} events, {} calls)", l.events, l.calls),
        String::new(),
        "",
    );
    row(
        "  events/s delivered at QoS 1",
        f(l.events_per_s, 1),
        "first byte written -> last call.ended",
    );
    row("  calls/s", f(calls / l.secs, 1), "");
    row("  s to the last call.ended", f(l.secs, 2), "");
    row("  s until the pty took every byte", f(l.write_secs, 2), "");
    row(
        "  store commits (flushes) per call",
        f(l.commits.count / calls, 3),
        &format!(
            "{:.0} commits, {:.2} ms each",
            l.commits.count,
            l.commits.mean_ms()
        ),
    );
    row(
        "  all events once, in seq order",
        ok(&l.problems),
        "first arrivals",
    );
    row(
        "  duplicates (same event_id)",
        l.duplicates.to_string(),
        "allowed",
    );
    row(
        "  last retained line state",
        l.last_line_state.clone().unwrap_or_else(|| "none".into()),
        &format!("/healthz says {}", l.health_line_state),
    );
    row(
        "  last retained queue `answered`",
        l.last_queue_answered
            .map_or_else(|| "none".into(), |n| n.to_string()),
        &format!("{} calls answered in the phase", l.calls),
    );
    row(
        &format!(
            "2. drain of a backlog ({} events, {} calls)",
            d.events, d.calls
        ),
        String::new(),
        "",
    );
    row(
        "  s to commit the backlog, broker down",
        f(d.commit_secs, 2),
        &format!("{:.1} events/s committed", d.events as f64 / d.commit_secs),
    );
    row(
        "  store commits (flushes) per call",
        f(d.commits.count / d.calls as f64, 3),
        &format!(
            "{:.0} commits, {:.2} ms each",
            d.commits.count,
            d.commits.mean_ms()
        ),
    );
    row(
        "  broker down s",
        f(d.down_secs, 2),
        &format!("SIGKILL -> restart (--outage {:?})", r.opts.outage),
    );
    row(
        "  reconnect delay s",
        f(d.first_event_s, 3),
        "broker accepting -> first event received",
    );
    row(
        "  daemon MQTT connected after s",
        opt_s(d.daemon_connected_s),
        "/healthz polled every 5 ms",
    );
    row(
        "  subscriber connected after s",
        opt_s(d.subscriber_connected_s),
        &format!(
            "persistent session, kept by the broker: {}",
            d.session_present
                .map_or_else(|| "?".into(), |p| p.to_string())
        ),
    );
    row(
        "  s to the last event",
        f(d.last_event_s, 3),
        "broker accepting -> last event received",
    );
    row(
        "  events/s, whole drain",
        f(d.events_per_s, 1),
        "events / (broker accepting -> last event)",
    );
    row(
        "  events/s while flowing",
        f(d.events_per_s_flowing, 1),
        "first -> last event",
    );
    row(
        "  all events once, in seq order",
        ok(&d.problems),
        "first arrivals",
    );
    row(
        "  duplicates (same event_id)",
        d.duplicates.to_string(),
        "allowed",
    );
    row(
        "  earlier events published again",
        d.earlier.to_string(),
        "seq at or below the backlog's start",
    );
    row(
        "3. bytes per call on the wire (live phase)",
        String::new(),
        "one hop (daemon -> broker); QoS 1 PUBLISH + PUBACK",
    );
    for (class, b) in &l.bytes {
        row(
            &format!("  {}: messages per call", class.label()),
            f(b.messages as f64 / calls, 3),
            "",
        );
        row(
            &format!("  {}: payload B per call", class.label()),
            f(b.payload as f64 / calls, 1),
            "",
        );
        row(
            &format!("  {}: topic B per call", class.label()),
            f(b.topic as f64 / calls, 1),
            "",
        );
        row(
            &format!("  {}: total B per call", class.label()),
            f(b.packet as f64 / calls, 1),
            "payload + topic + headers + PUBACK",
        );
    }
    let all: Bytes = l.bytes.values().fold(Bytes::default(), |mut a, b| {
        a.messages += b.messages;
        a.topic += b.topic;
        a.payload += b.payload;
        a.packet += b.packet;
        a
    });
    row(
        "  everything: total B per call",
        f(all.packet as f64 / calls, 1),
        "events and retained state",
    );
    let ev_count: u64 = l.kind_bytes.values().map(|b| b.messages).sum();
    let ev_payload: u64 = l.kind_bytes.values().map(|b| b.payload).sum();
    for (kind, b) in &l.kind_bytes {
        row(
            &format!("  {kind}: share of events / of bytes"),
            format!(
                "{:.1}% / {:.1}%",
                100.0 * b.messages as f64 / ev_count.max(1) as f64,
                100.0 * b.payload as f64 / ev_payload.max(1) as f64
            ),
            &format!(
                "{:.0} B payload each",
                b.payload as f64 / b.messages.max(1) as f64
            ),
        );
    }
    let per_1000 = l.cpu.per_1000(l.events as usize);
    row("4. CPU s per 1,000 events (live phase)", String::new(), "");
    row("  daemon", f(per_1000.daemon, 4), "");
    row("  mosquitto", f(per_1000.broker, 4), "");
    row(
        "  this bench (modem, subscriber, JSON)",
        f(per_1000.bench, 4),
        "",
    );
    let drain_1000 = d.cpu.per_1000(d.events as usize);
    row("  daemon, during the drain", f(drain_1000.daemon, 4), "");
    row(
        "  mosquitto, during the drain",
        f(drain_1000.broker, 4),
        "since its restart",
    );
    row(
        "context: NCID p99 latency ms",
        f(NCID_P99_MS, 2),
        "reference only; not measured here (see lkbench)",
    );
    table.into_string()
}

fn json_line(r: &Results) -> Value {
    let l = &r.live;
    let d = &r.drain;
    let calls = l.calls as f64;
    let bytes: serde_json::Map<String, Value> = l
        .bytes
        .iter()
        .map(|(c, b)| {
            (
                c.key().to_string(),
                json!({
                    "messages": round(b.messages as f64 / calls, 3),
                    "payload": round(b.payload as f64 / calls, 1),
                    "topic": round(b.topic as f64 / calls, 1),
                    "total": round(b.packet as f64 / calls, 1),
                }),
            )
        })
        .collect();
    let ev_count: u64 = l.kind_bytes.values().map(|b| b.messages).sum();
    let ev_payload: u64 = l.kind_bytes.values().map(|b| b.payload).sum();
    let kinds: serde_json::Map<String, Value> = l
        .kind_bytes
        .iter()
        .map(|(k, b)| {
            (
                k.clone(),
                json!({
                    "count": b.messages,
                    "share_pct": round(100.0 * b.messages as f64 / ev_count.max(1) as f64, 2),
                    "byte_share_pct": round(100.0 * b.payload as f64 / ev_payload.max(1) as f64, 2),
                    "payload_mean": round(b.payload as f64 / b.messages.max(1) as f64, 1),
                }),
            )
        })
        .collect();
    let live_cpu = l.cpu.per_1000(l.events as usize);
    let drain_cpu = d.cpu.per_1000(d.events as usize);
    let opt = |x: Option<f64>| x.map(|x| round(x, 4));
    json_report(
        "mqttbench",
        &r.machine,
        json!({ "mosquitto": r.mosquitto }),
        json!({
            "params": {
                "events": l.events,
                "calls": l.calls,
                "backlog_events": d.events,
                "backlog_calls": d.calls,
                "outage_secs": r.opts.outage.as_secs_f64(),
                "quick": r.opts.quick,
            },
            "live": {
                "events": l.events,
                "secs": round(l.secs, 3),
                "write_secs": round(l.write_secs, 3),
                "events_per_s": round(l.events_per_s, 1),
                "calls_per_s": round(calls / l.secs, 1),
                "commits": l.commits.count,
                "commit_ms_mean": round(l.commits.mean_ms(), 3),
                "ok": l.problems.is_empty(),
                "problems": l.problems,
                "duplicates": l.duplicates,
                "types": l.kinds,
                "last_line_state": l.last_line_state,
                "last_queue_answered": l.last_queue_answered,
            },
            "drain": {
                "events": d.events,
                "commit_secs": round(d.commit_secs, 3),
                "broker_down_secs": round(d.down_secs, 3),
                "commits": d.commits.count,
                "commit_ms_mean": round(d.commits.mean_ms(), 3),
                "reconnect_delay_s": round(d.first_event_s, 4),
                "daemon_connected_s": opt(d.daemon_connected_s),
                "subscriber_connected_s": opt(d.subscriber_connected_s),
                "session_present": d.session_present,
                "last_event_s": round(d.last_event_s, 4),
                "events_per_s": round(d.events_per_s, 1),
                "events_per_s_flowing": round(d.events_per_s_flowing, 1),
                "ok": d.problems.is_empty(),
                "problems": d.problems,
                "duplicates": d.duplicates,
                "earlier_republished": d.earlier,
            },
            "bytes_per_call": bytes,
            "event_types": kinds,
            "cpu_s_per_1000_events": {
                "daemon": round(live_cpu.daemon, 4),
                "mosquitto": round(live_cpu.broker, 4),
                "bench": round(live_cpu.bench, 4),
                "drain_daemon": round(drain_cpu.daemon, 4),
                "drain_mosquitto": round(drain_cpu.broker, 4),
            },
            "ncid": { "p99_ms": NCID_P99_MS },
        }),
    )
}

fn main() -> ExitCode {
    let run = |opts| bench::block_on(run(opts));
    let hint = "--keep keeps the work dir with the daemon's and broker's logs";
    bench::main("mqttbench", Options::parse, run, Some(hint), |r| {
        let head = [
            format!("{}, {}", r.machine.headline("mqttbench"), r.mosquitto),
            format!(
                "params: {} events live ({} calls), backlog {} events ({} calls){}; broker with \
                 persistence (autosave 1 s)",
                r.live.events,
                r.live.calls,
                r.drain.events,
                r.drain.calls,
                if r.opts.quick { " (--quick)" } else { "" }
            ),
        ];
        let mut table = report(&r);
        for p in &r.live.problems {
            table.push_str(&format!("PROBLEM (live): {p}\n"));
        }
        for p in &r.drain.problems {
            table.push_str(&format!("PROBLEM (drain): {p}\n"));
        }
        bench::print_report("mqttbench", &head, &table, &json_line(&r));
        if r.live.problems.is_empty() && r.drain.problems.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    })
}
