//! `policybench`: what the service policy costs on a big store, measured in-process with the library.
//!
//! ```text
//! cargo run --release -p linekeeper-e2e --bin policybench -- [--calls N] [--tasks N] [--idle-secs S] [--quick]
//! ```
//!
//! Three phases, in this order:
//!
//! 1. **month report**: a temp store is seeded (with `Store::commit`) with `--calls` calls spread over November
//!    2026 in Asia/Shanghai (answered, missed and unknown; waits and talks; agents `a1`..`a5`; lines `line1` and
//!    `line2`) and one task per 50 calls (callbacks, reviews, complaints, follow-ups in various states). Then, five
//!    times each: `reporting::generate` of the monthly report (store read + build), the store read alone,
//!    `report::build` alone on the loaded slices, and `report::to_csv`. The report must count every seeded call
//!    and task, and its CSV must parse back to the same figures.
//! 2. **idle with open tasks**: a fresh store is seeded with `--tasks` open callback tasks, due over the next 30
//!    days (so no timer fires during the bench); the engine is built in this process (`Engine::new`, timed) and
//!    run on a two-worker tokio runtime like the daemon's. Then nothing happens for `--idle-secs`: this process's
//!    CPU time (getrusage, user + sys) and context switches over that time, also per thread (sled's I/O threads
//!    wake once a second each by design: they are shown apart). The engine's snapshot must count every task.
//! 3. **reload** with those open tasks: `EngineHandle::reconfigure` with (a) a config that differs in
//!    `[policy] callback_due` only (deadline timers unchanged: the fast path) and (b) one with another
//!    `warn_before` (every open task's timer recomputed from the store); five runs each. Also the scan of every
//!    stored task that `reporting::generate_span` makes for each report, on that store, and `Config::parse` (which
//!    validates) and `Config::validate` of `config/linekeeper.example.toml`.
//!
//! The figures go out as a table and, last, as one line of JSON (`POLICYBENCH_JSON {...}`). Targets are printed
//! beside them and never asserted; the bench fails (exit 1) only when a result is not sane (a report that does not
//! count every seeded call, an engine that does not see every open task).

use std::fs;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use linekeeper::clock::Clock;
use linekeeper::config::Config;
use linekeeper::model::{
    new_id, Call, Level, Outcome, Severity, Stage, Task, TaskKind, TaskState, Time,
};
use linekeeper::report::{self, ReportKind};
use linekeeper::runtime::engine::Engine;
use linekeeper::runtime::reporting;
use linekeeper::store::Store;
use linekeeper::tasks;
use linekeeper_e2e::bench::{
    self, dir_bytes, json_report, machine, mb, mix, ms_since, round, seed_calls, seed_tasks,
    status_mb, status_value, task_entry, task_for_call, thread_delta, threads, Machine, Ms,
    RandomCall, Table, ThreadDelta,
};
use serde_json::{json, Value};

/// Runs of each timed operation.
const RUNS: usize = 5;
/// One task per this many calls in the month store.
const CALLS_PER_TASK: usize = 50;
/// Quiet time between the engine's start and the idle measurement, for start-up work to settle.
const SETTLE: Duration = Duration::from_secs(2);

// Targets, printed beside the figures (never asserted).
const TARGET_REPORT_MS: f64 = 200.0;
const TARGET_IDLE_CPU_PCT: f64 = 0.5;
const TARGET_RELOAD_MS: f64 = 50.0;

// ---------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Options {
    /// Calls in the month store.
    calls: usize,
    /// Open callback tasks for the idle and reload phases.
    tasks: usize,
    /// Length of the idle measurement.
    idle_secs: u64,
    quick: bool,
}

