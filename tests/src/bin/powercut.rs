//! `powercut`: the power-cut test (issue 10). Nothing acknowledged may be lost when the power goes.
//!
//! ```text
//! cargo build --release -p linekeeper
//! cargo run --release -p linekeeper-e2e --bin powercut -- [--cuts N] [--seed S]
//! ```
//!
//! It starts a real mosquitto, a socat pty pair with the simulated modem on its far side, and mounts
//! [`powerfs`](linekeeper_e2e::powerfs) (a FUSE file system with a volatile write cache, served by this process) on
//! a temp dir. The release daemon (`target/release/linekeeper`, or `$LINEKEEPER_BIN`) runs with its config file and
//! its store on that mount and its logs outside. A persistent-session subscriber listens to
//! `linekeeper/hq/events/#`.
//!
//! Before the first cut: an API token (`linekeeper token create`), and the web login: `admin` with the first-start
//! password the daemon logged, changed as the page insists.
//!
//! Then, `--cuts` times: a burst of 1-20 calls with numbers used once (answered ones: RING, caller ID, OFFHOOK,
//! ONHOOK, some back to back; missed ones: RING, caller ID, RING and silence, which opens a callback task), and a
//! power cut in the middle of it, made one of two ways (`--kinds`, in turn; by default two timed cuts, then an
//! armed one):
//!
//! - timed: from the test's side, at a random step of the burst or right after a `call.ended` arrived: `cut()` of
//!   the file system, at once `kill -9` of the daemon. The daemon fsyncs each commit, so such a cut almost always
//!   falls between commits;
//! - armed: at a random step of the burst the file system is told to cut the power itself right before a random
//!   mutating operation a little ahead (the 1st-40th of any kind, the 1st-24th write, or the 1st-6th fdatasync), so
//!   the cut falls inside a commit: among its writes or between them and their sync. The test waits until it has
//!   fired (`is_dead()`), then `kill -9`. If it has not fired when the burst is over and the daemon has written
//!   nothing for a while, the test cuts by hand (counted as such).
//!
//! Then `restore()` of what the disk kept (only what was synced, and that plus a random subset of the unsynced writes
//! per 4 KiB block: a torn commit, in turn, for each kind of cut), and the daemon started again on it. After each
//! restart:
//!
//! - the daemon comes up and `/healthz` answers 200 (the store opens);
//! - every call whose `call.ended` reached the subscriber before the cut is in `GET /api/calls` with its outcome,
//!   every task whose `task.created` did is in `GET /api/tasks`, through the token made before the first cut;
//! - no seq is handed out twice: an event that comes with a seq already seen must have that seq's event_id;
//! - `admin` logs in with the password chosen before the first cut, and the daemon logged no new first-start
//!   password.
//!
//! The figures go out as a table and as one line `POWERCUT_JSON {...}`; the exit code is 1 on any loss, reuse or
//! failed login, with the details of each lost record. Nothing depends on the machine's speed: the cut points are
//! steps of the burst and operations of the daemon, and the only deadlines are generous ones for "the daemon never
//! came up" (and, for an armed cut, when to stop waiting for it, which changes only how it is counted).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Result};
use linekeeper_e2e::bench::{parse_flags, Table};
use linekeeper_e2e::powerfs::{CutAim, OpKind, PowerFs, RestoreMode, SplitMix, Stats};
use linekeeper_e2e::*;
use serde_json::{json, Value};

const USAGE: &str = "usage: powercut [--cuts N] [--seed S] [--modes LIST] [--kinds LIST]\n\
  --cuts N      power cuts to make (default 50)\n\
  --seed S      seed of the bursts, cut points and restores (default: from the clock, printed)\n\
  --modes LIST  what the disk keeps at a cut, in turn for each kind of cut (default drop-all,random-subset):\n\
                drop-all (only what was synced), random-subset (that and a random part of the rest),\n\
                keep-all (everything: a kill -9 without a power cut, the control run that must pass even\n\
                without syncs)\n\
  --kinds LIST  how the cuts are made, in turn (default timed,timed,armed): timed (by the test, at a step of\n\
                the burst or right after a call.ended), armed (by the file system itself, right before a\n\
                random write, fdatasync or other operation of the daemon a little ahead: inside a commit)";

/// The password chosen at the first login, used after every cut.
const CHOSEN: &str = "power cut proof 2024";
const EVENTS: &str = "linekeeper/hq/events/#";
const FIRST_START: &str = "first start: web page login created";
/// A missed call ends after this much silence.
const RING_TIMEOUT: &str = "600ms";
/// An armed cut that has not fired when the burst is over is made by hand once the daemon has done no mutating
/// operation for this long, or this long after the burst at the latest. (Generous; it changes only how the cut
/// is counted.)
const ARMED_QUIET: Duration = Duration::from_secs(3);
const ARMED_AFTER_BURST: Duration = Duration::from_secs(15);

/// How a cut is made (`--kinds`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Timed,
    Armed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    DropAll,
    RandomSubset,
    KeepAll,
}

struct Opts {
    cuts: u64,
    seed: u64,
    /// Used in turn, cut after cut, for each kind of cut.
    modes: Vec<Mode>,
    /// Used in turn, cut after cut.
    kinds: Vec<Kind>,
}

