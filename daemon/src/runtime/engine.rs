//! The core: one task owns the call trackers, the task indexes, the sequence counter and all writes to the store.
//! Line adapters and the web send it inputs over a bounded channel; it applies them, commits (flushes) the change,
//! and only then publishes the events (SSE broadcast, MQTT via the outbox watermark) and the new snapshot.
//!
//! Inputs that queue up while a commit runs are applied together and committed once (group commit).
//!
//! The engine is one owner of state whose handlers share its private fields, hence its length; it shrinks as its
//! decisions move into `linekeeper-core` as a pure state machine (issue 11).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, TimeZone};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::calendar::BusinessCalendar;
use crate::clock::Clock;
use crate::clock::Now;
use crate::config::Config;
use crate::config::DeadlineClockKind;
use crate::directory::Customer;
use crate::metrics::{inc, Metrics};
use crate::model::{
    id_floor, new_id, rfc3339_local, Alert, Call, Direction, Event, LineState, Outcome,
    QueueSummary, Subject, Task, TaskKind, Time,
};
use crate::model::{AgentState, AgentStatus, Level, Severity, TaskState};
use crate::report::Report;
use crate::store::{Change, Store, StoreError};
use crate::tasks::{
    self, ActionError, ComplaintRequest, DeadlineClock, Deadlines, Effect, TaskAction, TaskPolicy,
};
use crate::tracker::{CallEventKind, CallTracker, LineInput};

/// Largest number of inputs applied in one commit: as many as the input channel holds, so a slow sync (2-20 ms on
/// an SD card) carries everything that queued up behind it. (256 gave 870 calls/s with 20 ms syncs; lkbench with
/// `fdatasync` delayed by strace, see the README's reliability section.)
const MAX_BATCH: usize = INPUT_QUEUE;

/// The engine's input channel: line adapters and the web wait when it is full.
const INPUT_QUEUE: usize = 1024;

/// An answer held back until the change it reports is on disk.
type Reply<T> = (
    oneshot::Sender<Result<T, ActionError>>,
    Result<T, ActionError>,
);

pub enum Input {
    Line {
        line: String,
        input: LineInput,
    },
    Action {
        id: String,
        action: TaskAction,
        reply: oneshot::Sender<Result<Task, ActionError>>,
    },
    Complaint {
        req: ComplaintRequest,
        reply: oneshot::Sender<Result<Task, ActionError>>,
    },
    Agent {
        id: String,
        action: AgentAction,
        reply: oneshot::Sender<Result<AgentState, ActionError>>,
    },
    /// Adds or replaces customers (already validated) and removes numbers from the directory.
    Customers {
        upserts: Vec<Customer>,
        deletes: Vec<String>,
        reply: oneshot::Sender<usize>,
    },
    /// A report made by the scheduler (or on request): stored, announced and retained.
    Report {
        report: Box<Report>,
        reply: oneshot::Sender<()>,
    },
    /// Acknowledges every overdue task not yet acknowledged (a dashboard button).
    AckAll {
        by: String,
        reply: oneshot::Sender<Result<usize, ActionError>>,
    },
    /// A new, validated configuration: applied without dropping a call.
    Reconfigure {
        cfg: Arc<Config>,
        reply: oneshot::Sender<()>,
    },
}

/// What an agent does (desk key, web page, API, MQTT command).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentAction {
    SignIn,
    SignOut,
    Available,
    Away,
}

impl AgentAction {
    pub fn parse(s: &str) -> Option<AgentAction> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
}

/// What the outputs see: line states and the queue summary, replaced as a whole on every change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub lines: Vec<LineState>,
    pub queue: QueueSummary,
    pub agents: Vec<AgentState>,
    /// The latest report of each kind, as JSON (retained on `P/report/{kind}`).
    pub reports: BTreeMap<String, Arc<Vec<u8>>>,
    /// The last `seq` committed to the outbox.
    pub last_seq: u64,
    /// While commits fail (disk full, read-only, I/O errors): the last error and when the failures began. Nothing is
    /// published or acknowledged meanwhile.
    pub store_error: Option<StoreFailure>,
}

impl Snapshot {
    pub fn store_ok(&self) -> bool {
        self.store_error.is_none()
    }
}

/// Why the store is failing, since when.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreFailure {
    pub error: String,
    pub since: Time,
}

/// A failing commit is tried again after this, doubling up to [`STORE_RETRY_MAX`], even when nothing new arrives.
const STORE_RETRY_MIN: Duration = Duration::from_secs(1);
const STORE_RETRY_MAX: Duration = Duration::from_secs(30);

/// A cloneable handle to the engine.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::Sender<Input>,
    pub snapshot: watch::Receiver<Snapshot>,
    pub events: broadcast::Sender<Arc<Event>>,
}

impl EngineHandle {
    /// False once the engine task has ended (it panicked, or the daemon is stopping): nothing is recorded then.
    pub fn is_running(&self) -> bool {
        !self.tx.is_closed()
    }

    pub async fn line_input(&self, line: &str, input: LineInput) -> bool {
        self.tx
            .send(Input::Line {
                line: line.to_string(),
                input,
            })
            .await
            .is_ok()
    }

    pub async fn close_task(
        &self,
        id: &str,
        by: Option<String>,
        note: Option<String>,
    ) -> Result<Task, ActionError> {
        self.task_action(id, TaskAction::Done { by, note }).await
    }

