//! End-to-end harness for linekeeper.
//!
//! Every test drives the BUILT daemon binary as a user would: a real `mosquitto`, a real
//! `socat` pty pair with the simulated caller-ID modem on the far end, HTTP with a real
//! token, and the command line. Each test owns its own broker, pty pair, daemon and temp
//! dirs, so tests run in parallel.
//!
//! Waits never assume a machine speed: each one has a generous deadline and, when it runs
//! out, a message that says what was awaited and what was seen.
//!
//! Tests must run on a multi-threaded tokio runtime: process management and HTTP calls
//! here are blocking (short) calls made from the test body, while the simulated modem
//! and the MQTT watcher run as spawned tasks on the worker threads.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use linekeeper::adapters::modem::sim::{SimModem, SimOptions};

pub mod bench;
pub mod powerfs;
// The benches' machine description lived here before the `bench` module; kept at the root for other callers.
pub use bench::{clock_ticks, machine, Machine};

/// Deadline for things that involve a process starting or a reconnect with backoff.
pub const LONG: Duration = Duration::from_secs(60);
/// Deadline for one step of a scenario (an event to arrive, a call to end).
pub const STEP: Duration = Duration::from_secs(30);

/// Site id used in every generated config; MQTT topics are `linekeeper/hq/...`.
pub const SITE: &str = "hq";
/// The line id used in every generated config.
pub const LINE: &str = "line1";
pub const TOPIC_CALL: &str = "linekeeper/hq/events/call";
pub const TOPIC_TASK: &str = "linekeeper/hq/events/task";
pub const TOPIC_STATUS: &str = "linekeeper/hq/status";
pub const TOPIC_LINE_STATE: &str = "linekeeper/hq/line/line1/state";
pub const TOPIC_QUEUE: &str = "linekeeper/hq/queue";
pub const TOPIC_ALERT: &str = "linekeeper/hq/alert";

// ---------------------------------------------------------------------------------------
// Locations
// ---------------------------------------------------------------------------------------

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent directory")
        .to_path_buf()
}

/// The cargo target directory: `$CARGO_TARGET_DIR` if set, else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// The daemon binary under test: `$LINEKEEPER_BIN`, else `<target>/debug/linekeeper`.
pub fn daemon_bin() -> PathBuf {
    let bin = match std::env::var_os("LINEKEEPER_BIN") {
        Some(bin) => PathBuf::from(bin),
        None => target_dir().join("debug").join("linekeeper"),
    };
    assert!(
        bin.is_file(),
        "the linekeeper binary {} does not exist: build it first with `cargo build -p linekeeper` \
         (or point $LINEKEEPER_BIN at it)",
        bin.display()
    );
    bin
}

/// A TCP port on 127.0.0.1 that is free right now.
///
/// Ports come from 20000..30000, below Linux's ephemeral range (32768..61000), so an
/// outgoing connection of another test can't grab one between this call and its use. A
/// per-process counter keeps two tests of this binary from drawing the same port.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // One seed per process: with a seed per call, two calls before either port is bound (a broker's two
    // listeners) could draw the same port.
    static SEED: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        std::process::id().wrapping_mul(2_654_435_761)
            ^ SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
    });
    for _ in 0..10_000 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (seed.wrapping_add(n.wrapping_mul(7_919)) % 10_000) as u16;
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            drop(listener);
            return port;
        }
    }
    panic!("no free TCP port found in 20000..30000 on 127.0.0.1");
}

/// A temp dir for one peer. With `$LINEKEEPER_E2E_KEEP` set it is left behind (and its
/// path printed) so a failed run's logs and store can be examined.
pub fn test_dir(prefix: &str) -> TempDir {
    let keep = std::env::var_os("LINEKEEPER_E2E_KEEP").is_some();
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .disable_cleanup(keep)
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot create a temp dir {prefix}*: {e}"));
    if keep {
        eprintln!("e2e: keeping {}", dir.path().display());
    }
    dir
}

// ---------------------------------------------------------------------------------------
// Small process helpers
// ---------------------------------------------------------------------------------------