const USAGE: &str = "\
usage: policybench [--calls N] [--tasks N] [--idle-secs S] [--quick]

  --calls N       calls in the month store for the report figures (default 100000)
  --tasks N       open callback tasks for the idle and reload figures (default 100000)
  --idle-secs S   length of the idle measurement (default 30)
  --quick         calls 10000, tasks 10000, idle 3 s; other flags still apply";

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let quick = bench::quick(args);
        let mut o = if quick {
            Options {
                calls: 10_000,
                tasks: 10_000,
                idle_secs: 3,
                quick,
            }
        } else {
            Options {
                calls: 100_000,
                tasks: 100_000,
                idle_secs: 30,
                quick,
            }
        };
        bench::parse_flags(args, USAGE, |flag, args| {
            match flag {
                "--calls" => o.calls = args.number(flag)? as usize,
                "--tasks" => o.tasks = args.number(flag)? as usize,
                "--idle-secs" => o.idle_secs = args.number(flag)?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        if o.calls == 0 || o.tasks == 0 || o.idle_secs == 0 {
            bail!("--calls, --tasks and --idle-secs must be at least 1");
        }
        Ok(o)
    }
}

// ---------------------------------------------------------------------------------------
// getrusage and the threads
// ---------------------------------------------------------------------------------------

fn wall_now() -> Time {
    DateTime::<Utc>::from(SystemTime::now())
}

/// This process's CPU time (user + sys, all threads, in seconds) and its voluntary and involuntary context
/// switches, from getrusage(RUSAGE_SELF).
#[derive(Debug, Clone, Copy)]
struct Usage {
    cpu_s: f64,
    voluntary: u64,
    involuntary: u64,
}

fn usage() -> Usage {
    // SAFETY: a zeroed rusage is a valid out-parameter; getrusage only writes it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid pointer.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return Usage {
            cpu_s: 0.0,
            voluntary: 0,
            involuntary: 0,
        };
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Usage {
        cpu_s: secs(ru.ru_utime) + secs(ru.ru_stime),
        voluntary: ru.ru_nvcsw as u64,
        involuntary: ru.ru_nivcsw as u64,
    }
}

/// sled's I/O pool threads (`sled-io-N`) are shown as one group.
fn thread_group(name: &str) -> String {
    if name.starts_with("sled-io") {
        "sled-io-*".to_string()
    } else {
        name.to_string()
    }
}

fn is_sled(group: &str) -> bool {
    group.starts_with("sled")
}

// ---------------------------------------------------------------------------------------
// Timings
// ---------------------------------------------------------------------------------------

/// Runs `f` `RUNS` times; the time of each run and the last result.
fn time_runs<T>(mut f: impl FnMut() -> Result<T>) -> Result<(Ms, T)> {
    let mut ms = Vec::with_capacity(RUNS);
    let mut last = None;
    for _ in 0..RUNS {
        let t = Instant::now();
        let r = f()?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        last = Some(r);
    }
    let last = last.ok_or_else(|| anyhow!("no run"))?;
    Ok((Ms(ms), last))
}

fn secs_f(s: f64) -> chrono::Duration {
    chrono::Duration::milliseconds((s * 1000.0).round() as i64)
}

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

/// The engine's configuration: one modem line (the engine opens no device), `[policy]` and Mon-Fri hours.
fn bench_config_text(callback_due: &str, warn_before: &str) -> String {
    format!(
        r#"[site]
id = "bench"
timezone = "Asia/Shanghai"

[[line]]
id = "line1"
kind = "modem"
device = "/dev/null"
answer_detect = true

[policy]
callback_due = "{callback_due}"
warn_before = "{warn_before}"

[hours]
mon = "09:00-18:00"
tue = "09:00-18:00"
wed = "09:00-18:00"
thu = "09:00-18:00"
fri = "09:00-18:00"
sat = "closed"
sun = "closed"
"#
    )
}

fn parse_config(text: &str) -> Result<Config> {
    Config::parse(text).map_err(|problems| {
        anyhow!(
            "{}",
            problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        )
    })
}

// ---------------------------------------------------------------------------------------
// Phase 1: the month report
// ---------------------------------------------------------------------------------------

/// The calendar month of the report (a local date in it).
fn month_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default()
}

/// What was seeded into the month store, to check the report against.
#[derive(Debug, Default)]
struct Seeded {
    calls: usize,
    answered: u64,
    missed: u64,
    unknown: u64,
    tasks: usize,
    callbacks: u64,
    complaints: u64,
    followups_done: u64,
}

/// The `i`th of `n` calls spread over `[from, from + span)`.
fn month_call(i: usize, n: usize, from: Time, span_ms: i64) -> Call {
    let r = mix(i as u64);
    let step = (span_ms / n as i64).max(1);
    let started = from
        + chrono::Duration::milliseconds(i as i64 * span_ms / n as i64 + (r % step as u64) as i64);
    let r2 = mix(r);
    // Four calls in five wait 2-10 s, the rest up to a minute.
    let wait = if r2 % 100 < 80 {
        2.0 + ((r2 >> 8) % 80) as f64 / 10.0
    } else {
        10.0 + ((r2 >> 8) % 500) as f64 / 10.0
    };
    let talk = 20.0 + ((r2 >> 32) % 880) as f64; // 20 .. 899 s
    RandomCall {
        r,
        started,
        line: if (r >> 8).is_multiple_of(3) {
            "line2"
        } else {
            "line1"
        },
        // 20,000 distinct callers, so numbers come back.
        number: format!("138{:08}", (r >> 20) % 20_000),
        name: (r >> 50)
            .is_multiple_of(3)
            .then(|| format!("CALLER {}", (r >> 20) % 1000)),
        wait_s: wait,
        talk_s: talk,
        unknown_s: wait + talk,
        // Agents a1 .. a5.
        agents: 5,
        secs: secs_f,
    }
    .call()
}