    /// Sends an input that carries a reply channel and waits for the answer (given once the change is on disk).
    async fn request<T>(
        &self,
        input: impl FnOnce(oneshot::Sender<Result<T, ActionError>>) -> Input,
    ) -> Result<T, ActionError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(input(reply))
            .await
            .map_err(|_| ActionError::ShuttingDown)?;
        rx.await.map_err(|_| ActionError::ShuttingDown)?
    }

    /// Applies an action to a task; answers once the change is on disk.
    pub async fn task_action(&self, id: &str, action: TaskAction) -> Result<Task, ActionError> {
        let id = id.to_string();
        self.request(|reply| Input::Action { id, action, reply })
            .await
    }

    /// Signs an agent in or out, or marks them available or away; answers once it is on disk.
    pub async fn agent_action(
        &self,
        id: &str,
        action: AgentAction,
    ) -> Result<AgentState, ActionError> {
        let id = id.to_string();
        self.request(|reply| Input::Agent { id, action, reply })
            .await
    }

    /// Writes customers to the directory (and removes `deletes`); answers with how many records changed, once on
    /// disk.
    pub async fn customers(
        &self,
        upserts: Vec<Customer>,
        deletes: Vec<String>,
    ) -> Result<usize, ActionError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Input::Customers {
                upserts,
                deletes,
                reply,
            })
            .await
            .map_err(|_| ActionError::ShuttingDown)?;
        rx.await.map_err(|_| ActionError::ShuttingDown)
    }

    /// Stores a report, publishes `report.published` and retains it; false when the engine is gone.
    pub async fn store_report(&self, report: Report) -> bool {
        let (reply, rx) = oneshot::channel();
        let input = Input::Report {
            report: Box::new(report),
            reply,
        };
        self.tx.send(input).await.is_ok() && rx.await.is_ok()
    }

    /// Applies a new, validated configuration; answers once applied.
    pub async fn reconfigure(&self, cfg: Arc<Config>) -> bool {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Input::Reconfigure { cfg, reply })
            .await
            .is_ok()
            && rx.await.is_ok()
    }

    /// Acknowledges every overdue, unacknowledged task; answers how many, once on disk.
    pub async fn ack_all(&self, by: &str) -> Result<usize, ActionError> {
        let by = by.to_string();
        self.request(|reply| Input::AckAll { by, reply }).await
    }

    /// Opens a complaint (from a call, or by hand); answers once it is on disk.
    pub async fn open_complaint(&self, req: ComplaintRequest) -> Result<Task, ActionError> {
        self.request(|reply| Input::Complaint { req, reply }).await
    }
}

/// An open task's timer facts and the time of its entry in the engine's `timers`, if any.
struct Scheduled {
    facts: tasks::TimerFacts,
    at: Option<Time>,
}

/// Today's figures for the queue summary (site-local day), counted by the reports' own accumulator.
#[derive(Debug, Default)]
struct Today {
    date: Option<NaiveDate>,
    calls: crate::report::Tally,
}

impl Today {
    /// Counts a finished incoming call the way the reports do (see `report.rs`).
    fn count(&mut self, call: &Call, p: &crate::config::Policy) {
        if call.direction != Direction::In {
            return;
        }
        self.calls.add_call(
            call,
            p.answer_target.0.as_secs_f64(),
            p.short_abandon.0.as_secs_f64(),
        );
    }
}

pub struct Engine {
    cfg: Arc<Config>,
    tz: chrono_tz::Tz,
    store: Store,
    clock: Clock,
    metrics: Arc<Metrics>,
    trackers: BTreeMap<String, CallTracker>,
    /// Lines whose loss was alerted and not yet cleared.
    alerted_down: BTreeSet<String>,
    next_seq: u64,
    /// Open callback/review tasks by caller number.
    open_by_number: HashMap<String, String>,
    /// Open follow-up tasks by number.
    open_followup: HashMap<String, String>,
    /// Whether each call in progress is from a repeat caller, by call id.
    call_repeat: HashMap<String, bool>,
    /// Whether each call in progress began before the clock was synchronised, by call id.
    call_unsynced: HashMap<String, bool>,
    /// Each open task's next deadline timer (warning, deadline, escalation), by time; one per task.
    timers: BTreeSet<(Time, String)>,
    /// For each open task, what its timers depend on and when its entry in `timers` is.
    scheduled: HashMap<String, Scheduled>,
    policy: TaskPolicy,
    deadlines: Box<dyn DeadlineClock + Send>,
    /// Ringing calls not yet alerted for ringing long: call id -> (line, when to alert).
    ring_alerts: HashMap<String, (String, Time)>,
    open_count: u64,
    overdue_count: u64,
    today: Today,
    /// The change being built; cleared only once it is on disk.
    change: Change,
    /// Tasks changed in the current change, newer than the store's copy.
    dirty_tasks: HashMap<String, Task>,
    replies: Vec<Reply<Task>>,
    agent_replies: Vec<Reply<AgentState>>,
    /// Agents in configuration order, with their state.
    agents: Vec<AgentState>,
    /// The agent handling each call in progress, by call id.
    call_agent: HashMap<String, String>,
    calendar: BusinessCalendar,
    /// The customer directory, by number.
    directory: HashMap<String, Customer>,
    /// When each number last called, within `repeat_window`.
    last_call: HashMap<String, Time>,
    count_replies: Vec<(oneshot::Sender<usize>, usize)>,
    count_result_replies: Vec<Reply<usize>>,
    unit_replies: Vec<oneshot::Sender<()>>,
    reports: BTreeMap<String, Arc<Vec<u8>>>,
    /// "No agent signed in during open hours" was alerted and not yet cleared.
    unstaffed_alerted: bool,
    store_error: Option<StoreFailure>,
    /// While the store fails: when to try the held change again, and the wait after that.
    store_retry: Option<(Instant, Duration)>,
    wiring: Wiring,
    /// The origin of the call trackers' monotonic time (`clock::Now::core`).
    origin: Instant,
    snapshot_tx: Arc<watch::Sender<Snapshot>>,
    events_tx: broadcast::Sender<Arc<Event>>,
}

/// What outlives an engine that failed: its input queue and its outputs, so the handles the rest of the daemon holds
/// stay valid when the supervisor starts a new engine ([`Engine::restart`]).
#[derive(Clone)]
pub struct Wiring {
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Input>>>,
    snapshot_tx: Arc<watch::Sender<Snapshot>>,
    events_tx: broadcast::Sender<Arc<Event>>,
}

impl Engine {
    /// Builds the engine from the store: recovers the sequence counter, closes calls left open by a crash as
    /// `interrupted`, and indexes the open tasks.
    pub fn new(
        cfg: Arc<Config>,
        store: Store,
        clock: Clock,
        metrics: Arc<Metrics>,
    ) -> Result<(Engine, EngineHandle), StoreError> {
        let (tx, rx) = mpsc::channel(INPUT_QUEUE);
        let (snapshot_tx, snapshot) = watch::channel(Snapshot::default());
        let (events_tx, _) = broadcast::channel(1024);
        let wiring = Wiring {
            rx: Arc::new(tokio::sync::Mutex::new(rx)),
            snapshot_tx: Arc::new(snapshot_tx),
            events_tx: events_tx.clone(),
        };
        let e = Engine::restart(cfg, store, clock, metrics, wiring)?;
        let handle = EngineHandle {
            tx,
            snapshot,
            events: events_tx,
        };
        Ok((e, handle))
    }

    /// What a new engine needs to take over this one's handles.
    pub fn wiring(&self) -> Wiring {
        self.wiring.clone()
    }

