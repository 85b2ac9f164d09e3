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

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, Utc};
use linekeeper::model::{mask_number, new_id, Call, Direction, NumberStatus, Outcome};
use linekeeper::store::{Change, Store};
use linekeeper_e2e::{clock_ticks, free_port, machine, tail, target_dir, Machine, PtyPair};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinHandle;
use tokio_serial::SerialStream;

/// The site id of the generated config; topics are `linekeeper/bench/...`.
const SITE: &str = "bench";
const TOPIC_CALL: &str = "linekeeper/bench/events/call";
/// Deadline for a process to come up (healthz, MQTT connected, modem initialised).
const STARTUP: Duration = Duration::from_secs(60);
/// Deadline for one event of a paced call.
const STEP: Duration = Duration::from_secs(10);
/// Calls played on the seeded store before RSS is read (fixed by the benchmark's definition).
const RSS_CALLS: usize = 1000;
/// How many times `GET /api/calls?limit=1000` is asked on the seeded store.
const API_ROUNDS: usize = 5;
/// Calls written to the store per commit while seeding.
const SEED_BATCH: usize = 1000;

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
        let quick = args.iter().any(|a| a == "--quick");
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
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            // Accept both `--flag N` and `--flag=N`.
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) => (f, Some(v.to_string())),
                None => (arg.as_str(), None),
            };
            let mut value = |name: &str| -> Result<u64> {
                let v = match &inline {
                    Some(v) => v.clone(),
                    None => it
                        .next()
                        .cloned()
                        .ok_or_else(|| anyhow!("{name} needs a number"))?,
                };
                v.parse::<u64>()
                    .map_err(|_| anyhow!("{name} needs a whole number, got `{v}`"))
            };
            match flag {
                "--quick" => {}
                "--keep" => o.keep = true,
                "--calls" => o.calls = value("--calls")? as usize,
                "--throughput-calls" | "--tput-calls" | "-m" => {
                    o.throughput_calls = value("--throughput-calls")? as usize
                }
                "--stored" => o.stored = value("--stored")? as usize,
                "--idle-secs" => o.idle_secs = value("--idle-secs")?,
                "--dir" => {
                    let d = match inline {
                        Some(v) => v,
                        None => it
                            .next()
                            .cloned()
                            .ok_or_else(|| anyhow!("--dir needs a directory"))?,
                    };
                    o.dir = Some(PathBuf::from(d));
                }
                "-h" | "--help" => bail!("{USAGE}"),
                other => bail!("unknown argument `{other}`\n{USAGE}"),
            }
        }
        if o.calls == 0 || o.throughput_calls == 0 {
            bail!("--calls and --throughput-calls must be at least 1");
        }
        Ok(o)
    }
}

// ---------------------------------------------------------------------------------------
// The machine and /proc
// ---------------------------------------------------------------------------------------

/// utime + stime of a whole process (all its threads, including those that have exited), in
/// seconds.
fn cpu_secs(pid: u32) -> Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may contain spaces: split after it.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("unexpected /proc/{pid}/stat: {stat}"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14 and stime field 15 (1-based).
    let num = |i: usize| -> Result<u64> {
        fields
            .get(i - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| anyhow!("no field {i} in /proc/{pid}/stat"))
    };
    Ok((num(14)? + num(15)?) as f64 / clock_ticks())
}

/// A `key:   123 kB` line of /proc/PID/status, in kB.
fn status_kb(pid: u32, key: &str) -> Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| {
            let v = l.strip_prefix(key)?.strip_prefix(':')?;
            v.split_whitespace().next()?.parse().ok()
        })
        .ok_or_else(|| anyhow!("no {key} in /proc/{pid}/status"))
}

/// One thread's name and context switches (voluntary + non-voluntary).
#[derive(Debug, Clone)]
struct ThreadSample {
    name: String,
    switches: u64,
}