/// The `j`th task of the month, opened from `call`, in one of several kinds and states.
fn month_task(j: usize, call: &Call, to: Time) -> Task {
    let h = chrono::Duration::hours;
    let created = call.ended_at.unwrap_or(call.started_at).min(to - h(1));
    let agent = call
        .agent
        .clone()
        .unwrap_or_else(|| format!("a{}", 1 + j % 5));
    let variant = (j / 10) % 4;
    let (kind, due) = match j % 10 {
        0..=5 => (TaskKind::Callback, created + h(24)),
        6 => (TaskKind::Review, created + h(24)),
        7 | 8 => (TaskKind::Complaint, created + h(24)),
        _ => (TaskKind::Followup, created + h(24)),
    };
    let mut t = task_for_call(kind, due, created, call);
    t.agent = Some(agent);
    match kind {
        TaskKind::Callback => {
            t.assignee = Some(format!("a{}", 1 + (j / 7) % 5));
            match variant {
                0 => {
                    t.state = TaskState::Done;
                    t.closed_at = Some(created + h(2));
                    t.closed_by = t.assignee.clone();
                    t.history
                        .push(task_entry(created + h(2), "done", t.assignee.as_deref()));
                }
                1 => {
                    t.overdue = true;
                    t.warned = true;
                    t.level = Level::ShiftLead;
                    t.escalated_at = Some(due);
                    t.history.push(task_entry(due, "overdue", None));
                    t.state = TaskState::Done;
                    t.closed_at = Some(created + h(30));
                    t.closed_by = t.assignee.clone();
                }
                2 => {}
                _ => {
                    t.state = TaskState::Cancelled;
                    t.closed_at = Some(created + h(1));
                    t.closed_by = Some("a1".into());
                }
            }
        }
        TaskKind::Complaint => {
            t.severity = Some(Severity::Normal);
            t.category = Some(["billing", "service", "product"][j % 3].into());
            match variant {
                0 | 1 => {
                    t.first_response_at = Some(created + h(3));
                    t.promised_fix_at = Some(created + h(20));
                    t.resolved_at = Some(created + h(18));
                    t.stage = Some(Stage::Resolved);
                    t.state = TaskState::Done;
                    t.closed_at = t.resolved_at;
                    t.reopened = u32::from(variant == 1);
                }
                2 => {
                    t.first_response_at = Some(created + h(5));
                    t.promised_fix_at = Some(created + h(48));
                    t.due_at = created + h(48);
                    t.stage = Some(Stage::InProgress);
                }
                _ => t.stage = Some(Stage::AwaitingResponse),
            }
        }
        TaskKind::Followup => {
            t.state = TaskState::Done;
            t.closed_at = Some(created + h(20));
            t.satisfaction = Some(1 + (j / 10 % 5) as u8);
        }
        TaskKind::Review | TaskKind::Referral => {}
    }
    t
}

fn seed_month(store: &Store, cfg: &Config, n: usize) -> Result<Seeded> {
    let (from, to) = report::period(ReportKind::Monthly, month_date(), cfg.timezone());
    let span_ms = (to - from).num_milliseconds();
    let mut s = Seeded::default();
    let mut task_list = Vec::new();
    seed_calls(store, n, |c| {
        let call = month_call(c, n, from, span_ms);
        match call.outcome {
            Some(Outcome::Answered) => s.answered += 1,
            Some(Outcome::Missed) => s.missed += 1,
            _ => s.unknown += 1,
        }
        if c % CALLS_PER_TASK == CALLS_PER_TASK / 2 {
            task_list.push(month_task(task_list.len(), &call, to));
        }
        call
    })?;
    s.calls = n;
    s.tasks = task_list.len();
    for t in &task_list {
        match t.kind {
            TaskKind::Callback => s.callbacks += 1,
            TaskKind::Complaint => s.complaints += 1,
            TaskKind::Followup if t.state == TaskState::Done => s.followups_done += 1,
            _ => {}
        }
    }
    seed_tasks(store, task_list.len(), |j| task_list[j].clone())?;
    Ok(s)
}