fn send_signal(child: &Child, signal: libc::c_int) {
    let pid = child.id() as libc::pid_t;
    // SAFETY: kill(2) with the pid of a child we have not reaped yet.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// SIGTERM, wait up to `grace`, then SIGKILL; always reaps the child.
fn terminate(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    send_signal(child, libc::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn kill_now(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn append_file(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot open log file {}: {e}", path.display()))
}

/// The last `lines` lines of a file, for failure reports.
pub fn tail(path: &Path, lines: usize) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let mut bytes = Vec::new();
        let _ = f.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    let mut out = String::new();
    if start > 0 {
        out.push_str(&format!("[... {start} earlier lines ...]\n"));
    }
    for l in &all[start..] {
        out.push_str(l);
        out.push('\n');
    }
    out
}

fn print_log(title: &str, path: &Path, lines: usize) {
    eprintln!(
        "----- {title} ({}) -----\n{}----- end of {title} -----",
        path.display(),
        tail(path, lines)
    );
}

fn wait_port_accepts(port: u16, child: &mut Child, what: &str, log: &Path) {
    let deadline = Instant::now() + LONG;
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            print_log(what, log, 100);
            panic!("{what} exited ({status}) before 127.0.0.1:{port} accepted connections");
        }
        if Instant::now() > deadline {
            print_log(what, log, 100);
            panic!("{what} did not accept connections on 127.0.0.1:{port} within {LONG:?}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

// ---------------------------------------------------------------------------------------
// Mosquitto
// ---------------------------------------------------------------------------------------

/// A real mosquitto on 127.0.0.1 with a config in its own temp dir; killed on drop.
pub struct Mosquitto {
    port: u16,
    dir: TempDir,
    conf: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Mosquitto {
    /// A broker without persistence (the usual case).
    pub fn launch() -> Mosquitto {
        Self::launch_with(false, None)
    }

    /// A broker whose listener takes `settings` (mosquitto.conf lines such as `password_file`, `acl_file`,
    /// `cafile`...) instead of `allow_anonymous true`; `{dir}` in them is the broker's temp dir, where `files`
    /// (name, content) are written first.
    pub fn launch_custom(settings: &str, files: &[(&str, &str)]) -> Mosquitto {
        Self::launch_with(false, Some((settings.to_string(), files)))
    }

    /// A broker that saves sessions to its temp dir when stopped, so a persistent
    /// subscriber's session and its queued QoS 1 messages survive `stop()` + `start()`.
    pub fn launch_persistent() -> Mosquitto {
        Self::launch_with(true, None)
    }

    fn launch_with(persistent: bool, custom: Option<(String, &[(&str, &str)])>) -> Mosquitto {
        let dir = test_dir("lk-mosquitto-");
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        let log = dir.path().join("mosquitto.log");
        let settings = match custom {
            Some((settings, files)) => {
                for (name, content) in files {
                    fs::write(dir.path().join(name), content).expect("write a broker file");
                }
                settings.replace("{dir}", &dir.path().to_string_lossy())
            }
            None => "allow_anonymous true".to_string(),
        };
        let mut text = format!(
            "# written by the linekeeper e2e harness\n\
             listener {port} 127.0.0.1\n\
             {settings}\n\
             log_dest stderr\n\
             log_type error\n\
             log_type warning\n\
             log_type notice\n\
             log_type information\n\
             connection_messages true\n\
             log_timestamp true\n\
             max_queued_messages 100000\n"
        );
        // As root, mosquitto would switch to the `mosquitto` user, which can't write
        // into our temp dir; `user` is ignored when not started as root.
        text.push_str("user root\n");
        if persistent {
            text.push_str(&format!(
                "persistence true\npersistence_location {}/\nautosave_interval 1\n",
                dir.path().display()
            ));
        } else {
            text.push_str("persistence false\n");
        }
        fs::write(&conf, text).expect("write mosquitto.conf");
        let mut broker = Mosquitto {
            port,
            dir,
            conf,
            log,
            child: None,
        };
        broker.start();
        broker
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Starts the broker (again) on the same port and waits until the port accepts.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "mosquitto is already running");
        let stderr = append_file(&self.log);
        let stdout = append_file(&self.log);
        let mut child = Command::new("mosquitto")
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start mosquitto (is it installed?): {e}"));
        wait_port_accepts(self.port, &mut child, "mosquitto", &self.log);
        self.child = Some(child);
    }

    /// Stops the broker: SIGTERM (so a persistent broker saves its sessions), SIGKILL
    /// if it hasn't exited within 10 s. Every client connection drops at once.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child, Duration::from_secs(10));
        }
    }

    pub fn print_log(&self) {
        print_log("mosquitto log", &self.log, 60);
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_log();
        }
        if let Some(mut child) = self.child.take() {
            kill_now(&mut child);
        }
    }
}

// ---------------------------------------------------------------------------------------
// socat pty pair
// ---------------------------------------------------------------------------------------

/// Two ptys joined by socat: the daemon opens `daemon_side()`, the simulated modem
/// opens `modem_side()`. Killed on drop.
pub struct PtyPair {
    dir: TempDir,
    daemon_side: PathBuf,
    modem_side: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl PtyPair {
    pub fn new() -> PtyPair {
        let dir = test_dir("lk-pty-");
        let daemon_side = dir.path().join("daemon-side");
        let modem_side = dir.path().join("modem-side");
        let log = dir.path().join("socat.log");
        let mut pair = PtyPair {
            dir,
            daemon_side,
            modem_side,
            log,
            child: None,
        };
        pair.restart();
        pair
    }

    /// The link the daemon's `device` points at.
    pub fn daemon_side(&self) -> &Path {
        &self.daemon_side
    }

    /// The link the simulated modem opens.
    pub fn modem_side(&self) -> &Path {
        &self.modem_side
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills socat: both ptys vanish, the daemon and the modem read EOF, and the links
    /// are gone when this returns.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child, Duration::from_secs(5));
        }
        // socat removes its links on a clean exit; make sure of it after a SIGKILL.
        for link in [&self.daemon_side, &self.modem_side] {
            if fs::symlink_metadata(link).is_ok() {
                let _ = fs::remove_file(link);
            }
        }
    }

    /// Starts socat (again) with the same link paths; returns when both links resolve.
    pub fn restart(&mut self) {
        self.kill();
        let log = append_file(&self.log);
        let mut child = Command::new("socat")
            .arg("-d")
            .arg("-d")
            .arg(format!(
                "pty,raw,echo=0,link={}",
                self.daemon_side.display()
            ))
            .arg(format!("pty,raw,echo=0,link={}", self.modem_side.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start socat (is it installed?): {e}"));
        let deadline = Instant::now() + LONG;
        // fs::metadata follows the link: both must exist and point at a live pty.
        while fs::metadata(&self.daemon_side).is_err() || fs::metadata(&self.modem_side).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                print_log("socat log", &self.log, 50);
                panic!("socat exited ({status}) before creating its pty links");
            }
            if Instant::now() > deadline {
                print_log("socat log", &self.log, 50);
                panic!(
                    "socat did not create {} and {} within {LONG:?}",
                    self.daemon_side.display(),
                    self.modem_side.display()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.child = Some(child);
    }
}

impl Default for PtyPair {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for PtyPair {
    fn drop(&mut self) {
        if std::thread::panicking() {
            print_log("socat log", &self.log, 30);
        }
        if let Some(mut child) = self.child.take() {
            kill_now(&mut child);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The simulated modem on the far end of the pty
// ---------------------------------------------------------------------------------------

/// Opens the modem side of `pty` as a serial port and starts the simulated modem on it.
pub async fn open_modem(pty: &PtyPair) -> SimModem {
    use tokio_serial::SerialPortBuilderExt;
    let path = pty.modem_side().to_string_lossy().into_owned();
    let io = tokio_serial::new(path.clone(), 115_200)
        .open_native_async()
        .unwrap_or_else(|e| panic!("cannot open the modem side {path}: {e}"));
    SimModem::spawn(io, SimOptions::default())
}

/// Waits until the modem has seen the daemon's init sequence.
pub async fn wait_modem_initialized(modem: &SimModem) {
    if tokio::time::timeout(LONG, modem.wait_initialized())
        .await
        .is_err()
    {
        panic!(
            "the simulated modem was not initialized by the daemon within {LONG:?}; \
             commands it received: {:?}",
            modem.commands().await
        );
    }
}

// ---------------------------------------------------------------------------------------
// The daemon
// ---------------------------------------------------------------------------------------

/// The knobs tests turn in the generated config.
#[derive(Clone, Debug)]
pub struct DaemonOptions {
    pub ring_timeout: String,
    pub answer_detect: bool,
    pub mask_numbers: bool,
    pub reconnect_max: String,
    pub init_timeout: String,
    pub unknown_outcome: String,
    pub callback_due: String,
    /// `mqtt.command_role`: the role MQTT commands act with.
    pub command_role: String,
}

impl Default for DaemonOptions {
    fn default() -> Self {
        DaemonOptions {
            ring_timeout: "2s".into(),
            answer_detect: true,
            mask_numbers: true,
            reconnect_max: "2s".into(),
            init_timeout: "3s".into(),
            unknown_outcome: "review".into(),
            callback_due: "24h".into(),
            command_role: "supervisor".into(),
        }
    }
}

/// The config file the daemon reads, as the lead specified it.
pub fn render_config(
    opts: &DaemonOptions,
    store: &Path,
    device: &Path,
    mqtt_port: u16,
    web_port: u16,
) -> String {
    format!(
        r#"# written by the linekeeper e2e harness
[site]
id = "{SITE}"
name = "Test office"
timezone = "Asia/Shanghai"
language = "en"

[store]
path = "{store}"

[[line]]
id = "{LINE}"
kind = "modem"
device = "{device}"
baud = 115200
init = ["ATZ", "AT+VCID=1|AT#CID=1", "ATI"]
init_timeout = "{init_timeout}"
ring_timeout = "{ring_timeout}"
answer_detect = {answer_detect}
reconnect_max = "{reconnect_max}"

[mqtt]
host = "127.0.0.1"
port = {mqtt_port}
topic_prefix = "linekeeper"
mask_numbers = {mask_numbers}
command_role = "{command_role}"

[web]
listen = "127.0.0.1:{web_port}"

[policy]
callback_due = "{callback_due}"
unknown_outcome = "{unknown_outcome}"
answer_target = "10s"
"#,
        store = store.display(),
        device = device.display(),
        init_timeout = opts.init_timeout,
        ring_timeout = opts.ring_timeout,
        answer_detect = opts.answer_detect,
        reconnect_max = opts.reconnect_max,
        mask_numbers = opts.mask_numbers,
        callback_due = opts.callback_due,
        command_role = opts.command_role,
        unknown_outcome = opts.unknown_outcome,
    )
}

/// What a command-line run of `linekeeper` gave.
#[derive(Debug)]
pub struct CliOutput {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    /// stdout and stderr together, for "is it printed" checks.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Display for CliOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `linekeeper ARGS...` to completion (at most `LONG`, then it is killed).
pub fn linekeeper_cli(args: &[&str]) -> CliOutput {
    let dir = tempfile::Builder::new()
        .prefix("lk-cli-")
        .tempdir()
        .expect("temp dir for cli output");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let mut child = Command::new(daemon_bin())
        .args(args)
        .env_remove("LINEKEEPER_CONFIG")
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("stdout file"))
        .stderr(File::create(&err_path).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run linekeeper {args:?}: {e}"));
    let deadline = Instant::now() + LONG;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for linekeeper") {
            break status;
        }
        if Instant::now() > deadline {
            kill_now(&mut child);
            panic!(
                "`linekeeper {}` did not finish within {LONG:?}; stdout:\n{}\nstderr:\n{}",
                args.join(" "),
                tail(&out_path, 50),
                tail(&err_path, 50)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    CliOutput {
        code: status.code(),
        stdout: fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

/// An HTTP answer: status and body, whatever the status.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub body: String,
}

impl HttpResponse {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "HTTP {} body is not JSON ({e}): {}",
                self.status,
                clip(&self.body, 2000)
            )
        })
    }
}

/// The daemon process with its config and store in a temp dir; killed on drop.
pub struct Daemon {
    dir: TempDir,
    config: PathBuf,
    store: PathBuf,
    web_port: u16,
    child: Option<Child>,
    starts: u32,
    agent: ureq::Agent,
    token: Option<String>,
}

impl Daemon {
    /// Writes the config (store and logs in a fresh temp dir) without starting anything.
    pub fn new(opts: &DaemonOptions, device: &Path, mqtt_port: u16) -> Daemon {
        let dir = test_dir("lk-daemon-");
        let store = dir.path().join("store");
        let config = dir.path().join("linekeeper.toml");
        Self::new_at(opts, device, mqtt_port, dir, config, store)
    }

    /// The same with the config file and the store where the caller says (e.g. on a test file system), the logs in
    /// `dir`. The config is written with a plain `fs::write` (no sync).
    pub fn new_at(
        opts: &DaemonOptions,
        device: &Path,
        mqtt_port: u16,
        dir: TempDir,
        config: PathBuf,
        store: PathBuf,
    ) -> Daemon {
        let web_port = free_port();
        fs::write(
            &config,
            render_config(opts, &store, device, mqtt_port, web_port),
        )
        .expect("write the daemon config");
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build();
        Daemon {
            dir,
            config,
            store,
            web_port,
            child: None,
            starts: 0,
            agent,
            token: None,
        }
    }

    /// Writes the config and starts the daemon; returns once `/healthz` answers 200.
    pub fn start_new(opts: &DaemonOptions, device: &Path, mqtt_port: u16) -> Daemon {
        let mut daemon = Daemon::new(opts, device, mqtt_port);
        daemon.start();
        daemon
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// The running daemon's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn store_path(&self) -> &Path {
        &self.store
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn web_port(&self) -> u16 {
        self.web_port
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.web_port, path)
    }

    fn log_paths(&self, start: u32) -> (PathBuf, PathBuf) {
        (
            self.dir.path().join(format!("run-{start}.stdout.log")),
            self.dir.path().join(format!("run-{start}.stderr.log")),
        )
    }

    /// Prints the tails of the stdout and stderr of every run so far.
    pub fn print_logs(&self) {
        for start in 1..=self.starts {
            let (out, err) = self.log_paths(start);
            print_log(&format!("daemon run {start} stdout"), &out, 150);
            print_log(&format!("daemon run {start} stderr"), &err, 150);
        }
    }

    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Panics (with the logs) if the daemon process has exited.
    pub fn assert_running(&mut self, context: &str) {
        if let Some(child) = &mut self.child {
            if let Ok(Some(status)) = child.try_wait() {
                self.print_logs();
                panic!("the daemon exited ({status}) {context}");
            }
        } else {
            panic!("the daemon is not started ({context})");
        }
    }

    /// `linekeeper run --config PATH`, then waits for `GET /healthz` = 200.
    pub fn start(&mut self) {
        if let Err(e) = self.try_start() {
            self.print_logs();
            panic!("{e}");
        }
    }

    /// Like [`start`](Self::start), but what went wrong (the process exited, or `/healthz` did not answer 200
    /// within `LONG`) is returned instead of printed with the logs in a panic; the child is reaped then.
    pub fn try_start(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "the daemon is already running");
        self.starts += 1;
        let (out, err) = self.log_paths(self.starts);
        let log_filter =
            std::env::var("LINEKEEPER_E2E_LOG").unwrap_or_else(|_| "debug".to_string());
        let child = Command::new(daemon_bin())
            .arg("run")
            .arg("--config")
            .arg(&self.config)
            .env_remove("LINEKEEPER_CONFIG")
            .env("RUST_LOG", log_filter)
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(File::create(&out).map_err(|e| format!("daemon stdout file: {e}"))?)
            .stderr(File::create(&err).map_err(|e| format!("daemon stderr file: {e}"))?)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", daemon_bin().display()))?;
        self.child = Some(child);
        let r = self.try_wait_healthy();
        if r.is_err() {
            self.kill9();
        }
        r
    }

    /// The last `lines` lines of the stderr of the latest run.
    pub fn last_stderr(&self, lines: usize) -> String {
        tail(&self.log_paths(self.starts).1, lines)
    }

    /// Waits until `GET /healthz` answers 200 while the process stays alive.
    pub fn wait_healthy(&mut self) {
        if let Err(e) = self.try_wait_healthy() {
            self.print_logs();
            panic!("{e}");
        }
    }

    fn try_wait_healthy(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + LONG;
        loop {
            if let Some(child) = &mut self.child {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!(
                        "the daemon exited ({status}) while waiting for GET /healthz to answer 200"
                    ));
                }
            }
            let last = match self.agent.get(&self.url("/healthz")).call() {
                Ok(resp) if resp.status() == 200 => return Ok(()),
                Ok(resp) => format!("HTTP {}", resp.status()),
                Err(ureq::Error::Status(code, resp)) => format!(
                    "HTTP {code}: {}",
                    clip(&resp.into_string().unwrap_or_default(), 500)
                ),
                Err(e) => format!("transport error: {e}"),
            };
            if Instant::now() > deadline {
                return Err(format!(
                    "GET /healthz did not answer 200 within {LONG:?}; last answer: {last}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `/healthz` reports `link` = `want` for the line.
    pub fn wait_link(&mut self, want: &str) -> Value {
        let deadline = Instant::now() + LONG;
        loop {
            self.assert_running(&format!("while waiting for line {LINE} link {want:?}"));
            let resp = self.get_with("/healthz", None);
            if let Ok(health) = serde_json::from_str::<Value>(&resp.body) {
                let link = health["lines"].as_array().and_then(|lines| {
                    lines
                        .iter()
                        .find(|l| l["id"] == LINE)
                        .map(|l| l["link"].clone())
                });
                if link.as_ref().and_then(Value::as_str) == Some(want) {
                    return health;
                }
                if Instant::now() > deadline {
                    self.print_logs();
                    panic!(
                        "/healthz did not report line {LINE} link {want:?} within {LONG:?}; \
                         last: HTTP {} {health}",
                        resp.status
                    );
                }
            } else if Instant::now() > deadline {
                self.print_logs();
                panic!(
                    "/healthz did not report line {LINE} link {want:?} within {LONG:?}; \
                     last: HTTP {} {}",
                    resp.status,
                    clip(&resp.body, 500)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `kill -9` the daemon and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_now(&mut child);
        }
    }

    /// Kills the daemon if it runs and starts it again with the same config and store.
    pub fn restart(&mut self) {
        self.kill9();
        self.start();
    }

    /// Runs `linekeeper ARGS... --config PATH`.
    pub fn cli(&self, args: &[&str]) -> CliOutput {
        let config = self.config.to_string_lossy().into_owned();
        let mut all: Vec<&str> = args.to_vec();
        all.push("--config");
        all.push(&config);
        linekeeper_cli(&all)
    }

    /// `linekeeper token create NAME --role admin --config PATH`: the token (stdout, trimmed).
    pub fn token(&self, name: &str) -> String {
        self.token_with_role(name, "admin")
    }

    /// `linekeeper token create NAME --role ROLE --config PATH`: the token (stdout, trimmed).
    pub fn token_with_role(&self, name: &str, role: &str) -> String {
        let out = self.cli(&["token", "create", name, "--role", role]);
        assert_eq!(
            out.code,
            Some(0),
            "`linekeeper token create {name}` failed:\n{out}"
        );
        let token = out.stdout.trim().to_string();
        assert!(
            !token.is_empty() && !token.contains(char::is_whitespace),
            "`linekeeper token create {name}` must print only the token on stdout, printed:\n{out}"
        );
        token
    }

    /// The token the HTTP helpers send.
    pub fn use_token(&mut self, token: String) {
        self.token = Some(token);
    }

    /// Creates a token and makes the HTTP helpers send it.
    pub fn authorize(&mut self) -> String {
        let token = self.token("e2e");
        self.token = Some(token.clone());
        token
    }

    fn bearer(&self) -> Option<String> {
        self.token.as_ref().map(|t| format!("Bearer {t}"))
    }

    /// GET with the current token (if any).
    pub fn get(&self, path: &str) -> HttpResponse {
        self.get_with(path, self.bearer().as_deref())
    }

    /// GET with an explicit `Authorization` header value (or none).
    pub fn get_with(&self, path: &str, authorization: Option<&str>) -> HttpResponse {
        let mut req = self.agent.get(&self.url(path));
        if let Some(auth) = authorization {
            req = req.set("Authorization", auth);
        }
        finish(req.call(), "GET", path)
    }

    /// POST a JSON body with the current token (if any).
    pub fn post_json(&self, path: &str, body: &Value) -> HttpResponse {
        self.post_json_with(path, self.bearer().as_deref(), body)
    }

    /// POST a JSON body with an explicit `Authorization` header value (or none).
    pub fn post_json_with(
        &self,
        path: &str,
        authorization: Option<&str>,
        body: &Value,
    ) -> HttpResponse {
        let mut req = self.agent.post(&self.url(path));
        if let Some(auth) = authorization {
            req = req.set("Authorization", auth);
        }
        finish(req.send_json(body.clone()), "POST", path)
    }

    /// GET a path that must answer 200 with a JSON array.
    pub fn get_array(&self, path: &str) -> Vec<Value> {
        let resp = self.get(path);
        assert_eq!(
            resp.status,
            200,
            "GET {path} answered {} instead of 200: {}",
            resp.status,
            clip(&resp.body, 2000)
        );
        match resp.json() {
            Value::Array(items) => items,
            other => panic!(
                "GET {path} did not answer a JSON array: {}",
                clip(&other.to_string(), 2000)
            ),
        }
    }

    /// `GET /api/calls` (all of them).
    pub fn calls(&self) -> Vec<Value> {
        self.get_array("/api/calls?limit=100000")
    }

    /// `GET /api/tasks?state=STATE`.
    pub fn tasks(&self, state: &str) -> Vec<Value> {
        self.get_array(&format!("/api/tasks?state={state}"))
    }

    /// `GET /healthz` as JSON (whatever the status).
    pub fn health(&self) -> Value {
        self.get_with("/healthz", None).json()
    }

    /// Polls `GET /api/calls` until a call with `number` has ended (has an `outcome`
    /// or an `ended_at`); returns it. Needs no MQTT, so it works during a broker outage.
    pub fn wait_call_ended_http(&mut self, number: &str) -> Value {
        let deadline = Instant::now() + STEP;
        loop {
            self.assert_running(&format!("while waiting for the call from {number} to end"));
            let calls = self.calls();
            if let Some(call) = calls.iter().find(|c| {
                c["number"] == number && (!c["ended_at"].is_null() || !c["outcome"].is_null())
            }) {
                return call.clone();
            }
            if Instant::now() > deadline {
                self.print_logs();
                panic!(
                    "GET /api/calls showed no ended call from {number} within {STEP:?}; \
                     the newest calls: {}",
                    clip(
                        &Value::Array(calls.into_iter().take(5).collect()).to_string(),
                        3000
                    )
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

fn finish(result: Result<ureq::Response, ureq::Error>, method: &str, path: &str) -> HttpResponse {
    match result {
        Ok(resp) => HttpResponse {
            status: resp.status(),
            body: resp.into_string().unwrap_or_default(),
        },
        Err(ureq::Error::Status(status, resp)) => HttpResponse {
            status,
            body: resp.into_string().unwrap_or_default(),
        },
        Err(e) => panic!("{method} {path}: no HTTP answer: {e}"),
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_logs();
        }
        if let Some(mut child) = self.child.take() {
            kill_now(&mut child);
        }
    }
}

// ---------------------------------------------------------------------------------------
// MQTT watcher
// ---------------------------------------------------------------------------------------

/// One message the watcher received.
#[derive(Clone, Debug)]
pub struct MqttMsg {
    pub topic: String,
    pub payload: String,
    pub retain: bool,
}

impl MqttMsg {
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.payload).ok()
    }
}

impl std::fmt::Display for MqttMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}{} {}",
            self.topic,
            if self.retain { " [retained]" } else { "" },
            clip(&self.payload, 400)
        )
    }
}

#[derive(Default)]
struct WatchState {
    messages: Vec<MqttMsg>,
    connacks: u64,
    subacks: u64,
    errors: u64,
    last_error: Option<String>,
}

/// Subscribes to `linekeeper/#` (QoS 1) and records every message. Reconnects after a
/// broker restart and subscribes again on every ConnAck.
pub struct MqttWatch {
    state: Arc<Mutex<WatchState>>,
    changed: watch::Receiver<u64>,
    task: JoinHandle<()>,
    client_id: String,
}

impl MqttWatch {
    /// A clean-session watcher; returns once its subscription is acknowledged.
    pub async fn start(port: u16) -> MqttWatch {
        static N: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "e2e-watch-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        Self::start_with(port, id, true).await
    }

    /// A watcher with a persistent session (clean_session = false): with a persistent
    /// broker, messages published while it is disconnected are queued for it.
    pub async fn start_persistent(port: u16) -> MqttWatch {
        static N: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "e2e-durable-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        Self::start_with(port, id, false).await
    }

    /// A persistent-session watcher (as [`start_persistent`](Self::start_persistent)) of another topic filter.
    pub async fn start_persistent_topic(port: u16, filter: &str) -> MqttWatch {
        static N: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "e2e-durable-topic-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        Self::start_filtered(port, id, false, filter.to_string()).await
    }

    /// A watcher of another topic filter (e.g. `homeassistant/#`, or `#` for everything).
    pub async fn start_topic(port: u16, filter: &str) -> MqttWatch {
        static N: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "e2e-topic-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        Self::start_filtered(port, id, true, filter.to_string()).await
    }

    async fn start_with(port: u16, client_id: String, clean: bool) -> MqttWatch {
        Self::start_filtered(port, client_id, clean, "linekeeper/#".to_string()).await
    }

    async fn start_filtered(
        port: u16,
        client_id: String,
        clean: bool,
        filter: String,
    ) -> MqttWatch {
        let mut opts = MqttOptions::new(client_id.clone(), "127.0.0.1", port);
        // Generous: a watcher on a loaded 2-core CI machine must not drop its session.
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_clean_session(clean);
        opts.set_max_packet_size(4 * 1024 * 1024, 64 * 1024);
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        let state = Arc::new(Mutex::new(WatchState::default()));
        let (tx, changed) = watch::channel(0u64);
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        st.lock().unwrap().connacks += 1;
                        // Subscriptions vanish with a clean session: subscribe on every ConnAck.
                        let _ = client.try_subscribe(filter.as_str(), QoS::AtLeastOnce);
                        tx.send_modify(|n| *n += 1);
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        st.lock().unwrap().subacks += 1;
                        tx.send_modify(|n| *n += 1);
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let msg = MqttMsg {
                            topic: p.topic.clone(),
                            payload: String::from_utf8_lossy(&p.payload).into_owned(),
                            retain: p.retain,
                        };
                        st.lock().unwrap().messages.push(msg);
                        tx.send_modify(|n| *n += 1);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        {
                            let mut s = st.lock().unwrap();
                            s.errors += 1;
                            s.last_error = Some(e.to_string());
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        let w = MqttWatch {
            state,
            changed,
            task,
            client_id,
        };
        w.wait_subscribed(0).await;
        w
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// How many times the watcher has connected.
    pub fn connacks(&self) -> u64 {
        self.state.lock().unwrap().connacks
    }

    /// Waits until more than `previous` subscriptions have been acknowledged.
    pub async fn wait_subscribed(&self, previous: u64) {
        let deadline = Instant::now() + LONG;
        let mut rx = self.changed.clone();
        loop {
            let (subacks, errors, last) = {
                let s = self.state.lock().unwrap();
                (s.subacks, s.errors, s.last_error.clone())
            };
            if subacks > previous {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, rx.changed()).await.is_err() {
                panic!(
                    "the MQTT watcher {} did not get its subscription acknowledged within \
                     {LONG:?}; {errors} connection errors, last: {last:?}",
                    self.client_id
                );
            }
        }
    }

    pub fn subacks(&self) -> u64 {
        self.state.lock().unwrap().subacks
    }

    /// Every message so far, in arrival order.
    pub fn messages(&self) -> Vec<MqttMsg> {
        self.state.lock().unwrap().messages.clone()
    }

    /// The messages from index `from` on, in arrival order (cheaper than [`messages`](Self::messages) for a poller).
    pub fn messages_since(&self, from: usize) -> Vec<MqttMsg> {
        let s = self.state.lock().unwrap();
        s.messages
            .get(from..)
            .map(<[MqttMsg]>::to_vec)
            .unwrap_or_default()
    }

    /// How many messages have arrived so far (a mark for `wait_for_from`).
    pub fn mark(&self) -> usize {
        self.state.lock().unwrap().messages.len()
    }

    /// Messages on exactly `topic`.
    pub fn on(&self, topic: &str) -> Vec<MqttMsg> {
        self.messages()
            .into_iter()
            .filter(|m| m.topic == topic)
            .collect()
    }

    /// The JSON payloads of the messages on exactly `topic` (panics on a non-JSON one).
    pub fn events(&self, topic: &str) -> Vec<Value> {
        self.on(topic)
            .into_iter()
            .map(|m| {
                m.json()
                    .unwrap_or_else(|| panic!("a message on {topic} is not JSON: {m}"))
            })
            .collect()
    }

    /// Events on `topic` of the given `type`.
    pub fn events_of(&self, topic: &str, kind: &str) -> Vec<Value> {
        self.events(topic)
            .into_iter()
            .filter(|e| e["type"] == kind)
            .collect()
    }

    /// The first message (from the start) that matches.
    pub async fn wait_for<F>(&self, what: &str, timeout: Duration, pred: F) -> MqttMsg
    where
        F: Fn(&MqttMsg) -> bool,
    {
        self.wait_for_from(0, what, timeout, pred).await
    }

    /// The first message at index `from` or later that matches.
    pub async fn wait_for_from<F>(
        &self,
        from: usize,
        what: &str,
        timeout: Duration,
        pred: F,
    ) -> MqttMsg
    where
        F: Fn(&MqttMsg) -> bool,
    {
        self.wait_for_idx(from, what, timeout, pred).await.1
    }

    /// The first message at index `from` or later that matches, with its index.
    pub async fn wait_for_idx<F>(
        &self,
        from: usize,
        what: &str,
        timeout: Duration,
        pred: F,
    ) -> (usize, MqttMsg)
    where
        F: Fn(&MqttMsg) -> bool,
    {
        let deadline = Instant::now() + timeout;
        let mut rx = self.changed.clone();
        loop {
            rx.borrow_and_update();
            {
                let s = self.state.lock().unwrap();
                if let Some((i, m)) = s
                    .messages
                    .iter()
                    .enumerate()
                    .skip(from)
                    .find(|(_, m)| pred(m))
                {
                    return (i, m.clone());
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, rx.changed()).await.is_err() {
                panic!(
                    "{}",
                    self.report(&format!("timed out after {timeout:?} waiting for {what}"))
                );
            }
        }
    }

    /// The first JSON event on `topic` (from index `from`) for which `pred` holds.
    pub async fn wait_event_from<F>(
        &self,
        from: usize,
        topic: &str,
        what: &str,
        timeout: Duration,
        pred: F,
    ) -> Value
    where
        F: Fn(&Value) -> bool,
    {
        let msg = self
            .wait_for_from(from, what, timeout, |m| {
                m.topic == topic && m.json().is_some_and(|v| pred(&v))
            })
            .await;
        msg.json().expect("matched JSON")
    }

    /// The first JSON event on `topic` for which `pred` holds.
    pub async fn wait_event<F>(&self, topic: &str, what: &str, timeout: Duration, pred: F) -> Value
    where
        F: Fn(&Value) -> bool,
    {
        self.wait_event_from(0, topic, what, timeout, pred).await
    }

    /// Waits until `pred` holds over all messages received so far.
    pub async fn wait_until<F>(&self, what: &str, timeout: Duration, pred: F)
    where
        F: Fn(&[MqttMsg]) -> bool,
    {
        let deadline = Instant::now() + timeout;
        let mut rx = self.changed.clone();
        loop {
            rx.borrow_and_update();
            {
                let s = self.state.lock().unwrap();
                if pred(&s.messages) {
                    return;
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, rx.changed()).await.is_err() {
                panic!(
                    "{}",
                    self.report(&format!("timed out after {timeout:?} waiting for {what}"))
                );
            }
        }
    }

    /// Waits until `found` returns true for some message. Each message is offered to
    /// `found` once, in arrival order, so a long stream costs linear time (a predicate
    /// over all messages on every arrival would be quadratic and could hold the lock long
    /// enough to starve the watcher's keep-alive on a slow machine).
    pub async fn wait_for_each<F>(&self, what: &str, timeout: Duration, mut found: F)
    where
        F: FnMut(&MqttMsg) -> bool,
    {
        let deadline = Instant::now() + timeout;
        let mut rx = self.changed.clone();
        let mut seen = 0;
        loop {
            rx.borrow_and_update();
            let fresh: Vec<MqttMsg> = {
                let s = self.state.lock().unwrap();
                let fresh = s.messages[seen..].to_vec();
                seen = s.messages.len();
                fresh
            };
            if fresh.iter().any(&mut found) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, rx.changed()).await.is_err() {
                panic!(
                    "{}",
                    self.report(&format!("timed out after {timeout:?} waiting for {what}"))
                );
            }
        }
    }

    /// A failure report: the headline, connection facts, and the last messages seen.
    pub fn report(&self, headline: &str) -> String {
        let s = self.state.lock().unwrap();
        let mut out = format!(
            "{headline}\nMQTT watcher {}: {} connects, {} subscriptions acknowledged, {} errors (last: {:?}); \
             {} messages seen",
            self.client_id,
            s.connacks,
            s.subacks,
            s.errors,
            s.last_error,
            s.messages.len()
        );
        let start = s.messages.len().saturating_sub(40);
        if start > 0 {
            out.push_str(", the last 40 of them:");
        } else {
            out.push(':');
        }
        for m in &s.messages[start..] {
            out.push_str("\n  ");
            out.push_str(&m.to_string());
        }
        out
    }
}

impl Drop for MqttWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------------------
// A whole test bed
// ---------------------------------------------------------------------------------------

/// Broker, watcher, pty pair, simulated modem and daemon for one test. Fields drop in
/// declaration order: the daemon goes first.
pub struct Env {
    pub daemon: Daemon,
    pub modem: SimModem,
    pub pty: PtyPair,
    pub watch: MqttWatch,
    pub broker: Mosquitto,
}

impl Env {
    /// Everything up and initialized, with a token the HTTP helpers send.
    pub async fn start(opts: DaemonOptions) -> Env {
        Self::start_with(opts, false).await
    }

    /// The same with a persistent broker and a persistent-session watcher.
    pub async fn start_durable(opts: DaemonOptions) -> Env {
        Self::start_with(opts, true).await
    }

    async fn start_with(opts: DaemonOptions, durable: bool) -> Env {
        let broker = if durable {
            Mosquitto::launch_persistent()
        } else {
            Mosquitto::launch()
        };
        let watch = if durable {
            MqttWatch::start_persistent(broker.port()).await
        } else {
            MqttWatch::start(broker.port()).await
        };
        let pty = PtyPair::new();
        let modem = open_modem(&pty).await;
        let mut daemon = Daemon::new(&opts, pty.daemon_side(), broker.port());
        daemon.start();
        wait_modem_initialized(&modem).await;
        daemon.wait_link("up");
        daemon.authorize();
        Env {
            daemon,
            modem,
            pty,
            watch,
            broker,
        }
    }

    /// A missed call as a modem reports it: RING, the caller-ID block, RING, then silence.
    pub async fn ring_with_caller_id(&self, number: &str, name: &str) {
        self.modem.ring().await;
        self.modem.caller_id(Some(number), Some(name)).await;
        self.modem.ring().await;
    }

    /// Waits for `call.ringing` with this (as published) number; returns the event.
    pub async fn wait_ringing(&self, from: usize, published_number: &str) -> Value {
        let n = published_number.to_string();
        self.watch
            .wait_event_from(
                from,
                TOPIC_CALL,
                &format!("call.ringing for {published_number}"),
                STEP,
                move |e| e["type"] == "call.ringing" && e["call"]["number"] == n.as_str(),
            )
            .await
    }

    /// Waits for a message on the line state topic (index `from` or later) whose JSON
    /// `state` is `state`; returns its index and JSON.
    pub async fn wait_line_state(&self, from: usize, state: &str) -> (usize, Value) {
        let want = state.to_string();
        let (i, m) = self
            .watch
            .wait_for_idx(
                from,
                &format!("{TOPIC_LINE_STATE} with state {state:?}"),
                LONG,
                move |m| {
                    m.topic == TOPIC_LINE_STATE
                        && m.json().is_some_and(|v| v["state"] == want.as_str())
                },
            )
            .await;
        (i, m.json().expect("matched JSON"))
    }

    /// Kills the daemon if it runs, starts it again on the same config and store, and
    /// waits until it has initialized the modem again and reports the link up.
    pub async fn restart_daemon(&mut self) {
        let before = self.modem.commands().await.len();
        self.daemon.restart();
        let deadline = Instant::now() + LONG;
        loop {
            if caller_id_init_since(&self.modem, before).await {
                break;
            }
            self.daemon
                .assert_running("while waiting for it to initialize the modem again");
            if Instant::now() > deadline {
                self.daemon.print_logs();
                let commands = self.modem.commands().await;
                panic!(
                    "the restarted daemon did not send its caller-ID init command within                      {LONG:?}; commands since the restart: {:?}",
                    &commands[before.min(commands.len())..]
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.daemon.wait_link("up");
    }

    /// Waits for the event `kind` on `topic` about the call `call_id`.
    pub async fn wait_call_event(&self, call_id: &str, kind: &str) -> Value {
        let id = call_id.to_string();
        let k = kind.to_string();
        self.watch
            .wait_event(
                TOPIC_CALL,
                &format!("{kind} for call {call_id}"),
                STEP,
                move |e| e["type"] == k.as_str() && e["call"]["id"] == id.as_str(),
            )
            .await
    }
}

// ---------------------------------------------------------------------------------------
// Checks shared by tests
// ---------------------------------------------------------------------------------------

/// Shortens a string for a failure message.
pub fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... [{} bytes in all]", &s[..end], s.len())
}

/// `138****8000` for `13800138000`: the first three and last four digits stay.
pub fn masked(number: &str) -> String {
    if number.len() <= 7 {
        return number.to_string();
    }
    format!("{}****{}", &number[..3], &number[number.len() - 4..])
}

/// Whether the modem got the daemon's caller-ID init command (`AT+VCID=1` or `AT#CID=1`) after its first `before`
/// commands: a (re)started daemon has opened the line.
pub async fn caller_id_init_since(modem: &SimModem, before: usize) -> bool {
    modem
        .commands()
        .await
        .iter()
        .skip(before)
        .any(|c| c.to_ascii_uppercase().contains("VCID") || c.contains("#CID"))
}

/// Asserts the envelope every event carries: `event_id`, `seq`, `type`, `at` (RFC 3339).
pub fn assert_event_envelope(event: &Value) {
    assert!(
        event["event_id"].as_str().is_some_and(|s| !s.is_empty()),
        "event without a string event_id: {event}"
    );
    assert!(
        event["seq"].as_u64().is_some(),
        "event without an integer seq: {event}"
    );
    assert!(
        event["type"].as_str().is_some(),
        "event without a type: {event}"
    );
    let at = event["at"].as_str().unwrap_or_default();
    assert!(
        chrono::DateTime::parse_from_rfc3339(at).is_ok(),
        "event `at` {at:?} is not RFC 3339 with an offset: {event}"
    );
}

/// The ids (`field`) of a list of JSON objects.
pub fn ids(items: &[Value], field: &str) -> BTreeSet<String> {
    items
        .iter()
        .filter_map(|v| v[field].as_str().map(str::to_string))
        .collect()
}

/// A deterministic stream of pseudo-random bytes (xorshift64*).
pub fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        for b in v.to_le_bytes() {
            if out.len() < len {
                out.push(b);
            }
        }
    }
    out
}

/// The distinct events (JSON with `event_id` and `seq`, not retained) among `msgs`, in
/// order of first arrival. Panics if a repeated `event_id` comes back with another `seq`
/// or `type`.
pub fn distinct_events(msgs: &[MqttMsg]) -> Vec<Value> {
    let mut seen: std::collections::HashMap<String, Value> = std::collections::HashMap::new();
    let mut out = Vec::new();
    for m in msgs.iter().filter(|m| !m.retain) {
        let Some(v) = m.json() else { continue };
        let (Some(id), Some(_)) = (v["event_id"].as_str(), v["seq"].as_u64()) else {
            continue;
        };
        match seen.get(id) {
            Some(first) => {
                assert!(
                    first["seq"] == v["seq"] && first["type"] == v["type"],
                    "event_id {id} was published twice with different content:\n  {first}\n  {v}"
                );
            }
            None => {
                seen.insert(id.to_string(), v.clone());
                out.push(v);
            }
        }
    }
    out
}

/// Asserts that the `seq` of `events` (in arrival order) goes up by exactly one each time.
pub fn assert_seq_contiguous(events: &[Value]) {
    for pair in events.windows(2) {
        let (a, b) = (pair[0]["seq"].as_u64(), pair[1]["seq"].as_u64());
        assert!(
            matches!((a, b), (Some(a), Some(b)) if b == a + 1),
            "seq must go up by one from event to event (no gap, no reordering); got\n  {}\nthen\n  {}\nall seqs in arrival order: {:?}",
            pair[0],
            pair[1],
            events.iter().map(|e| e["seq"].as_u64()).collect::<Vec<_>>()
        );
    }
}

/// Asserts that the `seq` of `events` (in arrival order) strictly increases.
pub fn assert_seq_increasing(events: &[Value]) {
    for pair in events.windows(2) {
        let (a, b) = (pair[0]["seq"].as_u64(), pair[1]["seq"].as_u64());
        assert!(
            matches!((a, b), (Some(a), Some(b)) if b > a),
            "seq must strictly increase in publishing order; got\n  {}\nthen\n  {}",
            pair[0],
            pair[1]
        );
    }
}

// ---------------------------------------------------------------------------------------
// The daemon's log: the web page's first-start password
// ---------------------------------------------------------------------------------------

/// `s` without ANSI escape sequences (`ESC [ ... letter`), as a log written with colours reads in plain text.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The first `password=XXXX` (XXXX alphanumeric) in a log.
pub fn logged_password(log: &str) -> Option<String> {
    let log = strip_ansi(log);
    log.match_indices("password=").find_map(|(i, key)| {
        let value: String = log[i + key.len()..]
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        (!value.is_empty()).then_some(value)
    })
}

impl Daemon {
    /// The stdout and stderr of every run so far, in order.
    pub fn log_text(&self) -> String {
        let mut text = String::new();
        for start in 1..=self.starts {
            let (out, err) = self.log_paths(start);
            for path in [out, err] {
                if let Ok(bytes) = fs::read(&path) {
                    text.push_str(&String::from_utf8_lossy(&bytes));
                }
            }
        }
        text
    }

    /// The web user's first-start password, from the line with `password=XXXX` the daemon logs on
    /// its first start; waits up to `LONG` for it.
    pub fn wait_logged_password(&mut self) -> String {
        let deadline = Instant::now() + LONG;
        loop {
            if let Some(password) = logged_password(&self.log_text()) {
                return password;
            }
            self.assert_running("while waiting for it to log the first-start web password");
            if Instant::now() > deadline {
                self.print_logs();
                let text = strip_ansi(&self.log_text());
                let mentions: Vec<&str> = text
                    .lines()
                    .filter(|l| l.to_ascii_lowercase().contains("password"))
                    .collect();
                panic!(
                    "the daemon logged no `password=XXXX` (XXXX alphanumeric) within {LONG:?}; \
                     its log lines that mention a password: {mentions:#?}"
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
