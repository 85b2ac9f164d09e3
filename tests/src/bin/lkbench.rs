//! `lkbench`: a benchmark of the built linekeeper daemon, driven from the outside like the e2e tests.
//!
//! ```text
//! cargo build --release -p linekeeper
//! cargo run --release -p linekeeper-e2e --bin lkbench -- [--calls N] [--throughput-calls M]
//!                                                        [--stored N] [--idle-secs N] [--quick]
//! ```
//!
//! It starts a real mosquitto on a free loopback port, a socat pty pair, and the release daemon
//! (`target/release/linekeeper`, or `$LINEKEEPER_BIN`) with a one-line modem config. The bench
//! plays the caller-ID modem itself on the far side of the pty (it answers every command line
//! ending in `\r` with `OK`) and listens to `linekeeper/bench/events/call` at QoS 1.
//!
//! One call on the wire is
//!
//! ```text
//! RING / DATE = 1124 / TIME = 0930 / NMBR = 1380013xxxx / NAME = BENCH / OFFHOOK / ONHOOK
//! ```
//!
//! which the daemon turns into `call.ringing` (as soon as the block has NMBR and NAME),
//! `call.answered` (OFFHOOK) and `call.ended` (ONHOOK).
//!
//! Phases, in this order:
//!
//! 1. **latency**: `--calls` paced calls (each one finished before the next); for each, the time
//!    from writing and flushing the NAME line to the arrival of that call's `call.ringing` at the
//!    MQTT subscriber;
//! 2. **throughput**: `--throughput-calls` calls written back to back as fast as the pty takes
//!    them; the time until the last `call.ended` arrives; CPU of the daemon and of mosquitto
//!    during it, per 1,000 calls;
//! 3. **idle**: `--idle-secs` with nothing happening; the daemon's CPU and context switches;
//! 4. **memory**: the daemon is stopped, its store seeded (with the library, directly) to
//!    `--stored` calls, the daemon started again, 1,000 calls played and `GET /api/calls?limit=1000`
//!    asked a few times; then VmHWM and VmRSS.
//!
//! The figures go out as a table and, last, as one line of JSON (`LKBENCH_JSON {...}`) for
//! scripts. Targets and the NCID reference are printed beside them; nothing is asserted, but
//! the bench fails (exit 1) when the daemon loses or garbles an event, so `--quick` in CI keeps
//! both the bench and the daemon's basic path from rotting.
//!
//! Everything runs on the same machine, so the bench, socat and mosquitto compete with the
//! daemon for the CPUs: the figures are an upper bound of what the daemon alone costs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, Utc};
use linekeeper::model::{mask_number, Call, Outcome};
use linekeeper::store::Store;
use linekeeper_e2e::bench::{
    self, call_number, cpu_secs, dir_bytes, incoming_call, json_report, machine, mb, modem_config,
    round, seed_calls, status_mb, thread_delta, threads, Broker, Daemon, Heard, Machine, Modem, Ms,
    Subscription, Table,
};
use linekeeper_e2e::{tail, PtyPair};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// Topics are `linekeeper/bench/...` (the site id of the generated config).
const TOPIC_CALL: &str = "linekeeper/bench/events/call";
/// Deadline for one event of a paced call.
const STEP: Duration = Duration::from_secs(10);
/// Calls played on the seeded store before RSS is read (fixed by the benchmark's definition).
const RSS_CALLS: usize = 1000;
/// How many times `GET /api/calls?limit=1000` is asked on the seeded store.
const API_ROUNDS: usize = 5;

// Targets and the NCID reference, printed beside the figures (never asserted).
const TARGET_P99_MS: f64 = 5.0;
const TARGET_CALLS_PER_S: f64 = 200.0;
const TARGET_RSS_MB: f64 = 30.0;
const TARGET_IDLE_CPU_PCT: f64 = 0.5;
const NCID_P99_MS: f64 = 0.67;
const NCID_CPU_S_PER_1000: f64 = 0.40;
const NCID_RSS_MB: f64 = 2.2;

// ---------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Options {
    /// Paced calls of the latency phase.
    calls: usize,
    /// Back-to-back calls of the throughput phase.
    throughput_calls: usize,
    /// Calls in the store for the memory phase.
    stored: usize,
    /// Length of the idle phase.
    idle_secs: u64,
    quick: bool,
    /// Where the temp dir (and so the daemon's store) goes; the system temp dir if unset.
    dir: Option<PathBuf>,
    /// Keep the work dir (config, store, logs) instead of deleting it.
    keep: bool,
}

