//! What the benchmark binaries (`lkbench`, `mqttbench`, `policybench`, `webbench`) share.
//!
//! - their `main` ([`main`]): the command line ([`parse_flags`]), the run ([`block_on`], [`work_dir`]);
//! - their output: the machine they ran on ([`machine`]), the table ([`Table`]) and the one line of JSON for
//!   scripts ([`json_report`], [`print_report`]);
//! - figures: nearest-rank percentiles and the like ([`Ms`]), rounding;
//! - /proc readings: CPU time ([`cpu_secs`]), memory ([`status_mb`]), threads and their context switches
//!   ([`threads`], [`thread_delta`]);
//! - the child processes they start: the release daemon ([`Daemon`], with [`Http`] to its web port) and
//!   mosquitto ([`Broker`]);
//! - what they play and hear: the caller-ID modem on their side of the pty ([`Modem`]) and a QoS 1 MQTT
//!   subscriber ([`Subscription`]);
//! - seeding a store with the library ([`seed_calls`], [`seed_tasks`]) with calls ([`incoming_call`],
//!   [`RandomCall`]) and tasks ([`task_for_call`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::fs::{self, File};
use std::future::Future;
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use linekeeper::model::{
    new_id, Call, Direction, NumberStatus, Outcome, Task, TaskEntry, TaskKind, Time,
};
use linekeeper::store::{Change, Store};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::task::JoinHandle;
use tokio_serial::SerialStream;

use crate::{free_port, tail, target_dir};

/// Deadline for a process to come up (mosquitto listening, the daemon ready) or a subscription to be made.
pub const STARTUP: Duration = Duration::from_secs(60);
/// Records written to a store per commit while seeding.
pub const SEED_BATCH: usize = 1000;

// ---------------------------------------------------------------------------------------
// The command line, the run and its end
// ---------------------------------------------------------------------------------------

/// A bench's arguments, flag by flag; a flag's value may follow it (`--calls 5`) or be joined to it
/// (`--calls=5`).
pub struct Args<'a> {
    it: std::slice::Iter<'a, String>,
    /// The value joined to the current flag with `=`.
    inline: Option<&'a str>,
}

impl<'a> Args<'a> {
    pub fn new(args: &'a [String]) -> Args<'a> {
        Args {
            it: args.iter(),
            inline: None,
        }
    }

    /// The next flag (`--calls` of `--calls=5` too), or `None` after the last.
    pub fn next_flag(&mut self) -> Option<&'a str> {
        let arg = self.it.next()?;
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f, Some(v)),
            None => (arg.as_str(), None),
        };
        self.inline = inline;
        Some(flag)
    }

    /// The value of the current flag, `flag`: what followed its `=`, else the next argument.
    pub fn value(&mut self, flag: &str) -> Result<String> {
        match self.inline.take() {
            Some(v) => Ok(v.to_string()),
            None => self
                .it
                .next()
                .cloned()
                .ok_or_else(|| anyhow!("{flag} needs a value")),
        }
    }

    /// The whole number the current flag, `flag`, takes (`_` and `,` may group its digits).
    pub fn number(&mut self, flag: &str) -> Result<u64> {
        let v = self
            .value(flag)
            .map_err(|_| anyhow!("{flag} needs a number"))?;
        v.replace(['_', ','], "")
            .parse()
            .map_err(|_| anyhow!("{flag} needs a whole number, got `{v}`"))
    }
}

/// Whether a bench's arguments ask for its quick run (whose defaults the other flags then change).
pub fn quick(args: &[String]) -> bool {
    args.iter().any(|a| a == "--quick")
}

/// Goes through a bench's flags: `--quick` (see [`quick`]) is skipped, `-h` and `--help` are an error that is
/// the `usage`, and `each` takes every other flag (with the arguments, for its value); it returns whether it
/// knows the flag, an unknown one is an error with the usage.
pub fn parse_flags<'a>(
    args: &'a [String],
    usage: &str,
    mut each: impl FnMut(&'a str, &mut Args<'a>) -> Result<bool>,
) -> Result<()> {
    let mut args = Args::new(args);
    while let Some(flag) = args.next_flag() {
        match flag {
            "--quick" => {}
            "-h" | "--help" => bail!("{usage}"),
            other => {
                if !each(other, &mut args)? {
                    bail!("unknown argument `{other}`\n{usage}");
                }
            }
        }
    }
    Ok(())
}

/// A bench's `main`: its options from the command line (`parse`: wrong ones, or `--help`, print the message
/// and exit with 2), then `run` with them, and `print` what it found, which gives the exit code. When the run
/// fails: `BENCH: FAILED: why` and the `hint` (how to find out more) on stderr, exit code 1.
pub fn main<O, R>(
    bench: &str,
    parse: impl FnOnce(&[String]) -> Result<O>,
    run: impl FnOnce(O) -> Result<R>,
    hint: Option<&str>,
    print: impl FnOnce(R) -> ExitCode,
) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(opts) {
        Ok(r) => print(r),
        Err(e) => {
            eprintln!("{bench}: FAILED: {e:#}");
            if let Some(hint) = hint {
                eprintln!("{bench}: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Runs `run` to its end on a tokio runtime with two workers, like the daemon's. Ctrl-C or SIGTERM ends it early
/// with an error, so the drops stop the child processes, unmount what was mounted and remove the work dir.
pub fn block_on<T>(run: impl Future<Output = Result<T>>) -> Result<T> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = run => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
            _ = term.recv() => Err(anyhow!("terminated")),
        }
    })
}

/// The work dir of a run: a new temp dir `BENCH-XXXXXX` under `under` (else in $TMPDIR), removed when this
/// is dropped unless `keep`.
pub enum WorkDir {
    Temp(TempDir),
    Kept(PathBuf),
}