struct MonthResults {
    seeded: Seeded,
    seed_s: f64,
    store_mb: f64,
    /// `reporting::generate`: store read + build.
    generate: Ms,
    /// The store read alone (calls of the month + tasks created in it), as `generate` does it.
    load: Ms,
    /// `report::build` alone on the loaded slices.
    build: Ms,
    csv: Ms,
    csv_kb: f64,
    calls_loaded: usize,
    tasks_loaded: usize,
    /// The report's site figures.
    offered: u64,
    service_level_pct: Option<f64>,
    asa_s: Option<f64>,
    per_line: usize,
    per_agent: usize,
}

fn month_phase(dir: &Path, cfg: &Config, n: usize) -> Result<MonthResults> {
    let path = dir.join("month");
    let store = Store::open(&path).context("opening the month store")?;
    let t = Instant::now();
    let seeded = seed_month(&store, cfg, n)?;
    let seed_s = t.elapsed().as_secs_f64();
    let store_mb = mb(dir_bytes(&path));
    let date = month_date();
    let (from, to) = report::period(ReportKind::Monthly, date, cfg.timezone());
    // Made as the scheduler makes it: at the midnight that ends the month.
    let now = to;
    eprintln!(
        "policybench: month report: {} calls and {} tasks seeded in {seed_s:.1} s",
        seeded.calls, seeded.tasks
    );

    let (generate, r) = time_runs(|| {
        Ok(reporting::generate(
            &store,
            cfg,
            ReportKind::Monthly,
            date,
            now,
        )?)
    })?;
    let (load, (calls, task_list)) = time_runs(|| {
        let mut calls = Vec::new();
        store.for_each_call(
            &linekeeper::model::id_floor(from),
            &linekeeper::model::id_floor(to),
            |c| calls.push(c),
        )?;
        let task_list =
            store.tasks_newest_first(usize::MAX, |t| t.created_at >= from && t.created_at < to)?;
        Ok((calls, task_list))
    })?;
    let params = reporting::params(cfg);
    let (build, built) = time_runs(|| {
        Ok(report::build(
            ReportKind::Monthly,
            &cfg.site.id,
            report::label(ReportKind::Monthly, date),
            from,
            to,
            &calls,
            &task_list,
            &params,
            now,
        ))
    })?;
    let (csv, text) = time_runs(|| Ok(report::to_csv(&r)))?;

    // Sanity: every seeded call and task is counted, the two ways agree, the CSV reads back.
    let k = &r.site_kpis;
    let mut wrong = Vec::new();
    let mut check = |what: &str, got: u64, want: u64| {
        if got != want {
            wrong.push(format!("{what}: {got}, seeded {want}"));
        }
    };
    check("offered", k.offered, seeded.calls as u64);
    check("answered", k.answered, seeded.answered);
    check("missed", k.missed, seeded.missed);
    check("unknown", k.unknown, seeded.unknown);
    check(
        "calls_by_hour total",
        r.calls_by_hour.iter().sum(),
        seeded.calls as u64,
    );
    check("calls read", calls.len() as u64, seeded.calls as u64);
    check("tasks read", task_list.len() as u64, seeded.tasks as u64);
    check("callbacks_opened", k.callbacks_opened, seeded.callbacks);
    check("complaints_opened", k.complaints_opened, seeded.complaints);
    check("followups_done", k.followups_done, seeded.followups_done);
    check("lines", r.per_line.len() as u64, 2);
    check("agents", r.per_agent.len() as u64, 5);
    if built.site_kpis != r.site_kpis || built.per_line != r.per_line {
        wrong.push("report::build on the loaded slices differs from reporting::generate".into());
    }
    match report::parse_csv(&text) {
        Ok(parsed) if parsed.get("site") == Some(&r.site_kpis) => {}
        Ok(_) => wrong.push("the CSV does not read back to the site figures".into()),
        Err(e) => wrong.push(format!("the CSV does not parse: {e}")),
    }
    if !wrong.is_empty() {
        bail!("the month report is wrong: {}", wrong.join("; "));
    }
    Ok(MonthResults {
        offered: k.offered,
        service_level_pct: k.service_level_pct,
        asa_s: k.asa_s,
        per_line: r.per_line.len(),
        per_agent: r.per_agent.len(),
        seeded,
        seed_s,
        store_mb,
        generate,
        load,
        build,
        csv,
        csv_kb: text.len() as f64 / 1024.0,
        calls_loaded: calls.len(),
        tasks_loaded: task_list.len(),
    })
}

// ---------------------------------------------------------------------------------------
// Phases 2 and 3: idle with open tasks, reload
// ---------------------------------------------------------------------------------------