fn parse(args: &[String]) -> Result<Opts> {
    let mut opts = Opts {
        cuts: 50,
        seed: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64 % 1_000_000_007)
            .unwrap_or(1),
        modes: vec![Mode::DropAll, Mode::RandomSubset],
        kinds: vec![Kind::Timed, Kind::Timed, Kind::Armed],
    };
    parse_flags(args, USAGE, |flag, a| {
        match flag {
            "--cuts" => opts.cuts = a.number(flag)?,
            "--seed" => opts.seed = a.number(flag)?,
            "--modes" => {
                opts.modes = a
                    .value(flag)?
                    .split(',')
                    .map(|m| match m.trim() {
                        "drop-all" => Ok(Mode::DropAll),
                        "random-subset" => Ok(Mode::RandomSubset),
                        "keep-all" => Ok(Mode::KeepAll),
                        other => Err(anyhow!("unknown restore mode `{other}`\n{USAGE}")),
                    })
                    .collect::<Result<_>>()?;
                if opts.modes.is_empty() {
                    return Err(anyhow!("--modes needs at least one mode\n{USAGE}"));
                }
            }
            "--kinds" => {
                opts.kinds = a
                    .value(flag)?
                    .split(',')
                    .map(|k| match k.trim() {
                        "timed" => Ok(Kind::Timed),
                        "armed" => Ok(Kind::Armed),
                        other => Err(anyhow!("unknown kind of cut `{other}`\n{USAGE}")),
                    })
                    .collect::<Result<_>>()?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if opts.cuts == 0 {
        return Err(anyhow!("--cuts must be at least 1\n{USAGE}"));
    }
    Ok(opts)
}

fn main() -> ExitCode {
    let run = |opts| {
        if std::env::var_os("LINEKEEPER_E2E_LOG").is_none() {
            // The daemon's own debug lines, not those of its store and MQTT crates (50 runs of them).
            std::env::set_var("LINEKEEPER_E2E_LOG", "info,linekeeper=debug");
        }
        if std::env::var_os("LINEKEEPER_BIN").is_none() {
            std::env::set_var(
                "LINEKEEPER_BIN",
                target_dir().join("release").join("linekeeper"),
            );
        }
        linekeeper_e2e::bench::block_on(run(opts))
    };
    linekeeper_e2e::bench::main("powercut", parse, run, None, |passed| {
        if passed {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    })
}

// ---------------------------------------------------------------------------------------------------------------------
// The subscriber's messages, stamped with their arrival
// ---------------------------------------------------------------------------------------------------------------------

#[derive(Clone)]
struct Stamped {
    at: Instant,
    msg: MqttMsg,
}

/// Every message the subscriber got, in arrival order, with the instant it was seen (a poller copies them every
/// 2 ms, so the stamp is at most that late). Index i here is index i of the watcher.
struct Log {
    watch: Arc<MqttWatch>,
    items: Mutex<Vec<Stamped>>,
}

impl Log {
    fn pump(&self) {
        let mut items = self.items.lock().unwrap();
        let now = Instant::now();
        for msg in self.watch.messages_since(items.len()) {
            items.push(Stamped { at: now, msg });
        }
    }

    fn since(&self, from: usize) -> Vec<Stamped> {
        self.pump();
        let items = self.items.lock().unwrap();
        items
            .get(from..)
            .map(<[Stamped]>::to_vec)
            .unwrap_or_default()
    }

    fn range(&self, from: usize, to: usize) -> Vec<Stamped> {
        self.pump();
        let items = self.items.lock().unwrap();
        items[from.min(items.len())..to.min(items.len())].to_vec()
    }
}

fn event_of(m: &MqttMsg) -> Option<Value> {
    if m.retain {
        return None;
    }
    m.json()
        .filter(|v| v["type"].is_string() && v["seq"].is_u64())
}

fn is_ended_of(m: &MqttMsg, number: &str) -> bool {
    event_of(m).is_some_and(|v| v["type"] == "call.ended" && v["call"]["number"] == number)
}

// ---------------------------------------------------------------------------------------------------------------------
// The burst
// ---------------------------------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Planned {
    number: String,
    answered: bool,
    ring_ms: u64,
    talk_ms: u64,
    /// Pause after the call (0: the next call starts at once).
    gap_ms: u64,
}

/// Steps each call counts in the progress: RING, caller ID, OFFHOOK or the second RING, ONHOOK or the end of the
/// ringing, the pause after it.
const STEPS_PER_CALL: usize = 5;

async fn play(
    calls: Vec<Planned>,
    modem: SimModem,
    log: Arc<Log>,
    from: usize,
    progress: tokio::sync::watch::Sender<usize>,
) {
    let mut step = 0;
    let mut bump = || {
        step += 1;
        progress.send_replace(step);
    };
    let sleep = |ms: u64| tokio::time::sleep(Duration::from_millis(ms));
    for c in calls {
        modem.ring().await;
        bump();
        modem.caller_id(Some(&c.number), Some("POWERCUT")).await;
        bump();
        if c.answered {
            sleep(c.ring_ms).await;
            modem.offhook().await;
            bump();
            sleep(c.talk_ms).await;
            modem.onhook().await;
            bump();
        } else {
            modem.ring().await;
            bump();
            // Silence: the daemon ends the call after its ring timeout. Wait for that, so the next RING starts a new
            // call (the cut may come first; then this task is aborted).
            let deadline = Instant::now() + STEP;
            let mut seen = from;
            loop {
                let fresh = log.since(seen);
                seen += fresh.len();
                if fresh.iter().any(|s| is_ended_of(&s.msg, &c.number)) || Instant::now() > deadline
                {
                    break;
                }
                sleep(5).await;
            }
            bump();
        }
        sleep(c.gap_ms).await;
        bump();
    }
}

fn plan_burst(rng: &mut SplitMix, next_number: &mut u64) -> Vec<Planned> {
    let n = rng.range(1, 20);
    (0..n)
        .map(|_| {
            *next_number += 1;
            let answered = rng.chance(60);
            Planned {
                number: format!("139{:08}", *next_number % 100_000_000),
                answered,
                ring_ms: rng.range(0, 60),
                talk_ms: rng.range(0, 120),
                gap_ms: if rng.chance(40) {
                    0
                } else {
                    rng.range(10, 250)
                },
            }
        })
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum CutAt {
    /// When the player has done this many steps, plus a few ms.
    Step { step: usize, jitter_ms: u64 },
    /// As soon as the `call.ended` of the k-th call of the burst reached the subscriber.
    AfterEnded(usize),
    /// Armed when the player has done this many steps (0: at its start), plus a few ms: the file system cuts
    /// itself right before the operation `aim` names.
    Armed {
        step: usize,
        jitter_ms: u64,
        aim: CutAim,
    },
}

/// The kinds of cut the figures count, as (JSON key, table label).
const CUT_KINDS: [(&str, &str); 5] = [
    ("step", "timed: at a step"),
    ("after_ended", "timed: after call.ended"),
    ("armed_op", "armed: any operation"),
    ("armed_write", "armed: a write"),
    ("armed_fdatasync", "armed: an fdatasync"),
];

impl CutAt {
    /// The index in [`CUT_KINDS`].
    fn kind(&self) -> usize {
        match self {
            CutAt::Step { .. } => 0,
            CutAt::AfterEnded(_) => 1,
            CutAt::Armed { aim, .. } => match aim.kind {
                None => 2,
                Some(OpKind::Write) => 3,
                Some(_) => 4,
            },
        }
    }
}

/// The sum of a file system's counters of mutating operations.
fn mutating_ops(s: &Stats) -> u64 {
    s.writes
        + s.truncates
        + s.fallocates
        + s.fsyncs
        + s.fdatasyncs
        + s.fsyncdirs
        + s.creates
        + s.renames
        + s.unlinks
}

// ---------------------------------------------------------------------------------------------------------------------
// The web login, as a browser does it (as tests/tests/web.rs)
// ---------------------------------------------------------------------------------------------------------------------

struct Browser {
    agent: ureq::Agent,
    base: String,
    cookie: String,
}

impl Browser {
    fn new(port: u16) -> Browser {
        Browser {
            agent: ureq::AgentBuilder::new()
                .redirects(0)
                .timeout(Duration::from_secs(30))
                .build(),
            base: format!("http://127.0.0.1:{port}"),
            cookie: String::new(),
        }
    }

    fn answer(
        r: std::result::Result<ureq::Response, ureq::Error>,
    ) -> Result<(u16, String, String, String)> {
        let r = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => return Err(anyhow!("HTTP: {e}")),
        };
        let location = r.header("location").unwrap_or_default().to_string();
        let cookie = r.header("set-cookie").unwrap_or_default().to_string();
        Ok((
            r.status(),
            location,
            cookie,
            r.into_string().unwrap_or_default(),
        ))
    }

    fn get(&self, path: &str) -> Result<(u16, String, String)> {
        let (status, location, _, body) = Self::answer(
            self.agent
                .get(&format!("{}{path}", self.base))
                .set("Cookie", &self.cookie)
                .call(),
        )?;
        Ok((status, location, body))
    }

    fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Result<(u16, String, String)> {
        let (status, location, cookie, body) = Self::answer(
            self.agent
                .post(&format!("{}{path}", self.base))
                .set("Origin", &self.base)
                .set("Cookie", &self.cookie)
                .send_form(form),
        )?;
        if let Some(c) = cookie.split(';').next().filter(|c| !c.is_empty()) {
            self.cookie = c.to_string();
        }
        Ok((status, location, body))
    }

    /// Logs `admin` in with `password`; `Ok(true)` when the page then insists on a new password.
    fn login(&mut self, password: &str) -> Result<bool> {
        let (status, location, body) =
            self.post("/login", &[("user", "admin"), ("password", password)])?;
        if status != 303 {
            return Err(anyhow!(
                "POST /login answered {status} (not 303): {}",
                clip(&body, 300)
            ));
        }
        Ok(location == "/password")
    }

    /// Replaces the password `current` (after a login that must change it) by `new`.
    fn change_password(&mut self, current: &str, new: &str) -> Result<()> {
        let (_, _, page) = self.get("/password")?;
        let i = page.find("data-csrf=\"").ok_or_else(|| {
            anyhow!(
                "GET /password is not a signed-in page: {}",
                clip(&page, 300)
            )
        })? + 11;
        let csrf = page[i..i + 32].to_string();
        let (status, location, body) = self.post(
            "/password",
            &[
                ("csrf", &csrf),
                ("current", current),
                ("new", new),
                ("confirm", new),
            ],
        )?;
        if (status, location.as_str()) != (303, "/") {
            return Err(anyhow!(
                "POST /password answered {status} {location}: {}",
                clip(&body, 300)
            ));
        }
        Ok(())
    }
}

/// The last `password=XXXX` of a log.
fn last_logged_password(log: &str) -> Option<String> {
    let log = strip_ansi(log);
    log.match_indices("password=")
        .filter_map(|(i, key)| {
            let value: String = log[i + key.len()..]
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect();
            (!value.is_empty()).then_some(value)
        })
        .last()
}

// ---------------------------------------------------------------------------------------------------------------------
// Bookkeeping
// ---------------------------------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Acked {
    kind: &'static str,
    /// The call's number (calls) or the task's id (tasks).
    key: String,
    number: String,
    /// The outcome (calls) or the task's kind.
    what: String,
    at: Instant,
    cut: u64,
}

#[derive(Clone, Debug)]
struct Lost {
    record: Acked,
    /// When it was acknowledged, from the start of the run.
    acked_at: Duration,
    /// How long before the cut after which it was missing it was acknowledged.
    before_cut: Duration,
    /// The cut after which it was missing (its own, or a later one).
    missing_after: u64,
    mode: RestoreMode,
    /// The kind of that cut (a label of [`CUT_KINDS`]).
    cut_kind: &'static str,
    found: Option<String>,
}

#[derive(Default, Clone, Copy)]
struct ModeFigures {
    cuts: u64,
    calls_acked: u64,
    calls_lost: u64,
    tasks_acked: u64,
    tasks_lost: u64,
}

/// Cuts of one kind.
#[derive(Default, Clone, Copy)]
struct KindFigures {
    cuts: u64,
    drop_all: u64,
    random: u64,
    keep_all: u64,
    /// Armed cuts that had not fired when the test stopped waiting, made by hand.
    by_hand: u64,
    /// Cuts whose restore dropped unsynced blocks: the cut fell between writes and their sync.
    dropped_blocks: u64,
    /// Random-subset cuts whose restore kept some unsynced blocks and dropped others.
    torn: u64,
    calls_acked: u64,
    calls_lost: u64,
    tasks_acked: u64,
    tasks_lost: u64,
}

#[derive(Default)]
struct Figures {
    /// By [`CutAt::kind`].
    kinds: [KindFigures; CUT_KINDS.len()],
    /// Where armed cuts fell: "after OP, before OP", with how many times.
    landed: BTreeMap<String, u64>,
    drop_all: ModeFigures,
    random: ModeFigures,
    keep_all: ModeFigures,
    seq_reused: u64,
    resent_other_seq: u64,
    seq_details: Vec<String>,
    token_lost: u64,
    logins_failed: u64,
    login_details: Vec<String>,
    new_first_start: u64,
    start_failures: u64,
    api_failures: u64,
    other_failures: Vec<String>,
    lost: Vec<Lost>,
    fs: Stats,
    restore_dropped_blocks: u64,
    restore_dropped_entries: u64,
    restore_removed_inodes: u64,
    restart_secs: Vec<f64>,
    /// Paths that vanished at restores, with how many times.
    vanished: BTreeMap<String, u64>,
}

impl Figures {
    fn mode(&mut self, mode: RestoreMode) -> &mut ModeFigures {
        match mode {
            RestoreMode::DropAll => &mut self.drop_all,
            RestoreMode::RandomSubset(_) => &mut self.random,
            RestoreMode::KeepAll => &mut self.keep_all,
        }
    }

    fn failed(&self) -> bool {
        !self.lost.is_empty()
            || self.seq_reused > 0
            || self.resent_other_seq > 0
            || self.token_lost > 0
            || self.logins_failed > 0
            || self.new_first_start > 0
            || self.start_failures > 0
            || self.api_failures > 0
            || !self.other_failures.is_empty()
    }
}

fn add_stats(total: &mut Stats, s: &Stats) {
    total.writes += s.writes;
    total.bytes_written += s.bytes_written;
    total.truncates += s.truncates;
    total.fallocates += s.fallocates;
    total.fsyncs += s.fsyncs;
    total.fdatasyncs += s.fdatasyncs;
    total.fsyncdirs += s.fsyncdirs;
    total.creates += s.creates;
    total.renames += s.renames;
    total.unlinks += s.unlinks;
    total.refused_after_cut += s.refused_after_cut;
    total.injected_errors += s.injected_errors;
}

/// Runs `f`, turning a panic (the e2e helpers panic with the daemon's logs when it does not come up) into an error.
fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> Result<T> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        anyhow!("{what}: {msg}")
    })
}