impl WorkDir {
    pub fn path(&self) -> &Path {
        match self {
            WorkDir::Temp(dir) => dir.path(),
            WorkDir::Kept(path) => path,
        }
    }
}

pub fn work_dir(bench: &str, under: Option<&Path>, keep: bool) -> Result<WorkDir> {
    let mut builder = tempfile::Builder::new();
    let prefix = format!("{bench}-");
    builder.prefix(&prefix);
    let dir = match under {
        Some(d) => builder
            .tempdir_in(d)
            .with_context(|| format!("creating a work dir in {}", d.display()))?,
        None => builder.tempdir()?,
    };
    if !keep {
        return Ok(WorkDir::Temp(dir));
    }
    // The directory outlives the run (and any failure), for a look at the logs and the store.
    let kept = dir.keep();
    eprintln!("{bench}: keeping {}", kept.display());
    Ok(WorkDir::Kept(kept))
}

/// Set by SIGINT or SIGTERM once [`catch_signals`] ran (a bench without tokio); loops that wait check it.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// From now on SIGINT and SIGTERM only set the flag [`interrupted`] reads: the bench then returns an error,
/// so the drops stop the daemon and remove the work dir.
pub fn catch_signals() {
    let handler: extern "C" fn(libc::c_int) = on_signal;
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(sig, handler as libc::sighandler_t);
        }
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// An `interrupted` error once SIGINT or SIGTERM came (see [`catch_signals`]).
pub fn check_interrupted() -> Result<()> {
    if interrupted() {
        bail!("interrupted");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Output: the machine, the table, the JSON line
// ---------------------------------------------------------------------------------------

/// The machine a benchmark ran on, printed beside its figures.
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub date: String,
}

pub fn machine() -> Machine {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    // x86 says "model name"; many ARM kernels only say "Hardware" or "Model".
    let field = |key: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    let cpu_model = field("model name")
        .or_else(|| field("Model"))
        .or_else(|| field("Hardware"))
        .unwrap_or_else(|| "unknown".into());
    Machine {
        nproc: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        cpu_model,
        kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        date: chrono::Utc::now()
            .format("%Y-%m-%d %H:%M:%S UTC")
            .to_string(),
    }
}

impl Machine {
    /// The first line of `bench`'s report: `BENCH DATE: N CPU(s), MODEL, Linux KERNEL`.
    pub fn headline(&self, bench: &str) -> String {
        format!(
            "{bench} {}: {} CPU(s), {}, Linux {}",
            self.date, self.nproc, self.cpu_model, self.kernel
        )
    }

    /// `nproc`, `cpu_model` and `kernel`, for the JSON line.
    pub fn json(&self) -> Value {
        json!({
            "nproc": self.nproc,
            "cpu_model": self.cpu_model,
            "kernel": self.kernel,
        })
    }
}

/// The object of `bench`'s JSON line: `bench`, `version` (1), `date` and `machine` (with the keys of
/// `machine_extra` added, such as the store's filesystem or the broker's version), then the keys of `body`.
pub fn json_report(bench: &str, machine: &Machine, machine_extra: Value, body: Value) -> Value {
    let mut m = machine.json();
    if let (Some(m), Value::Object(extra)) = (m.as_object_mut(), machine_extra) {
        m.extend(extra);
    }
    let mut out = json!({
        "bench": bench,
        "version": 1,
        "date": machine.date,
        "machine": m,
    });
    if let (Some(out), Value::Object(body)) = (out.as_object_mut(), body) {
        out.extend(body);
    }
    out
}

/// Writes `bench`'s report to stdout: the `head` lines (the machine, the parameters), a blank line, the
/// table, a blank line and last the one line of JSON for scripts, `BENCH_JSON {...}`.
pub fn print_report(bench: &str, head: &[String], table: &str, json: &Value) {
    let mut out = std::io::stdout().lock();
    for line in head {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out);
    let _ = write!(out, "{table}");
    let _ = writeln!(out, "\n{}_JSON {json}", bench.to_uppercase());
}

/// A report's table: a metric column (left-aligned), a value column (right-aligned) and a free note (targets,
/// references, explanations).
pub struct Table {
    metric: usize,
    value: usize,
    out: String,
}

impl Table {
    /// A table whose metric column is `metric` characters wide and whose value column is `value` wide.
    pub fn new(metric: usize, value: usize) -> Table {
        Table {
            metric,
            value,
            out: String::new(),
        }
    }

    /// The heading (`metric`, `value` and `note`) and the rule under it (dashes, and `rule` for the note).
    pub fn header(&mut self, note: &str, rule: &str) {
        self.row("metric", "value", note);
        let (m, v) = ("-".repeat(self.metric), "-".repeat(self.value));
        self.row(&m, v, rule);
    }

    pub fn row(&mut self, metric: &str, value: impl AsRef<str>, note: impl AsRef<str>) {
        let (mw, vw) = (self.metric, self.value);
        self.out.push_str(&format!(
            "{metric:<mw$} {:>vw$}  {}\n",
            value.as_ref(),
            note.as_ref()
        ));
    }

    pub fn into_string(self) -> String {
        self.out
    }
}

// ---------------------------------------------------------------------------------------
// Figures
// ---------------------------------------------------------------------------------------

/// The nearest-rank percentile of sorted values (NaN for none).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Milliseconds of a series of samples, or of the runs of one operation, in the order they came.
#[derive(Debug, Clone, Default)]
pub struct Ms(pub Vec<f64>);

impl Ms {
    pub fn sorted(&self) -> Vec<f64> {
        let mut v = self.0.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        v
    }

    /// The nearest-rank percentile `p`.
    pub fn p(&self, p: f64) -> f64 {
        percentile(&self.sorted(), p)
    }

    pub fn min(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(f64::NAN)
    }

    pub fn median(&self) -> f64 {
        let v = self.sorted();
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    pub fn max(&self) -> f64 {
        self.sorted().last().copied().unwrap_or(f64::NAN)
    }

    pub fn mean(&self) -> f64 {
        if self.0.is_empty() {
            f64::NAN
        } else {
            self.0.iter().sum::<f64>() / self.0.len() as f64
        }
    }

    /// `n`, `p50`, `p90`, `p99`, `max` and `mean`, in µs-precise ms.
    pub fn json(&self) -> Value {
        json!({
            "n": self.0.len(),
            "p50": round(self.p(50.0), 3),
            "p90": round(self.p(90.0), 3),
            "p99": round(self.p(99.0), 3),
            "max": round(self.max(), 3),
            "mean": round(self.mean(), 3),
        })
    }

    /// `min`, `median`, `max` and every run, in µs-precise ms.
    pub fn runs_json(&self) -> Value {
        json!({
            "min": round(self.min(), 3),
            "median": round(self.median(), 3),
            "max": round(self.max(), 3),
            "runs": self.0.iter().map(|x| round(*x, 3)).collect::<Vec<_>>(),
        })
    }
}

/// `x` rounded to `d` decimals.
pub fn round(x: f64, d: i32) -> f64 {
    let k = 10f64.powi(d);
    (x * k).round() / k
}

pub fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

pub fn ms_between(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1000.0
}

/// Bytes in KB (KiB).
pub fn kb(bytes: usize) -> f64 {
    bytes as f64 / 1024.0
}

/// Bytes in MB (MiB).
pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// A deterministic pseudo-random number for `x` (splitmix64), so every run seeds the same data.
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

// ---------------------------------------------------------------------------------------
// /proc (a `pid` is a process id, or "self" for the bench itself)
// ---------------------------------------------------------------------------------------

/// Clock ticks per second, the unit of utime and stime in /proc/PID/stat.
pub fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// utime + stime of a whole process (all its threads, also those that have exited), in seconds.
pub fn cpu_secs(pid: impl Display) -> Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let ticks =
        stat_cpu_ticks(&stat).ok_or_else(|| anyhow!("unexpected /proc/{pid}/stat: {stat}"))?;
    Ok(ticks as f64 / clock_ticks())
}

/// utime + stime (fields 14 and 15) of a /proc/PID/stat or /proc/PID/task/TID/stat, in clock ticks.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may contain spaces: split after it.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state).
    let num = |i: usize| fields.get(i - 3)?.parse::<u64>().ok();
    Some(num(14)? + num(15)?)
}