/// Seeds `m` open callback tasks, due from 6 hours to 30 days from `now` (the first warning, 2 h before the
/// first deadline, is hours after the bench ends).
fn seed_open_tasks(store: &Store, m: usize, now: Time) -> Result<()> {
    let first_due = now + chrono::Duration::hours(6);
    let spread_ms = chrono::Duration::days(30).num_milliseconds()
        - chrono::Duration::hours(6).num_milliseconds();
    seed_tasks(store, m, |j| {
        let due = first_due + chrono::Duration::milliseconds(j as i64 * spread_ms / m as i64);
        let mut t = tasks::blank(TaskKind::Callback, due, now);
        t.number = Some(format!("139{j:08}"));
        t.name = (j % 3 == 0).then(|| format!("CALLER {}", j % 1000));
        t.call_ids = vec![new_id(now - chrono::Duration::minutes(1))];
        t.agent = Some(format!("a{}", 1 + j % 5));
        t.history.push(task_entry(now, "opened: missed call", None));
        t
    })
}

struct IdleResults {
    tasks: usize,
    seed_s: f64,
    store_mb: f64,
    startup_ms: f64,
    /// This process's VmRSS before and after `Engine::new` (before: what phase 1 left, freed or not).
    rss_before_start_mb: f64,
    rss_after_start_mb: f64,
    secs: f64,
    cpu_s: f64,
    cpu_pct: f64,
    voluntary: u64,
    involuntary: u64,
    threads: u64,
    delta: ThreadDelta,
    /// `queue.open_tasks` of the engine's snapshot after the idle time.
    open_tasks: u64,
    reload_fast: Ms,
    reload_full: Ms,
    /// `queue.open_tasks` after the reloads.
    open_tasks_after_reload: u64,
    /// A scan of every stored task, as `reporting::generate_span` makes for each report, on this store.
    task_scan: Ms,
}

impl IdleResults {
    /// Context switches and CPU ms of sled's threads and of the others, over the idle time.
    fn split(&self) -> ((u64, f64), (u64, f64)) {
        let (mut sled, mut rest) = ((0, 0.0), (0, 0.0));
        for g in &self.delta.groups {
            let s = if is_sled(&g.name) {
                &mut sled
            } else {
                &mut rest
            };
            s.0 += g.switches;
            s.1 += g.cpu_ms;
        }
        (sled, rest)
    }
}

async fn idle_and_reload(store: Store, opts: &Options) -> Result<IdleResults> {
    let base = Arc::new(parse_config(&bench_config_text("24h", "2h"))?);
    // (a) callback_due only: the timers stay; (b) warn_before: every open task's timer is recomputed. Each run
    // changes the value from the previous one.
    let fast: Vec<Arc<Config>> = (0..RUNS)
        .map(|i| parse_config(&bench_config_text(["25h", "24h"][i % 2], "2h")).map(Arc::new))
        .collect::<Result<_>>()?;
    let full: Vec<Arc<Config>> = (0..RUNS)
        .map(|i| parse_config(&bench_config_text("24h", ["3h", "2h"][i % 2])).map(Arc::new))
        .collect::<Result<_>>()?;

    let rss_before_start_mb = status_mb("self", "VmRSS").unwrap_or(0.0);
    let t = Instant::now();
    let (engine, handle) = Engine::new(base, store, Clock::System, Default::default())
        .context("starting the engine")?;
    let startup_ms = ms_since(t);
    let rss_after_start_mb = status_mb("self", "VmRSS").unwrap_or(0.0);
    let engine_task = tokio::spawn(engine.run());

    tokio::time::sleep(SETTLE).await;
    eprintln!("policybench: idle: {} s", opts.idle_secs);
    // The /proc reads stay outside the getrusage window.
    let th0 = threads("self");
    let (u0, t0) = (usage(), Instant::now());
    tokio::time::sleep(Duration::from_secs(opts.idle_secs)).await;
    let (u1, secs) = (usage(), t0.elapsed().as_secs_f64());
    let th1 = threads("self");
    let threads_now = status_value("self", "Threads").unwrap_or(0);
    let open_tasks = handle.snapshot.borrow().queue.open_tasks;
    if engine_task.is_finished() {
        bail!("the engine stopped during the idle time");
    }

    eprintln!("policybench: reload: {RUNS} x callback_due, {RUNS} x warn_before");
    let mut reload_fast = Vec::new();
    for cfg in fast {
        let t = Instant::now();
        if !handle.reconfigure(cfg).await {
            bail!("the engine is gone (reconfigure callback_due)");
        }
        reload_fast.push(ms_since(t));
    }
    let mut reload_full = Vec::new();
    for cfg in full {
        let t = Instant::now();
        if !handle.reconfigure(cfg).await {
            bail!("the engine is gone (reconfigure warn_before)");
        }
        reload_full.push(ms_since(t));
    }
    // The snapshot is published after the loop turn that applied the last reload.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let open_tasks_after_reload = handle.snapshot.borrow().queue.open_tasks;

    drop(handle);
    if tokio::time::timeout(Duration::from_secs(10), engine_task)
        .await
        .is_err()
    {
        eprintln!("policybench: the engine did not stop within 10 s of its handle's drop");
    }
    let cpu_s = u1.cpu_s - u0.cpu_s;
    Ok(IdleResults {
        tasks: opts.tasks,
        seed_s: 0.0,
        store_mb: 0.0,
        startup_ms,
        rss_before_start_mb,
        rss_after_start_mb,
        secs,
        cpu_s,
        cpu_pct: 100.0 * cpu_s / secs,
        voluntary: u1.voluntary - u0.voluntary,
        involuntary: u1.involuntary - u0.involuntary,
        threads: threads_now,
        delta: thread_delta(&th0, &th1, thread_group),
        open_tasks,
        reload_fast: Ms(reload_fast),
        reload_full: Ms(reload_full),
        open_tasks_after_reload,
        task_scan: Ms::default(),
    })
}