/// fsync of a file and of its directory: what a careful installer does after writing the config.
fn sync_file_and_dir(path: &Path) -> std::io::Result<()> {
    File::open(path)?.sync_all()?;
    File::open(path.parent().expect("a parent"))?.sync_all()
}

// ---------------------------------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------------------------------

struct Bed {
    daemon: Daemon,
    modem: SimModem,
    log: Arc<Log>,
    browser_port: u16,
    first_starts: usize,
}

impl Bed {
    /// Starts the daemon (again) and waits until it is healthy and has initialised the modem; the index of the
    /// subscriber's next message then.
    async fn start_daemon(&mut self) -> Result<usize> {
        let before = self.modem.commands().await.len();
        self.daemon.try_start().map_err(|e| {
            anyhow!(
                "the daemon did not come up: {e}; the end of its log:\n{}",
                self.daemon.last_stderr(12)
            )
        })?;
        let deadline = Instant::now() + LONG;
        loop {
            if linekeeper_e2e::caller_id_init_since(&self.modem, before).await {
                break;
            }
            if !self.daemon.is_running() {
                self.daemon.print_logs();
                return Err(anyhow!("the daemon exited before initialising the modem"));
            }
            if Instant::now() > deadline {
                self.daemon.print_logs();
                return Err(anyhow!(
                    "the daemon did not initialise the modem within {LONG:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        guarded("the modem link did not come up", || {
            self.daemon.wait_link("up");
        })?;
        Ok(self.log.watch.mark())
    }

    fn first_start_count(&self) -> usize {
        strip_ansi(&self.daemon.log_text())
            .matches(FIRST_START)
            .count()
    }

    /// Logs in with a fresh first-start (or reset) password and sets [`CHOSEN`].
    fn choose_password(&self, given: &str) -> Result<()> {
        let mut b = Browser::new(self.browser_port);
        if !b.login(given)? {
            return Err(anyhow!(
                "a login with a first-start password did not ask for a new one"
            ));
        }
        b.change_password(given, CHOSEN)
    }
}

async fn run(opts: Opts) -> Result<bool> {
    let started = Instant::now();
    let bin = daemon_bin();
    println!(
        "powercut: {} cuts, seed {}, daemon {}",
        opts.cuts,
        opts.seed,
        bin.display()
    );
    let mut rng = SplitMix::new(opts.seed);

    // Declared first, dropped last: the mount outlives the daemon.
    let mnt_dir = test_dir("lk-powercut-mnt-");
    let fs = PowerFs::new();
    let mounted = fs
        .mount(mnt_dir.path())
        .map_err(|e| anyhow!("cannot mount powerfs on {}: {e}", mnt_dir.path().display()))?;
    let broker = Mosquitto::launch();
    let watch = Arc::new(MqttWatch::start_persistent_topic(broker.port(), EVENTS).await);
    let log = Arc::new(Log {
        watch: watch.clone(),
        items: Mutex::new(Vec::new()),
    });
    let poller = {
        let log = log.clone();
        tokio::spawn(async move {
            loop {
                log.pump();
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let pty = PtyPair::new();
    let modem = open_modem(&pty).await;
    let opts_d = DaemonOptions {
        mask_numbers: false,
        ring_timeout: RING_TIMEOUT.into(),
        ..DaemonOptions::default()
    };
    let config = mnt_dir.path().join("linekeeper.toml");
    let store = mnt_dir.path().join("store");
    let daemon = Daemon::new_at(
        &opts_d,
        pty.daemon_side(),
        broker.port(),
        test_dir("lk-powercut-"),
        config.clone(),
        store.clone(),
    );
    sync_file_and_dir(&config)?;
    // The figures count the daemon's operations only.
    fs.take_stats();
    println!(
        "powercut: powerfs on {}, daemon logs in {}",
        mnt_dir.path().display(),
        daemon.dir().display()
    );
    let browser_port = daemon.web_port();
    let mut bed = Bed {
        daemon,
        modem,
        log: log.clone(),
        browser_port,
        first_starts: 0,
    };

    // Before the first cut: the token and the web login.
    let mut window = bed.start_daemon().await?;
    bed.daemon.authorize();
    let first = bed.daemon.wait_logged_password();
    bed.choose_password(&first)?;
    bed.first_starts = bed.first_start_count();
    let mut b = Browser::new(browser_port);
    if b.login(CHOSEN)? {
        return Err(anyhow!("the chosen password still has to be changed"));
    }

    let mut figures = Figures::default();
    let mut acked: Vec<Acked> = Vec::new();
    let mut acked_events: HashSet<String> = HashSet::new();
    let mut lost_keys: HashSet<(String, String)> = HashSet::new();
    let mut seqs: HashMap<u64, (String, String)> = HashMap::new();
    let mut ids_seq: HashMap<String, u64> = HashMap::new();
    let mut seq_cursor = 0usize;
    let mut next_number = rng.range(0, 50_000_000);
    // Each kind of cut takes the restore modes in turn.
    let mut turns = [0usize; 2];

    for cut in 1..=opts.cuts {
        let kind = opts.kinds[(cut as usize - 1) % opts.kinds.len()];
        let turn = &mut turns[kind as usize];
        let mode = match opts.modes[*turn % opts.modes.len()] {
            Mode::DropAll => RestoreMode::DropAll,
            Mode::RandomSubset => RestoreMode::RandomSubset(rng.next_u64()),
            Mode::KeepAll => RestoreMode::KeepAll,
        };
        *turn += 1;
        let burst = plan_burst(&mut rng, &mut next_number);
        let total_steps = burst.len() * STEPS_PER_CALL;
        let cut_at = match kind {
            Kind::Armed => CutAt::Armed {
                step: rng.range(0, total_steps as u64 - 2) as usize,
                jitter_ms: rng.range(0, 30),
                aim: match rng.range(0, 2) {
                    0 => CutAim {
                        kind: None,
                        n: rng.range(1, 40),
                    },
                    1 => CutAim {
                        kind: Some(OpKind::Write),
                        n: rng.range(1, 24),
                    },
                    _ => CutAim {
                        kind: Some(OpKind::Fdatasync),
                        n: rng.range(1, 6),
                    },
                },
            },
            Kind::Timed if rng.chance(30) => {
                CutAt::AfterEnded(rng.range(0, burst.len() as u64 - 1) as usize)
            }
            Kind::Timed => CutAt::Step {
                step: rng.range(1, total_steps as u64 - 1) as usize,
                jitter_ms: rng.range(0, 30),
            },
        };
        let (tx, mut progress) = tokio::sync::watch::channel(0usize);
        let player = tokio::spawn(play(
            burst.clone(),
            bed.modem.clone(),
            log.clone(),
            window,
            tx,
        ));

        // Wait for the cut point (a generous deadline only against a daemon that hangs).
        let mut note = String::new();
        match cut_at {
            CutAt::Step { step, jitter_ms } => {
                // (The `Ref` that `wait_for` returns holds the channel's lock: dropped in this statement.)
                let reached = matches!(
                    tokio::time::timeout(LONG, progress.wait_for(|s| *s >= step)).await,
                    Ok(Ok(_))
                );
                if !reached {
                    note = format!(" (the burst stopped before step {step})");
                }
                tokio::time::sleep(Duration::from_millis(jitter_ms)).await;
            }
            CutAt::AfterEnded(k) => {
                let number = burst[k].number.clone();
                let deadline = Instant::now() + LONG;
                let mut seen = window;
                loop {
                    let fresh = watch.messages_since(seen);
                    seen += fresh.len();
                    if fresh.iter().any(|m| is_ended_of(m, &number)) {
                        break;
                    }
                    if Instant::now() > deadline {
                        note = format!(" (no call.ended for {number} within {LONG:?})");
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            CutAt::Armed {
                step,
                jitter_ms,
                aim,
            } => {
                if step > 0 {
                    let reached = matches!(
                        tokio::time::timeout(LONG, progress.wait_for(|s| *s >= step)).await,
                        Ok(Ok(_))
                    );
                    if !reached {
                        note = format!(" (the burst stopped before step {step})");
                    }
                }
                tokio::time::sleep(Duration::from_millis(jitter_ms)).await;
                match aim.kind {
                    None => fs.cut_at_op(aim.n),
                    Some(k) => fs.cut_before_nth(k, aim.n),
                }
                // Until it fires; when the burst is over and the daemon idle, the cut is made by hand below.
                let armed_at = Instant::now();
                let mut burst_over: Option<Instant> = None;
                let mut ops = u64::MAX;
                let mut last_op = armed_at;
                loop {
                    let (dead, now_ops) = {
                        let m = fs.lock();
                        (m.is_dead(), mutating_ops(m.stats()))
                    };
                    if dead {
                        break;
                    }
                    let now = Instant::now();
                    if now_ops != ops {
                        ops = now_ops;
                        last_op = now;
                    }
                    if burst_over.is_none() && player.is_finished() {
                        burst_over = Some(now);
                    }
                    if let Some(over) = burst_over {
                        if now.duration_since(last_op.max(over)) >= ARMED_QUIET
                            || now.duration_since(over) >= ARMED_AFTER_BURST
                        {
                            break;
                        }
                    }
                    if now.duration_since(armed_at) > LONG {
                        note = format!(" (the armed cut did not fire within {LONG:?})");
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }

        // The power cut: the disk stops, the process dies. An armed cut that fired has already stopped the disk;
        // what reached the subscriber until the daemon is dead counts as acknowledged (the daemon publishes only
        // after a commit's sync, and every sync after the cut failed).
        let fired_already = fs.is_dead();
        let mut mark = watch.mark();
        fs.cut();
        bed.daemon.kill9();
        let mut cut_instant = Instant::now();
        if fired_already {
            mark = watch.mark();
        }
        player.abort();
        let _ = player.await;
        let steps_done = *progress.borrow();
        let stats = fs.take_stats();
        add_stats(&mut figures.fs, &stats);
        let report = fs.restore(mode);
        if let Some(f) = &report.fired {
            cut_instant = f.at;
        }
        let kind_index = cut_at.kind();
        {
            let k = &mut figures.kinds[kind_index];
            k.cuts += 1;
            match mode {
                RestoreMode::DropAll => k.drop_all += 1,
                RestoreMode::RandomSubset(_) => k.random += 1,
                RestoreMode::KeepAll => k.keep_all += 1,
            }
            if matches!(cut_at, CutAt::Armed { .. }) && report.fired.is_none() {
                k.by_hand += 1;
            }
            if report.data_dropped > 0 {
                k.dropped_blocks += 1;
            }
            if matches!(mode, RestoreMode::RandomSubset(_))
                && report.data_dropped > 0
                && report.data_kept > 0
            {
                k.torn += 1;
            }
        }
        if let Some(f) = &report.fired {
            let after = f.after.map_or("nothing", OpKind::name);
            *figures
                .landed
                .entry(format!("after {after}, before {}", f.before))
                .or_default() += 1;
        }
        figures.restore_dropped_blocks += report.data_dropped;
        figures.restore_dropped_entries += report.entries_dropped;
        figures.restore_removed_inodes += report.inodes_removed;

        let vanished = if report.vanished.is_empty() {
            String::new()
        } else {
            let shown: Vec<&str> = report.vanished.iter().take(4).map(String::as_str).collect();
            let more = report.vanished.len().saturating_sub(shown.len());
            format!(
                " ({}{})",
                shown.join(" "),
                if more > 0 {
                    format!(" +{more}")
                } else {
                    String::new()
                }
            )
        };
        for v in &report.vanished {
            *figures.vanished.entry(v.clone()).or_default() += 1;
        }

        // What was acknowledged before the cut.
        let mut new_calls = 0;
        let mut new_tasks = 0;
        for s in log.range(window, mark) {
            let Some(v) = event_of(&s.msg) else { continue };
            // An event re-sent after a restart (from the outbox) is the same acknowledgement.
            if !acked_events.insert(v["event_id"].as_str().unwrap_or_default().to_string()) {
                continue;
            }
            if v["type"] == "call.ended" {
                let number = v["call"]["number"].as_str().unwrap_or_default().to_string();
                acked.push(Acked {
                    kind: "call",
                    // A call without a number (an outgoing call: the office phone picked up on an idle line) is
                    // known by its id.
                    key: if number.is_empty() {
                        v["call"]["id"].as_str().unwrap_or_default().to_string()
                    } else {
                        number.clone()
                    },
                    number,
                    what: v["call"]["outcome"].as_str().unwrap_or("?").to_string(),
                    at: s.at,
                    cut,
                });
                new_calls += 1;
            } else if v["type"] == "task.created" {
                acked.push(Acked {
                    kind: "task",
                    key: v["task"]["id"].as_str().unwrap_or_default().to_string(),
                    number: v["task"]["number"].as_str().unwrap_or_default().to_string(),
                    what: v["task"]["kind"].as_str().unwrap_or("?").to_string(),
                    at: s.at,
                    cut,
                });
                new_tasks += 1;
            }
        }
        {
            let m = figures.mode(mode);
            m.cuts += 1;
            m.calls_acked += new_calls;
            m.tasks_acked += new_tasks;
            let k = &mut figures.kinds[kind_index];
            k.calls_acked += new_calls;
            k.tasks_acked += new_tasks;
        }

        // Power back: the daemon must come up on what the disk kept.
        let restart = Instant::now();
        let mut start_note = "";
        match bed.start_daemon().await {
            Ok(w) => window = w,
            Err(e) => {
                // The store does not open: that is a loss of everything in it. Count it, then carry on with a new
                // store so the run still measures the other cuts.
                figures.start_failures += 1;
                figures.other_failures.push(format!(
                    "cut {cut} ({mode}): {}",
                    clip(&strip_ansi(&e.to_string()), 1500)
                ));
                eprintln!(
                    "powercut: cut {cut} ({mode}): {}",
                    strip_ansi(&format!("{e:#}"))
                );
                start_note = ", STORE DID NOT OPEN (a new one was made)";
                add_stats(&mut figures.fs, &fs.take_stats());
                std::fs::remove_dir_all(&store)
                    .and_then(|()| File::open(mnt_dir.path())?.sync_all())
                    .map_err(|e| anyhow!("cannot remove the broken store: {e}"))?;
                fs.take_stats();
                match bed.start_daemon().await {
                    Ok(w) => window = w,
                    Err(e) => {
                        figures
                            .other_failures
                            .push(format!("cut {cut}: not even on a new store: {e}"));
                        break;
                    }
                }
            }
        }
        let restart_secs = restart.elapsed().as_secs_f64();
        figures.restart_secs.push(restart_secs);

        // The token, the calls and the tasks.
        let mut lost_now = 0;
        let mut calls_resp = bed.daemon.get("/api/calls?limit=1000");
        if calls_resp.status == 401 {
            figures.token_lost += 1;
            bed.daemon.authorize();
            calls_resp = bed.daemon.get("/api/calls?limit=1000");
        }
        let tasks_resp = bed.daemon.get("/api/tasks?state=all&limit=10000");
        if calls_resp.status != 200 || tasks_resp.status != 200 {
            figures.api_failures += 1;
            figures.other_failures.push(format!(
                "cut {cut}: GET /api/calls answered {} ({}), GET /api/tasks {} ({})",
                calls_resp.status,
                clip(&calls_resp.body, 200),
                tasks_resp.status,
                clip(&tasks_resp.body, 200)
            ));
        } else {
            let calls = calls_resp.json();
            let calls = calls.as_array().cloned().unwrap_or_default();
            let full = calls.len() >= 1000;
            let by_number: HashMap<String, String> = calls
                .iter()
                .filter_map(|c| {
                    Some((
                        c["number"].as_str()?.to_string(),
                        c["outcome"].as_str().unwrap_or("").to_string(),
                    ))
                })
                .collect();
            let tasks = tasks_resp.json();
            let task_ids: HashSet<String> = tasks
                .as_array()
                .map(|t| ids(t, "id").into_iter().collect())
                .unwrap_or_default();
            for a in &acked {
                if lost_keys.contains(&(a.kind.to_string(), a.key.clone())) {
                    continue;
                }
                let found: Option<String> = if a.kind == "call" && a.number.is_empty() {
                    calls
                        .iter()
                        .find(|c| c["id"] == a.key.as_str())
                        .map(|c| c["outcome"].as_str().unwrap_or("").to_string())
                } else if a.kind == "call" {
                    match by_number.get(&a.number) {
                        Some(o) => Some(o.clone()),
                        None if full => {
                            let r = bed.daemon.get(&format!("/api/calls?number={}", a.number));
                            r.json().as_array().and_then(|v| {
                                v.iter()
                                    .find(|c| c["number"] == a.number.as_str())
                                    .map(|c| c["outcome"].as_str().unwrap_or("").to_string())
                            })
                        }
                        None => None,
                    }
                } else {
                    task_ids.contains(&a.key).then(|| a.what.clone())
                };
                if found.as_deref() == Some(a.what.as_str()) {
                    continue;
                }
                lost_keys.insert((a.kind.to_string(), a.key.clone()));
                lost_now += 1;
                let m = figures.mode(mode);
                if a.kind == "call" {
                    m.calls_lost += 1;
                } else {
                    m.tasks_lost += 1;
                }
                let k = &mut figures.kinds[kind_index];
                if a.kind == "call" {
                    k.calls_lost += 1;
                } else {
                    k.tasks_lost += 1;
                }
                figures.lost.push(Lost {
                    record: a.clone(),
                    acked_at: a.at.saturating_duration_since(started),
                    before_cut: cut_instant.saturating_duration_since(a.at),
                    missing_after: cut,
                    mode,
                    cut_kind: CUT_KINDS[kind_index].1,
                    found,
                });
            }
        }

        // The web login with the chosen password; no new first-start password.
        let starts = bed.first_start_count();
        let mut login_note = String::new();
        if starts > bed.first_starts {
            figures.new_first_start += (starts - bed.first_starts) as u64;
            login_note.push_str(", a new first-start password");
        }
        let mut b = Browser::new(browser_port);
        match b.login(CHOSEN) {
            Ok(false) => {}
            other => {
                figures.logins_failed += 1;
                let why = match other {
                    Ok(_) => "the chosen password has to be changed again".to_string(),
                    Err(e) => e.to_string(),
                };
                figures.login_details.push(format!(
                    "login after cut {cut} ({mode}): {}",
                    clip(&why, 60)
                ));
                login_note.push_str(", login failed");
                // Set the chosen password again, so later cuts test it again.
                let given = if starts > bed.first_starts {
                    last_logged_password(&bed.daemon.log_text())
                } else {
                    None
                };
                let given = match given {
                    Some(p) => p,
                    None => bed
                        .daemon
                        .cli(&["passwd", "admin"])
                        .stdout
                        .trim()
                        .to_string(),
                };
                if let Err(e) = bed.choose_password(&given) {
                    figures
                        .other_failures
                        .push(format!("cut {cut}: cannot set the web password again: {e}"));
                }
            }
        }
        bed.first_starts = bed.first_start_count();

        // Seqs: a seq seen before must come back with the same event.
        let seq_note = check_seqs(
            &log,
            &mut seq_cursor,
            &mut seqs,
            &mut ids_seq,
            &mut figures,
            cut,
        );

        println!(
            "cut {cut:>3}/{} {:<13} burst {:>2} calls, cut {} at step {}/{}{note}: acked {} calls {} tasks; \
             restore dropped {} blocks {} entries {} files{vanished}; restart {:.2}s; lost {lost_now}{start_note}{login_note}{seq_note}",
            opts.cuts,
            match mode {
                RestoreMode::DropAll => "drop-all",
                RestoreMode::RandomSubset(_) => "random-subset",
                RestoreMode::KeepAll => "keep-all",
            },
            burst.len(),
            match cut_at {
                CutAt::Step { .. } => "mid-burst".to_string(),
                CutAt::AfterEnded(k) => format!("after call {}'s end", k + 1),
                CutAt::Armed { step, aim, .. } => match &report.fired {
                    Some(f) => format!(
                        "armed at step {step} for {aim}, fired {} ops later (after {}, before {}; {} blocks unsynced)",
                        f.ops_since_arm,
                        f.after.map_or("nothing", OpKind::name),
                        f.before,
                        f.unsynced_data
                    ),
                    None => format!("armed at step {step} for {aim}, not reached: by hand"),
                },
            },
            steps_done,
            total_steps,
            new_calls,
            new_tasks,
            report.data_dropped,
            report.entries_dropped,
            report.inodes_removed,
            restart_secs,
        );
    }

    // After the last restart: one more call, so a seq handed out again after it shows.
    if figures.start_failures == 0 {
        let number = format!("138{:08}", (next_number + 1) % 100_000_000);
        let from = watch.mark();
        bed.modem.ring().await;
        bed.modem.caller_id(Some(&number), Some("LAST")).await;
        bed.modem.offhook().await;
        bed.modem.onhook().await;
        let deadline = Instant::now() + STEP;
        loop {
            if log.since(from).iter().any(|s| is_ended_of(&s.msg, &number)) {
                break;
            }
            if Instant::now() > deadline {
                figures.other_failures.push(format!(
                    "the last call {number} got no call.ended within {STEP:?}"
                ));
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        check_seqs(
            &log,
            &mut seq_cursor,
            &mut seqs,
            &mut ids_seq,
            &mut figures,
            opts.cuts + 1,
        );
    }
    add_stats(&mut figures.fs, &fs.take_stats());
    let seconds = started.elapsed().as_secs_f64();

    poller.abort();
    let daemon_dir = bed.daemon.dir().to_path_buf();
    let failed = figures.failed();
    drop(bed);
    drop(pty);
    if let Err(e) = mounted.unmount() {
        eprintln!("powercut: unmounting powerfs: {e}");
    }
    drop(broker);
    report(&opts, &figures, seconds, &daemon_dir);
    Ok(!failed)
}

/// Records every new event's seq; counts a seq that comes back with another event, and an event that comes back
/// with another seq.
fn check_seqs(
    log: &Log,
    cursor: &mut usize,
    seqs: &mut HashMap<u64, (String, String)>,
    ids_seq: &mut HashMap<String, u64>,
    figures: &mut Figures,
    cut: u64,
) -> String {
    let fresh = log.since(*cursor);
    *cursor += fresh.len();
    let mut reused = 0;
    for s in fresh {
        let Some(v) = event_of(&s.msg) else { continue };
        let (Some(seq), Some(id)) = (v["seq"].as_u64(), v["event_id"].as_str()) else {
            continue;
        };
        let kind = v["type"].as_str().unwrap_or("?").to_string();
        match seqs.get(&seq) {
            Some((first_id, first_kind)) if first_id != id => {
                figures.seq_reused += 1;
                reused += 1;
                if figures.seq_details.len() < 20 {
                    figures.seq_details.push(format!(
                        "seq {seq}: first {first_kind} {first_id}, after cut {} {kind} {id}",
                        cut.saturating_sub(1)
                    ));
                }
            }
            Some(_) => {}
            None => {
                seqs.insert(seq, (id.to_string(), kind.clone()));
            }
        }
        match ids_seq.get(id) {
            Some(&first) if first != seq => {
                figures.resent_other_seq += 1;
                if figures.seq_details.len() < 20 {
                    figures.seq_details.push(format!(
                        "event {id} ({kind}) came with seq {first}, then with seq {seq}"
                    ));
                }
            }
            Some(_) => {}
            None => {
                ids_seq.insert(id.to_string(), seq);
            }
        }
    }
    if reused > 0 {
        format!(", {reused} seq reused")
    } else {
        String::new()
    }
}

fn report(opts: &Opts, f: &Figures, seconds: f64, daemon_dir: &Path) {
    let modes = [
        ("drop-all", f.drop_all),
        ("random-subset", f.random),
        ("keep-all", f.keep_all),
    ];
    let all = modes
        .iter()
        .fold(ModeFigures::default(), |a, (_, m)| ModeFigures {
            cuts: a.cuts + m.cuts,
            calls_acked: a.calls_acked + m.calls_acked,
            calls_lost: a.calls_lost + m.calls_lost,
            tasks_acked: a.tasks_acked + m.tasks_acked,
            tasks_lost: a.tasks_lost + m.tasks_lost,
        });
    println!();
    println!("powercut: the figures");
    println!(
        "{:<15} {:>5} {:>12} {:>11} {:>12} {:>11}",
        "restore mode", "cuts", "calls acked", "calls lost", "tasks acked", "tasks lost"
    );
    println!("{}", "-".repeat(72));
    for (name, m) in modes
        .iter()
        .filter(|(_, m)| m.cuts > 0)
        .copied()
        .chain([("all", all)])
    {
        println!(
            "{name:<15} {:>5} {:>12} {:>11} {:>12} {:>11}",
            m.cuts, m.calls_acked, m.calls_lost, m.tasks_acked, m.tasks_lost
        );
    }
    println!();
    println!(
        "{:<24} {:>5} {:>9} {:>7} {:>8} {:>11} {:>5} {:>12} {:>11} {:>12} {:>11}",
        "cut kind",
        "cuts",
        "drop-all",
        "random",
        "by hand",
        "mid-commit",
        "torn",
        "calls acked",
        "calls lost",
        "tasks acked",
        "tasks lost"
    );
    println!("{}", "-".repeat(124));
    let mut kinds_all = KindFigures::default();
    for k in &f.kinds {
        kinds_all.cuts += k.cuts;
        kinds_all.drop_all += k.drop_all;
        kinds_all.random += k.random;
        kinds_all.keep_all += k.keep_all;
        kinds_all.by_hand += k.by_hand;
        kinds_all.dropped_blocks += k.dropped_blocks;
        kinds_all.torn += k.torn;
        kinds_all.calls_acked += k.calls_acked;
        kinds_all.calls_lost += k.calls_lost;
        kinds_all.tasks_acked += k.tasks_acked;
        kinds_all.tasks_lost += k.tasks_lost;
    }
    for (label, k) in CUT_KINDS
        .iter()
        .map(|(_, l)| *l)
        .zip(f.kinds.iter())
        .filter(|(_, k)| k.cuts > 0)
        .chain([("all", &kinds_all)])
    {
        println!(
            "{label:<24} {:>5} {:>9} {:>7} {:>8} {:>11} {:>5} {:>12} {:>11} {:>12} {:>11}",
            k.cuts,
            k.drop_all,
            k.random,
            k.by_hand,
            k.dropped_blocks,
            k.torn,
            k.calls_acked,
            k.calls_lost,
            k.tasks_acked,
            k.tasks_lost
        );
    }
    println!(
        "(mid-commit: the restore dropped unsynced blocks, the cut fell between writes and their sync; torn: a \
         random-subset restore kept some of them and dropped others; by hand: an armed cut not reached when the \
         burst was over)"
    );
    println!();
    let restart_avg = if f.restart_secs.is_empty() {
        0.0
    } else {
        f.restart_secs.iter().sum::<f64>() / f.restart_secs.len() as f64
    };
    let restart_max = f.restart_secs.iter().cloned().fold(0.0, f64::max);
    let mut t = Table::new(34, 12);
    t.header("note", "----");
    t.row(
        "seq reused",
        f.seq_reused.to_string(),
        "a seq seen before, with another event_id",
    );
    t.row(
        "events re-sent with another seq",
        f.resent_other_seq.to_string(),
        "",
    );
    t.row(
        "token lost",
        f.token_lost.to_string(),
        "cuts after which the API token answered 401",
    );
    t.row(
        "logins failed",
        f.logins_failed.to_string(),
        "admin with the chosen password, after a cut",
    );
    t.row(
        "new first-start passwords",
        f.new_first_start.to_string(),
        "the daemon made a new admin login",
    );
    t.row(
        "daemon start failures",
        f.start_failures.to_string(),
        "the store did not open (a new one is made)",
    );
    t.row("API failures", f.api_failures.to_string(), "");
    let mut landed: Vec<(&String, &u64)> = f.landed.iter().collect();
    landed.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    t.row(
        "armed cuts fired",
        f.landed.values().sum::<u64>().to_string(),
        landed
            .iter()
            .map(|(p, n)| format!("{n}x {p}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    t.row(
        "restart (avg / max)",
        format!("{restart_avg:.2} / {restart_max:.2} s"),
        "power back to healthy with the modem initialised",
    );
    t.row(
        "daemon's syncs",
        format!("{}", f.fs.fsyncs + f.fs.fdatasyncs + f.fs.fsyncdirs),
        format!(
            "fsync {}, fdatasync {}, fsyncdir {} (sync_file_range never reaches a disk cache)",
            f.fs.fsyncs, f.fs.fdatasyncs, f.fs.fsyncdirs
        ),
    );
    t.row(
        "daemon's writes",
        f.fs.writes.to_string(),
        format!(
            "{:.1} MB; {} truncates, {} creates, {} renames, {} unlinks; {} refused after cuts",
            f.fs.bytes_written as f64 / 1e6,
            f.fs.truncates,
            f.fs.creates,
            f.fs.renames,
            f.fs.unlinks,
            f.fs.refused_after_cut
        ),
    );
    t.row(
        "thrown away by restores",
        f.restore_dropped_blocks.to_string(),
        format!(
            "unsynced blocks and size changes; {} directory operations, {} files",
            f.restore_dropped_entries, f.restore_removed_inodes
        ),
    );
    let mut vanished: Vec<(&String, &u64)> = f.vanished.iter().collect();
    vanished.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    t.row(
        "paths that vanished",
        f.vanished.values().sum::<u64>().to_string(),
        vanished
            .iter()
            .take(6)
            .map(|(p, n)| format!("{p} {n}x"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    t.row(
        "total time",
        format!("{seconds:.1} s"),
        format!("{} cuts", all.cuts),
    );
    print!("{}", t.into_string());
    if !f.lost.is_empty() {
        println!();
        println!("powercut: LOST: {} acknowledged records", f.lost.len());
        for l in &f.lost {
            println!(
                "  {} {} (number {}, {}) acknowledged at +{:.3} s (before cut {}); missing after cut {} ({}, {}), {:.3} s \
                 after its acknowledgement{}",
                l.record.kind,
                l.record.key,
                l.record.number,
                l.record.what,
                l.acked_at.as_secs_f64(),
                l.record.cut,
                l.missing_after,
                l.mode,
                l.cut_kind,
                l.before_cut.as_secs_f64(),
                match &l.found {
                    Some(o) => format!(", found with {o}"),
                    None => String::new(),
                }
            );
        }
    }
    let (shown, more) = (10, f.login_details.len().saturating_sub(10));
    for d in f
        .seq_details
        .iter()
        .chain(f.login_details.iter().take(shown))
        .chain(&f.other_failures)
    {
        println!("  {d}");
    }
    if more > 0 {
        println!("  ... and {more} more failed logins");
    }
    // (At most 200 in the JSON line; the text above has them all.)
    let lost_json: Vec<Value> = f
        .lost
        .iter()
        .take(200)
        .map(|l| {
            json!({
                "kind": l.record.kind,
                "key": l.record.key,
                "number": l.record.number,
                "what": l.record.what,
                "acked_before_cut": l.record.cut,
                "acked_at_s": (l.acked_at.as_secs_f64() * 1000.0).round() / 1000.0,
                "secs_before_cut": (l.before_cut.as_secs_f64() * 1000.0).round() / 1000.0,
                "missing_after_cut": l.missing_after,
                "mode": l.mode.to_string(),
                "cut_kind": l.cut_kind,
                "found": l.found,
            })
        })
        .collect();
    let mode_json = |m: &ModeFigures| {
        json!({
            "cuts": m.cuts,
            "calls_acked": m.calls_acked,
            "calls_lost": m.calls_lost,
            "tasks_acked": m.tasks_acked,
            "tasks_lost": m.tasks_lost,
        })
    };
    let kind_json = |k: &KindFigures| {
        json!({
            "cuts": k.cuts,
            "drop_all": k.drop_all,
            "random_subset": k.random,
            "keep_all": k.keep_all,
            "by_hand": k.by_hand,
            "mid_commit": k.dropped_blocks,
            "torn": k.torn,
            "calls_acked": k.calls_acked,
            "calls_lost": k.calls_lost,
            "tasks_acked": k.tasks_acked,
            "tasks_lost": k.tasks_lost,
        })
    };
    let by_kind: serde_json::Map<String, Value> = CUT_KINDS
        .iter()
        .zip(f.kinds.iter())
        .map(|((key, _), k)| (key.to_string(), kind_json(k)))
        .collect();
    let armed = f.kinds[2..].iter().fold((0, 0, 0, 0), |(c, h, d, t), k| {
        (c + k.cuts, h + k.by_hand, d + k.dropped_blocks, t + k.torn)
    });
    let out = json!({
        "bench": "powercut",
        "version": 2,
        "seed": opts.seed,
        "cuts": all.cuts,
        "daemon": daemon_bin().display().to_string(),
        "drop_all": mode_json(&f.drop_all),
        "random_subset": mode_json(&f.random),
        "keep_all": mode_json(&f.keep_all),
        "cuts_by_kind": by_kind,
        "armed": {
            "cuts": armed.0,
            "fired": armed.0 - armed.1,
            "by_hand": armed.1,
            "mid_commit": armed.2,
            "torn": armed.3,
            "landed": f.landed,
        },
        "mid_commit_cuts": kinds_all.dropped_blocks,
        "torn_cuts": kinds_all.torn,
        "calls_acked": all.calls_acked,
        "calls_lost": all.calls_lost,
        "tasks_acked": all.tasks_acked,
        "tasks_lost": all.tasks_lost,
        "seq_reused": f.seq_reused,
        "resent_other_seq": f.resent_other_seq,
        "token_lost": f.token_lost,
        "logins_failed": f.logins_failed,
        "new_first_start_passwords": f.new_first_start,
        "start_failures": f.start_failures,
        "api_failures": f.api_failures,
        "fsyncs": f.fs.fsyncs,
        "fdatasyncs": f.fs.fdatasyncs,
        "fsyncdirs": f.fs.fsyncdirs,
        "restart_avg_s": (restart_avg * 1000.0).round() / 1000.0,
        "seconds": (seconds * 10.0).round() / 10.0,
        "passed": !f.failed(),
        "lost": lost_json,
    });
    println!();
    println!("POWERCUT_JSON {out}");
    if f.failed() {
        println!(
            "powercut: FAILED (daemon logs: {}; set LINEKEEPER_E2E_KEEP=1 to keep them)",
            daemon_dir.display()
        );
    } else {
        println!("powercut: passed");
    }
}