/// The number of a `key:   123 kB` line of /proc/PID/status.
pub fn status_value(pid: impl Display, key: &str) -> Result<u64> {
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

/// A `key:   123 kB` line of /proc/PID/status (VmRSS, VmHWM) in MB.
pub fn status_mb(pid: impl Display, key: &str) -> Result<f64> {
    Ok(status_value(pid, key)? as f64 / 1024.0)
}

/// One thread: its name, CPU time and context switches (voluntary + involuntary) so far.
#[derive(Debug, Clone)]
pub struct ThreadSample {
    pub name: String,
    pub cpu_ns: u64,
    pub switches: u64,
}

/// The threads of a process, by thread id. /proc/PID/status counts only the main thread (which in a tokio
/// program mostly sleeps in `block_on`), so they are read one by one from /proc/PID/task/*. CPU comes from
/// `schedstat` (nanoseconds) when the kernel has it, else from `stat` (clock ticks).
pub fn threads(pid: impl Display) -> HashMap<u32, ThreadSample> {
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
        let cpu_ns = fs::read_to_string(entry.path().join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .or_else(|| {
                let stat = fs::read_to_string(entry.path().join("stat")).ok()?;
                Some((stat_cpu_ticks(&stat)? as f64 / clock_ticks() * 1e9) as u64)
            })
            .unwrap_or(0);
        out.insert(
            tid,
            ThreadSample {
                name: field("Name").unwrap_or_default(),
                cpu_ns,
                switches: count("voluntary_ctxt_switches") + count("nonvoluntary_ctxt_switches"),
            },
        );
    }
    out
}

/// What the threads of one group did between two samples.
#[derive(Debug, Clone, Default)]
pub struct ThreadGroup {
    pub name: String,
    pub threads: usize,
    pub switches: u64,
    pub cpu_ms: f64,
}

/// The threads between two samples, grouped; threads that exited in between are not seen (their count is
/// apart).
pub struct ThreadDelta {
    /// Most context switches first (then by name).
    pub groups: Vec<ThreadGroup>,
    pub exited: usize,
}

impl ThreadDelta {
    pub fn switches(&self) -> u64 {
        self.groups.iter().map(|g| g.switches).sum()
    }
}

/// The threads of `after` by the group `group` puts each thread name in: threads present in both samples
/// count their difference, new threads count in full.
pub fn thread_delta(
    before: &HashMap<u32, ThreadSample>,
    after: &HashMap<u32, ThreadSample>,
    group: impl Fn(&str) -> String,
) -> ThreadDelta {
    let mut by: BTreeMap<String, ThreadGroup> = BTreeMap::new();
    for (tid, t) in after {
        let (sw0, cpu0) = before
            .get(tid)
            .map(|b| (b.switches, b.cpu_ns))
            .unwrap_or((0, 0));
        let name = group(&t.name);
        let g = by.entry(name.clone()).or_insert_with(|| ThreadGroup {
            name,
            ..ThreadGroup::default()
        });
        g.threads += 1;
        g.switches += t.switches.saturating_sub(sw0);
        g.cpu_ms += t.cpu_ns.saturating_sub(cpu0) as f64 / 1e6;
    }
    let mut groups: Vec<ThreadGroup> = by.into_values().collect();
    groups.sort_by(|a, b| {
        b.switches
            .cmp(&a.switches)
            .then_with(|| a.name.cmp(&b.name))
    });
    ThreadDelta {
        groups,
        exited: before.keys().filter(|t| !after.contains_key(t)).count(),
    }
}

/// Bytes of the files under `dir`.
pub fn dir_bytes(dir: &Path) -> u64 {
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

// ---------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------

/// A child process of a bench, killed and reaped when dropped.
pub struct Proc {
    child: Child,
    bench: &'static str,
    /// What it is, for messages: "the daemon", "mosquitto".
    what: String,
}

impl Proc {
    pub fn new(bench: &'static str, what: &str, child: Child) -> Proc {
        Proc {
            child,
            bench,
            what: what.to_string(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How it exited, once it has.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            _ => None,
        }
    }

    /// SIGTERM, then SIGKILL after `grace`; how long the process took to exit.
    pub fn terminate(mut self, grace: Duration) -> Duration {
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
            "{}: {} did not exit within {grace:?} of SIGTERM; killing it",
            self.bench, self.what
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
        started.elapsed()
    }

    /// SIGKILL and reap.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
pub fn find_program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// The daemon the benches measure: `$LINEKEEPER_BIN`, else `<target>/release/linekeeper`.
pub fn release_daemon_bin() -> Result<PathBuf> {
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

/// A mosquitto of the bench's own on a free loopback port (the harness's `Mosquitto` does not give its pid,
/// which the CPU figures need), which the bench may kill and start again on the same port.
pub struct Broker {
    pub port: u16,
    pub log: PathBuf,
    conf: PathBuf,
    bench: &'static str,
    proc: Option<Proc>,
}

impl Broker {
    /// Writes `DIR/mosquitto.conf` (loopback only, anonymous, up to 100,000 queued messages, errors, warnings
    /// and notices logged to `DIR/mosquitto.log`) with `settings` added, such as its persistence.
    pub fn new(bench: &'static str, dir: &Path, settings: &str) -> Result<Broker> {
        let port = free_port();
        let conf = dir.join("mosquitto.conf");
        fs::write(
            &conf,
            format!(
                "# written by {bench}\n\
                 listener {port} 127.0.0.1\n\
                 allow_anonymous true\n\
                 max_queued_messages 100000\n\
                 log_dest stderr\n\
                 log_type error\n\
                 log_type warning\n\
                 log_type notice\n\
                 # ignored unless started as root, where it keeps mosquitto able to write here\n\
                 user root\n\
                 {settings}"
            ),
        )?;
        Ok(Broker {
            port,
            log: dir.join("mosquitto.log"),
            conf,
            bench,
            proc: None,
        })
    }

    /// Starts mosquitto; returns the moment its port first accepted a TCP connection.
    pub fn start(&mut self) -> Result<Instant> {
        if self.proc.is_some() {
            bail!("mosquitto is already running");
        }
        let out = File::options().create(true).append(true).open(&self.log)?;
        let child = Command::new(find_program("mosquitto"))
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting mosquitto (is it installed?)")?;
        let mut proc = Proc::new(self.bench, "mosquitto", child);
        let deadline = Instant::now() + STARTUP;
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                let at = Instant::now();
                self.proc = Some(proc);
                return Ok(at);
            }
            if let Some(status) = proc.exited() {
                bail!("mosquitto exited ({status}):\n{}", tail(&self.log, 30));
            }
            if Instant::now() > deadline {
                bail!(
                    "mosquitto did not listen on port {}:\n{}",
                    self.port,
                    tail(&self.log, 30)
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub fn pid(&self) -> Result<u32> {
        self.proc
            .as_ref()
            .map(Proc::pid)
            .ok_or_else(|| anyhow!("mosquitto is not running"))
    }

    /// SIGKILL: every connection drops, nothing is saved.
    pub fn kill(&mut self) {
        if let Some(p) = self.proc.take() {
            p.kill();
        }
    }
}

/// The config of the benches that play the modem: site `bench`, one modem line `line1` on `device` that
/// reports OFFHOOK and ONHOOK (`answer_detect`, so calls end at once instead of after `ring_timeout`), the
/// broker at 127.0.0.1:`mqtt_port` (with the lines `mqtt` added to `[mqtt]`) and the web port `web_port`.
pub fn modem_config(
    bench: &str,
    store: &Path,
    device: &Path,
    mqtt_port: u16,
    mqtt: &str,
    web_port: u16,
) -> String {
    format!(
        r#"# written by {bench}
[site]
id = "bench"
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
{mqtt}
[web]
listen = "127.0.0.1:{web_port}"
"#,
        store = store.display(),
        device = device.display(),
    )
}

/// The release daemon under test: its config, store and logs in the bench's work dir.
pub struct Daemon {
    pub store: PathBuf,
    pub web_port: u16,
    pub http: Http,
    /// Have the kernel kill the daemon when the thread that starts it ends (PR_SET_PDEATHSIG), so an
    /// interrupted bench leaves no daemon behind. Only for a bench that starts it from its main thread.
    pub die_with_bench: bool,
    bin: PathBuf,
    dir: PathBuf,
    config: PathBuf,
    bench: &'static str,
    proc: Option<Proc>,
    /// The stderr log of the current (or last) run.
    log: PathBuf,
}

impl Daemon {
    /// A daemon whose config, `config(STORE, WEB_PORT)`, is written to `DIR/linekeeper.toml`; its store is
    /// `DIR/store` and its web port a free one.
    pub fn new(
        bench: &'static str,
        dir: &Path,
        config: impl FnOnce(&Path, u16) -> String,
    ) -> Result<Daemon> {
        let store = dir.join("store");
        let config_path = dir.join("linekeeper.toml");
        let web_port = free_port();
        fs::write(&config_path, config(&store, web_port))?;
        Ok(Daemon {
            bin: release_daemon_bin()?,
            dir: dir.to_path_buf(),
            config: config_path,
            store,
            web_port,
            http: Http::new(web_port),
            die_with_bench: false,
            bench,
            proc: None,
            log: dir.join("daemon.log"),
        })
    }

    pub fn pid(&self) -> Result<u32> {
        self.proc
            .as_ref()
            .map(Proc::pid)
            .ok_or_else(|| anyhow!("the daemon is not running"))
    }

    /// The tail of the current run's log, for error messages.
    pub fn log_tail(&self) -> String {
        format!(
            "--- daemon log {} ---\n{}",
            self.log.display(),
            tail(&self.log, 40)
        )
    }

    /// Starts `linekeeper run` with the default log level (info), as in production; its stdout and stderr go
    /// to the files `stdout` and `stderr` of the work dir (one file when they are the same).
    pub fn spawn(&mut self, stdout: &str, stderr: &str) -> Result<()> {
        let log = self.dir.join(stderr);
        let err = File::create(&log)?;
        let out = if stdout == stderr {
            err.try_clone()?
        } else {
            File::create(self.dir.join(stdout))?
        };
        let mut cmd = Command::new(&self.bin);
        cmd.arg("run")
            .arg("--config")
            .arg(&self.config)
            .env_remove("LINEKEEPER_CONFIG")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        if self.die_with_bench {
            // SAFETY: prctl(2) is async-signal-safe; it only asks the kernel to kill the child if we die first.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        self.log = log;
        self.proc = Some(Proc::new(self.bench, "the daemon", child));
        Ok(())
    }

    /// How the daemon exited, once it has.
    pub fn exited(&mut self) -> Option<String> {
        self.proc.as_mut().and_then(Proc::exited)
    }

    /// An error (with the log's tail) when the daemon has exited; `when` says when that was noticed.
    pub fn assert_running(&mut self, when: &str) -> Result<()> {
        if let Some(status) = self.exited() {
            bail!("the daemon exited ({status}) {when}\n{}", self.log_tail());
        }
        Ok(())
    }

    /// Waits until `/healthz` answers 200 with line1 `up` and MQTT `connected`; the health JSON.
    pub async fn wait_ready(&mut self) -> Result<Value> {
        let deadline = Instant::now() + STARTUP;
        let mut last = String::from("no answer yet");
        loop {
            self.assert_running("while starting")?;
            let (code, body) = self.http.get("/healthz").await?;
            if let Ok(h) = serde_json::from_str::<Value>(&body) {
                let up = h["lines"]
                    .as_array()
                    .and_then(|ls| ls.iter().find(|l| l["id"] == "line1"))
                    .is_some_and(|l| l["link"] == "up");
                if code == 200 && up && h["mqtt"] == "connected" {
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

    /// Waits (blocking) until `/healthz` answers 200; the health JSON.
    pub fn wait_healthy(&mut self) -> Result<Value> {
        let deadline = Instant::now() + STARTUP;
        loop {
            check_interrupted()?;
            self.assert_running("while starting")?;
            let (code, body) = self.http.get_blocking("/healthz", None);
            if code == 200 {
                return serde_json::from_str(&body)
                    .with_context(|| format!("/healthz is not JSON: {body}"));
            }
            if Instant::now() > deadline {
                let last = if code == 0 {
                    body
                } else {
                    format!("HTTP {code} {body}")
                };
                bail!(
                    "the daemon did not answer /healthz with 200 within {STARTUP:?}; last: {last}\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then SIGKILL after 15 s; how long the daemon took to exit (zero when it was not running).
    pub fn stop(&mut self) -> Duration {
        self.proc
            .take()
            .map(|p| p.terminate(Duration::from_secs(15)))
            .unwrap_or_default()
    }

    /// `linekeeper ARGS --config CFG` to completion; its stdout. The store's lock may still be held for a
    /// moment by a store the bench just dropped, so a failure is tried again a few times.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        let mut last = String::new();
        for attempt in 0..10 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(200));
            }
            let out = Command::new(&self.bin)
                .args(args)
                .arg("--config")
                .arg(&self.config)
                .env_remove("LINEKEEPER_CONFIG")
                .stdin(Stdio::null())
                .output()
                .with_context(|| format!("running {}", self.bin.display()))?;
            if out.status.success() {
                return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
            }
            last = format!(
                "`linekeeper {}` failed ({}): {}{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            // Configuration problems (exit 2) do not go away.
            if out.status.code() == Some(2) {
                break;
            }
        }
        bail!("{last}")
    }

    /// The last non-empty line `linekeeper ARGS` prints (a password, a token).
    pub fn cli_secret(&self, args: &[&str]) -> Result<String> {
        let out = self.cli(args)?;
        out.lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .map(String::from)
            .ok_or_else(|| anyhow!("`linekeeper {}` printed nothing", args.join(" ")))
    }
}

/// HTTP to the daemon's web port; cheap to clone into a polling task.
#[derive(Clone)]
pub struct Http {
    base: String,
    agent: ureq::Agent,
}

impl Http {
    pub fn new(port: u16) -> Http {
        Http {
            base: format!("http://127.0.0.1:{port}"),
            agent: ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(5))
                .timeout(Duration::from_secs(60))
                .build(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn request(&self, path: &str, token: Option<&str>) -> ureq::Request {
        let req = self.agent.get(&self.url(path));
        match token {
            Some(token) => req.set("Authorization", &format!("Bearer {token}")),
            None => req,
        }
    }

    /// GET, with the bearer `token` if any: the status and the body; `(0, error)` when nothing answers.
    pub fn get_blocking(&self, path: &str, token: Option<&str>) -> (u16, String) {
        answer(self.request(path, token))
    }

    /// GET off the async workers: the status and the body; `(0, error)` when nothing answers.
    pub async fn get(&self, path: &str) -> Result<(u16, String)> {
        let req = self.request(path, None);
        tokio::task::spawn_blocking(move || answer(req))
            .await
            .context("HTTP thread")
    }

    /// GET with the bearer `token`, off the async workers.
    pub async fn get_with_token(&self, path: &str, token: &str) -> Result<(u16, String)> {
        let req = self.request(path, Some(token));
        tokio::task::spawn_blocking(move || answer(req))
            .await
            .context("HTTP thread")
    }

    pub async fn health(&self) -> Result<Value> {
        let (code, body) = self.get("/healthz").await?;
        serde_json::from_str(&body).map_err(|_| anyhow!("GET /healthz answered {code}: {body}"))
    }

    /// The last committed event `seq`, from `/healthz`.
    pub async fn last_seq(&self) -> Result<u64> {
        let h = self.health().await?;
        h["last_seq"]
            .as_u64()
            .ok_or_else(|| anyhow!("/healthz without last_seq: {h}"))
    }

    /// A gauge or counter from `/metrics` (0 when absent).
    pub async fn metric(&self, name: &str) -> Result<f64> {
        let (code, body) = self.get("/metrics").await?;
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

    /// The store's commits (each with a flush) and their time so far, from `/metrics`.
    pub async fn commits(&self) -> Result<Commits> {
        Ok(Commits {
            count: self.metric("linekeeper_store_commits_total").await?,
            ms: self
                .metric("linekeeper_store_commit_microseconds_total")
                .await?
                / 1000.0,
        })
    }
}

fn answer(req: ureq::Request) -> (u16, String) {
    match req.call() {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

/// Store commits and their total time in ms: so far, or over a phase.
#[derive(Debug, Clone, Copy, Default)]
pub struct Commits {
    pub count: f64,
    pub ms: f64,
}

impl Commits {
    pub fn since(self, before: Commits) -> Commits {
        Commits {
            count: self.count - before.count,
            ms: self.ms - before.ms,
        }
    }

    /// The mean time of one commit, ms (0 for none).
    pub fn mean_ms(self) -> f64 {
        self.ms / self.count.max(1.0)
    }
}

// ---------------------------------------------------------------------------------------
// The modem (the bench's side of the pty) and an MQTT subscriber
// ---------------------------------------------------------------------------------------

type PtyWriter = Arc<tokio::sync::Mutex<WriteHalf<SerialStream>>>;

/// The caller-ID modem a bench plays on its side of the pty: it answers `OK` to every command line the daemon
/// sends (its init command), and writes the calls on demand.
pub struct Modem {
    writer: PtyWriter,
    /// Command lines answered so far (each `\r` the daemon sent).
    commands: Arc<AtomicU64>,
    reader: JoinHandle<()>,
}

impl Modem {
    pub fn open(path: &Path) -> Result<Modem> {
        use tokio_serial::SerialPortBuilderExt;
        let port = tokio_serial::new(path.to_string_lossy(), 115_200)
            .open_native_async()
            .with_context(|| format!("opening the modem side of the pty {}", path.display()))?;
        let (read, write) = tokio::io::split(port);
        let writer = Arc::new(tokio::sync::Mutex::new(write));
        let commands = Arc::new(AtomicU64::new(0));
        let reader = tokio::spawn(answer_commands(read, writer.clone(), commands.clone()));
        Ok(Modem {
            writer,
            commands,
            reader,
        })
    }

    /// Command lines the daemon sent (and the modem answered) so far.
    pub fn commands(&self) -> u64 {
        self.commands.load(Ordering::Relaxed)
    }

    /// Writes `bytes` and flushes; returns the moment the write completed.
    pub async fn write(&self, bytes: &[u8]) -> Result<Instant> {
        let mut w = self.writer.lock().await;
        w.write_all(bytes).await.context("writing to the pty")?;
        w.flush().await.context("flushing the pty")?;
        Ok(Instant::now())
    }

    /// Writes `calls` back to back in a task, as fast as the pty (and behind it the daemon) takes them; the
    /// task returns the moment the pty took the last byte.
    pub fn play(&self, calls: Vec<Vec<u8>>) -> JoinHandle<std::io::Result<Instant>> {
        let w = self.writer.clone();
        tokio::spawn(async move {
            let mut w = w.lock().await;
            for c in &calls {
                w.write_all(c).await?;
            }
            w.flush().await?;
            Ok(Instant::now())
        })
    }
}

impl Drop for Modem {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Reads what the daemon sends and answers `OK` to each line ending in `\r`.
async fn answer_commands(
    mut read: ReadHalf<SerialStream>,
    writer: PtyWriter,
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

/// The number of the bench's call `i` (its last four digits survive the daemon's masking).
pub fn call_number(i: usize) -> String {
    format!("1380013{:04}", i % 10_000)
}

/// What a [`Subscription`] hears, stamped on arrival.
pub enum Heard {
    Connected {
        at: Instant,
        session_present: bool,
    },
    /// A subscription acknowledged again (after the broker lost the session).
    Subscribed,
    Message {
        at: Instant,
        publish: Publish,
    },
}

/// A QoS 1 MQTT subscriber to the broker on 127.0.0.1. It reconnects by itself (every 10 ms while the broker is
/// away); a clean session subscribes on each connection, a persistent one only when the broker lost its
/// session. Aborted when dropped.
pub struct Subscription {
    task: JoinHandle<()>,
    errors: Arc<AtomicU64>,
}

impl Subscription {
    /// Connects as `client_id` and subscribes to `filter`; returns once the first subscription is
    /// acknowledged. From then on `on` gets everything the subscriber hears.
    pub async fn start(
        port: u16,
        client_id: &str,
        filter: &str,
        clean: bool,
        mut on: impl FnMut(Heard) + Send + 'static,
    ) -> Result<Subscription> {
        let mut opts = MqttOptions::new(client_id, "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(60));
        opts.set_clean_session(clean);
        opts.set_max_packet_size(1024 * 1024, 64 * 1024);
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
        let errors = Arc::new(AtomicU64::new(0));
        let errs = errors.clone();
        let filter = filter.to_string();
        let task = tokio::spawn(async move {
            let mut subscribed_tx = Some(subscribed_tx);
            loop {
                let heard = match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(publish))) => Heard::Message {
                        at: Instant::now(),
                        publish,
                    },
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                        let at = Instant::now();
                        if clean || !ack.session_present {
                            let _ = client.try_subscribe(filter.as_str(), QoS::AtLeastOnce);
                        }
                        Heard::Connected {
                            at,
                            session_present: ack.session_present,
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => match subscribed_tx.take() {
                        Some(tx) => {
                            let _ = tx.send(());
                            continue;
                        }
                        None => Heard::Subscribed,
                    },
                    Ok(_) => continue,
                    Err(_) => {
                        errs.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                // What came before the first subscription (its connection) is not the bench's.
                if subscribed_tx.is_none() {
                    on(heard);
                }
            }
        });
        let sub = Subscription { task, errors };
        match tokio::time::timeout(STARTUP, subscribed).await {
            Ok(Ok(())) => Ok(sub),
            Ok(Err(_)) => bail!("the MQTT subscriber {client_id} stopped"),
            Err(_) => {
                bail!("the MQTT subscriber {client_id} was not subscribed within {STARTUP:?}")
            }
        }
    }

    /// Connection errors so far (each one followed by another attempt).
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------------------
// Seeding a store (with the library, the daemon stopped)
// ---------------------------------------------------------------------------------------

/// Commits the calls `make(0)`, `make(1)`, ... `make(n - 1)`, `SEED_BATCH` to a commit.
pub fn seed_calls(store: &Store, n: usize, make: impl FnMut(usize) -> Call) -> Result<()> {
    seed(store, n, make, |calls| Change {
        calls,
        ..Default::default()
    })
    .context("seeding calls")
}

/// Commits the tasks `make(0)`, `make(1)`, ... `make(n - 1)`, `SEED_BATCH` to a commit.
pub fn seed_tasks(store: &Store, n: usize, make: impl FnMut(usize) -> Task) -> Result<()> {
    seed(store, n, make, |tasks| Change {
        tasks,
        ..Default::default()
    })
    .context("seeding tasks")
}

fn seed<T>(
    store: &Store,
    n: usize,
    mut make: impl FnMut(usize) -> T,
    change: impl Fn(Vec<T>) -> Change,
) -> Result<()> {
    let next_seq = store.next_seq()?;
    let mut i = 0;
    while i < n {
        check_interrupted()?;
        let k = SEED_BATCH.min(n - i);
        let batch = (i..i + k).map(&mut make).collect();
        store.commit(&change(batch), next_seq)?;
        i += k;
    }
    Ok(())
}

/// A call in to `line` from `number` (withheld when `None`), started at `started`, with nothing else known
/// yet: the fields every seeded call shares, the others set by the bench (`Call { .., ..incoming_call() }`).
pub fn incoming_call(started: Time, line: &str, number: Option<String>) -> Call {
    Call {
        number_status: if number.is_some() {
            NumberStatus::Known
        } else {
            NumberStatus::Withheld
        },
        number,
        rings: 1,
        ..Call::new(new_id(started), line, Direction::In, started)
    }
}

/// Whether the seeded call drawn from the pseudo-random `r` has its number withheld (3 in 100).
pub fn withheld(r: u64) -> bool {
    (r >> 44) % 100 < 3
}

/// A seeded call drawn from the pseudo-random number `r` (see [`mix`]), the same way in every bench: `r` makes
/// three calls in four answered (by one of `agents` agents, `a1`, `a2`, ...), about one in six missed and the
/// rest unknown; 1 to 6 rings; one in ten a repeat, one in 200 a VIP's; and a few withheld ([`withheld`]).
/// The bench chooses the rest.
pub struct RandomCall<'a> {
    pub r: u64,
    pub started: Time,
    pub line: &'a str,
    /// The caller's number, unless the call is withheld.
    pub number: String,
    pub name: Option<String>,
    /// How long it rang (until answered or hung up) and an answered call's talk, seconds.
    pub wait_s: f64,
    pub talk_s: f64,
    /// How long an unknown call lasts (the line could not tell whether it was answered), seconds.
    pub unknown_s: f64,
    pub agents: u64,
    /// Seconds as a duration (rounded or truncated to the ms, as the bench's data has always been).
    pub secs: fn(f64) -> chrono::Duration,
}

impl RandomCall<'_> {
    pub fn call(self) -> Call {
        let (r, started, secs) = (self.r, self.started, self.secs);
        let (outcome, answered_at, ended_at, talk_s, agent) = match (r >> 24) % 100 {
            0..=74 => {
                let answered = started + secs(self.wait_s);
                (
                    Outcome::Answered,
                    Some(answered),
                    answered + secs(self.talk_s),
                    Some(self.talk_s),
                    Some(format!("a{}", 1 + (r >> 40) % self.agents)),
                )
            }
            75..=91 => (
                Outcome::Missed,
                None,
                started + secs(self.wait_s),
                None,
                None,
            ),
            _ => (
                Outcome::Unknown,
                None,
                started + secs(self.unknown_s),
                None,
                None,
            ),
        };
        let number = (!withheld(r)).then_some(self.number);
        Call {
            name: self.name,
            answered_at,
            ended_at: Some(ended_at),
            rings: 1 + ((r >> 4) % 6) as u32,
            wait_s: Some(self.wait_s),
            talk_s,
            outcome: Some(outcome),
            agent,
            repeat: (r >> 56) % 100 < 10,
            vip: (r >> 36) % 200 == 0,
            ..incoming_call(started, self.line, number)
        }
    }
}

/// An open task of `kind` made at `created` from `call` (its number, name, id and agent), due at `due`, its
/// history `opened`.
pub fn task_for_call(kind: TaskKind, due: Time, created: Time, call: &Call) -> Task {
    let mut t = linekeeper::tasks::blank(kind, due, created);
    t.number = call.number.clone();
    t.name = call.name.clone();
    t.call_ids = vec![call.id.clone()];
    t.agent = call.agent.clone();
    t.history.push(task_entry(created, "opened", None));
    t
}

/// A line of a task's history.
pub fn task_entry(at: Time, action: &str, by: Option<&str>) -> TaskEntry {
    TaskEntry {
        at,
        action: action.into(),
        by: by.map(String::from),
        note: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn args_take_values_after_the_flag_or_its_equals_sign() {
        let list = args(&["--calls", "1_000", "--dir=/tmp/a=b", "--keep", "--n"]);
        let mut a = Args::new(&list);
        assert_eq!(a.next_flag(), Some("--calls"));
        assert_eq!(a.number("--calls").unwrap(), 1000);
        assert_eq!(a.next_flag(), Some("--dir"));
        assert_eq!(a.value("--dir").unwrap(), "/tmp/a=b");
        assert_eq!(a.next_flag(), Some("--keep"));
        assert_eq!(a.next_flag(), Some("--n"));
        assert_eq!(
            a.number("--n").unwrap_err().to_string(),
            "--n needs a number"
        );
        assert_eq!(a.next_flag(), None);

        let list = args(&["--calls=x"]);
        let mut a = Args::new(&list);
        a.next_flag();
        assert_eq!(
            a.number("--calls").unwrap_err().to_string(),
            "--calls needs a whole number, got `x`"
        );
    }

    #[test]
    fn parse_flags_knows_help_quick_and_unknown_flags() {
        let parse = |list: &[&str]| {
            let list = args(list);
            let mut calls = 0;
            bench_flags(&list, &mut calls).map(|()| calls)
        };
        fn bench_flags(list: &[String], calls: &mut u64) -> Result<()> {
            parse_flags(list, "usage: xbench", |flag, args| {
                match flag {
                    "--calls" => *calls = args.number(flag)?,
                    _ => return Ok(false),
                }
                Ok(true)
            })
        }
        assert_eq!(parse(&["--quick", "--calls=7"]).unwrap(), 7);
        assert_eq!(parse(&["--help"]).unwrap_err().to_string(), "usage: xbench");
        assert_eq!(
            parse(&["--calls", "1", "--what"]).unwrap_err().to_string(),
            "unknown argument `--what`\nusage: xbench"
        );
        assert!(quick(&args(&["--calls", "1", "--quick"])));
    }

    #[test]
    fn ms_figures_are_nearest_rank() {
        let ms = Ms((1..=100).rev().map(f64::from).collect());
        assert_eq!(ms.p(50.0), 50.0);
        assert_eq!(ms.p(99.0), 99.0);
        assert_eq!(ms.p(100.0), 100.0);
        assert_eq!((ms.min(), ms.max(), ms.mean()), (1.0, 100.0, 50.5));
        assert_eq!(ms.median(), 50.5);
        assert_eq!(Ms(vec![3.0, 1.0, 2.0]).median(), 2.0);
        assert!(Ms::default().p(50.0).is_nan());
        assert_eq!(
            Ms(vec![1.23456, 2.0]).runs_json(),
            json!({"min": 1.235, "median": 1.617, "max": 2.0, "runs": [1.235, 2.0]})
        );
        assert_eq!(round(2.345_6, 2), 2.35);
    }

    #[test]
    fn table_rows_pad_their_columns() {
        let mut t = Table::new(8, 5);
        t.header("note", "----");
        t.row("a", "1.0", "");
        t.row("b", String::from("22"), "x");
        assert_eq!(
            t.into_string(),
            "metric   value  note\n-------- -----  ----\na          1.0  \nb           22  x\n"
        );
    }

    #[test]
    fn thread_delta_groups_and_counts_new_and_exited_threads() {
        let sample = |name: &str, switches, cpu_ns| ThreadSample {
            name: name.into(),
            cpu_ns,
            switches,
        };
        let before = HashMap::from([(1, sample("io-1", 5, 1_000_000)), (2, sample("gone", 1, 0))]);
        let after = HashMap::from([
            (1, sample("io-1", 7, 3_000_000)),
            (3, sample("io-2", 4, 0)),
            (4, sample("main", 9, 0)),
        ]);
        let d = thread_delta(&before, &after, |n| {
            if n.starts_with("io") {
                "io-*".into()
            } else {
                n.into()
            }
        });
        let groups: Vec<(&str, usize, u64, f64)> = d
            .groups
            .iter()
            .map(|g| (g.name.as_str(), g.threads, g.switches, g.cpu_ms))
            .collect();
        assert_eq!(groups, [("main", 1, 9, 0.0), ("io-*", 2, 6, 2.0)]);
        assert_eq!((d.switches(), d.exited), (15, 1));
    }

    #[test]
    fn json_report_puts_the_envelope_first() {
        let m = Machine {
            nproc: 2,
            cpu_model: "cpu".into(),
            kernel: "6.1".into(),
            date: "today".into(),
        };
        let v = json_report("xbench", &m, json!({"fs": "ext4"}), json!({"figure": 1}));
        assert_eq!(
            v,
            json!({
                "bench": "xbench",
                "version": 1,
                "date": "today",
                "machine": {"nproc": 2, "cpu_model": "cpu", "kernel": "6.1", "fs": "ext4"},
                "figure": 1,
            })
        );
        assert_eq!(
            m.headline("xbench"),
            "xbench today: 2 CPU(s), cpu, Linux 6.1"
        );
    }

    #[test]
    fn cpu_ticks_come_after_the_command_name() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 1 0 100 0 0";
        assert_eq!(stat_cpu_ticks(stat), Some(12));
        assert!(cpu_secs("self").unwrap() >= 0.0);
        assert!(status_value("self", "VmRSS").unwrap() > 0);
        assert!(!threads("self").is_empty());
    }
}