    /// Builds an engine from the store on the queue and outputs of `wiring` (after the last one failed): as at
    /// start, calls left open are closed as `interrupted`; inputs that were not yet on disk were never answered.
    pub fn restart(
        cfg: Arc<Config>,
        store: Store,
        clock: Clock,
        metrics: Arc<Metrics>,
        wiring: Wiring,
    ) -> Result<Engine, StoreError> {
        let now = clock.now();
        let trackers = cfg
            .lines
            .iter()
            .map(|l| {
                (
                    l.id.clone(),
                    CallTracker::new(&l.id, l.answer_detect, l.ring_timeout.0, now.wall),
                )
            })
            .collect();
        let policy = cfg.policy.task_policy();
        let calendar = BusinessCalendar::new(cfg.timezone(), cfg.hours.as_ref(), &cfg.shifts)
            .unwrap_or_else(|_| BusinessCalendar::always_open(cfg.timezone()));
        let deadlines: Box<dyn DeadlineClock + Send> = Box::new(Deadlines {
            calendar: calendar.clone(),
            business: cfg.policy.deadline_clock == DeadlineClockKind::Business,
        });
        let mut e = Engine {
            tz: cfg.timezone(),
            cfg,
            next_seq: store.next_seq()?,
            store,
            clock,
            metrics,
            trackers,
            alerted_down: BTreeSet::new(),
            open_by_number: HashMap::new(),
            open_followup: HashMap::new(),
            call_repeat: HashMap::new(),
            call_unsynced: HashMap::new(),
            timers: BTreeSet::new(),
            scheduled: HashMap::new(),
            policy,
            deadlines,
            ring_alerts: HashMap::new(),
            open_count: 0,
            overdue_count: 0,
            today: Today::default(),
            change: Change::default(),
            dirty_tasks: HashMap::new(),
            replies: Vec::new(),
            agent_replies: Vec::new(),
            agents: Vec::new(),
            call_agent: HashMap::new(),
            calendar,
            unstaffed_alerted: false,
            directory: HashMap::new(),
            last_call: HashMap::new(),
            count_replies: Vec::new(),
            count_result_replies: Vec::new(),
            unit_replies: Vec::new(),
            reports: BTreeMap::new(),
            store_error: None,
            store_retry: None,
            snapshot_tx: wiring.snapshot_tx.clone(),
            events_tx: wiring.events_tx.clone(),
            wiring,
            origin: now.mono,
        };
        for a in e.cfg.agents.clone() {
            let saved: Option<AgentState> = e.store.record(&format!("agent/{}", a.id))?;
            let mut st = saved.unwrap_or(AgentState {
                agent: a.id.clone(),
                name: a.name.clone(),
                state: AgentStatus::SignedOut,
                since: now.wall,
                call_id: None,
                last_sign_in: None,
            });
            // A call in progress did not survive the restart.
            if st.state == AgentStatus::OnCall {
                st.state = AgentStatus::Available;
                st.call_id = None;
            }
            st.name = a.name.clone();
            e.agents.push(st);
        }
        for kind in ["shift", "daily", "weekly", "monthly", "quarterly"] {
            let latest = e
                .store
                .records_with_prefix::<serde_json::Value>(&format!("report/{kind}/"))?
                .pop();
            if let Some((_, r)) = latest {
                e.reports.insert(
                    kind.to_string(),
                    Arc::new(serde_json::to_vec(&r).unwrap_or_default()),
                );
            }
        }
        for (_, c) in e.store.records_with_prefix::<Customer>("customer/")? {
            e.directory.insert(c.number.clone(), c);
        }
        let window = chrono::Duration::from_std(e.cfg.policy.repeat_window.0).unwrap_or_default();
        let mut last_call = HashMap::new();
        e.store
            .for_each_call_number(&id_floor(now.wall - window), "~", |n, at| {
                last_call.insert(n, at);
            })?;
        e.last_call = last_call;
        for t in e.store.open_tasks()? {
            e.index_open(&t);
        }
        for mut c in e.store.open_calls()? {
            info!(call = %c.id, line = %c.line, "closing a call left open by the last run as interrupted");
            c.ended_at = Some(now.wall);
            c.outcome = Some(Outcome::Interrupted);
            inc(&e.metrics.calls_interrupted);
            e.record_call(CallEventKind::Ended, c, now.wall);
        }
        e.rebuild_today(now.wall)?;
        e.commit();
        e.publish_snapshot();
        Ok(e)
    }

    /// Adds an open task to the counts, the number index and the timers.
    fn index_open(&mut self, t: &Task) {
        if t.state != TaskState::Open {
            return;
        }
        self.open_count += 1;
        if t.overdue {
            self.overdue_count += 1;
        }
        if let Some(n) = &t.number {
            match t.kind {
                TaskKind::Callback | TaskKind::Review => {
                    self.open_by_number.insert(n.clone(), t.id.clone());
                }
                TaskKind::Followup => {
                    self.open_followup.insert(n.clone(), t.id.clone());
                }
                _ => {}
            }
        }
        let facts = tasks::TimerFacts::from(t);
        let at = tasks::next_timer_for(&facts, &self.policy).map(|(at, _)| at);
        if let Some(at) = at {
            self.timers.insert((at, t.id.clone()));
        }
        self.scheduled.insert(t.id.clone(), Scheduled { facts, at });
    }

    /// Removes a task (as it was indexed) from the counts, the number index and the timers.
    fn unindex(&mut self, t: &Task) {
        if t.state != TaskState::Open {
            return;
        }
        self.open_count = self.open_count.saturating_sub(1);
        if t.overdue {
            self.overdue_count = self.overdue_count.saturating_sub(1);
        }
        if let Some(n) = &t.number {
            if self.open_by_number.get(n) == Some(&t.id) {
                self.open_by_number.remove(n);
            }
            if self.open_followup.get(n) == Some(&t.id) {
                self.open_followup.remove(n);
            }
        }
        if let Some(Scheduled { at: Some(at), .. }) = self.scheduled.remove(&t.id) {
            self.timers.remove(&(at, t.id.clone()));
        }
    }

    fn local_date(&self, t: Time) -> NaiveDate {
        t.with_timezone(&self.tz).date_naive()
    }

    fn rebuild_today(&mut self, now: Time) -> Result<(), StoreError> {
        let date = self.local_date(now);
        let start = self
            .tz
            .from_local_datetime(&date.and_hms_opt(0, 0, 0).unwrap_or_default())
            .earliest()
            .map(|d| d.with_timezone(&chrono::Utc))
            .unwrap_or(now);
        let policy = self.cfg.policy.clone();
        let mut today = Today {
            date: Some(date),
            ..Default::default()
        };
        self.store.for_each_call(&id_floor(start), "~", |c| {
            if c.ended_at.is_some() {
                today.count(&c, &policy);
            }
        })?;
        self.today = today;
        Ok(())
    }