fn idle_phase(dir: &Path, opts: &Options) -> Result<IdleResults> {
    let path = dir.join("open-tasks");
    let store = Store::open(&path).context("opening the open-task store")?;
    eprintln!("policybench: seeding {} open callback tasks", opts.tasks);
    let t = Instant::now();
    seed_open_tasks(&store, opts.tasks, wall_now())?;
    let seed_s = t.elapsed().as_secs_f64();
    let store_mb = mb(dir_bytes(&path));
    // Every report reads all tasks ever stored (then keeps those of its period): what that costs here.
    let (task_scan, _) = time_runs(|| Ok(store.tasks_newest_first(usize::MAX, |_| false)?.len()))?;
    // Like the daemon's: two workers.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let mut r = rt.block_on(idle_and_reload(store, opts))?;
    rt.shutdown_timeout(Duration::from_secs(5));
    r.seed_s = seed_s;
    r.store_mb = store_mb;
    r.task_scan = task_scan;
    if r.open_tasks != opts.tasks as u64 || r.open_tasks_after_reload != opts.tasks as u64 {
        bail!(
            "the engine counts {} open tasks ({} after the reloads), {} were seeded",
            r.open_tasks,
            r.open_tasks_after_reload,
            opts.tasks
        );
    }
    Ok(r)
}

// ---------------------------------------------------------------------------------------
// The example config
// ---------------------------------------------------------------------------------------

struct ExampleConfig {
    path: String,
    bytes: usize,
    /// `Config::parse` (TOML + validate), or why it failed.
    parse: std::result::Result<Ms, String>,
    validate: Option<Ms>,
}

fn example_config() -> ExampleConfig {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/linekeeper.example.toml");
    let shown = "config/linekeeper.example.toml".to_string();
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            return ExampleConfig {
                path: shown,
                bytes: 0,
                parse: Err(format!("cannot read {}: {e}", path.display())),
                validate: None,
            }
        }
    };
    let parsed = time_runs(|| parse_config(&text));
    let (parse, validate) = match parsed {
        Ok((t, cfg)) => {
            let v = time_runs(|| Ok(cfg.validate())).ok().map(|(t, _)| t);
            (Ok(t), v)
        }
        Err(e) => (Err(format!("{e:#}")), None),
    };
    ExampleConfig {
        path: shown,
        bytes: text.len(),
        parse,
        validate,
    }
}

// ---------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------

struct Results {
    machine: Machine,
    opts: Options,
    month: MonthResults,
    idle: IdleResults,
    example: ExampleConfig,
}

fn run(opts: Options) -> Result<Results> {
    let machine = machine();
    let dir = bench::work_dir("policybench", None, false)?;
    eprintln!(
        "policybench: working in {}; {} calls, {} open tasks, {} s idle",
        dir.path().display(),
        opts.calls,
        opts.tasks,
        opts.idle_secs
    );
    let cfg = parse_config(&bench_config_text("24h", "2h"))?;
    let month = month_phase(dir.path(), &cfg, opts.calls)?;
    let idle = idle_phase(dir.path(), &opts)?;
    let example = example_config();
    Ok(Results {
        machine,
        opts,
        month,
        idle,
        example,
    })
}

fn opt1(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:.1}"))
}