/// Context switches of each thread of a process, by thread id.
///
/// /proc/PID/status counts only the main thread, which in a tokio program mostly sleeps in
/// `block_on`, so the threads are read one by one from /proc/PID/task/*/status.
fn ctxt_switches(pid: u32) -> HashMap<u32, ThreadSample> {
    let mut out = HashMap::new();
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Ok(status) = fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let field = |key: &str| {
            status.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k == key).then(|| v.trim().to_string())
            })
        };
        let count = |key: &str| field(key).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        out.insert(
            tid,
            ThreadSample {
                name: field("Name").unwrap_or_default(),
                switches: count("voluntary_ctxt_switches") + count("nonvoluntary_ctxt_switches"),
            },
        );
    }
    out
}

/// Context switches between two per-thread samples, in all and per thread name (most first).
/// Threads present in both count their difference, new threads count in full; threads that
/// exited in between are counted in `exited` (their last switches are not seen).
struct CtxtDelta {
    total: u64,
    by_name: Vec<(String, u64)>,
    exited: usize,
}

fn ctxt_delta(
    before: &HashMap<u32, ThreadSample>,
    after: &HashMap<u32, ThreadSample>,
) -> CtxtDelta {
    let mut by_name: HashMap<String, u64> = HashMap::new();
    for (tid, t) in after {
        let n = t
            .switches
            .saturating_sub(before.get(tid).map(|b| b.switches).unwrap_or(0));
        *by_name.entry(t.name.clone()).or_default() += n;
    }
    let mut by_name: Vec<(String, u64)> = by_name.into_iter().filter(|(_, n)| *n > 0).collect();
    by_name.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    CtxtDelta {
        total: by_name.iter().map(|(_, n)| n).sum(),
        by_name,
        exited: before.keys().filter(|t| !after.contains_key(t)).count(),
    }
}

// ---------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------