    fn next_midnight(&self, now: Time) -> Time {
        let tomorrow = self.local_date(now).succ_opt().unwrap_or_default();
        self.tz
            .from_local_datetime(&tomorrow.and_hms_opt(0, 0, 0).unwrap_or_default())
            .earliest()
            .map(|d| d.with_timezone(&chrono::Utc))
            .unwrap_or(now + chrono::Duration::hours(24))
    }

    /// The next moment a timer must fire: a line's ring timeout, a task deadline or midnight (for the day's
    /// figures). Nothing else wakes the engine, so an idle box runs no timers but the daily one.
    fn next_wakeup(&self, now: Now) -> Instant {
        let mut at = wall_to_mono(now, self.next_midnight(now.wall));
        for t in self.trackers.values() {
            if let Some(d) = t.deadline() {
                at = at.min(self.origin + d.0);
            }
        }
        if let Some((due, _)) = self.timers.first() {
            at = at.min(wall_to_mono(now, *due));
        }
        for (_, at_wall) in self.ring_alerts.values() {
            at = at.min(wall_to_mono(now, *at_wall));
        }
        if let Some(open_at) = self.staffing_check_at(now.wall) {
            at = at.min(wall_to_mono(now, open_at));
        }
        if let Some((retry_at, _)) = self.store_retry {
            at = at.min(retry_at);
        }
        at
    }