fn report(r: &Results) -> String {
    let mut table = Table::new(50, 16);
    let mut row = |metric: &str, value: String, target: &str| table.row(metric, value, target);
    let f = |x: f64, d: usize| format!("{x:.d$}");
    let mm = |t: &Ms| format!("{:.1} / {:.1}", t.min(), t.median());
    let m = &r.month;
    let i = &r.idle;

    row("metric", "value".into(), "target");
    row(&"-".repeat(50), "-".repeat(16), "------");
    row(
        &format!(
            "1. month report ({} calls, {} tasks; x{RUNS})",
            m.seeded.calls, m.seeded.tasks
        ),
        String::new(),
        "",
    );
    row("  seeding s (library)", f(m.seed_s, 1), "");
    row("  store on disk MB", f(m.store_mb, 1), "");
    row(
        "  reporting::generate ms (min / median)",
        mm(&m.generate),
        &format!("< {TARGET_REPORT_MS:.0}"),
    );
    row("    of which store read ms (min / median)", mm(&m.load), "");
    row("  report::build alone ms (min / median)", mm(&m.build), "");
    row("  report::to_csv ms (min / median)", mm(&m.csv), "");
    row("  CSV KB", f(m.csv_kb, 1), "");
    row(
        "  calls / tasks read",
        format!("{} / {}", m.calls_loaded, m.tasks_loaded),
        "",
    );
    row("  offered (= seeded calls)", m.offered.to_string(), "");
    row(
        "  service level % / ASA s",
        format!("{} / {}", opt1(m.service_level_pct), opt1(m.asa_s)),
        "",
    );
    row(
        "  lines / agents",
        format!("{} / {}", m.per_line, m.per_agent),
        "",
    );

    let ((sled_sw, sled_cpu), (rest_sw, rest_cpu)) = i.split();
    row(
        &format!("2. idle with {} open tasks ({:.0} s)", i.tasks, i.secs),
        String::new(),
        "",
    );
    row("  seeding s (library)", f(i.seed_s, 1), "");
    row("  store on disk MB", f(i.store_mb, 1), "");
    row("  Engine::new ms", f(i.startup_ms, 1), "");
    row(
        "  VmRSS before / after Engine::new MB",
        format!("{:.1} / {:.1}", i.rss_before_start_mb, i.rss_after_start_mb),
        "",
    );
    row(
        "  queue.open_tasks",
        i.open_tasks.to_string(),
        &format!("= {}", i.tasks),
    );
    row("  process CPU s (user+sys)", f(i.cpu_s, 4), "");
    row(
        "  process CPU % of one core",
        f(i.cpu_pct, 4),
        &format!("near 0 (< {TARGET_IDLE_CPU_PCT})"),
    );
    row(
        "  context switches voluntary / involuntary",
        format!("{} / {}", i.voluntary, i.involuntary),
        "",
    );
    row(
        "  context switches per s",
        f((i.voluntary + i.involuntary) as f64 / i.secs, 2),
        "",
    );
    row("  threads", i.threads.to_string(), "");
    row(
        "  sled-io threads: switches / CPU ms",
        format!("{sled_sw} / {sled_cpu:.2}"),
        "(known: 1/s each)",
    );
    row(
        "  all other threads: switches / CPU ms",
        format!("{rest_sw} / {rest_cpu:.2}"),
        "near 0",
    );
    for g in &i.delta.groups {
        row(
            &format!("    {} (x{}): switches / CPU ms", g.name, g.threads),
            format!("{} / {:.2}", g.switches, g.cpu_ms),
            "",
        );
    }
    if i.delta.exited > 0 {
        row(
            "    threads exited meanwhile",
            i.delta.exited.to_string(),
            "",
        );
    }

    let fast_ok = i.reload_fast.median() < TARGET_RELOAD_MS;
    let full_ok = i.reload_full.median() < TARGET_RELOAD_MS;
    let verdict = |ok: bool| if ok { "meets" } else { "misses" };
    row(
        &format!("3. reload with {} open tasks (x{RUNS})", i.tasks),
        String::new(),
        "",
    );
    row(
        "  (a) callback_due only, ms (min / median)",
        mm(&i.reload_fast),
        &format!("< {TARGET_RELOAD_MS:.0}: {}", verdict(fast_ok)),
    );
    row(
        "  (b) warn_before, timers recomputed, ms",
        mm(&i.reload_full),
        &format!("< {TARGET_RELOAD_MS:.0}: {}", verdict(full_ok)),
    );
    row(
        "  report's task scan on this store ms (min / median)",
        mm(&i.task_scan),
        "",
    );
    row(
        "  queue.open_tasks after the reloads",
        i.open_tasks_after_reload.to_string(),
        &format!("= {}", i.tasks),
    );
    let e = &r.example;
    row(
        &format!("  {} ({} bytes)", e.path, e.bytes),
        String::new(),
        "",
    );
    match &e.parse {
        Ok(t) => row(
            "    Config::parse (+ validate) ms (min / median)",
            format!("{:.3} / {:.3}", t.min(), t.median()),
            "",
        ),
        Err(err) => row("    Config::parse", "FAILED".into(), err),
    }
    if let Some(t) = &e.validate {
        row(
            "    Config::validate alone ms (min / median)",
            format!("{:.3} / {:.3}", t.min(), t.median()),
            "",
        );
    }
    table.into_string()
}