const USAGE: &str = "\
usage: lkbench [--calls N] [--throughput-calls M] [--stored N] [--idle-secs N] [--quick]
               [--dir DIR] [--keep]

  --calls N             paced calls for the latency figures (default 1000)
  --throughput-calls M  calls written back to back for calls/s and CPU (default 2000)
  --stored N            calls in the store for the memory figures (default 100000)
  --idle-secs N         length of the idle measurement (default 60)
  --quick               N=100, M=200, stored=5000, idle 5 s (for CI); other flags still apply
  --dir DIR             put the work dir (and the daemon's store) under DIR, e.g. on the
                        disk the product will use: flush costs depend on it (default: $TMPDIR)
  --keep                keep the work dir (config, store, daemon and broker logs) afterwards

The daemon binary is $LINEKEEPER_BIN, else <target>/release/linekeeper
(build it with `cargo build --release -p linekeeper`).";

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let quick = bench::quick(args);
        let mut o = if quick {
            Options {
                calls: 100,
                throughput_calls: 200,
                stored: 5000,
                idle_secs: 5,
                quick,
                dir: None,
                keep: false,
            }
        } else {
            Options {
                calls: 1000,
                throughput_calls: 2000,
                stored: 100_000,
                idle_secs: 60,
                quick,
                dir: None,
                keep: false,
            }
        };
        bench::parse_flags(args, USAGE, |flag, args| {
            match flag {
                "--keep" => o.keep = true,
                "--calls" => o.calls = args.number(flag)? as usize,
                "--throughput-calls" | "--tput-calls" | "-m" => {
                    o.throughput_calls = args.number("--throughput-calls")? as usize
                }
                "--stored" => o.stored = args.number(flag)? as usize,
                "--idle-secs" => o.idle_secs = args.number(flag)?,
                "--dir" => o.dir = Some(PathBuf::from(args.value(flag)?)),
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        if o.calls == 0 || o.throughput_calls == 0 {
            bail!("--calls and --throughput-calls must be at least 1");
        }
        Ok(o)
    }
}

// ---------------------------------------------------------------------------------------
// The daemon and the modem's calls
// ---------------------------------------------------------------------------------------

/// The daemon with the config of the benchmark's definition: one modem line that reports OFFHOOK and ONHOOK.
fn new_daemon(dir: &Path, device: &Path, mqtt_port: u16) -> Result<Daemon> {
    Daemon::new("lkbench", dir, |store, web_port| {
        modem_config("lkbench", store, device, mqtt_port, "", web_port)
    })
}

/// Starts the daemon's `run`th run, logging to `daemon-RUN.stdout.log` and `daemon-RUN.stderr.log`.
fn start_daemon(daemon: &mut Daemon, run: u32) -> Result<()> {
    daemon.spawn(
        &format!("daemon-{run}.stdout.log"),
        &format!("daemon-{run}.stderr.log"),
    )
}

/// The caller-ID block of call `i` up to (not including) the NAME line.
fn call_head(i: usize) -> String {
    format!(
        "RING\r\nDATE = 1124\r\nTIME = 0930\r\nNMBR = {}\r\n",
        call_number(i)
    )
}

const NAME_LINE: &str = "NAME = BENCH\r\n";
const HANGUP: &str = "OFFHOOK\r\nONHOOK\r\n";

// ---------------------------------------------------------------------------------------
// The MQTT subscriber
// ---------------------------------------------------------------------------------------

/// A call event as the subscriber saw it, stamped on arrival.
#[derive(Debug)]
struct CallEvent {
    at: Instant,
    kind: String,
    /// As published (masked).
    number: String,
    seq: u64,
}

/// Subscribes to the call events at QoS 1 and forwards each, stamped with its arrival time.
struct Subscriber {
    rx: mpsc::UnboundedReceiver<CallEvent>,
    mqtt: Subscription,
    /// Messages that were not call events with a type, a number and a seq.
    garbled: Arc<AtomicU64>,
    last_seq: u64,
    out_of_order: u64,
}

impl Subscriber {
    async fn start(port: u16) -> Result<Subscriber> {
        let (tx, rx) = mpsc::unbounded_channel();
        let garbled = Arc::new(AtomicU64::new(0));
        let bad = garbled.clone();
        let client_id = format!("lkbench-{}", std::process::id());
        let mqtt = Subscription::start(port, &client_id, TOPIC_CALL, true, move |heard| {
            let Heard::Message { at, publish } = heard else {
                return;
            };
            let v: Value = serde_json::from_slice(&publish.payload).unwrap_or(Value::Null);
            let (Some(kind), Some(number), Some(seq)) = (
                v["type"].as_str(),
                v["call"]["number"].as_str(),
                v["seq"].as_u64(),
            ) else {
                bad.fetch_add(1, Ordering::Relaxed);
                return;
            };
            let _ = tx.send(CallEvent {
                at,
                kind: kind.to_string(),
                number: number.to_string(),
                seq,
            });
        })
        .await?;
        Ok(Subscriber {
            rx,
            mqtt,
            garbled,
            last_seq: 0,
            out_of_order: 0,
        })
    }

    /// The next call event, or an error after `timeout`.
    async fn next(&mut self, timeout: Duration, waiting_for: &str) -> Result<CallEvent> {
        let ev = tokio::time::timeout(timeout, self.rx.recv())
            .await
            .map_err(|_| {
                anyhow!(
                    "no call event within {timeout:?} while waiting for {waiting_for} \
                     (subscriber connection errors: {})",
                    self.mqtt.errors()
                )
            })?
            .ok_or_else(|| anyhow!("the MQTT subscriber stopped"))?;
        // Events must come in seq order (a repeat, after a reconnect, carries the same seq).
        if ev.seq < self.last_seq {
            self.out_of_order += 1;
        }
        self.last_seq = self.last_seq.max(ev.seq);
        Ok(ev)
    }

    /// Waits for the event `kind` about `number` (as published), skipping others.
    async fn wait_for(&mut self, kind: &str, number: &str) -> Result<CallEvent> {
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let what = format!("{kind} for {number}");
            let ev = self.next(left, &what).await?;
            if ev.kind == kind && ev.number == number {
                return Ok(ev);
            }
        }
    }

    /// Drops whatever has arrived and is not consumed yet (between phases).
    fn drain(&mut self) -> usize {
        let mut n = 0;
        while self.rx.try_recv().is_ok() {
            n += 1;
        }
        n
    }

    fn check_integrity(&self) -> Result<()> {
        let garbled = self.garbled.load(Ordering::Relaxed);
        if garbled > 0 || self.out_of_order > 0 {
            bail!(
                "the daemon published {garbled} call event(s) without type/number/seq and \
                 {} out of seq order",
                self.out_of_order
            );
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Phases
// ---------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Latency {
    /// NAME line written -> `call.ringing` received, one per call.
    ms: Ms,
    secs: f64,
    commits_per_call: f64,
    commit_ms: f64,
}

/// Phase 1: paced calls; NAME written and flushed -> `call.ringing` at the subscriber.
async fn latency_phase(
    modem: &Modem,
    sub: &mut Subscriber,
    daemon: &Daemon,
    n: usize,
) -> Result<Latency> {
    let commits0 = daemon.http.commits().await?;
    let started = Instant::now();
    let mut ms = Vec::with_capacity(n);
    for i in 0..n {
        let published = mask_number(&call_number(i));
        modem.write(call_head(i).as_bytes()).await?;
        // A real modem takes ~100 ms for the block at 1200 baud; a short gap keeps the
        // head and the NAME line in separate reads, so the figure is about the NAME line only.
        tokio::time::sleep(Duration::from_millis(2)).await;
        let sent = modem.write(NAME_LINE.as_bytes()).await?;
        let ringing = sub.wait_for("call.ringing", &published).await?;
        ms.push(ringing.at.saturating_duration_since(sent).as_secs_f64() * 1000.0);
        modem.write(HANGUP.as_bytes()).await?;
        sub.wait_for("call.ended", &published).await?;
    }
    let secs = started.elapsed().as_secs_f64();
    let commits = daemon.http.commits().await?.since(commits0);
    Ok(Latency {
        ms: Ms(ms),
        secs,
        commits_per_call: commits.count / n as f64,
        commit_ms: commits.mean_ms(),
    })
}

#[derive(Debug, Default)]
struct Burst {
    calls: usize,
    /// Until the last `call.ended` arrived.
    secs: f64,
    /// Until the pty had taken every byte.
    write_secs: f64,
    calls_per_s: f64,
    commits_per_call: f64,
    commit_ms: f64,
    daemon_cpu_s: f64,
    mosquitto_cpu_s: f64,
}

/// Writes `m` calls back to back (numbers from `first`) and waits for all their events.
/// Returns the figures; CPU is sampled from start to 0.5 s after the last `call.ended`, so the
/// acknowledgements and outbox pruning that follow are counted too.
async fn burst_phase(
    modem: &Modem,
    sub: &mut Subscriber,
    daemon: &Daemon,
    broker_pid: u32,
    first: usize,
    m: usize,
) -> Result<Burst> {
    let pid = daemon.pid()?;
    // Events up to here (a replay after a restart, say) are not this burst's.
    let after_seq = daemon.http.last_seq().await?;
    let commits0 = daemon.http.commits().await?;
    let (cpu_d0, cpu_b0) = (cpu_secs(pid)?, cpu_secs(broker_pid)?);
    let started = Instant::now();

    // One buffer per call; the pty (and behind it the daemon) sets the pace.
    let calls: Vec<Vec<u8>> = (first..first + m)
        .map(|i| format!("{}{NAME_LINE}{HANGUP}", call_head(i)).into_bytes())
        .collect();
    let writer = modem.play(calls);

    // Every call must show up as ringing, answered and ended, in seq order.
    let (mut ringing, mut answered, mut ended) = (0usize, 0usize, 0usize);
    let timeout = Duration::from_secs(60) + Duration::from_millis(50) * m as u32;
    let deadline = started + timeout;
    let mut last = None;
    while ended < m {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = sub
            .next(left, &format!("call.ended {} of {m}", ended + 1))
            .await
            .with_context(|| {
                format!(
                    "burst of {m} calls: {ringing} ringing, {answered} answered, {ended} ended \
                     so far\n{}",
                    daemon.log_tail()
                )
            })?;
        if ev.seq <= after_seq {
            continue;
        }
        match ev.kind.as_str() {
            "call.ringing" => ringing += 1,
            "call.answered" => answered += 1,
            "call.ended" => {
                ended += 1;
                last = Some(ev);
            }
            _ => {}
        }
    }
    let last = last.ok_or_else(|| anyhow!("no call.ended"))?;
    let secs = last.at.saturating_duration_since(started).as_secs_f64();
    let want = mask_number(&call_number(first + m - 1));
    if last.number != want {
        bail!(
            "the last call.ended is for {} instead of {want}",
            last.number
        );
    }
    if ringing != m || answered != m {
        bail!("{m} calls gave {ringing} call.ringing and {answered} call.answered");
    }
    let write_done = writer.await.context("writer task")??;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (cpu_d1, cpu_b1) = (cpu_secs(pid)?, cpu_secs(broker_pid)?);
    let commits = daemon.http.commits().await?.since(commits0);
    Ok(Burst {
        calls: m,
        secs,
        write_secs: write_done.saturating_duration_since(started).as_secs_f64(),
        calls_per_s: m as f64 / secs,
        commits_per_call: commits.count / m as f64,
        commit_ms: commits.mean_ms(),
        daemon_cpu_s: cpu_d1 - cpu_d0,
        mosquitto_cpu_s: cpu_b1 - cpu_b0,
    })
}

#[derive(Debug, Default)]
struct Idle {
    secs: f64,
    cpu_s: f64,
    cpu_pct: f64,
    ctxt_switches: u64,
    /// Context switches per thread name, most first.
    ctxt_by_thread: Vec<(String, u64)>,
    threads: usize,
    threads_exited: usize,
}

/// Phase 3: nothing happens for `secs`; what does the daemon do meanwhile?
async fn idle_phase(daemon: &Daemon, secs: u64) -> Result<Idle> {
    let pid = daemon.pid()?;
    let (cpu0, th0) = (cpu_secs(pid)?, threads(pid));
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (cpu1, th1) = (cpu_secs(pid)?, threads(pid));
    let elapsed = started.elapsed().as_secs_f64();
    let delta = thread_delta(&th0, &th1, |name| name.to_string());
    Ok(Idle {
        secs: elapsed,
        cpu_s: cpu1 - cpu0,
        cpu_pct: 100.0 * (cpu1 - cpu0) / elapsed,
        ctxt_switches: delta.switches(),
        ctxt_by_thread: delta
            .groups
            .iter()
            .filter(|g| g.switches > 0)
            .map(|g| (g.name.clone(), g.switches))
            .collect(),
        threads: th1.len(),
        threads_exited: delta.exited,
    })
}

#[derive(Debug, Default)]
struct Memory {
    stored: usize,
    seeded: usize,
    seed_secs: f64,
    store_mb: f64,
    startup_secs: f64,
    rss_after_start_mb: f64,
    rss_after_calls_mb: f64,
    calls_per_s: f64,
    api_ms: Ms,
    api_items: usize,
    api_kb: f64,
    hwm_mb: f64,
    rss_mb: f64,
}

/// Adds calls to the (closed) store until it holds `total`, in commits of `bench::SEED_BATCH` calls.
/// The calls lie in the past, one a minute, ending an hour ago, so today's share is what a busy
/// office has and the newest calls stay those the daemon makes afterwards.
fn seed_store(path: &Path, total: usize) -> Result<usize> {
    let store = Store::open(path).context("opening the store to seed it")?;
    let mut have = 0;
    store.for_each_call("", "~", |_| have += 1)?;
    let add = total.saturating_sub(have);
    let now = DateTime::<Utc>::from(SystemTime::now());
    let newest = now - chrono::Duration::hours(1);
    seed_calls(&store, add, |k| {
        let started = newest - chrono::Duration::minutes((add - k) as i64);
        // Mostly answered, some missed, a few unknown; one in twenty withheld.
        let (outcome, answered_at, wait_s, talk_s) = match k % 20 {
            0..=15 => (
                Outcome::Answered,
                Some(started + chrono::Duration::seconds(6)),
                Some(6.0),
                Some(90.0 + (k % 300) as f64),
            ),
            16..=18 => (Outcome::Missed, None, Some(30.0), None),
            _ => (Outcome::Unknown, None, Some(12.0), None),
        };
        let withheld = k % 20 == 7;
        let number = (!withheld).then(|| format!("139{:08}", k * 7919 % 100_000_000));
        Call {
            name: (k % 3 == 0).then(|| format!("CALLER {}", k % 1000)),
            answered_at,
            ended_at: Some(started + chrono::Duration::seconds(120)),
            rings: 1 + (k % 5) as u32,
            wait_s,
            talk_s,
            outcome: Some(outcome),
            ..incoming_call(started, "line1", number)
        }
    })?;
    Ok(add)
}

/// The filesystem holding `path`, from /proc/self/mountinfo: `TYPE on MOUNTPOINT (SOURCE)`.
/// Flush (fsync) costs depend on it: tmpfs makes them free, an SD card expensive.
fn filesystem_of(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    // Fields: id parent major:minor root MOUNTPOINT options [optional...] - TYPE SOURCE super
    info.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let mount = left.split(' ').nth(4)?;
            let mut r = right.split(' ');
            let (fstype, source) = (r.next()?, r.next().unwrap_or(""));
            path.starts_with(mount)
                .then(|| (mount.len(), format!("{fstype} on {mount} ({source})")))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, s)| s)
        .unwrap_or_else(|| "unknown".into())
}

// ---------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------

struct Results {
    machine: Machine,
    opts: Options,
    latency: Latency,
    burst: Burst,
    idle: Idle,
    memory: Memory,
    rss_before_seed_mb: f64,
    hwm_before_seed_mb: f64,
    stop_secs: f64,
    /// `TYPE on MOUNTPOINT (SOURCE)` of the store's directory.
    store_fs: String,
}

async fn run(opts: Options) -> Result<Results> {
    let machine = machine();
    let dir = bench::work_dir("lkbench", opts.dir.as_deref(), opts.keep)?;
    let store_fs = filesystem_of(dir.path());
    run_in(opts, machine, dir.path(), store_fs).await
}

async fn run_in(opts: Options, machine: Machine, dir: &Path, store_fs: String) -> Result<Results> {
    eprintln!(
        "lkbench: working in {}; {} paced calls, {} back to back, {} stored, {} s idle",
        dir.display(),
        opts.calls,
        opts.throughput_calls,
        opts.stored,
        opts.idle_secs
    );

    // Default broker settings, no persistence, loopback only.
    let mut broker = Broker::new("lkbench", dir, "persistence false\n")?;
    broker.start()?;
    let mut sub = Subscriber::start(broker.port)
        .await
        .with_context(|| format!("mosquitto log:\n{}", tail(&broker.log, 30)))?;
    let mut pty = PtyPair::new();
    let mut modem = Modem::open(pty.modem_side())?;
    let mut daemon = new_daemon(dir, pty.daemon_side(), broker.port)?;

    start_daemon(&mut daemon, 1)?;
    daemon.wait_ready().await?;
    if modem.commands() == 0 {
        bail!("the daemon reports the line up but sent no init command to the modem");
    }
    sub.drain();

    // 1. Latency.
    eprintln!("lkbench: latency: {} paced calls", opts.calls);
    let latency = latency_phase(&modem, &mut sub, &daemon, opts.calls)
        .await
        .with_context(|| daemon.log_tail())?;
    sub.drain();

    // 2. Throughput and CPU.
    eprintln!(
        "lkbench: throughput: {} calls back to back",
        opts.throughput_calls
    );
    let broker_pid = broker.pid()?;
    let burst = burst_phase(
        &modem,
        &mut sub,
        &daemon,
        broker_pid,
        opts.calls,
        opts.throughput_calls,
    )
    .await?;
    sub.drain();

    // 3. Idle: let the tail of the burst settle first.
    tokio::time::sleep(Duration::from_secs(1)).await;
    eprintln!("lkbench: idle: {} s", opts.idle_secs);
    let idle = idle_phase(&daemon, opts.idle_secs).await?;
    let pid = daemon.pid()?;
    let rss_before_seed_mb = status_mb(pid, "VmRSS")?;
    let hwm_before_seed_mb = status_mb(pid, "VmHWM")?;

    // 4. Memory on a big store.
    let stop_secs = daemon.stop().as_secs_f64();
    eprintln!(
        "lkbench: memory: seeding the store to {} calls",
        opts.stored
    );
    let store_path = daemon.store.clone();
    let total = opts.stored;
    let seed_started = Instant::now();
    let seeded = tokio::task::spawn_blocking(move || seed_store(&store_path, total))
        .await
        .context("seeding thread")??;
    let seed_secs = seed_started.elapsed().as_secs_f64();
    let token = daemon.cli_secret(&["token", "create", "bench", "--role", "admin"])?;
    // socat may have gone with the daemon's side of the pty: start the pair afresh.
    drop(modem);
    pty.restart();
    modem = Modem::open(pty.modem_side())?;
    sub.drain();
    // After a restart the uplink may legitimately publish again what the broker had not
    // acknowledged; those repeats have lower seqs than the last one seen.
    sub.last_seq = 0;

    let started = Instant::now();
    start_daemon(&mut daemon, 2)?;
    daemon.wait_ready().await?;
    let startup_secs = started.elapsed().as_secs_f64();
    let pid = daemon.pid()?;
    let rss_after_start_mb = status_mb(pid, "VmRSS")?;
    sub.drain();
    eprintln!("lkbench: memory: {RSS_CALLS} calls and {API_ROUNDS} x GET /api/calls?limit=1000");
    let played = burst_phase(
        &modem,
        &mut sub,
        &daemon,
        broker_pid,
        opts.calls + opts.throughput_calls,
        RSS_CALLS,
    )
    .await?;
    let rss_after_calls_mb = status_mb(pid, "VmRSS")?;
    let mut api_ms = Vec::new();
    let (mut api_items, mut api_bytes) = (0, 0);
    for _ in 0..API_ROUNDS {
        let t = Instant::now();
        let (code, body) = daemon
            .http
            .get_with_token("/api/calls?limit=1000", &token)
            .await?;
        api_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        if code != 200 {
            bail!("GET /api/calls?limit=1000 answered {code}: {body}");
        }
        api_bytes = body.len();
        api_items = serde_json::from_str::<Value>(&body)?
            .as_array()
            .map(Vec::len)
            .unwrap_or(0);
    }
    let memory = Memory {
        stored: opts.stored,
        seeded,
        seed_secs,
        store_mb: mb(dir_bytes(&daemon.store)),
        startup_secs,
        rss_after_start_mb,
        rss_after_calls_mb,
        calls_per_s: played.calls_per_s,
        api_ms: Ms(api_ms),
        api_items,
        api_kb: api_bytes as f64 / 1024.0,
        hwm_mb: status_mb(pid, "VmHWM")?,
        rss_mb: status_mb(pid, "VmRSS")?,
    };
    sub.check_integrity()?;
    daemon.stop();
    Ok(Results {
        machine,
        opts,
        latency,
        burst,
        idle,
        memory,
        rss_before_seed_mb,
        hwm_before_seed_mb,
        stop_secs,
        store_fs,
    })
}

// ---------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------

fn report(r: &Results) -> String {
    let mut table = Table::new(40, 14);
    // The note column holds the target and the NCID reference.
    let mut row = |metric: &str, value: String, target: &str, ncid: &str| {
        table.row(metric, value, format!("{target:<12} {ncid}"));
    };
    let l = &r.latency;
    let b = &r.burst;
    let i = &r.idle;
    let m = &r.memory;
    let samples = l.ms.0.len();
    let per_1000 = |cpu: f64| cpu * 1000.0 / b.calls as f64;
    let f = |x: f64, d: usize| format!("{x:.d$}");

    row("metric", "value".into(), "target", "NCID");
    row(&"-".repeat(40), "-".repeat(14), "------------", "----");
    row(
        &format!("latency NAME -> call.ringing (n={samples})"),
        String::new(),
        "",
        "",
    );
    row("  p50 ms", f(l.ms.p(50.0), 2), "", "");
    row("  p90 ms", f(l.ms.p(90.0), 2), "", "");
    row("  p99 ms", f(l.ms.p(99.0), 2), "< 5", &f(NCID_P99_MS, 2));
    row("  max ms", f(l.ms.max(), 2), "", "");
    row("  mean ms", f(l.ms.mean(), 2), "", "");
    row("  paced calls/s", f(samples as f64 / l.secs, 1), "", "");
    row("  store commits per call", f(l.commits_per_call, 2), "", "");
    row("  mean commit (flush) ms", f(l.commit_ms, 2), "", "");
    row(
        &format!("throughput (m={} back to back)", b.calls),
        String::new(),
        "",
        "",
    );
    row("  calls/s", f(b.calls_per_s, 1), ">= 200", "");
    row("  s to last call.ended", f(b.secs, 2), "", "");
    row("  s until the pty took all", f(b.write_secs, 2), "", "");
    row("  store commits per call", f(b.commits_per_call, 2), "", "");
    row("  mean commit (flush) ms", f(b.commit_ms, 2), "", "");
    row(
        "  daemon CPU s per 1,000 calls",
        f(per_1000(b.daemon_cpu_s), 3),
        "",
        &f(NCID_CPU_S_PER_1000, 2),
    );
    row(
        "  mosquitto CPU s per 1,000 calls",
        f(per_1000(b.mosquitto_cpu_s), 3),
        "",
        "",
    );
    row(&format!("idle ({:.0} s)", i.secs), String::new(), "", "");
    row("  daemon CPU s", f(i.cpu_s, 3), "", "");
    row("  daemon CPU % of one core", f(i.cpu_pct, 3), "< 0.5", "");
    row(
        &format!("  context switches ({} threads)", i.threads),
        i.ctxt_switches.to_string(),
        "",
        "",
    );
    row(
        "  context switches per minute",
        f(i.ctxt_switches as f64 * 60.0 / i.secs, 1),
        "",
        "",
    );
    for (name, n) in &i.ctxt_by_thread {
        row(&format!("    thread {name}"), n.to_string(), "", "");
    }
    row(
        &format!("memory ({} calls stored)", m.stored),
        String::new(),
        "",
        "",
    );
    row(
        "  VmRSS before seeding MB",
        f(r.rss_before_seed_mb, 1),
        "",
        "",
    );
    row(
        "  VmHWM before seeding MB",
        f(r.hwm_before_seed_mb, 1),
        "",
        "",
    );
    row("  seeding s (library)", f(m.seed_secs, 1), "", "");
    row("  store on disk MB", f(m.store_mb, 1), "", "");
    row(
        "  daemon startup s (to ready)",
        f(m.startup_secs, 2),
        "",
        "",
    );
    row(
        "  VmRSS after startup MB",
        f(m.rss_after_start_mb, 1),
        "",
        "",
    );
    row(
        &format!("  calls/s ({RSS_CALLS} calls)"),
        f(m.calls_per_s, 1),
        "",
        "",
    );
    row(
        &format!("  VmRSS after the {RSS_CALLS} calls MB"),
        f(m.rss_after_calls_mb, 1),
        "",
        "",
    );
    row(
        &format!("  GET /api/calls?limit=1000 ms (x{API_ROUNDS})"),
        format!("{:.1}..{:.1}", m.api_ms.min(), m.api_ms.max()),
        "",
        "",
    );
    row("  VmHWM MB", f(m.hwm_mb, 1), "< 30", &f(NCID_RSS_MB, 1));
    row("  VmRSS MB", f(m.rss_mb, 1), "< 30", &f(NCID_RSS_MB, 1));
    table.into_string()
}

fn json_line(r: &Results) -> Value {
    let b = &r.burst;
    let per_1000 = |cpu: f64| cpu * 1000.0 / b.calls as f64;
    let mut latency = r.latency.ms.json();
    latency["commits_per_call"] = json!(round(r.latency.commits_per_call, 3));
    latency["commit_ms"] = json!(round(r.latency.commit_ms, 3));
    json_report(
        "lkbench",
        &r.machine,
        json!({ "store_fs": r.store_fs }),
        json!({
            "params": {
                "calls": r.opts.calls,
                "throughput_calls": r.opts.throughput_calls,
                "stored": r.opts.stored,
                "idle_secs": r.opts.idle_secs,
                "quick": r.opts.quick,
            },
            "latency_ms": latency,
            "throughput": {
                "calls": b.calls,
                "secs": round(b.secs, 3),
                "write_secs": round(b.write_secs, 3),
                "calls_per_s": round(b.calls_per_s, 1),
                "commits_per_call": round(b.commits_per_call, 3),
                "commit_ms": round(b.commit_ms, 3),
            },
            "cpu_s_per_1000_calls": {
                "daemon": round(per_1000(b.daemon_cpu_s), 4),
                "mosquitto": round(per_1000(b.mosquitto_cpu_s), 4),
            },
            "idle": {
                "secs": round(r.idle.secs, 2),
                "cpu_s": round(r.idle.cpu_s, 3),
                "cpu_pct": round(r.idle.cpu_pct, 4),
                "ctxt_switches": r.idle.ctxt_switches,
                "threads": r.idle.threads,
                "threads_exited": r.idle.threads_exited,
                "ctxt_switches_by_thread": r.idle.ctxt_by_thread.iter()
                    .map(|(name, n)| (name.clone(), json!(n)))
                    .collect::<serde_json::Map<String, Value>>(),
            },
            "memory": {
                "stored": r.memory.stored,
                "seeded": r.memory.seeded,
                "seed_secs": round(r.memory.seed_secs, 2),
                "store_mb": round(r.memory.store_mb, 1),
                "startup_secs": round(r.memory.startup_secs, 3),
                "rss_before_seed_mb": round(r.rss_before_seed_mb, 2),
                "hwm_before_seed_mb": round(r.hwm_before_seed_mb, 2),
                "rss_after_start_mb": round(r.memory.rss_after_start_mb, 2),
                "rss_after_calls_mb": round(r.memory.rss_after_calls_mb, 2),
                "calls_per_s": round(r.memory.calls_per_s, 1),
                "api_calls_ms": r.memory.api_ms.0.iter().map(|x| round(*x, 2)).collect::<Vec<_>>(),
                "api_calls_items": r.memory.api_items,
                "api_calls_kb": round(r.memory.api_kb, 1),
                "vm_hwm_mb": round(r.memory.hwm_mb, 2),
                "vm_rss_mb": round(r.memory.rss_mb, 2),
            },
            "daemon_stop_secs": round(r.stop_secs, 3),
            "targets": {
                "p99_ms": TARGET_P99_MS,
                "calls_per_s": TARGET_CALLS_PER_S,
                "rss_mb": TARGET_RSS_MB,
                "idle_cpu_pct": TARGET_IDLE_CPU_PCT,
            },
            "ncid": {
                "p99_ms": NCID_P99_MS,
                "cpu_s_per_1000_calls": NCID_CPU_S_PER_1000,
                "rss_mb": NCID_RSS_MB,
            },
        }),
    )
}

fn main() -> ExitCode {
    let run = |opts| bench::block_on(run(opts));
    let hint = "--keep keeps the work dir with the daemon's and broker's logs";
    bench::main("lkbench", Options::parse, run, Some(hint), |r| {
        let head = [
            r.machine.headline("lkbench"),
            format!("store: {}", r.store_fs),
            format!(
                "params: {} paced calls, {} back to back, {} stored, {} s idle{}",
                r.opts.calls,
                r.opts.throughput_calls,
                r.opts.stored,
                r.opts.idle_secs,
                if r.opts.quick { " (--quick)" } else { "" }
            ),
        ];
        bench::print_report("lkbench", &head, &report(&r), &json_line(&r));
        ExitCode::SUCCESS
    })
}