    pub async fn run(mut self) {
        // Held while this engine runs; a failed engine's guard is dropped with it, and the next one takes over.
        let mut rx = self.wiring.rx.clone().lock_owned().await;
        loop {
            let wake = self.next_wakeup(self.clock.now());
            tokio::select! {
                msg = rx.recv() => {
                    let Some(msg) = msg else { break };
                    self.apply(msg);
                    // Group commit: take what queued up meanwhile, then flush once.
                    let mut n = 1;
                    while n < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(m) => { self.apply(m); n += 1; }
                            Err(_) => break,
                        }
                    }
                }
                _ = tokio::time::sleep_until(wake) => {}
            }
            self.on_timers();
            if !self.commit() {
                self.publish_snapshot();
            }
        }
        info!("engine stopped");
    }

    fn apply(&mut self, msg: Input) {
        let now = self.clock.now();
        match msg {
            Input::Line { line, input } => self.line_input(&line, input, now),
            Input::Action { id, action, reply } => {
                let r = self.task_action(&id, action, now.wall);
                self.replies.push((reply, r));
            }
            Input::Complaint { req, reply } => {
                let r = self.open_complaint(req, now.wall);
                self.replies.push((reply, r));
            }
            Input::Agent { id, action, reply } => {
                let r = self.agent_action(&id, action, now.wall);
                self.agent_replies.push((reply, r));
            }
            Input::Customers {
                upserts,
                deletes,
                reply,
            } => {
                let n = upserts.len() + deletes.len();
                for c in upserts {
                    let doc = serde_json::to_vec(&c).unwrap_or_default();
                    self.change
                        .records
                        .push((format!("customer/{}", c.number), Some(doc)));
                    self.directory.insert(c.number.clone(), c);
                }
                for number in deletes {
                    if self.directory.remove(&number).is_some() {
                        self.change
                            .records
                            .push((format!("customer/{number}"), None));
                    }
                }
                self.count_replies.push((reply, n));
            }
            Input::Report { report, reply } => {
                self.store_report(*report, now.wall);
                self.unit_replies.push(reply);
            }
            Input::AckAll { by, reply } => {
                let ids: Vec<String> = self
                    .scheduled
                    .iter()
                    .filter(|(_, s)| s.facts.overdue && !s.facts.acknowledged)
                    .map(|(id, _)| id.clone())
                    .collect();
                let mut n = 0;
                for id in ids {
                    let action = TaskAction::Ack {
                        by: Some(by.clone()),
                        note: Some("acknowledged all".into()),
                    };
                    if self.task_action(&id, action, now.wall).is_ok() {
                        n += 1;
                    }
                }
                self.count_result_replies.push((reply, Ok(n)));
            }
            Input::Reconfigure { cfg, reply } => {
                self.reconfigure(cfg, now);
                let _ = reply.send(());
            }
        }
    }

    fn line_input(&mut self, line: &str, input: LineInput, now: Now) {
        let Some(tracker) = self.trackers.get_mut(line) else {
            warn!(line, "input for a line that is not configured; ignored");
            return;
        };
        let was_up = tracker.is_link_up();
        let down_reason = match &input {
            LineInput::LinkDown { reason } => Some(reason.clone()),
            _ => None,
        };
        let transitions = tracker.on_input(input, now.core(self.origin));
        let is_up = tracker.is_link_up();
        for t in transitions {
            self.call_transition(t.kind, t.call, now.wall);
        }
        if let Some(reason) = down_reason {
            if (was_up || !self.alerted_down.contains(line))
                && self.alerted_down.insert(line.to_string())
            {
                self.alert(
                    "line_down",
                    Level::Supervisor,
                    format!("line {line} is down: {reason}"),
                    Some(line),
                    None,
                    now.wall,
                );
            }
        } else if is_up && !was_up && self.alerted_down.remove(line) {
            self.alert(
                "line_up",
                Level::Supervisor,
                format!("line {line} is back up"),
                Some(line),
                None,
                now.wall,
            );
        }
    }

    fn on_timers(&mut self) {
        let now = self.clock.now();
        let mut transitions = Vec::new();
        for t in self.trackers.values_mut() {
            let at = now.core(self.origin);
            if t.deadline().is_some_and(|d| d <= at.mono) {
                transitions.extend(t.on_timer(at));
            }
        }
        for t in transitions {
            self.call_transition(t.kind, t.call, now.wall);
        }
        while let Some((at, id)) = self.timers.first().cloned() {
            if at > now.wall {
                break;
            }
            let Some(before) = self.load_task(&id) else {
                self.timers.pop_first();
                self.scheduled.remove(&id);
                continue;
            };
            let mut task = before.clone();
            let effects = match tasks::next_timer(&task, &self.policy) {
                Some((t, timer)) if t <= now.wall => tasks::on_timer(&mut task, timer, now.wall),
                _ => Vec::new(),
            };
            self.task_changed(&before, task, effects, now.wall);
        }
        let due_alerts: Vec<(String, String)> = self
            .ring_alerts
            .iter()
            .filter(|(_, (_, at))| *at <= now.wall)
            .map(|(call, (line, _))| (line.clone(), call.clone()))
            .collect();
        for (line, call) in due_alerts {
            self.ring_alerts.remove(&call);
            let secs = self
                .cfg
                .policy
                .ring_alert_after
                .0
                .unwrap_or_default()
                .as_secs();
            self.alert(
                "long_ringing",
                Level::ShiftLead,
                format!("line {line} has been ringing for over {secs} s (call {call})"),
                Some(&line),
                None,
                now.wall,
            );
        }
        self.check_staffing(now.wall);
        if self.today.date != Some(self.local_date(now.wall)) {
            let window =
                chrono::Duration::from_std(self.cfg.policy.repeat_window.0).unwrap_or_default();
            self.last_call.retain(|_, t| now.wall - *t <= window);
            if let Err(e) = self.rebuild_today(now.wall) {
                error!(error = %e, "cannot rebuild today's figures from the store");
            }
        }
    }

    fn call_transition(&mut self, kind: CallEventKind, mut call: Call, now: Time) {
        if kind == CallEventKind::Ringing {
            if let Some(a) = self.pick_agent(&call.line) {
                self.call_agent.insert(call.id.clone(), a);
            }
        }
        call.agent = self.call_agent.get(&call.id).cloned();
        self.enrich(&mut call, kind, now);
        match (kind, &call.agent) {
            (CallEventKind::Answered, Some(a)) => {
                let (a, id) = (a.clone(), call.id.clone());
                self.set_agent(&a, AgentStatus::OnCall, Some(id), now);
            }
            (CallEventKind::Ended, Some(a)) => {
                let a = a.clone();
                self.call_agent.remove(&call.id);
                if self
                    .agent(&a)
                    .is_some_and(|s| s.call_id.as_deref() == Some(call.id.as_str()))
                {
                    self.set_agent(&a, AgentStatus::Available, None, now);
                }
            }
            _ => {}
        }
        match kind {
            CallEventKind::Ringing => {
                if let Some(after) = self.cfg.policy.ring_alert_after.0 {
                    let at =
                        call.started_at + chrono::Duration::from_std(after).unwrap_or_default();
                    self.ring_alerts
                        .insert(call.id.clone(), (call.line.clone(), at));
                }
            }
            _ => {
                self.ring_alerts.remove(&call.id);
            }
        }
        if kind == CallEventKind::Ended {
            let m = &self.metrics;
            match call.outcome {
                Some(Outcome::Answered) => inc(&m.calls_answered),
                Some(Outcome::Missed) => inc(&m.calls_missed),
                Some(Outcome::Interrupted) => inc(&m.calls_interrupted),
                _ => inc(&m.calls_unknown),
            }
            self.today.count(&call, &self.cfg.policy);
            info!(call = %call.id, line = %call.line, outcome = call.outcome.map(crate::model::Outcome::as_str).unwrap_or("none"), rings = call.rings, "call ended");
            self.record_call(kind, call.clone(), now);
            self.open_or_update_task(&call, now);
            self.vip_followup(&call, now);
        } else {
            self.record_call(kind, call, now);
        }
    }

    fn open_or_update_task(&mut self, call: &Call, now: Time) {
        let Some(kind) = tasks::kind_for(call, self.policy.unknown_outcome) else {
            return;
        };
        let Some(number) = call.number.clone() else {
            return;
        };
        let existing = self
            .open_by_number
            .get(&number)
            .cloned()
            .and_then(|id| self.load_task(&id));
        match existing {
            Some(before) => {
                let mut task = before.clone();
                tasks::add_attempt(&mut task, call, kind, now);
                self.task_changed(&before, task, vec![Effect::Event("task.updated")], now);
            }
            None => {
                let mut due = self.deadlines.after(now, self.policy.callback_due);
                if call.vip {
                    // VIPs never wait: called back the same business day.
                    due = due.min(self.deadlines.end_of_business_day(now));
                }
                self.task_opened(tasks::new_task(call, kind, due, now), now);
            }
        }
    }

    /// Takes a new configuration: trackers of kept lines keep their calls (only their settings change), new lines
    /// get a tracker, removed lines lose theirs (a call in progress ends as interrupted); policy, hours, shifts and
    /// agents change at once, and every open task's timer is recomputed under the new policy.
    fn reconfigure(&mut self, cfg: Arc<Config>, now: Now) {
        let removed: Vec<String> = self
            .trackers
            .keys()
            .filter(|id| !cfg.lines.iter().any(|l| &l.id == *id))
            .cloned()
            .collect();
        for id in removed {
            if let Some(mut t) = self.trackers.remove(&id) {
                for tr in t.on_input(
                    LineInput::LinkDown {
                        reason: "line removed from the configuration".into(),
                    },
                    now.core(self.origin),
                ) {
                    let mut call = tr.call;
                    if tr.kind == CallEventKind::Ended {
                        call.outcome = Some(Outcome::Interrupted);
                    }
                    self.call_transition(tr.kind, call, now.wall);
                }
            }
            self.alerted_down.remove(&id);
            self.ring_alerts.retain(|_, (line, _)| *line != id);
        }
        for l in &cfg.lines {
            match self.trackers.get_mut(&l.id) {
                Some(t) => t.reconfigure(l.answer_detect, l.ring_timeout.0),
                None => {
                    self.trackers.insert(
                        l.id.clone(),
                        CallTracker::new(&l.id, l.answer_detect, l.ring_timeout.0, now.wall),
                    );
                }
            }
        }
        self.tz = cfg.timezone();
        self.policy = cfg.policy.task_policy();
        self.calendar = BusinessCalendar::new(cfg.timezone(), cfg.hours.as_ref(), &cfg.shifts)
            .unwrap_or_else(|_| BusinessCalendar::always_open(cfg.timezone()));
        self.deadlines = Box::new(Deadlines {
            calendar: self.calendar.clone(),
            business: cfg.policy.deadline_clock == DeadlineClockKind::Business,
        });
        let old_agents = std::mem::take(&mut self.agents);
        for a in &cfg.agents {
            let mut st = old_agents
                .iter()
                .find(|o| o.agent == a.id)
                .cloned()
                .unwrap_or(AgentState {
                    agent: a.id.clone(),
                    name: a.name.clone(),
                    state: AgentStatus::SignedOut,
                    since: now.wall,
                    call_id: None,
                    last_sign_in: None,
                });
            st.name = a.name.clone();
            self.agents.push(st);
        }
        self.call_agent
            .retain(|_, a| cfg.agents.iter().any(|x| &x.id == a));
        let timers_changed = {
            let (a, b) = (&self.cfg.policy, &cfg.policy);
            a.warn_before != b.warn_before || a.escalate_every != b.escalate_every
        };
        self.cfg = cfg;
        self.unstaffed_alerted = false;
        self.check_staffing(now.wall);
        if !timers_changed {
            info!("configuration applied");
            return;
        }
        // Deadline timers depend on warn_before and escalate_every: recompute every open task's timer from the
        // facts kept in memory (no store reads, so a reload stays quick with 100,000 open tasks).
        for s in self.scheduled.values_mut() {
            s.at = tasks::next_timer_for(&s.facts, &self.policy).map(|(at, _)| at);
        }
        // Built in one go from sorted input (std bulk-builds a B-tree from a sorted sequence).
        let mut sorted: Vec<(Time, String)> = self
            .scheduled
            .iter()
            .filter_map(|(id, s)| s.at.map(|at| (at, id.clone())))
            .collect();
        sorted.sort_unstable();
        self.timers = sorted.into_iter().collect();
        info!(
            open_tasks = self.open_count,
            "configuration applied; task timers recomputed"
        );
    }

    /// What the site knows about the caller: a name from the directory when caller ID has none, the VIP flag, and
    /// whether the number called within `repeat_window` before. A VIP's ringing call alerts.
    fn enrich(&mut self, call: &mut Call, kind: CallEventKind, now: Time) {
        if kind == CallEventKind::Ringing || !self.call_unsynced.contains_key(&call.id) {
            self.call_unsynced
                .insert(call.id.clone(), !self.clock.is_synced());
        }
        call.clock_unsynced = self.call_unsynced.get(&call.id).copied().unwrap_or(false);
        if kind == CallEventKind::Ended {
            self.call_unsynced.remove(&call.id);
        }
        let Some(number) = call.number.clone() else {
            return;
        };
        if let Some(c) = self.directory.get(&number) {
            if call.name.is_none() {
                call.name = Some(c.name.clone());
            }
            call.vip = c.vip;
        }
        if kind == CallEventKind::Ringing {
            let window =
                chrono::Duration::from_std(self.cfg.policy.repeat_window.0).unwrap_or_default();
            call.repeat = self
                .last_call
                .get(&number)
                .is_some_and(|t| *t < call.started_at && call.started_at - *t <= window);
            self.call_repeat.insert(call.id.clone(), call.repeat);
            self.last_call.insert(number.clone(), call.started_at);
            if call.vip {
                let who = call.name.clone().unwrap_or_else(|| number.clone());
                self.alert(
                    "vip_ringing",
                    Level::ShiftLead,
                    format!("VIP {who} is calling on line {}", call.line),
                    Some(&call.line),
                    None,
                    now,
                );
            }
        } else {
            call.repeat = self.call_repeat.get(&call.id).copied().unwrap_or(false);
        }
        if kind == CallEventKind::Ended {
            self.call_repeat.remove(&call.id);
        }
    }

    /// A VIP's answered call gets a follow-up the same business day (000:L75, L79), unless one is open already.
    fn vip_followup(&mut self, call: &Call, now: Time) {
        if !call.vip || call.outcome != Some(Outcome::Answered) {
            return;
        }
        let Some(number) = call.number.clone() else {
            return;
        };
        if self.open_followup.contains_key(&number) {
            return;
        }
        let mut f = tasks::blank(
            TaskKind::Followup,
            self.deadlines.end_of_business_day(now),
            now,
        );
        f.number = Some(number);
        f.name = call.name.clone();
        f.call_ids = vec![call.id.clone()];
        f.agent = call.agent.clone();
        f.vip = true;
        f.history.push(crate::model::TaskEntry {
            at: now,
            action: "VIP call: same-day follow-up".into(),
            by: None,
            note: None,
        });
        self.task_opened(f, now);
    }

    fn store_report(&mut self, r: Report, now: Time) {
        let json = serde_json::to_vec(&r).unwrap_or_default();
        let kind = r.kind.as_str().to_string();
        self.change.records.push((
            crate::runtime::reporting::key(r.kind, &r.label),
            Some(json.clone()),
        ));
        let summary = serde_json::json!({
            "kind": kind, "label": r.label, "from": r.from, "to": r.to, "site": r.site, "kpis": r.site_kpis,
        });
        let e = self.event("report.published", Subject::Report { report: summary }, now);
        self.change.events.push(e);
        // A report regenerated for an older period does not replace the newest one retained.
        let newer = self
            .reports
            .get(&kind)
            .and_then(|old| serde_json::from_slice::<serde_json::Value>(old).ok())
            .and_then(|old| old["to"].as_str().map(str::to_string))
            .is_none_or(|old_to| {
                old_to <= r.to.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            });
        if newer {
            self.reports.insert(kind, Arc::new(json));
        }
    }

    fn agent(&self, id: &str) -> Option<&AgentState> {
        self.agents.iter().find(|a| a.agent == id)
    }

    /// The first available agent (in configuration order) who answers `line`.
    fn pick_agent(&self, line: &str) -> Option<String> {
        self.cfg
            .agents
            .iter()
            .filter(|a| a.lines.is_empty() || a.lines.iter().any(|l| l == line))
            .find(|a| {
                self.agent(&a.id)
                    .is_some_and(|s| s.state == AgentStatus::Available)
            })
            .map(|a| a.id.clone())
    }

    /// Changes an agent's state: stored, published as an event and in the snapshot.
    fn set_agent(
        &mut self,
        id: &str,
        state: AgentStatus,
        call_id: Option<String>,
        now: Time,
    ) -> Option<AgentState> {
        let a = self.agents.iter_mut().find(|a| a.agent == id)?;
        if a.state == state && a.call_id == call_id {
            return Some(a.clone());
        }
        a.state = state;
        a.call_id = call_id;
        a.since = now;
        let a = a.clone();
        let kind = match state {
            AgentStatus::SignedOut => "agent.signed_out",
            AgentStatus::Available => "agent.available",
            AgentStatus::Away => "agent.away",
            AgentStatus::OnCall => "agent.on_call",
        };
        self.change.records.push((
            format!("agent/{id}"),
            Some(serde_json::to_vec(&a).unwrap_or_default()),
        ));
        let e = self.event(kind, Subject::Agent { agent: a.clone() }, now);
        self.change.events.push(e);
        self.check_staffing(now);
        Some(a)
    }

    fn agent_action(
        &mut self,
        id: &str,
        action: AgentAction,
        now: Time,
    ) -> Result<AgentState, ActionError> {
        let current = self
            .agent(id)
            .ok_or_else(|| ActionError::UnknownAgent(id.to_string()))?
            .state;
        let target = match (action, current) {
            (AgentAction::SignIn | AgentAction::Available, AgentStatus::OnCall) => {
                AgentStatus::OnCall
            }
            (AgentAction::SignIn | AgentAction::Available, _) => AgentStatus::Available,
            (AgentAction::SignOut, _) => AgentStatus::SignedOut,
            (AgentAction::Away, AgentStatus::SignedOut) => {
                return Err(ActionError::Invalid(format!(
                    "agent {id} is signed out; sign in first"
                )))
            }
            (AgentAction::Away, _) => AgentStatus::Away,
        };
        let call = self
            .agent(id)
            .and_then(|a| a.call_id.clone())
            .filter(|_| target == AgentStatus::OnCall);
        if current == AgentStatus::SignedOut && target != AgentStatus::SignedOut {
            self.record_sign_in(id, now);
        }
        info!(agent = id, ?action, "agent");
        self.set_agent(id, target, call, now)
            .ok_or_else(|| ActionError::UnknownAgent(id.to_string()))
    }

    /// Records a sign-in; the agent's first since the running shift started is late (report only).
    fn record_sign_in(&mut self, id: &str, now: Time) {
        let shift = self
            .calendar
            .shift_at(now)
            .map(|(s, start)| (s.name.clone(), start));
        let Some(agent) = self.agents.iter_mut().find(|a| a.agent == id) else {
            return;
        };
        let late = shift.as_ref().is_some_and(|(_, start)| {
            now > *start && agent.last_sign_in.is_none_or(|t| t < *start)
        });
        agent.last_sign_in = Some(now);
        let rec = crate::model::SignIn {
            agent: id.to_string(),
            at: now,
            shift: shift.map(|(n, _)| n),
            late,
        };
        if late {
            info!(
                agent = id,
                shift = rec.shift.as_deref().unwrap_or("none"),
                "late sign-in"
            );
        }
        let key = format!(
            "signin/{}/{id}",
            now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        );
        self.change
            .records
            .push((key, Some(serde_json::to_vec(&rec).unwrap_or_default())));
    }

    fn staffed(&self) -> bool {
        self.agents
            .iter()
            .any(|a| a.state != AgentStatus::SignedOut)
    }

    /// When to look again whether someone is signed in: the next opening, while nobody is.
    fn staffing_check_at(&self, now: Time) -> Option<Time> {
        if self.agents.is_empty() || self.staffed() || self.unstaffed_alerted {
            return None;
        }
        self.calendar.next_open(now).filter(|t| *t > now)
    }

    /// Alerts once per gap when the office is open and no agent is signed in (000:L29: service never stops).
    fn check_staffing(&mut self, now: Time) {
        if self.agents.is_empty() {
            return;
        }
        if self.staffed() {
            self.unstaffed_alerted = false;
        } else if !self.unstaffed_alerted && self.calendar.is_open(now) {
            self.unstaffed_alerted = true;
            self.alert(
                "no_agent",
                Level::ShiftLead,
                "the office is open and no agent is signed in".into(),
                None,
                None,
                now,
            );
        }
    }

    fn task_opened(&mut self, task: Task, now: Time) {
        self.index_open(&task);
        self.record_task("task.created", task, now);
    }

    /// Records a changed task (`before` as it is indexed), keeps the indexes in step and carries out the effects.
    fn task_changed(&mut self, before: &Task, task: Task, effects: Vec<Effect>, now: Time) {
        self.unindex(before);
        self.index_open(&task);
        self.dirty_tasks.insert(task.id.clone(), task.clone());
        for effect in effects {
            match effect {
                Effect::Event(kind) => self.record_task(kind, task.clone(), now),
                Effect::Open(new) => self.task_opened(*new, now),
                Effect::Alert {
                    rule,
                    level,
                    message,
                } => self.alert(rule, level, message, None, Some(&task), now),
                Effect::Reopen { id, score } => {
                    if let Some(before) = self.load_task(&id) {
                        let mut complaint = before.clone();
                        let fx = tasks::reopen(
                            &mut complaint,
                            score,
                            &self.policy,
                            &*self.deadlines,
                            now,
                        );
                        self.task_changed(&before, complaint, fx, now);
                    }
                }
            }
        }
    }

    fn task_action(
        &mut self,
        id: &str,
        action: TaskAction,
        now: Time,
    ) -> Result<Task, ActionError> {
        let before = self
            .load_task(id)
            .ok_or_else(|| ActionError::NotFound(id.to_string()))?;
        let mut task = before.clone();
        let name = action.name();
        let effects = tasks::apply(&mut task, action, &self.policy, &*self.deadlines, now)?;
        info!(task = %task.id, action = name, "task action");
        self.task_changed(&before, task.clone(), effects, now);
        Ok(task)
    }

    fn open_complaint(&mut self, req: ComplaintRequest, now: Time) -> Result<Task, ActionError> {
        let call = match &req.call_id {
            Some(id) => Some(
                self.store
                    .call(id)
                    .map_err(|e| ActionError::Store(e.to_string()))?
                    .ok_or_else(|| ActionError::Invalid(format!("no call with id {id}")))?,
            ),
            None => None,
        };
        if call.is_none() && req.number.is_none() && req.note.is_none() {
            return Err(ActionError::Invalid(
                "a complaint needs a call_id, a number or a note saying what happened".into(),
            ));
        }
        let task = tasks::new_complaint(&req, call.as_ref(), &self.policy, &*self.deadlines, now);
        info!(task = %task.id, major = task.severity == Some(Severity::Major), "complaint opened");
        if task.severity == Some(Severity::Major) {
            let msg = format!(
                "major complaint {}: {}",
                task.id,
                task.note.clone().unwrap_or_default()
            );
            self.alert(
                "major_complaint",
                Level::Manager,
                msg,
                None,
                Some(&task),
                now,
            );
        }
        self.task_opened(task.clone(), now);
        Ok(task)
    }

    fn load_task(&self, id: &str) -> Option<Task> {
        if let Some(t) = self.dirty_tasks.get(id) {
            return Some(t.clone());
        }
        match self.store.task(id) {
            Ok(t) => t,
            Err(e) => {
                error!(task = id, error = %e, "cannot read task");
                None
            }
        }
    }

    fn event(&mut self, kind: &str, subject: Subject, now: Time) -> Event {
        let seq = self.next_seq;
        self.next_seq += 1;
        Event {
            event_id: new_id(now),
            seq,
            kind: kind.to_string(),
            at: rfc3339_local(now, self.tz),
            subject,
        }
    }

    fn record_call(&mut self, kind: CallEventKind, call: Call, now: Time) {
        self.change.calls.push(call.clone());
        let e = self.event(kind.as_type(), Subject::Call { call }, now);
        self.change.events.push(e);
    }

    fn record_task(&mut self, kind: &str, task: Task, now: Time) {
        self.dirty_tasks.insert(task.id.clone(), task.clone());
        let e = self.event(
            kind,
            Subject::Task {
                task: Box::new(task),
            },
            now,
        );
        self.change.events.push(e);
    }

    fn alert(
        &mut self,
        rule: &str,
        level: Level,
        message: String,
        line: Option<&str>,
        task: Option<&Task>,
        now: Time,
    ) {
        warn!(rule, level = level.as_str(), "{message}");
        let alert = Alert {
            rule: rule.into(),
            level: level.as_str().into(),
            message,
            line: line.map(str::to_string),
            task_id: task.map(|t| t.id.clone()),
            due_at: task.map(|t| t.due_at),
        };
        let e = self.event(&format!("alert.{rule}"), Subject::Alert { alert }, now);
        self.change.events.push(e);
    }

    /// Writes the pending change and flushes it; then, and only then, answers requests and publishes events.
    /// Commits what changed, then publishes the snapshot, answers the requests and broadcasts the events, in
    /// that order: whoever hears of an event or gets an answer reads a snapshot that already includes it.
    /// True when it published the snapshot.
    fn commit(&mut self) -> bool {
        if self.change.is_empty()
            && self.dirty_tasks.is_empty()
            && self.replies.is_empty()
            && self.agent_replies.is_empty()
            && self.count_replies.is_empty()
            && self.unit_replies.is_empty()
            && self.count_result_replies.is_empty()
        {
            return false;
        }
        self.change.tasks = self.dirty_tasks.values().cloned().collect();
        let started = std::time::Instant::now();
        // The flush blocks; on the multi-threaded runtime let the other tasks move to another worker meanwhile.
        let result = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                tokio::task::block_in_place(|| self.store.commit(&self.change, self.next_seq))
            }
            _ => self.store.commit(&self.change, self.next_seq),
        };
        match result {
            Ok(()) => {
                inc(&self.metrics.commits);
                self.metrics.commit_micros.fetch_add(
                    started.elapsed().as_micros() as u64,
                    std::sync::atomic::Ordering::Relaxed,
                );
                if let Some(f) = self.store_error.take() {
                    info!(failing_since = %f.since, "store writes work again; the held events follow");
                }
                self.store_retry = None;
                let change = std::mem::take(&mut self.change);
                self.dirty_tasks.clear();
                self.metrics.events_committed.fetch_add(
                    change.events.len() as u64,
                    std::sync::atomic::Ordering::Relaxed,
                );
                self.publish_snapshot();
                for (reply, r) in self.replies.drain(..) {
                    let _ = reply.send(r);
                }
                for (reply, r) in self.agent_replies.drain(..) {
                    let _ = reply.send(r);
                }
                for (reply, n) in self.count_replies.drain(..) {
                    let _ = reply.send(n);
                }
                for reply in self.unit_replies.drain(..) {
                    let _ = reply.send(());
                }
                for (reply, r) in self.count_result_replies.drain(..) {
                    let _ = reply.send(r);
                }
                for e in change.events {
                    let _ = self.events_tx.send(Arc::new(e));
                }
                true
            }
            Err(e) => {
                // Keep the change and try again with the next one; nothing is published meanwhile.
                inc(&self.metrics.commit_errors);
                let now = self.clock.now();
                let wait = self
                    .store_retry
                    .map(|(_, w)| (w * 2).min(STORE_RETRY_MAX))
                    .unwrap_or(STORE_RETRY_MIN);
                error!(error = %e, retry_in_s = wait.as_secs(),
                    "store commit failed; events are held back (nothing is published or acknowledged) until the store accepts them");
                self.store_retry = Some((now.mono + wait, wait));
                let since = self
                    .store_error
                    .as_ref()
                    .map(|f| f.since)
                    .unwrap_or(now.wall);
                self.store_error = Some(StoreFailure {
                    error: e.to_string(),
                    since,
                });
                // The change and its answers are held, not dropped: the next commit that succeeds writes the change
                // and then answers. Answering "failed" now would be false, since the held change is written later;
                // a caller that gives up meanwhile has seen a timeout, never a wrong answer.
                false
            }
        }
    }

    fn publish_snapshot(&self) {
        let today = self.today.calls.kpis();
        let queue = QueueSummary {
            ringing: self
                .trackers
                .values()
                .filter(|t| t.state().state == crate::model::LineStatus::Ringing)
                .count() as u32,
            talking: self
                .trackers
                .values()
                .filter(|t| t.state().state == crate::model::LineStatus::Offhook)
                .count() as u32,
            open_tasks: self.open_count,
            overdue_tasks: self.overdue_count,
            agents_available: (!self.agents.is_empty()).then(|| {
                self.agents
                    .iter()
                    .filter(|a| a.state == AgentStatus::Available)
                    .count() as u32
            }),
            date: self.today.date.map(|d| d.to_string()).unwrap_or_default(),
            offered: today.offered,
            answered: today.answered,
            missed: today.missed,
            unknown: today.unknown,
            service_level_pct: today.service_level_pct,
            asa_s: today.asa_s,
        };
        let snap = Snapshot {
            lines: self.trackers.values().map(|t| t.state()).collect(),
            queue,
            agents: self.agents.clone(),
            reports: self.reports.clone(),
            last_seq: self.next_seq.saturating_sub(1),
            store_error: self.store_error.clone(),
        };
        self.snapshot_tx.send_if_modified(|old| {
            if *old == snap {
                false
            } else {
                *old = snap;
                true
            }
        });
    }
}

/// The monotonic instant at which the wall clock will read `at` (now, if that is past).
fn wall_to_mono(now: Now, at: Time) -> Instant {
    let d = (at - now.wall).to_std().unwrap_or(Duration::ZERO);
    now.mono + d
}

#[cfg(test)]
mod tests;