fn json_line(r: &Results) -> Value {
    let m = &r.month;
    let i = &r.idle;
    let ((sled_sw, sled_cpu), (rest_sw, rest_cpu)) = i.split();
    json_report(
        "policybench",
        &r.machine,
        Value::Null,
        json!({
            "params": {
                "calls": r.opts.calls,
                "tasks": r.opts.tasks,
                "idle_secs": r.opts.idle_secs,
                "quick": r.opts.quick,
                "runs": RUNS,
            },
            "month_report": {
                "calls": m.seeded.calls,
                "tasks": m.seeded.tasks,
                "seed_secs": round(m.seed_s, 2),
                "store_mb": round(m.store_mb, 1),
                "generate_ms": m.generate.runs_json(),
                "store_read_ms": m.load.runs_json(),
                "build_ms": m.build.runs_json(),
                "to_csv_ms": m.csv.runs_json(),
                "csv_kb": round(m.csv_kb, 1),
                "offered": m.offered,
                "calls_read": m.calls_loaded,
                "tasks_read": m.tasks_loaded,
                "service_level_pct": m.service_level_pct,
                "asa_s": m.asa_s,
                "lines": m.per_line,
                "agents": m.per_agent,
            },
            "idle": {
                "open_tasks_seeded": i.tasks,
                "seed_secs": round(i.seed_s, 2),
                "store_mb": round(i.store_mb, 1),
                "engine_startup_ms": round(i.startup_ms, 2),
                "rss_before_start_mb": round(i.rss_before_start_mb, 1),
                "rss_after_start_mb": round(i.rss_after_start_mb, 1),
                "open_tasks": i.open_tasks,
                "secs": round(i.secs, 2),
                "cpu_s": round(i.cpu_s, 5),
                "cpu_pct": round(i.cpu_pct, 5),
                "ctxt_voluntary": i.voluntary,
                "ctxt_involuntary": i.involuntary,
                "threads": i.threads,
                "threads_exited": i.delta.exited,
                "sled_io": { "ctxt_switches": sled_sw, "cpu_ms": round(sled_cpu, 3) },
                "other_threads": { "ctxt_switches": rest_sw, "cpu_ms": round(rest_cpu, 3) },
                "by_thread": i.delta.groups.iter()
                    .map(|g| (g.name.clone(), json!({
                        "threads": g.threads, "ctxt_switches": g.switches, "cpu_ms": round(g.cpu_ms, 3),
                    })))
                    .collect::<serde_json::Map<String, Value>>(),
            },
            "reload": {
                "open_tasks": i.tasks,
                "callback_due_ms": i.reload_fast.runs_json(),
                "warn_before_ms": i.reload_full.runs_json(),
                "open_tasks_after": i.open_tasks_after_reload,
                "report_task_scan_ms": i.task_scan.runs_json(),
            },
            "example_config": {
                "bytes": r.example.bytes,
                "parse_ms": match &r.example.parse {
                    Ok(t) => t.runs_json(),
                    Err(e) => json!({ "error": e }),
                },
                "validate_ms": r.example.validate.as_ref().map(Ms::runs_json),
            },
            "targets": {
                "month_report_ms": TARGET_REPORT_MS,
                "idle_cpu_pct": TARGET_IDLE_CPU_PCT,
                "reload_ms": TARGET_RELOAD_MS,
            },
        }),
    )
}

fn main() -> ExitCode {
    bench::main("policybench", Options::parse, run, None, |r| {
        let head = [
            r.machine.headline("policybench"),
            format!(
                "params: {} calls, {} open tasks, {} s idle{}",
                r.opts.calls,
                r.opts.tasks,
                r.opts.idle_secs,
                if r.opts.quick { " (--quick)" } else { "" }
            ),
        ];
        bench::print_report("policybench", &head, &report(&r), &json_line(&r));
        ExitCode::SUCCESS
    })
}