/// A child process that is killed and reaped when dropped.
struct Proc {
    child: Child,
    what: String,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            _ => None,
        }
    }

    /// SIGTERM, then SIGKILL after `grace`. Returns how long the process took to exit.
    fn terminate(mut self, grace: Duration) -> Duration {
        let started = Instant::now();
        // SAFETY: kill(2) on our own child, not reaped yet (so the pid cannot be reused).
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        while started.elapsed() < grace {
            if self.exited().is_some() {
                return started.elapsed();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!(
            "lkbench: {} did not exit within {grace:?} of SIGTERM; killing it",
            self.what
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
        started.elapsed()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A program from $PATH, or from the sbin directories a non-login PATH may lack (mosquitto).
fn find_program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// The daemon binary: `$LINEKEEPER_BIN`, else `<target>/release/linekeeper`.
fn daemon_bin() -> Result<PathBuf> {
    let bin = match std::env::var_os("LINEKEEPER_BIN") {
        Some(b) => PathBuf::from(b),
        None => target_dir().join("release").join("linekeeper"),
    };
    if !bin.is_file() {
        bail!(
            "the daemon binary {} does not exist: build it with `cargo build --release -p linekeeper` \
             or point $LINEKEEPER_BIN at one",
            bin.display()
        );
    }
    Ok(bin)
}

/// A mosquitto of our own (the harness's broker does not expose its pid, which the CPU figures
/// need). Default broker settings, no persistence, loopback only.
struct Broker {
    port: u16,
    log: PathBuf,
    proc: Proc,
}

impl Broker {
    fn launch(dir: &Path) -> Result<Broker> {
        let port = free_port();
        let conf = dir.join("mosquitto.conf");
        let log = dir.join("mosquitto.log");
        fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\n\
                 allow_anonymous true\n\
                 persistence false\n\
                 log_dest stderr\n\
                 log_type error\n\
                 log_type warning\n\
                 log_type notice\n\
                 max_queued_messages 100000\n\
                 # ignored unless started as root, where it keeps mosquitto able to write here\n\
                 user root\n"
            ),
        )?;
        let child = Command::new(find_program("mosquitto"))
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(File::create(&log)?)
            .stderr(File::options().append(true).open(&log)?)
            .spawn()
            .context("starting mosquitto (is it installed?)")?;
        let mut proc = Proc {
            child,
            what: "mosquitto".into(),
        };
        let deadline = Instant::now() + STARTUP;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = proc.exited() {
                bail!("mosquitto exited ({status}):\n{}", tail(&log, 30));
            }
            if Instant::now() > deadline {
                bail!(
                    "mosquitto did not listen on port {port}:\n{}",
                    tail(&log, 30)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Broker { port, log, proc })
    }
}

/// The daemon under test: its config, store and logs in the bench's temp dir.
struct Daemon {
    bin: PathBuf,
    dir: PathBuf,
    config: PathBuf,
    store: PathBuf,
    web_port: u16,
    proc: Option<Proc>,
    runs: u32,
    http: ureq::Agent,
    token: Option<String>,
}

impl Daemon {
    fn new(dir: &Path, device: &Path, mqtt_port: u16) -> Result<Daemon> {
        let store = dir.join("store");
        let config = dir.join("linekeeper.toml");
        let web_port = free_port();
        // The config of the benchmark's definition: one modem line that reports OFFHOOK and
        // ONHOOK (answer_detect), so calls end at once instead of after ring_timeout.
        fs::write(
            &config,
            format!(
                r#"# written by lkbench
[site]
id = "{SITE}"
timezone = "Asia/Shanghai"

[store]
path = "{store}"

[[line]]
id = "line1"
kind = "modem"
device = "{device}"
init = ["AT"]
ring_timeout = "7s"
answer_detect = true

[mqtt]
host = "127.0.0.1"
port = {mqtt_port}

[web]
listen = "127.0.0.1:{web_port}"
"#,
                store = store.display(),
                device = device.display(),
            ),
        )?;
        Ok(Daemon {
            bin: daemon_bin()?,
            dir: dir.to_path_buf(),
            config,
            store,
            web_port,
            proc: None,
            runs: 0,
            http: ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(5))
                .timeout(Duration::from_secs(60))
                .build(),
            token: None,
        })
    }

    fn pid(&self) -> Result<u32> {
        self.proc
            .as_ref()
            .map(Proc::pid)
            .ok_or_else(|| anyhow!("the daemon is not running"))
    }

    fn stderr_log(&self) -> PathBuf {
        self.dir.join(format!("daemon-{}.stderr.log", self.runs))
    }

    /// The tail of the current run's log, for error messages.
    fn log_tail(&self) -> String {
        format!(
            "--- daemon log {} ---\n{}",
            self.stderr_log().display(),
            tail(&self.stderr_log(), 40)
        )
    }

    /// Starts `linekeeper run` with the default log level (info), as in production.
    fn spawn(&mut self) -> Result<()> {
        self.runs += 1;
        let log = self.stderr_log();
        let child = Command::new(&self.bin)
            .arg("run")
            .arg("--config")
            .arg(&self.config)
            .env_remove("LINEKEEPER_CONFIG")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(File::create(
                self.dir.join(format!("daemon-{}.stdout.log", self.runs)),
            )?)
            .stderr(File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        self.proc = Some(Proc {
            child,
            what: "the daemon".into(),
        });
        Ok(())
    }

    /// Waits until `/healthz` shows line1 `up` and MQTT `connected`; returns the health JSON.
    async fn wait_ready(&mut self) -> Result<Value> {
        let deadline = Instant::now() + STARTUP;
        let mut last = String::from("no answer yet");
        loop {
            if let Some(status) = self.proc.as_mut().and_then(Proc::exited) {
                bail!(
                    "the daemon exited ({status}) while starting\n{}",
                    self.log_tail()
                );
            }
            let (code, body) = self.get("/healthz", false).await?;
            if let Ok(h) = serde_json::from_str::<Value>(&body) {
                let link = h["lines"]
                    .as_array()
                    .and_then(|ls| ls.iter().find(|l| l["id"] == "line1"))
                    .map(|l| l["link"].clone());
                if code == 200
                    && link.as_ref().and_then(Value::as_str) == Some("up")
                    && h["mqtt"] == "connected"
                {
                    return Ok(h);
                }
                last = format!("HTTP {code} {h}");
            } else if code != 0 {
                last = format!("HTTP {code} {body}");
            }
            if Instant::now() > deadline {
                bail!(
                    "the daemon was not ready (line up, MQTT connected) within {STARTUP:?}; \
                     last /healthz: {last}\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM and wait; returns how long the daemon took to exit.
    fn stop(&mut self) -> Duration {
        self.proc
            .take()
            .map(|p| p.terminate(Duration::from_secs(15)))
            .unwrap_or_default()
    }

    /// GET on the daemon's web port (off the async workers); `(0, error)` when nothing answers.
    async fn get(&self, path: &str, auth: bool) -> Result<(u16, String)> {
        let url = format!("http://127.0.0.1:{}{path}", self.web_port);
        let mut req = self.http.get(&url);
        if auth {
            let token = self.token.as_ref().ok_or_else(|| anyhow!("no API token"))?;
            req = req.set("Authorization", &format!("Bearer {token}"));
        }
        tokio::task::spawn_blocking(move || match req.call() {
            Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
            Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
            Err(e) => (0, e.to_string()),
        })
        .await
        .context("HTTP thread")
    }

    /// A counter from `/metrics` (0 when absent).
    async fn metric(&self, name: &str) -> Result<f64> {
        let (code, body) = self.get("/metrics", false).await?;
        if code != 200 {
            bail!("GET /metrics answered {code}: {body}");
        }
        Ok(body
            .lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == name).then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0.0))
    }

    /// The last committed event `seq`, from `/healthz`.
    async fn last_seq(&self) -> Result<u64> {
        let (code, body) = self.get("/healthz", false).await?;
        serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|h| h["last_seq"].as_u64())
            .ok_or_else(|| anyhow!("GET /healthz answered {code} without last_seq: {body}"))
    }

    /// `linekeeper token create NAME --config CFG`: the token it prints.
    fn create_token(&mut self, name: &str) -> Result<()> {
        let out = Command::new(&self.bin)
            .args(["token", "create", name, "--config"])
            .arg(&self.config)
            .env_remove("LINEKEEPER_CONFIG")
            .stdin(Stdio::null())
            .output()
            .context("running `linekeeper token create`")?;
        let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() || token.is_empty() {
            bail!(
                "`linekeeper token create {name}` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        self.token = Some(token);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// The modem (our side of the pty)
// ---------------------------------------------------------------------------------------

/// The caller-ID modem the bench plays: it answers every command line with OK, and writes
/// calls on demand.
struct Modem {
    writer: Arc<Mutex<WriteHalf<SerialStream>>>,
    /// Command lines answered so far (each `\r` the daemon sent).
    commands: Arc<AtomicU64>,
    reader: JoinHandle<()>,
}

impl Modem {
    fn open(path: &Path) -> Result<Modem> {
        use tokio_serial::SerialPortBuilderExt;
        let port = tokio_serial::new(path.to_string_lossy(), 115_200)
            .open_native_async()
            .with_context(|| format!("opening the modem side of the pty {}", path.display()))?;
        let (read, write) = tokio::io::split(port);
        let writer = Arc::new(Mutex::new(write));
        let commands = Arc::new(AtomicU64::new(0));
        let reader = tokio::spawn(answer_commands(read, writer.clone(), commands.clone()));
        Ok(Modem {
            writer,
            commands,
            reader,
        })
    }

    /// Writes `bytes` and flushes; returns the moment the write completed.
    async fn write(&self, bytes: &[u8]) -> Result<Instant> {
        let mut w = self.writer.lock().await;
        w.write_all(bytes).await.context("writing to the pty")?;
        w.flush().await.context("flushing the pty")?;
        Ok(Instant::now())
    }
}

impl Drop for Modem {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Reads what the daemon sends and answers `OK` to each line ending in `\r` (its init command).
async fn answer_commands(
    mut read: ReadHalf<SerialStream>,
    writer: Arc<Mutex<WriteHalf<SerialStream>>>,
    commands: Arc<AtomicU64>,
) {
    let mut buf = [0u8; 256];
    loop {
        let n = match read.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        for _ in buf[..n].iter().filter(|&&b| b == b'\r') {
            let mut w = writer.lock().await;
            if w.write_all(b"\r\nOK\r\n").await.is_err() || w.flush().await.is_err() {
                return;
            }
            commands.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The number of the bench's call `i` (the last four digits survive the MQTT masking).
fn number(i: usize) -> String {
    format!("1380013{:04}", i % 10_000)
}

/// The caller-ID block up to (not including) the NAME line.
fn call_head(i: usize) -> String {
    format!(
        "RING\r\nDATE = 1124\r\nTIME = 0930\r\nNMBR = {}\r\n",
        number(i)
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
    task: JoinHandle<()>,
    /// Messages that were not call events with a type, a number and a seq.
    garbled: Arc<AtomicU64>,
    last_seq: u64,
    out_of_order: u64,
}

impl Subscriber {
    async fn start(port: u16) -> Result<Subscriber> {
        let mut opts =
            MqttOptions::new(format!("lkbench-{}", std::process::id()), "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(60));
        opts.set_max_packet_size(1024 * 1024, 64 * 1024);
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        let (tx, rx) = mpsc::unbounded_channel();
        let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
        let garbled = Arc::new(AtomicU64::new(0));
        let bad = garbled.clone();
        let task = tokio::spawn(async move {
            let mut subscribed_tx = Some(subscribed_tx);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        // Stamp first, then parse.
                        let at = Instant::now();
                        let v: Value = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                        let (Some(kind), Some(number), Some(seq)) = (
                            v["type"].as_str(),
                            v["call"]["number"].as_str(),
                            v["seq"].as_u64(),
                        ) else {
                            bad.fetch_add(1, Ordering::Relaxed);
                            continue;
                        };
                        let _ = tx.send(CallEvent {
                            at,
                            kind: kind.to_string(),
                            number: number.to_string(),
                            seq,
                        });
                    }
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = client.try_subscribe(TOPIC_CALL, QoS::AtLeastOnce);
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(s) = subscribed_tx.take() {
                            let _ = s.send(());
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("lkbench: MQTT subscriber: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        tokio::time::timeout(STARTUP, subscribed)
            .await
            .map_err(|_| anyhow!("the MQTT subscription was not acknowledged within {STARTUP:?}"))?
            .map_err(|_| anyhow!("the MQTT subscriber stopped"))?;
        Ok(Subscriber {
            rx,
            task,
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
                anyhow!("no call event within {timeout:?} while waiting for {waiting_for}")
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

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------------------
// Phases
// ---------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Latency {
    samples: usize,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    mean: f64,
    secs: f64,
    commits_per_call: f64,
    commit_ms: f64,
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Commits and commit time so far, from `/metrics`.
async fn commit_counters(d: &Daemon) -> Result<(f64, f64)> {
    Ok((
        d.metric("linekeeper_store_commits_total").await?,
        d.metric("linekeeper_store_commit_microseconds_total")
            .await?,
    ))
}

/// Phase 1: paced calls; NAME written and flushed -> `call.ringing` at the subscriber.
async fn latency_phase(
    modem: &Modem,
    sub: &mut Subscriber,
    daemon: &Daemon,
    n: usize,
) -> Result<Latency> {
    let (commits0, micros0) = commit_counters(daemon).await?;
    let started = Instant::now();
    let mut ms = Vec::with_capacity(n);
    for i in 0..n {
        let published = mask_number(&number(i));
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
    let (commits1, micros1) = commit_counters(daemon).await?;
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    ms.sort_by(|a, b| a.total_cmp(b));
    let commits = commits1 - commits0;
    Ok(Latency {
        samples: n,
        p50: percentile(&ms, 50.0),
        p90: percentile(&ms, 90.0),
        p99: percentile(&ms, 99.0),
        max: percentile(&ms, 100.0),
        mean,
        secs,
        commits_per_call: commits / n as f64,
        commit_ms: if commits > 0.0 {
            (micros1 - micros0) / commits / 1000.0
        } else {
            0.0
        },
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
    let after_seq = daemon.last_seq().await?;
    let (commits0, micros0) = commit_counters(daemon).await?;
    let (cpu_d0, cpu_b0) = (cpu_secs(pid)?, cpu_secs(broker_pid)?);
    let started = Instant::now();

    // One buffer per call; the pty (and behind it the daemon) sets the pace.
    let calls: Vec<Vec<u8>> = (first..first + m)
        .map(|i| format!("{}{NAME_LINE}{HANGUP}", call_head(i)).into_bytes())
        .collect();
    let writer = {
        let w = modem.writer.clone();
        tokio::spawn(async move {
            let mut w = w.lock().await;
            for c in &calls {
                w.write_all(c).await?;
            }
            w.flush().await?;
            Ok::<Instant, std::io::Error>(Instant::now())
        })
    };

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
    let want = mask_number(&number(first + m - 1));
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
    let (commits1, micros1) = commit_counters(daemon).await?;
    let commits = commits1 - commits0;
    Ok(Burst {
        calls: m,
        secs,
        write_secs: write_done.saturating_duration_since(started).as_secs_f64(),
        calls_per_s: m as f64 / secs,
        commits_per_call: commits / m as f64,
        commit_ms: if commits > 0.0 {
            (micros1 - micros0) / commits / 1000.0
        } else {
            0.0
        },
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
    let (cpu0, sw0) = (cpu_secs(pid)?, ctxt_switches(pid));
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (cpu1, sw1) = (cpu_secs(pid)?, ctxt_switches(pid));
    let elapsed = started.elapsed().as_secs_f64();
    let delta = ctxt_delta(&sw0, &sw1);
    Ok(Idle {
        secs: elapsed,
        cpu_s: cpu1 - cpu0,
        cpu_pct: 100.0 * (cpu1 - cpu0) / elapsed,
        ctxt_switches: delta.total,
        ctxt_by_thread: delta.by_name,
        threads: sw1.len(),
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
    api_ms: Vec<f64>,
    api_items: usize,
    api_kb: f64,
    hwm_mb: f64,
    rss_mb: f64,
}

/// Adds calls to the (closed) store until it holds `total`, in commits of SEED_BATCH calls.
/// The calls lie in the past, one a minute, ending an hour ago, so today's share is what a busy
/// office has and the newest calls stay those the daemon makes afterwards.
fn seed_store(path: &Path, total: usize) -> Result<usize> {
    let store = Store::open(path).context("opening the store to seed it")?;
    let mut have = 0;
    store.for_each_call("", "~", |_| have += 1)?;
    let add = total.saturating_sub(have);
    let next_seq = store.next_seq()?;
    let now = DateTime::<Utc>::from(SystemTime::now());
    let newest = now - chrono::Duration::hours(1);
    let mut i = 0;
    while i < add {
        let n = SEED_BATCH.min(add - i);
        let calls = (i..i + n)
            .map(|k| {
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
                Call {
                    id: new_id(started),
                    line: "line1".into(),
                    direction: Direction::In,
                    number: (!withheld).then(|| format!("139{:08}", k * 7919 % 100_000_000)),
                    number_status: if withheld {
                        NumberStatus::Withheld
                    } else {
                        NumberStatus::Known
                    },
                    name: (k % 3 == 0).then(|| format!("CALLER {}", k % 1000)),
                    started_at: started,
                    answered_at,
                    ended_at: Some(started + chrono::Duration::seconds(120)),
                    rings: 1 + (k % 5) as u32,
                    wait_s,
                    talk_s,
                    outcome: Some(outcome),
                    agent: None,
                    repeat: false,
                    vip: false,
                    clock_unsynced: false,
                    message: None,
                }
            })
            .collect();
        store
            .commit(
                &Change {
                    calls,
                    ..Default::default()
                },
                next_seq,
            )
            .context("seeding the store")?;
        i += n;
    }
    Ok(add)
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The filesystem holding `path`, from /proc/self/mountinfo: `TYPE on MOUNTPOINT (SOURCE)`.
/// Flush (fsync) costs depend on it: tmpfs makes them free, an SD card expensive.
fn filesystem_of(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
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

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
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
    let mut builder = tempfile::Builder::new();
    builder.prefix("lkbench-");
    let dir = match &opts.dir {
        Some(d) => builder
            .tempdir_in(d)
            .with_context(|| format!("creating a work dir in {}", d.display()))?,
        None => builder.tempdir()?,
    };
    let store_fs = filesystem_of(dir.path());
    if opts.keep {
        // The directory outlives the run (and any failure), for a look at the logs and store.
        let kept = dir.keep();
        eprintln!("lkbench: keeping {}", kept.display());
        return run_in(opts, machine, &kept, store_fs).await;
    }
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

    let broker = Broker::launch(dir)?;
    let mut sub = Subscriber::start(broker.port)
        .await
        .with_context(|| format!("mosquitto log:\n{}", tail(&broker.log, 30)))?;
    let mut pty = PtyPair::new();
    let mut modem = Modem::open(pty.modem_side())?;
    let mut daemon = Daemon::new(dir, pty.daemon_side(), broker.port)?;

    daemon.spawn()?;
    daemon.wait_ready().await?;
    if modem.commands.load(Ordering::Relaxed) == 0 {
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
    let burst = burst_phase(
        &modem,
        &mut sub,
        &daemon,
        broker.proc.pid(),
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
    let rss_before_seed_mb = mb(status_kb(pid, "VmRSS")?);
    let hwm_before_seed_mb = mb(status_kb(pid, "VmHWM")?);

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
    daemon.create_token("bench")?;
    // socat may have gone with the daemon's side of the pty: start the pair afresh.
    drop(modem);
    pty.restart();
    modem = Modem::open(pty.modem_side())?;
    sub.drain();
    // After a restart the uplink may legitimately publish again what the broker had not
    // acknowledged; those repeats have lower seqs than the last one seen.
    sub.last_seq = 0;

    let started = Instant::now();
    daemon.spawn()?;
    daemon.wait_ready().await?;
    let startup_secs = started.elapsed().as_secs_f64();
    let pid = daemon.pid()?;
    let rss_after_start_mb = mb(status_kb(pid, "VmRSS")?);
    sub.drain();
    eprintln!("lkbench: memory: {RSS_CALLS} calls and {API_ROUNDS} x GET /api/calls?limit=1000");
    let played = burst_phase(
        &modem,
        &mut sub,
        &daemon,
        broker.proc.pid(),
        opts.calls + opts.throughput_calls,
        RSS_CALLS,
    )
    .await?;
    let rss_after_calls_mb = mb(status_kb(pid, "VmRSS")?);
    let mut api_ms = Vec::new();
    let (mut api_items, mut api_bytes) = (0, 0);
    for _ in 0..API_ROUNDS {
        let t = Instant::now();
        let (code, body) = daemon.get("/api/calls?limit=1000", true).await?;
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
        store_mb: dir_bytes(&daemon.store) as f64 / (1024.0 * 1024.0),
        startup_secs,
        rss_after_start_mb,
        rss_after_calls_mb,
        calls_per_s: played.calls_per_s,
        api_ms,
        api_items,
        api_kb: api_bytes as f64 / 1024.0,
        hwm_mb: mb(status_kb(pid, "VmHWM")?),
        rss_mb: mb(status_kb(pid, "VmRSS")?),
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
    let mut out = String::new();
    let mut row = |metric: &str, value: String, target: &str, ncid: &str| {
        out.push_str(&format!("{metric:<40} {value:>14}  {target:<12} {ncid}\n"));
    };
    let l = &r.latency;
    let b = &r.burst;
    let i = &r.idle;
    let m = &r.memory;
    let per_1000 = |cpu: f64| cpu * 1000.0 / b.calls as f64;
    let f = |x: f64, d: usize| format!("{x:.d$}");

    row("metric", "value".into(), "target", "NCID");
    row(&"-".repeat(40), "-".repeat(14), "------------", "----");
    row(
        &format!("latency NAME -> call.ringing (n={})", l.samples),
        String::new(),
        "",
        "",
    );
    row("  p50 ms", f(l.p50, 2), "", "");
    row("  p90 ms", f(l.p90, 2), "", "");
    row("  p99 ms", f(l.p99, 2), "< 5", &f(NCID_P99_MS, 2));
    row("  max ms", f(l.max, 2), "", "");
    row("  mean ms", f(l.mean, 2), "", "");
    row("  paced calls/s", f(l.samples as f64 / l.secs, 1), "", "");
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
    let api_sorted = {
        let mut v = m.api_ms.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        v
    };
    row(
        &format!("  GET /api/calls?limit=1000 ms (x{API_ROUNDS})"),
        format!(
            "{:.1}..{:.1}",
            api_sorted.first().copied().unwrap_or(0.0),
            api_sorted.last().copied().unwrap_or(0.0)
        ),
        "",
        "",
    );
    row("  VmHWM MB", f(m.hwm_mb, 1), "< 30", &f(NCID_RSS_MB, 1));
    row("  VmRSS MB", f(m.rss_mb, 1), "< 30", &f(NCID_RSS_MB, 1));
    out
}

fn json_line(r: &Results) -> Value {
    let b = &r.burst;
    let per_1000 = |cpu: f64| cpu * 1000.0 / b.calls as f64;
    let round = |x: f64, d: i32| {
        let k = 10f64.powi(d);
        (x * k).round() / k
    };
    json!({
        "bench": "lkbench",
        "version": 1,
        "date": r.machine.date,
        "machine": {
            "nproc": r.machine.nproc,
            "cpu_model": r.machine.cpu_model,
            "kernel": r.machine.kernel,
            "store_fs": r.store_fs,
        },
        "params": {
            "calls": r.opts.calls,
            "throughput_calls": r.opts.throughput_calls,
            "stored": r.opts.stored,
            "idle_secs": r.opts.idle_secs,
            "quick": r.opts.quick,
        },
        "latency_ms": {
            "n": r.latency.samples,
            "p50": round(r.latency.p50, 3),
            "p90": round(r.latency.p90, 3),
            "p99": round(r.latency.p99, 3),
            "max": round(r.latency.max, 3),
            "mean": round(r.latency.mean, 3),
            "commits_per_call": round(r.latency.commits_per_call, 3),
            "commit_ms": round(r.latency.commit_ms, 3),
        },
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
            "api_calls_ms": r.memory.api_ms.iter().map(|x| round(*x, 2)).collect::<Vec<_>>(),
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
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match Options::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lkbench: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        tokio::select! {
            r = run(opts) => r,
            // Ctrl-C: return, so the drops stop mosquitto, socat and the daemon.
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
        }
    });
    match result {
        Ok(r) => {
            let m = &r.machine;
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(
                stdout,
                "lkbench {}: {} CPU(s), {}, Linux {}",
                m.date, m.nproc, m.cpu_model, m.kernel
            );
            let _ = writeln!(stdout, "store: {}", r.store_fs);
            let _ = writeln!(
                stdout,
                "params: {} paced calls, {} back to back, {} stored, {} s idle{}\n",
                r.opts.calls,
                r.opts.throughput_calls,
                r.opts.stored,
                r.opts.idle_secs,
                if r.opts.quick { " (--quick)" } else { "" }
            );
            let _ = write!(stdout, "{}", report(&r));
            let _ = writeln!(stdout, "\nLKBENCH_JSON {}", json_line(&r));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lkbench: FAILED: {e:#}");
            eprintln!("lkbench: --keep keeps the work dir with the daemon's and broker's logs");
            ExitCode::FAILURE
        }
    }
}
