//! Reports and KPIs (SERVICE-POLICY section 6): pure computation over calls and tasks, and CSV rendering. No I/O and
//! no clock: the caller passes the records, the period and `now`.
//!
//! The definitions follow the contact-centre convention (Asterisk `servicelevel` and queue_log, research
//! `telephony-anchors.md` section 2), with abandons shorter than `short_abandon` left out as RingCentral's
//! `abandonedThresholdSeconds` does. Counts are exact; every percentage and mean is rounded to one decimal with
//! [`rounded`], so that a report read back from its CSV is equal to the one written.
//!
//! Calls: incoming calls whose `started_at` is in `[from, to)`.
//! - `offered` = incoming calls; a call with no outcome yet (still ringing or up) is offered but in no outcome count.
//! - `answered`, `missed`, `unknown`, `interrupted` = calls with that outcome.
//! - `short_abandons` = missed calls with `wait_s < short_abandon`.
//! - `answered_within_target` = answered calls with `wait_s <= answer_target` (Asterisk counts `holdtime <=
//!   servicelevel`); an answered call without a `wait_s` is not counted within target.
//! - `service_level_pct` = `answered_within_target / (answered + missed - short_abandons) * 100`; None when the
//!   divisor is 0. Unknown and interrupted calls are left out of both sides: the line cannot tell whether the caller
//!   was served.
//! - `abandon_rate_pct` = `(missed - short_abandons) / (answered + missed - short_abandons) * 100`; None when 0.
//! - `asa_s` = mean `wait_s` of answered calls that have one.
//! - `mean_talk_s` = mean `talk_s` of answered calls that have one.
//! - `longest_wait_s` = the largest `wait_s` of answered and missed calls.
//! - `repeat_callers` = calls with `repeat` (the same number within `repeat_window` before).
//!
//! Tasks: tasks whose `created_at` is in `[from, to)`, with their outcome as of the data passed in (and `now`).
//! - `callbacks_opened` = callback tasks.
//! - `callbacks_done_on_time` = callbacks done with `closed_at <= due_at` and never flagged overdue.
//! - `callbacks_overdue` = the other callbacks that missed their deadline: flagged overdue, or closed (done or
//!   cancelled) after `due_at`, or still open with `now > due_at`.
//! - `mean_time_to_callback_s` = mean `closed_at - created_at` of done callbacks.
//! - `complaints_opened` = complaint tasks.
//! - `complaints_first_response_on_time` = complaints with a `first_response_at` and no `overdue` entry in their
//!   history before it (the deadline in force before the first response, normally `complaint_response_due`, was
//!   not missed). The deadline itself is not kept once the response sets the promised fix time, hence the history.
//! - `complaints_resolved` = complaints now done with a `resolved_at` (a reopened complaint is not resolved until
//!   it is resolved again).
//! - `mean_time_to_resolve_s` = mean `resolved_at - created_at` of the resolved complaints (the latest resolution).
//! - `complaints_reopened` = complaints reopened at least once (`reopened > 0`).
//! - `followups_done` = follow-up tasks done; `satisfaction_counts[s - 1]` = those scored `s` (1-5);
//!   `mean_satisfaction` = the mean score of those.
//!
//! Scopes: the site (everything); per line (calls by `call.line`; tasks by the line of their first call, when that
//! call is among the calls passed in); per agent (calls by `call.agent`, calls without one are not counted per agent;
//! complaints and follow-ups by `task.agent`, the agent who took the call, so "complaints against each agent";
//! callbacks by `task.assignee`, else `task.agent`). `calls_by_hour` counts the site's calls by the local hour of
//! `started_at`.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::csv::{push_row, unguard};
use crate::model::{Call, Direction, Outcome, Task, TaskKind, TaskState, Time};

/// The history action `tasks::on_timer` records when a task passes its deadline.
const OVERDUE_ACTION: &str = "overdue";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportKind {
    Shift,
    Daily,
    Weekly,
    Monthly,
    Quarterly,
}

impl ReportKind {
    pub const ALL: [ReportKind; 5] = [
        ReportKind::Shift,
        ReportKind::Daily,
        ReportKind::Weekly,
        ReportKind::Monthly,
        ReportKind::Quarterly,
    ];

    /// The kind named `s` (`daily`, ...).
    pub fn parse(s: &str) -> Option<ReportKind> {
        ReportKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Shift => "shift",
            ReportKind::Daily => "daily",
            ReportKind::Weekly => "weekly",
            ReportKind::Monthly => "monthly",
            ReportKind::Quarterly => "quarterly",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReportParams {
    /// Answered within this wait counts towards the service level.
    pub answer_target: Duration,
    /// Missed calls that waited less than this are left out of the service level and the abandon rate.
    pub short_abandon: Duration,
    /// The site's time zone: periods and `calls_by_hour` are in local time.
    pub tz: Tz,
}

/// The period a report of `kind` covers for the local date `date`: daily = that day; weekly = the Monday-based week
/// containing it; monthly = its calendar month; quarterly = its quarter; shift reports get explicit bounds from the
/// caller (this returns the day for them). Each bound is the first instant of a local day, so periods next to each
/// other share their bound and a day with a DST change is 23 or 25 hours long.
pub fn period(kind: ReportKind, date: NaiveDate, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    let (first, next) = match kind {
        ReportKind::Shift | ReportKind::Daily => (date, date.succ_opt()),
        ReportKind::Weekly => {
            let monday = date - Days::new(u64::from(date.weekday().num_days_from_monday()));
            (monday, monday.checked_add_days(Days::new(7)))
        }
        ReportKind::Monthly => {
            let first = date.with_day(1).unwrap_or(date);
            (first, first.checked_add_months(Months::new(1)))
        }
        ReportKind::Quarterly => {
            let first =
                NaiveDate::from_ymd_opt(date.year(), date.month0() / 3 * 3 + 1, 1).unwrap_or(date);
            (first, first.checked_add_months(Months::new(3)))
        }
    };
    let to = next.map_or(DateTime::<Utc>::MAX_UTC, |d| start_of_day(d, tz));
    (start_of_day(first, tz), to)
}

/// The label of the report of `kind` for the local date `date`: "2026-11-24", "2026-W48" (ISO week), "2026-11",
/// "2026-Q4". Shift reports are labelled by the caller ("day shift 2026-11-24"); this gives the date for them.
pub fn label(kind: ReportKind, date: NaiveDate) -> String {
    match kind {
        ReportKind::Shift | ReportKind::Daily => date.format("%Y-%m-%d").to_string(),
        ReportKind::Weekly => {
            let w = date.iso_week();
            format!("{}-W{:02}", w.year(), w.week())
        }
        ReportKind::Monthly => format!("{}-{:02}", date.year(), date.month()),
        ReportKind::Quarterly => format!("{}-Q{}", date.year(), date.month0() / 3 + 1),
    }
}

/// The first instant of the local day `date`. Midnight can be skipped by a DST change (America/Santiago) or be
/// there twice: the day starts at the first local time of that date that exists, at its earlier occurrence.
fn start_of_day(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let midnight = date.and_time(NaiveTime::MIN);
    let mut t = midnight;
    // Gaps are at most a day long (Pacific/Apia skipped 2011-12-30 entirely).
    for _ in 0..=48 * 60 {
        if let Some(x) = tz.from_local_datetime(&t).earliest() {
            return x.with_timezone(&Utc);
        }
        match t.checked_add_signed(chrono::Duration::minutes(1)) {
            Some(n) => t = n,
            None => break,
        }
    }
    Utc.from_utc_datetime(&midnight)
}

/// `x` rounded to one decimal (halves away from zero). Every percentage and mean in a report is rounded with this, so
/// that its shortest decimal form has at most one decimal and reads back as the same number.
pub fn rounded(x: f64) -> f64 {
    if !x.is_finite() || x.abs() >= 1e15 {
        return x;
    }
    // + 0.0 turns -0.0 into 0.0.
    (x * 10.0).round() / 10.0 + 0.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub kind: ReportKind,
    pub site: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub generated_at: DateTime<Utc>,
    /// "2026-11-24", "2026-W48", "2026-11", "2026-Q4", "day shift 2026-11-24".
    pub label: String,
    pub site_kpis: Kpis,
    pub per_line: BTreeMap<String, Kpis>,
    pub per_agent: BTreeMap<String, Kpis>,
    /// Incoming calls of the period by the local hour of `started_at`.
    pub calls_by_hour: [u64; 24],
    /// Figures per local day of the period (for the charts of the web page), keyed `YYYY-MM-DD`.
    #[serde(default)]
    pub per_day: BTreeMap<String, DayFigures>,
}

/// One local day's figures: the service level as for `Kpis`, and the tasks opened and closed that day.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DayFigures {
    pub offered: u64,
    pub answered: u64,
    pub answered_within_target: u64,
    /// Calls whose outcome is known, without short abandons: the service level's denominator.
    pub known: u64,
    pub service_level_pct: Option<f64>,
    pub tasks_opened: u64,
    pub tasks_closed: u64,
}

/// The KPIs of one scope; the module documentation defines each.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Kpis {
    pub offered: u64,
    pub answered: u64,
    pub missed: u64,
    pub unknown: u64,
    pub interrupted: u64,
    pub short_abandons: u64,
    pub answered_within_target: u64,
    pub service_level_pct: Option<f64>,
    pub abandon_rate_pct: Option<f64>,
    pub asa_s: Option<f64>,
    pub mean_talk_s: Option<f64>,
    pub longest_wait_s: Option<f64>,
    pub repeat_callers: u64,
    pub callbacks_opened: u64,
    pub callbacks_done_on_time: u64,
    pub callbacks_overdue: u64,
    pub mean_time_to_callback_s: Option<f64>,
    pub complaints_opened: u64,
    pub complaints_first_response_on_time: u64,
    pub complaints_resolved: u64,
    pub mean_time_to_resolve_s: Option<f64>,
    pub complaints_reopened: u64,
    pub followups_done: u64,
    pub mean_satisfaction: Option<f64>,
    /// Follow-ups done with satisfaction 1, 2, 3, 4, 5.
    pub satisfaction_counts: [u64; 5],
    /// First sign-ins after their shift had started (filled in by `reporting.rs` from the sign-in records).
    #[serde(default)]
    pub late_signins: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Mean {
    sum: f64,
    n: u64,
}

impl Mean {
    fn add(&mut self, x: f64) {
        if x.is_finite() {
            self.sum += x;
            self.n += 1;
        }
    }
    fn get(self) -> Option<f64> {
        (self.n > 0).then(|| rounded(self.sum / self.n as f64))
    }
}

/// One scope's running totals: every report and the live "today" view of the status page and MQTT count with it,
/// so the two never disagree.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    k: Kpis,
    wait: Mean,
    talk: Mean,
    to_callback: Mean,
    to_resolve: Mean,
    longest_wait: Option<f64>,
}

fn secs(d: chrono::Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

fn pct(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| rounded(100.0 * n as f64 / d as f64))
}

impl Tally {
    fn longest(&mut self, w: f64) {
        if self.longest_wait.is_none_or(|l| w > l) {
            self.longest_wait = Some(w);
        }
    }

    /// Counts one incoming call: `target` is the answer target, `short` the short-abandon limit, in seconds.
    pub fn add_call(&mut self, c: &Call, target: f64, short: f64) {
        self.k.offered += 1;
        if c.repeat {
            self.k.repeat_callers += 1;
        }
        let wait = c.wait_s.filter(|w| w.is_finite());
        match c.outcome {
            Some(Outcome::Answered) => {
                self.k.answered += 1;
                if let Some(w) = wait {
                    self.wait.add(w);
                    self.longest(w);
                    if w <= target {
                        self.k.answered_within_target += 1;
                    }
                }
                if let Some(t) = c.talk_s {
                    self.talk.add(t);
                }
            }
            Some(Outcome::Missed) => {
                self.k.missed += 1;
                if let Some(w) = wait {
                    self.longest(w);
                    if w < short {
                        self.k.short_abandons += 1;
                    }
                }
            }
            Some(Outcome::Unknown) => self.k.unknown += 1,
            Some(Outcome::Interrupted) => self.k.interrupted += 1,
            None => {}
        }
    }

    fn add_task(&mut self, t: &Task, now: Time) {
        let k = &mut self.k;
        match t.kind {
            TaskKind::Callback => {
                k.callbacks_opened += 1;
                let on_time = t.state == TaskState::Done
                    && !t.overdue
                    && t.closed_at.is_some_and(|c| c <= t.due_at);
                let late = t.overdue
                    || match t.closed_at {
                        Some(c) => c > t.due_at,
                        None => t.state == TaskState::Open && now > t.due_at,
                    };
                if on_time {
                    k.callbacks_done_on_time += 1;
                } else if late {
                    k.callbacks_overdue += 1;
                }
                if let (TaskState::Done, Some(c)) = (t.state, t.closed_at) {
                    self.to_callback.add(secs(c - t.created_at));
                }
            }
            TaskKind::Complaint => {
                k.complaints_opened += 1;
                if let Some(first) = t.first_response_at {
                    let late = t
                        .history
                        .iter()
                        .any(|e| e.action == OVERDUE_ACTION && e.at < first);
                    if !late {
                        k.complaints_first_response_on_time += 1;
                    }
                }
                if let (TaskState::Done, Some(r)) = (t.state, t.resolved_at) {
                    k.complaints_resolved += 1;
                    self.to_resolve.add(secs(r - t.created_at));
                }
                if t.reopened > 0 {
                    k.complaints_reopened += 1;
                }
            }
            TaskKind::Followup => {
                if t.state == TaskState::Done {
                    k.followups_done += 1;
                    if let Some(s @ 1..=5) = t.satisfaction {
                        k.satisfaction_counts[usize::from(s) - 1] += 1;
                    }
                }
            }
            TaskKind::Review | TaskKind::Referral => {}
        }
    }

    /// The KPIs so far (the running totals stay).
    pub fn kpis(&self) -> Kpis {
        self.clone().finish()
    }

    fn finish(self) -> Kpis {
        let mut k = self.k;
        let counted = k.answered + k.missed - k.short_abandons;
        k.service_level_pct = pct(k.answered_within_target, counted);
        k.abandon_rate_pct = pct(k.missed - k.short_abandons, counted);
        k.asa_s = self.wait.get();
        k.mean_talk_s = self.talk.get();
        k.longest_wait_s = self.longest_wait.map(rounded);
        k.mean_time_to_callback_s = self.to_callback.get();
        k.mean_time_to_resolve_s = self.to_resolve.get();
        let scored: u64 = k.satisfaction_counts.iter().sum();
        let total: u64 = (1..).zip(k.satisfaction_counts).map(|(s, n)| s * n).sum();
        k.mean_satisfaction = (scored > 0).then(|| rounded(total as f64 / scored as f64));
        k
    }
}

fn counts_for_kpis(t: &Task) -> bool {
    matches!(
        t.kind,
        TaskKind::Callback | TaskKind::Complaint | TaskKind::Followup
    )
}

/// The agent a task counts for: complaints and follow-ups the agent who took the call, callbacks whoever must make
/// them.
fn task_agent(t: &Task) -> Option<&str> {
    let a = match t.kind {
        TaskKind::Callback => t.assignee.as_deref().or(t.agent.as_deref()),
        _ => t.agent.as_deref(),
    };
    a.filter(|a| !a.is_empty())
}

/// Builds the report of the period `[from, to)`: one pass over `calls`, then one over `tasks`. `now` is when it is
/// made (open callbacks past their deadline count as overdue).
#[allow(clippy::too_many_arguments)]
pub fn build(
    kind: ReportKind,
    site: &str,
    label: String,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    calls: &[Call],
    tasks: &[Task],
    p: &ReportParams,
    now: DateTime<Utc>,
) -> Report {
    let target = p.answer_target.as_secs_f64();
    let short = p.short_abandon.as_secs_f64();
    let in_period = |t: Time| from <= t && t < to;
    let period_tasks: Vec<&Task> = tasks
        .iter()
        .filter(|t| in_period(t.created_at) && counts_for_kpis(t))
        .collect();
    // The line of each task's first call, found in the same pass over the calls.
    let mut line_of: HashMap<&str, Option<&str>> = period_tasks
        .iter()
        .filter_map(|t| t.call_ids.first())
        .map(|id| (id.as_str(), None))
        .collect();

    let mut site_acc = Tally::default();
    let mut lines: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut agents: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut calls_by_hour = [0u64; 24];
    // Keyed by the local date while counting (a formatted key per call cost more than the rest of the pass).
    let mut per_day: BTreeMap<NaiveDate, DayFigures> = BTreeMap::new();
    let day_of = |t: Time| t.with_timezone(&p.tz).date_naive();
    for c in calls {
        if !line_of.is_empty() {
            if let Some(slot) = line_of.get_mut(c.id.as_str()) {
                slot.get_or_insert(c.line.as_str());
            }
        }
        if c.direction != Direction::In || !in_period(c.started_at) {
            continue;
        }
        let local = c.started_at.with_timezone(&p.tz);
        calls_by_hour[local.hour() as usize] += 1;
        let day = per_day.entry(local.date_naive()).or_default();
        day.offered += 1;
        match c.outcome {
            Some(Outcome::Answered) => {
                day.answered += 1;
                day.known += 1;
                if c.wait_s.is_some_and(|w| w <= target) {
                    day.answered_within_target += 1;
                }
            }
            Some(Outcome::Missed) if c.wait_s.unwrap_or(f64::MAX) >= short => day.known += 1,
            _ => {}
        }
        site_acc.add_call(c, target, short);
        lines
            .entry(c.line.as_str())
            .or_default()
            .add_call(c, target, short);
        if let Some(a) = c.agent.as_deref().filter(|a| !a.is_empty()) {
            agents.entry(a).or_default().add_call(c, target, short);
        }
    }
    for t in tasks {
        if in_period(t.created_at) {
            per_day
                .entry(day_of(t.created_at))
                .or_default()
                .tasks_opened += 1;
        }
        if let Some(closed) = t.closed_at.filter(|&c| in_period(c)) {
            per_day.entry(day_of(closed)).or_default().tasks_closed += 1;
        }
    }
    for d in per_day.values_mut() {
        d.service_level_pct = pct(d.answered_within_target, d.known);
    }
    for t in period_tasks {
        site_acc.add_task(t, now);
        let line = t
            .call_ids
            .first()
            .and_then(|id| line_of.get(id.as_str()).copied().flatten());
        if let Some(line) = line {
            lines.entry(line).or_default().add_task(t, now);
        }
        if let Some(a) = task_agent(t) {
            agents.entry(a).or_default().add_task(t, now);
        }
    }

    let finish = |m: BTreeMap<&str, Tally>| {
        m.into_iter()
            .map(|(k, acc)| (k.to_string(), acc.finish()))
            .collect()
    };
    Report {
        kind,
        site: site.to_string(),
        from,
        to,
        generated_at: now,
        label,
        site_kpis: site_acc.finish(),
        per_line: finish(lines),
        per_agent: finish(agents),
        calls_by_hour,
        per_day: per_day
            .into_iter()
            .map(|(d, f)| (d.format("%Y-%m-%d").to_string(), f))
            .collect(),
    }
}

// ---- CSV ----

/// A CSV cell of a Kpis field.
trait CsvCell: Sized {
    fn to_cell(&self) -> String;
    fn from_cell(s: &str) -> Result<Self, String>;
}

impl CsvCell for u64 {
    fn to_cell(&self) -> String {
        self.to_string()
    }
    fn from_cell(s: &str) -> Result<Self, String> {
        s.parse()
            .map_err(|_| format!("`{s}` is not a whole number"))
    }
}

impl CsvCell for Option<f64> {
    fn to_cell(&self) -> String {
        // Display never uses an exponent, and a rounded number's shortest form has at most one decimal.
        self.map(|x| rounded(x).to_string()).unwrap_or_default()
    }
    fn from_cell(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Ok(None);
        }
        s.parse()
            .map(Some)
            .map_err(|_| format!("`{s}` is not a number"))
    }
}

macro_rules! kpi_columns {
    ($($field:ident),* $(,)?) => {
        /// The Kpis fields other than `satisfaction_counts`, in order.
        const SCALAR_COLUMNS: &[&str] = &[$(stringify!($field)),*];

        fn scalar_cells(k: &Kpis, out: &mut Vec<String>) {
            $(out.push(CsvCell::to_cell(&k.$field));)*
        }

        /// Sets the field named `column`; Ok(false) when there is no such field.
        fn set_scalar(k: &mut Kpis, column: &str, cell: &str) -> Result<bool, String> {
            match column {
                $(stringify!($field) => {
                    k.$field = CsvCell::from_cell(cell).map_err(|e| format!("{column}: {e}"))?
                })*
                _ => return Ok(false),
            }
            Ok(true)
        }
    };
}

kpi_columns!(
    offered,
    answered,
    missed,
    unknown,
    interrupted,
    short_abandons,
    answered_within_target,
    service_level_pct,
    abandon_rate_pct,
    asa_s,
    mean_talk_s,
    longest_wait_s,
    repeat_callers,
    callbacks_opened,
    callbacks_done_on_time,
    callbacks_overdue,
    mean_time_to_callback_s,
    complaints_opened,
    complaints_first_response_on_time,
    complaints_resolved,
    mean_time_to_resolve_s,
    complaints_reopened,
    followups_done,
    mean_satisfaction,
    late_signins,
);

/// `satisfaction_counts` as columns `satisfaction_1` .. `satisfaction_5`.
const SATISFACTION_COLUMNS: [&str; 5] = [
    "satisfaction_1",
    "satisfaction_2",
    "satisfaction_3",
    "satisfaction_4",
    "satisfaction_5",
];

fn header() -> Vec<&'static str> {
    let mut h = vec!["scope"];
    h.extend_from_slice(SCALAR_COLUMNS);
    h.extend_from_slice(&SATISFACTION_COLUMNS);
    h
}

fn kpi_row(scope: String, k: &Kpis) -> Vec<String> {
    let mut row = vec![scope];
    scalar_cells(k, &mut row);
    row.extend(k.satisfaction_counts.iter().map(|n| n.to_string()));
    row
}

/// The report as CSV, UTF-8 with a byte-order mark (so that Excel shows Chinese correctly) and CRLF line ends: a
/// header `scope,` + every Kpis field (`satisfaction_counts` as `satisfaction_1` .. `satisfaction_5`), one row per
/// scope (`site`, `line:<id>`, `agent:<id>`), then a blank line and a `hour,calls` table of the 24 local hours.
/// Numbers have at most one decimal; None is an empty cell.
pub fn to_csv(r: &Report) -> String {
    let mut out = String::from('\u{feff}');
    push_row(&mut out, &header());
    push_row(&mut out, &kpi_row("site".into(), &r.site_kpis));
    for (line, k) in &r.per_line {
        push_row(&mut out, &kpi_row(format!("line:{line}"), k));
    }
    for (agent, k) in &r.per_agent {
        push_row(&mut out, &kpi_row(format!("agent:{agent}"), k));
    }
    out.push_str("\r\n");
    push_row(&mut out, &["hour", "calls"]);
    for (hour, n) in r.calls_by_hour.iter().enumerate() {
        push_row(&mut out, &[hour.to_string(), n.to_string()]);
    }
    out
}

/// RFC 4180 records up to the first blank line (or the end). Accepts CRLF or LF line ends.
fn read_records(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut records = Vec::new();
    let mut record: Vec<String> = Vec::new();
    let mut field = String::new();
    // Whether the current record has any character yet (a blank line has none), and the current field was quoted.
    let mut any = false;
    let mut quoted = false;
    let mut in_quotes = false;
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        if in_quotes {
            if ch == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    in_quotes = false;
                }
            } else {
                field.push(ch);
            }
            continue;
        }
        match ch {
            ',' => {
                any = true;
                record.push(std::mem::take(&mut field));
                quoted = false;
            }
            '"' if field.is_empty() && !quoted => {
                any = true;
                quoted = true;
                in_quotes = true;
            }
            '"' => {
                return Err(format!(
                    "record {}: a quote inside an unquoted field or after a quoted one",
                    records.len() + 1
                ))
            }
            '\r' | '\n' => {
                if ch == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                if !any {
                    return Ok(records);
                }
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                any = false;
                quoted = false;
            }
            _ if quoted => {
                return Err(format!(
                    "record {}: text after a quoted field",
                    records.len() + 1
                ))
            }
            _ => {
                any = true;
                field.push(ch);
            }
        }
    }
    if in_quotes {
        return Err("a quoted field is not closed".into());
    }
    if any {
        record.push(field);
        records.push(record);
    }
    Ok(records)
}

/// Parses the first table of [`to_csv`] back: scope (`site`, `line:<id>`, `agent:<id>`) -> Kpis. Columns are found
/// by their header names; every Kpis column must be there.
pub fn parse_csv(text: &str) -> Result<BTreeMap<String, Kpis>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let records = read_records(text)?;
    let (head, rows) = records.split_first().ok_or("the CSV is empty")?;
    if head.first().map(String::as_str) != Some("scope") {
        return Err("the first column must be `scope`".into());
    }
    for column in header() {
        if !head.iter().any(|h| h == column) {
            return Err(format!("column `{column}` is missing"));
        }
    }
    let mut out = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        if row.len() != head.len() {
            return Err(format!(
                "row {}: {} cells, the header has {}",
                i + 2,
                row.len(),
                head.len()
            ));
        }
        let scope = unguard(&row[0]).to_string();
        let mut k = Kpis::default();
        for (column, cell) in head.iter().zip(row).skip(1) {
            let cell = unguard(cell);
            let row_err = |e: String| format!("row {} ({scope}): {e}", i + 2);
            if let Some(s) = SATISFACTION_COLUMNS.iter().position(|c| c == column) {
                k.satisfaction_counts[s] =
                    u64::from_cell(cell).map_err(|e| row_err(format!("{column}: {e}")))?;
            } else if !set_scalar(&mut k, column, cell).map_err(row_err)? {
                return Err(format!("unknown column `{column}`"));
            }
        }
        if out.insert(scope.clone(), k).is_some() {
            return Err(format!("scope `{scope}` appears twice"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csv::{guard, push_cell};
    use crate::model::{NumberStatus, TaskEntry};
    use proptest::prelude::*;

    /// 2026-11-24 09:00 in Shanghai.
    fn t0() -> Time {
        Utc.with_ymd_and_hms(2026, 11, 24, 1, 0, 0).unwrap()
    }
    fn secs_after(s: i64) -> Time {
        t0() + chrono::Duration::seconds(s)
    }
    fn hours(n: i64) -> chrono::Duration {
        chrono::Duration::hours(n)
    }
    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> Time {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }
    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn params() -> ReportParams {
        ReportParams {
            answer_target: Duration::from_secs(10),
            short_abandon: Duration::from_secs(5),
            tz: chrono_tz::Asia::Shanghai,
        }
    }

    fn call(
        id: &str,
        line: &str,
        agent: Option<&str>,
        outcome: Outcome,
        wait: f64,
        talk: Option<f64>,
        started_at: Time,
    ) -> Call {
        Call {
            number: Some("13800138000".into()),
            number_status: NumberStatus::Known,
            rings: 1,
            wait_s: Some(wait),
            talk_s: talk,
            outcome: Some(outcome),
            agent: agent.map(Into::into),
            ..Call::new(id, line, Direction::In, started_at)
        }
    }

    fn task(kind: TaskKind, state: TaskState, created_at: Time, due_at: Time) -> Task {
        let mut t = crate::tasks::blank(kind, due_at, created_at);
        t.state = state;
        t
    }

    fn day_report(calls: &[Call], tasks: &[Task], now: Time) -> Report {
        let (from, to) = period(ReportKind::Daily, date(2026, 11, 24), params().tz);
        build(
            ReportKind::Daily,
            "总部",
            label(ReportKind::Daily, date(2026, 11, 24)),
            from,
            to,
            calls,
            tasks,
            &params(),
            now,
        )
    }

    /// The worked example: 10 calls on one line.
    fn ten_calls() -> Vec<Call> {
        use Outcome::*;
        let mut v = Vec::new();
        // Answered, waits 2, 4, 6, 8, 12, 30 s; talk 30, 60, ..., 180 s.
        for (i, w) in [2.0, 4.0, 6.0, 8.0, 12.0, 30.0].into_iter().enumerate() {
            let talk = 30.0 * (i as f64 + 1.0);
            v.push(call(
                &format!("a{i}"),
                "L1",
                Some("alice"),
                Answered,
                w,
                Some(talk),
                secs_after(60 * i as i64),
            ));
        }
        // Missed after 3 s (a short abandon), 20 s and 40 s.
        for (i, w) in [3.0, 20.0, 40.0].into_iter().enumerate() {
            v.push(call(
                &format!("m{i}"),
                "L1",
                None,
                Missed,
                w,
                None,
                secs_after(600 + 60 * i as i64),
            ));
        }
        v.push(call("u0", "L1", None, Unknown, 15.0, None, secs_after(900)));
        v
    }

    #[test]
    fn worked_example_of_ten_calls() {
        let mut calls = ten_calls();
        // Not counted: an outgoing call, a call the day before, one at the exclusive end of the day.
        let mut out = call(
            "o",
            "L1",
            Some("alice"),
            Outcome::Answered,
            1.0,
            Some(5.0),
            secs_after(30),
        );
        out.direction = Direction::Out;
        calls.push(out);
        calls.push(call(
            "y",
            "L1",
            None,
            Outcome::Missed,
            50.0,
            None,
            t0() - hours(24),
        ));
        let (_, to) = period(
            ReportKind::Daily,
            date(2026, 11, 24),
            chrono_tz::Asia::Shanghai,
        );
        calls.push(call("e", "L1", None, Outcome::Missed, 50.0, None, to));
        let r = day_report(&calls, &[], t0() + hours(10));
        let k = &r.site_kpis;
        assert_eq!(
            (k.offered, k.answered, k.missed, k.unknown, k.interrupted),
            (10, 6, 3, 1, 0)
        );
        assert_eq!(k.short_abandons, 1); // the 3 s miss
        assert_eq!(k.answered_within_target, 4); // 2, 4, 6, 8 <= 10
        assert_eq!(k.service_level_pct, Some(50.0)); // 4 / (6 + 3 - 1) = 4/8
        assert_eq!(k.abandon_rate_pct, Some(25.0)); // (3 - 1) / 8
        assert_eq!(k.asa_s, Some(10.3)); // 62 / 6 = 10.33
        assert_eq!(k.mean_talk_s, Some(105.0)); // 630 / 6
        assert_eq!(k.longest_wait_s, Some(40.0)); // the 40 s miss; the unknown call's 15 s is not a wait
        assert_eq!(r.per_line.len(), 1);
        assert_eq!(&r.per_line["L1"], k);
        // alice took the six answered calls.
        let a = &r.per_agent["alice"];
        assert_eq!((a.offered, a.answered, a.missed), (6, 6, 0));
        assert_eq!(a.service_level_pct, Some(66.7)); // 4 / 6
        assert_eq!(a.abandon_rate_pct, Some(0.0));
        assert_eq!(r.per_agent.len(), 1);
        assert_eq!(r.label, "2026-11-24");
        assert_eq!(r.site, "总部");
        assert_eq!(r.generated_at, t0() + hours(10));
        assert_eq!(r.calls_by_hour[9], 10); // 09:00-09:15 Shanghai
        assert_eq!(r.calls_by_hour.iter().sum::<u64>(), 10);
    }

    #[test]
    fn boundaries_of_target_and_short_abandon() {
        use Outcome::*;
        let calls = vec![
            call("a", "L1", None, Answered, 10.0, None, secs_after(0)), // exactly the target: within
            call("b", "L1", None, Answered, 10.1, None, secs_after(1)), // just over
            call("c", "L1", None, Missed, 5.0, None, secs_after(2)), // exactly short_abandon: counts
            call("d", "L1", None, Missed, 4.9, None, secs_after(3)), // short
            call("e", "L1", None, Interrupted, 1.0, None, secs_after(4)),
        ];
        let k = day_report(&calls, &[], t0()).site_kpis;
        assert_eq!(
            (k.answered_within_target, k.short_abandons, k.interrupted),
            (1, 1, 1)
        );
        // 1 / (2 + 2 - 1) = 33.3 %; abandons (2 - 1) / 3 = 33.3 %.
        assert_eq!(k.service_level_pct, Some(33.3));
        assert_eq!(k.abandon_rate_pct, Some(33.3));
        assert_eq!(k.mean_talk_s, None); // no talk times
        assert_eq!(k.asa_s, Some(10.1)); // (10 + 10.1) / 2 = 10.05 -> 10.1
    }

    #[test]
    fn only_short_abandons_and_unknowns_give_no_service_level() {
        use Outcome::*;
        let calls = vec![
            call("a", "L1", None, Missed, 1.0, None, secs_after(0)),
            call("b", "L1", None, Unknown, 30.0, None, secs_after(1)),
        ];
        let k = day_report(&calls, &[], t0()).site_kpis;
        assert_eq!(
            (k.offered, k.missed, k.short_abandons, k.unknown),
            (2, 1, 1, 1)
        );
        assert_eq!(k.service_level_pct, None);
        assert_eq!(k.abandon_rate_pct, None);
        assert_eq!(k.asa_s, None);
        assert_eq!(k.longest_wait_s, Some(1.0));
    }

    #[test]
    fn splits_per_line_and_per_agent() {
        use Outcome::*;
        let mut calls = vec![
            // L1: alice answers in 5 s and 15 s, one miss after 8 s.
            call(
                "1",
                "L1",
                Some("alice"),
                Answered,
                5.0,
                Some(100.0),
                secs_after(0),
            ),
            call(
                "2",
                "L1",
                Some("alice"),
                Answered,
                15.0,
                Some(200.0),
                secs_after(10),
            ),
            call("3", "L1", None, Missed, 8.0, None, secs_after(20)),
            // L2: bob answers in 3 s; alice answers in 9 s; a repeat caller misses after 2 s (short).
            call(
                "4",
                "L2",
                Some("bob"),
                Answered,
                3.0,
                Some(50.0),
                secs_after(30),
            ),
            call(
                "5",
                "L2",
                Some("alice"),
                Answered,
                9.0,
                Some(70.0),
                secs_after(40),
            ),
            call("6", "L2", None, Missed, 2.0, None, secs_after(50)),
        ];
        calls[5].repeat = true;
        let r = day_report(&calls, &[], t0());
        let l1 = &r.per_line["L1"];
        // L1: within target 1 (5 s) of 2 + 1 - 0 = 3 -> 33.3 %; abandons 1/3 = 33.3 %; ASA (5 + 15) / 2 = 10.
        assert_eq!((l1.offered, l1.answered, l1.missed), (3, 2, 1));
        assert_eq!(l1.service_level_pct, Some(33.3));
        assert_eq!(l1.abandon_rate_pct, Some(33.3));
        assert_eq!(l1.asa_s, Some(10.0));
        assert_eq!(l1.mean_talk_s, Some(150.0));
        assert_eq!(l1.repeat_callers, 0);
        let l2 = &r.per_line["L2"];
        // L2: within 2 (3 s, 9 s) of 2 + 1 - 1 = 2 -> 100 %; abandons 0/2 = 0 %; ASA 6; talk 60.
        assert_eq!(
            (l2.offered, l2.answered, l2.missed, l2.short_abandons),
            (3, 2, 1, 1)
        );
        assert_eq!(l2.service_level_pct, Some(100.0));
        assert_eq!(l2.abandon_rate_pct, Some(0.0));
        assert_eq!(l2.asa_s, Some(6.0));
        assert_eq!(l2.mean_talk_s, Some(60.0));
        assert_eq!(l2.repeat_callers, 1);
        // Site: within 3 of 4 + 2 - 1 = 5 -> 60 %; abandons 1/5 = 20 %; ASA 32/4 = 8; longest wait 15.
        let s = &r.site_kpis;
        assert_eq!(s.offered, 6);
        assert_eq!(s.service_level_pct, Some(60.0));
        assert_eq!(s.abandon_rate_pct, Some(20.0));
        assert_eq!(s.asa_s, Some(8.0));
        assert_eq!(s.longest_wait_s, Some(15.0));
        // alice: 3 calls, waits 5, 15, 9 -> within 2 of 3 = 66.7 %, ASA 29/3 = 9.7, talk 370/3 = 123.3.
        let a = &r.per_agent["alice"];
        assert_eq!((a.offered, a.answered, a.answered_within_target), (3, 3, 2));
        assert_eq!(a.service_level_pct, Some(66.7));
        assert_eq!(a.asa_s, Some(9.7));
        assert_eq!(a.mean_talk_s, Some(123.3));
        let b = &r.per_agent["bob"];
        assert_eq!(
            (b.offered, b.answered, b.service_level_pct),
            (1, 1, Some(100.0))
        );
        assert_eq!(r.per_agent.len(), 2, "missed calls have no agent");
    }

    #[test]
    fn periods_in_shanghai() {
        let tz = chrono_tz::Asia::Shanghai; // UTC+8, no DST
        let d = date(2026, 11, 24); // a Tuesday
        assert_eq!(
            period(ReportKind::Daily, d, tz),
            (utc(2026, 11, 23, 16, 0), utc(2026, 11, 24, 16, 0))
        );
        assert_eq!(
            period(ReportKind::Shift, d, tz),
            period(ReportKind::Daily, d, tz)
        );
        // Monday 2026-11-23 to Monday 2026-11-30, local midnights.
        assert_eq!(
            period(ReportKind::Weekly, d, tz),
            (utc(2026, 11, 22, 16, 0), utc(2026, 11, 29, 16, 0))
        );
        // A Monday and a Sunday belong to the same week.
        assert_eq!(
            period(ReportKind::Weekly, date(2026, 11, 23), tz),
            period(ReportKind::Weekly, date(2026, 11, 29), tz)
        );
        assert_eq!(
            period(ReportKind::Monthly, d, tz),
            (utc(2026, 10, 31, 16, 0), utc(2026, 11, 30, 16, 0))
        );
        assert_eq!(
            period(ReportKind::Quarterly, d, tz),
            (utc(2026, 9, 30, 16, 0), utc(2026, 12, 31, 16, 0))
        );
        assert_eq!(
            period(ReportKind::Quarterly, date(2026, 1, 1), tz),
            (utc(2025, 12, 31, 16, 0), utc(2026, 3, 31, 16, 0))
        );
        // A week across the new year.
        assert_eq!(
            period(ReportKind::Weekly, date(2027, 1, 1), tz),
            (utc(2026, 12, 27, 16, 0), utc(2027, 1, 3, 16, 0))
        );
    }

    #[test]
    fn labels() {
        let d = date(2026, 11, 24);
        assert_eq!(label(ReportKind::Daily, d), "2026-11-24");
        assert_eq!(label(ReportKind::Weekly, d), "2026-W48");
        assert_eq!(label(ReportKind::Monthly, d), "2026-11");
        assert_eq!(label(ReportKind::Quarterly, d), "2026-Q4");
        assert_eq!(label(ReportKind::Quarterly, date(2026, 3, 31)), "2026-Q1");
        // ISO weeks: 2027-01-01 (a Friday) is in the last week of 2026; 2026-01-01 (a Thursday) in week 1.
        assert_eq!(label(ReportKind::Weekly, date(2027, 1, 1)), "2026-W53");
        assert_eq!(label(ReportKind::Weekly, date(2026, 1, 1)), "2026-W01");
        assert_eq!(label(ReportKind::Weekly, date(2025, 12, 29)), "2026-W01");
        assert_eq!(
            serde_json::to_string(&ReportKind::Quarterly).unwrap(),
            "\"quarterly\""
        );
    }

    #[test]
    fn periods_across_dst_in_berlin() {
        let tz = chrono_tz::Europe::Berlin;
        // Summer time starts on Sunday 2026-03-29 at 02:00 CET (01:00 UTC): the week is 167 hours.
        let (from, to) = period(ReportKind::Weekly, date(2026, 3, 25), tz);
        assert_eq!(from, utc(2026, 3, 22, 23, 0)); // Mon 2026-03-23 00:00 CET
        assert_eq!(to, utc(2026, 3, 29, 22, 0)); // Mon 2026-03-30 00:00 CEST
        assert_eq!(to - from, hours(167));
        let (from, to) = period(ReportKind::Daily, date(2026, 3, 29), tz);
        assert_eq!((from, to - from), (utc(2026, 3, 28, 23, 0), hours(23)));
        let (from, to) = period(ReportKind::Monthly, date(2026, 3, 1), tz);
        assert_eq!(
            (from, to),
            (utc(2026, 2, 28, 23, 0), utc(2026, 3, 31, 22, 0))
        );
        assert_eq!(to - from, hours(31 * 24 - 1));
        // Summer time ends on Sunday 2026-10-25 at 03:00 CEST (01:00 UTC): the week is 169 hours.
        let (from, to) = period(ReportKind::Weekly, date(2026, 10, 25), tz);
        assert_eq!(
            (from, to),
            (utc(2026, 10, 18, 22, 0), utc(2026, 10, 25, 23, 0))
        );
        assert_eq!(to - from, hours(169));
        let (from, to) = period(ReportKind::Monthly, date(2026, 10, 31), tz);
        assert_eq!(
            (from, to),
            (utc(2026, 9, 30, 22, 0), utc(2026, 10, 31, 23, 0))
        );
        assert_eq!(to - from, hours(31 * 24 + 1));
        // Q1 starts in winter time and ends in summer time.
        assert_eq!(
            period(ReportKind::Quarterly, date(2026, 2, 14), tz),
            (utc(2025, 12, 31, 23, 0), utc(2026, 3, 31, 22, 0))
        );
        // Consecutive days tile the year: each ends where the next starts.
        let mut d = date(2026, 1, 1);
        while d.year() == 2026 {
            let (_, to) = period(ReportKind::Daily, d, tz);
            let next = d.succ_opt().unwrap();
            assert_eq!(to, period(ReportKind::Daily, next, tz).0);
            d = next;
        }
    }

    #[test]
    fn a_day_whose_midnight_does_not_exist_starts_when_the_clock_jumps() {
        // Chile moves its clocks at midnight: one day a year has no 00:00.
        let tz = chrono_tz::America::Santiago;
        let mut short_days = 0;
        let mut d = date(2026, 1, 1);
        while d.year() == 2026 {
            let (from, to) = period(ReportKind::Daily, d, tz);
            assert_eq!(from.with_timezone(&tz).date_naive(), d);
            assert!(
                (from - chrono::Duration::seconds(1))
                    .with_timezone(&tz)
                    .date_naive()
                    < d
            );
            let len = to - from;
            assert!(
                len == hours(24) || len == hours(23) || len == hours(25),
                "{d}: {len}"
            );
            if len == hours(23) {
                short_days += 1;
                assert_eq!(from.with_timezone(&tz).hour(), 1, "{d} starts at 01:00");
            }
            d = d.succ_opt().unwrap();
        }
        assert_eq!(short_days, 1);
    }

    #[test]
    fn per_day_figures_add_up_to_the_site_kpis() {
        use Outcome::*;
        let (from, to) = period(
            ReportKind::Weekly,
            date(2026, 11, 23),
            chrono_tz::Asia::Shanghai,
        );
        let calls = vec![
            call(
                "a",
                "L1",
                None,
                Answered,
                3.0,
                None,
                utc(2026, 11, 23, 1, 0),
            ), // Mon, in target
            call(
                "b",
                "L1",
                None,
                Answered,
                30.0,
                None,
                utc(2026, 11, 23, 2, 0),
            ), // Mon, late
            call("c", "L1", None, Missed, 20.0, None, utc(2026, 11, 24, 1, 0)), // Tue, counted
            call("d", "L1", None, Missed, 1.0, None, utc(2026, 11, 24, 2, 0)), // Tue, short abandon
        ];
        let r = build(
            ReportKind::Weekly,
            "s",
            "w".into(),
            from,
            to,
            &calls,
            &[],
            &params(),
            to,
        );
        let mon = &r.per_day["2026-11-23"];
        assert_eq!((mon.offered, mon.answered, mon.known), (2, 2, 2));
        assert_eq!(mon.service_level_pct, Some(50.0));
        let tue = &r.per_day["2026-11-24"];
        assert_eq!((tue.offered, tue.answered, tue.known), (2, 0, 1));
        assert_eq!(tue.service_level_pct, Some(0.0));
        let offered: u64 = r.per_day.values().map(|d| d.offered).sum();
        let within: u64 = r.per_day.values().map(|d| d.answered_within_target).sum();
        assert_eq!(offered, r.site_kpis.offered);
        assert_eq!(within, r.site_kpis.answered_within_target);
    }

    #[test]
    fn calls_by_hour_are_local_hours() {
        use Outcome::*;
        let shanghai = [
            utc(2026, 11, 23, 16, 0),  // 00:00 local
            utc(2026, 11, 24, 0, 30),  // 08:30
            utc(2026, 11, 24, 1, 10),  // 09:10
            utc(2026, 11, 24, 1, 50),  // 09:50
            utc(2026, 11, 24, 15, 59), // 23:59
        ];
        let calls: Vec<Call> = shanghai
            .iter()
            .enumerate()
            .map(|(i, &t)| call(&i.to_string(), "L1", None, Answered, 1.0, None, t))
            .collect();
        let r = day_report(&calls, &[], t0());
        let mut want = [0u64; 24];
        want[0] = 1;
        want[8] = 1;
        want[9] = 2;
        want[23] = 1;
        assert_eq!(r.calls_by_hour, want);

        // Berlin on the day summer time starts: 01:30 CET, then 03:30 CEST; there is no 02:xx.
        let tz = chrono_tz::Europe::Berlin;
        let p = ReportParams { tz, ..params() };
        let (from, to) = period(ReportKind::Daily, date(2026, 3, 29), tz);
        let calls = vec![
            call(
                "a",
                "L1",
                None,
                Answered,
                1.0,
                None,
                utc(2026, 3, 29, 0, 30),
            ),
            call(
                "b",
                "L1",
                None,
                Answered,
                1.0,
                None,
                utc(2026, 3, 29, 1, 30),
            ),
            call(
                "c",
                "L1",
                None,
                Answered,
                1.0,
                None,
                utc(2026, 3, 29, 21, 59),
            ), // 23:59 CEST
        ];
        let r = build(
            ReportKind::Daily,
            "s",
            "d".into(),
            from,
            to,
            &calls,
            &[],
            &p,
            to,
        );
        let mut want = [0u64; 24];
        want[1] = 1;
        want[3] = 1;
        want[23] = 1;
        assert_eq!(r.calls_by_hour, want);
    }

    fn entry(at: Time, action: &str) -> TaskEntry {
        TaskEntry {
            at,
            action: action.into(),
            by: None,
            note: None,
        }
    }

    #[test]
    fn task_kpis() {
        use TaskKind::*;
        use TaskState::*;
        let now = t0() + hours(5);
        let calls = vec![call("c1", "L2", None, Outcome::Missed, 20.0, None, t0())];
        let mut tasks = Vec::new();
        // Callbacks.
        // A: done in 2 h, due in 24 h: on time.
        let mut a = task(Callback, Done, t0(), t0() + hours(24));
        a.closed_at = Some(t0() + hours(2));
        a.call_ids = vec!["c1".into()];
        a.assignee = Some("carol".into());
        tasks.push(a);
        // B: due in 1 h, done after 3 h, flagged overdue: late.
        let mut b = task(Callback, Done, t0(), t0() + hours(1));
        b.closed_at = Some(t0() + hours(3));
        b.overdue = true;
        tasks.push(b);
        // C: open, due 1 h in, not flagged yet, but now is 5 h in: late.
        tasks.push(task(Callback, Open, t0(), t0() + hours(1)));
        // D: open, due 10 h in: neither. E: cancelled before its deadline: neither.
        tasks.push(task(Callback, Open, t0(), t0() + hours(10)));
        let mut e = task(Callback, Cancelled, t0(), t0() + hours(1));
        e.closed_at = Some(t0() + chrono::Duration::minutes(30));
        tasks.push(e);

        // Complaints.
        // X: responded in 3 h, resolved after 27 h: on time, resolved.
        let mut x = task(Complaint, Done, t0(), t0() + hours(48));
        x.first_response_at = Some(t0() + hours(3));
        x.resolved_at = Some(t0() + hours(27));
        x.closed_at = x.resolved_at;
        x.agent = Some("alice".into());
        tasks.push(x);
        // Y: went overdue at 24 h, responded at 25 h: late; still open.
        let mut y = task(Complaint, Open, t0(), t0() + hours(72));
        y.history.push(entry(t0() + hours(24), "overdue"));
        y.first_response_at = Some(t0() + hours(25));
        y.agent = Some("alice".into());
        tasks.push(y);
        // Z: responded in 1 h, resolved at 48 h, reopened by a low follow-up score: open again.
        let mut z = task(Complaint, Open, t0(), t0() + hours(49));
        z.first_response_at = Some(t0() + hours(1));
        z.resolved_at = Some(t0() + hours(48));
        z.reopened = 1;
        z.history.push(entry(t0() + hours(30), "overdue")); // a later deadline (the fix) missed
        z.agent = Some("bob".into());
        tasks.push(z);
        // W: no response yet.
        tasks.push(task(Complaint, Open, t0(), t0() + hours(24)));

        // Follow-ups: scores 5, 4, 4, 2; one open, one cancelled.
        for s in [5, 4, 4, 2] {
            let mut f = task(Followup, Done, t0(), t0() + hours(24));
            f.satisfaction = Some(s);
            f.agent = Some("alice".into());
            tasks.push(f);
        }
        tasks.push(task(Followup, Open, t0(), t0() + hours(24)));
        tasks.push(task(Followup, Cancelled, t0(), t0() + hours(24)));

        // Not counted: a review, a referral, a callback made the day before.
        tasks.push(task(Review, Open, t0(), t0() + hours(1)));
        tasks.push(task(Referral, Open, t0(), t0() + hours(1)));
        tasks.push(task(Callback, Open, t0() - hours(24), t0()));

        let r = day_report(&calls, &tasks, now);
        let k = &r.site_kpis;
        assert_eq!(
            (
                k.callbacks_opened,
                k.callbacks_done_on_time,
                k.callbacks_overdue
            ),
            (5, 1, 2)
        );
        assert_eq!(k.mean_time_to_callback_s, Some(9000.0)); // (7200 + 10800) / 2
        assert_eq!(k.complaints_opened, 4);
        assert_eq!(k.complaints_first_response_on_time, 2); // X and Z
        assert_eq!(k.complaints_resolved, 1); // X; Z was reopened
        assert_eq!(k.mean_time_to_resolve_s, Some(97200.0)); // 27 h
        assert_eq!(k.complaints_reopened, 1);
        assert_eq!(k.followups_done, 4);
        assert_eq!(k.satisfaction_counts, [0, 1, 0, 2, 1]);
        assert_eq!(k.mean_satisfaction, Some(3.8)); // 15 / 4 = 3.75 -> 3.8

        // Per line: only A came from a call on the calls passed in (c1 on L2).
        let l2 = &r.per_line["L2"];
        assert_eq!((l2.callbacks_opened, l2.callbacks_done_on_time), (1, 1));
        assert_eq!(l2.mean_time_to_callback_s, Some(7200.0));
        assert_eq!(r.per_line.len(), 1);
        // Per agent: complaints against alice (X, Y) and bob (Z); alice's follow-ups; carol's callback.
        let alice = &r.per_agent["alice"];
        assert_eq!((alice.complaints_opened, alice.complaints_resolved), (2, 1));
        assert_eq!(alice.complaints_first_response_on_time, 1);
        assert_eq!(alice.followups_done, 4);
        let bob = &r.per_agent["bob"];
        assert_eq!((bob.complaints_opened, bob.complaints_reopened), (1, 1));
        assert_eq!(r.per_agent["carol"].callbacks_opened, 1);
        assert_eq!(r.per_agent.len(), 3);
    }

    #[test]
    fn empty_inputs_give_zeros_and_none() {
        let r = day_report(&[], &[], t0());
        assert_eq!(r.site_kpis, Kpis::default());
        let k = &r.site_kpis;
        assert_eq!(k.offered, 0);
        assert_eq!(k.service_level_pct, None);
        assert_eq!(k.abandon_rate_pct, None);
        assert_eq!(k.asa_s, None);
        assert_eq!(k.mean_satisfaction, None);
        assert!(r.per_line.is_empty() && r.per_agent.is_empty());
        assert_eq!(r.calls_by_hour, [0; 24]);
        let csv = to_csv(&r);
        let back = parse_csv(&csv).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back["site"], Kpis::default());
    }

    #[test]
    fn rounding() {
        assert_eq!(rounded(10.333), 10.3);
        assert_eq!(rounded(3.75), 3.8);
        assert_eq!(rounded(66.666), 66.7);
        assert_eq!(rounded(-0.04).to_string(), "0");
        assert_eq!(rounded(0.1 + 0.2), 0.3);
        assert_eq!(rounded(12.0).to_string(), "12");
    }

    #[test]
    fn columns_are_every_kpis_field() {
        let v = serde_json::to_value(Kpis::default()).unwrap();
        let mut fields: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        fields.sort();
        let mut columns: Vec<String> = SCALAR_COLUMNS.iter().map(|c| c.to_string()).collect();
        columns.push("satisfaction_counts".into());
        columns.sort();
        assert_eq!(fields, columns);
    }

    #[test]
    fn csv_layout() {
        let mut calls = ten_calls();
        calls[0].line = "总机,1".into();
        calls[1].agent = Some("=HYPERLINK(\"x\")".into());
        let r = day_report(&calls, &[], t0());
        let csv = to_csv(&r);
        assert!(csv.starts_with("\u{feff}scope,offered,answered,missed,unknown,interrupted,"));
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert!(lines[0].ends_with(",mean_satisfaction,late_signins,satisfaction_1,satisfaction_2,satisfaction_3,satisfaction_4,satisfaction_5"));
        // Site: 10 offered, 6 answered, 3 missed, 1 unknown, 0 interrupted, 1 short, 4 within, 50 %, 25 %, 10.3 s.
        assert!(
            lines[1].starts_with(
                "site,10,6,3,1,0,1,4,50,25,10.3,105,40,0,0,0,0,,0,0,0,,0,0,,0,0,0,0,0"
            ),
            "{}",
            lines[1]
        );
        assert!(
            csv.contains("\r\n\"agent:=HYPERLINK(\"\"x\"\")\",1,1,"),
            "{csv}"
        );
        assert!(csv.contains("\r\nline:L1,9,"));
        assert!(csv.contains("\r\n\"line:总机,1\",1,1,"));
        let table = csv.split("\r\n\r\n").nth(1).unwrap();
        assert!(table.starts_with("hour,calls\r\n0,0\r\n"));
        assert!(table.contains("\r\n9,10\r\n"));
        assert_eq!(table.lines().count(), 25);
        let back = parse_csv(&csv).unwrap();
        assert_eq!(back["site"], r.site_kpis);
        assert_eq!(back["line:总机,1"], r.per_line["总机,1"]);
        assert_eq!(
            back["agent:=HYPERLINK(\"x\")"],
            r.per_agent["=HYPERLINK(\"x\")"]
        );
    }

    #[test]
    fn formula_guard() {
        let g = |s: &str| guard(s).into_owned();
        assert_eq!(g("=1+1"), "'=1+1");
        assert_eq!(g("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(g("\tx"), "'\tx");
        assert_eq!(g("\rx"), "'\rx");
        assert_eq!(g("+cmd"), "'+cmd");
        assert_eq!(g("-1+2"), "'-1+2");
        assert_eq!(g("-"), "'-");
        assert_eq!(
            g("'quoted"),
            "'quoted",
            "an apostrophe before no formula stays"
        );
        assert_eq!(g("'=x"), "''=x");
        assert_eq!(g("+8613800138000"), "+8613800138000");
        assert_eq!(g("-3.5"), "-3.5");
        assert_eq!(g("12.5"), "12.5");
        assert_eq!(g("line:=x"), "line:=x");
        for s in ["=1", "'x", "''", "-a", "-3.5", "plain", "", "@"] {
            assert_eq!(unguard(&g(s)), s);
        }
        let mut out = String::new();
        push_cell(&mut out, "=a,b");
        assert_eq!(out, "\"'=a,b\"");
        // A negative mean (clock jumps) stays a number and reads back.
        let k = Kpis {
            mean_time_to_callback_s: Some(-3.5),
            ..Kpis::default()
        };
        let mut row = Vec::new();
        scalar_cells(&k, &mut row);
        assert!(row.contains(&"-3.5".to_string()));
    }

    #[test]
    fn parse_csv_rejects_bad_input() {
        let r = day_report(&ten_calls(), &[], t0());
        let csv = to_csv(&r);
        assert!(parse_csv("").is_err());
        assert!(parse_csv("a,b\r\n").is_err());
        assert!(parse_csv(&csv.replace(",asa_s,", ",asa,"))
            .unwrap_err()
            .contains("asa_s"));
        assert!(parse_csv(&csv.replacen("site,10,", "site,ten,", 1)).is_err());
        assert!(parse_csv(&csv.replacen("site,10,", "site,10,1,", 1)).is_err());
        assert!(parse_csv(&csv.replacen("site,10,", "\"site,10,", 1)).is_err());
        let dup = csv.replacen("line:L1,", "site,", 1);
        assert!(parse_csv(&dup).unwrap_err().contains("twice"));
        // LF line ends and no BOM are fine too.
        let lf = csv.trim_start_matches('\u{feff}').replace("\r\n", "\n");
        assert_eq!(parse_csv(&lf).unwrap(), parse_csv(&csv).unwrap());
    }

    #[test]
    fn builds_100k_calls() {
        use Outcome::*;
        let outcomes = [Answered, Answered, Answered, Missed, Unknown, Interrupted];
        let calls: Vec<Call> = (0..100_000i64)
            .map(|i| {
                let mut c = call(
                    &format!("c{i}"),
                    &format!("L{}", i % 8),
                    Some(&format!("agent{}", i % 20)),
                    outcomes[(i % 6) as usize],
                    (i % 60) as f64,
                    Some((i % 300) as f64),
                    t0() - hours(9) + chrono::Duration::milliseconds(i * 800),
                );
                c.repeat = i % 7 == 0;
                c
            })
            .collect();
        let mut tasks = Vec::new();
        for i in 0..1000 {
            let mut t = task(TaskKind::Callback, TaskState::Done, t0(), t0() + hours(1));
            t.closed_at = Some(t0() + chrono::Duration::minutes(i % 120));
            t.call_ids = vec![format!("c{}", i * 97)];
            tasks.push(t);
        }
        let started = std::time::Instant::now();
        let r = day_report(&calls, &tasks, t0() + hours(24));
        eprintln!("100,000 calls: {:?}", started.elapsed());
        assert_eq!(r.site_kpis.offered, 100_000);
        assert_eq!(r.per_line.len(), 8);
        assert_eq!(r.per_agent.len(), 20);
        assert_eq!(r.site_kpis.callbacks_opened, 1000);
        let on_lines: u64 = r.per_line.values().map(|k| k.callbacks_opened).sum();
        assert_eq!(on_lines, 1000);
    }

    const NAMES: [&str; 5] = ["L1", "总机,1", "a\"b", "=cmd\nx", "'-x"];
    const AGENTS: [&str; 5] = ["alice", "张三", "+86 1", "@bob,", ""];

    fn arb_call() -> impl Strategy<Value = Call> {
        (
            (0..NAMES.len(), proptest::option::of(0..AGENTS.len())),
            0..5u8,
            proptest::option::of(0.0..120.0f64),
            proptest::option::of(0.0..900.0f64),
            (any::<bool>(), proptest::bool::weighted(0.9)),
            -7200i64..(26 * 3600),
        )
            .prop_map(
                |((line, agent), o, wait, talk, (repeat, incoming), start)| {
                    let outcome = [
                        Outcome::Answered,
                        Outcome::Missed,
                        Outcome::Unknown,
                        Outcome::Interrupted,
                    ]
                    .get(usize::from(o))
                    .copied();
                    let mut c = call(
                        "",
                        NAMES[line],
                        agent.map(|a| AGENTS[a]),
                        Outcome::Answered,
                        0.0,
                        talk,
                        secs_after(start - 9 * 3600),
                    );
                    c.outcome = outcome;
                    c.wait_s = wait;
                    c.repeat = repeat;
                    c.direction = if incoming {
                        Direction::In
                    } else {
                        Direction::Out
                    };
                    c
                },
            )
    }

    fn arb_task() -> impl Strategy<Value = Task> {
        (
            (
                0..5usize,
                0..3usize,
                -7200i64..(26 * 3600),
                0i64..(48 * 3600),
            ),
            (
                proptest::option::of(0i64..(72 * 3600)),
                any::<bool>(),
                proptest::option::of(0..AGENTS.len()),
                proptest::option::of(0..AGENTS.len()),
            ),
            (
                0u8..7,
                proptest::option::of(0i64..(48 * 3600)),
                proptest::option::of(0i64..(72 * 3600)),
                0u32..3,
            ),
            (
                proptest::option::of(0usize..40),
                proptest::option::of(0i64..(48 * 3600)),
            ),
        )
            .prop_map(
                |(
                    (kind, state, created, due),
                    (closed, overdue, agent, assignee),
                    (score, first, resolved, reopened),
                    (call, late_at),
                )| {
                    let kinds = [
                        TaskKind::Callback,
                        TaskKind::Complaint,
                        TaskKind::Followup,
                        TaskKind::Review,
                        TaskKind::Referral,
                    ];
                    let states = [TaskState::Open, TaskState::Done, TaskState::Cancelled];
                    let created = secs_after(created - 9 * 3600);
                    let mut t = task(
                        kinds[kind],
                        states[state],
                        created,
                        created + chrono::Duration::seconds(due),
                    );
                    let after = |s: i64| created + chrono::Duration::seconds(s);
                    t.closed_at = closed.map(after);
                    t.overdue = overdue;
                    t.agent = agent.map(|a| AGENTS[a].to_string());
                    t.assignee = assignee.map(|a| AGENTS[a].to_string());
                    t.satisfaction = (score > 0).then_some(score);
                    t.first_response_at = first.map(after);
                    t.resolved_at = resolved.map(after);
                    t.reopened = reopened;
                    t.call_ids = call.map(|i| format!("c{i}")).into_iter().collect();
                    if let Some(s) = late_at {
                        t.history.push(entry(after(s), "overdue"));
                    }
                    t
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn csv_round_trips_and_lines_add_up(
            mut calls in proptest::collection::vec(arb_call(), 0..60),
            tasks in proptest::collection::vec(arb_task(), 0..30),
            now_h in 0i64..96,
        ) {
            for (i, c) in calls.iter_mut().enumerate() {
                c.id = format!("c{i}");
            }
            let r = day_report(&calls, &tasks, t0() + hours(now_h));
            let back = parse_csv(&to_csv(&r)).map_err(TestCaseError::fail)?;
            prop_assert_eq!(back.len(), 1 + r.per_line.len() + r.per_agent.len());
            prop_assert_eq!(&back["site"], &r.site_kpis);
            for (line, k) in &r.per_line {
                prop_assert_eq!(&back[&format!("line:{line}")], k);
            }
            for (agent, k) in &r.per_agent {
                prop_assert_eq!(&back[&format!("agent:{agent}")], k);
            }

            // Every incoming call of the period is on exactly one line.
            let s = &r.site_kpis;
            let sum = |f: fn(&Kpis) -> u64| r.per_line.values().map(f).sum::<u64>();
            prop_assert_eq!(sum(|k| k.offered), s.offered);
            prop_assert_eq!(sum(|k| k.answered), s.answered);
            prop_assert_eq!(sum(|k| k.missed), s.missed);
            prop_assert_eq!(sum(|k| k.unknown), s.unknown);
            prop_assert_eq!(sum(|k| k.interrupted), s.interrupted);
            prop_assert_eq!(sum(|k| k.short_abandons), s.short_abandons);
            prop_assert_eq!(sum(|k| k.answered_within_target), s.answered_within_target);
            prop_assert_eq!(sum(|k| k.repeat_callers), s.repeat_callers);
            prop_assert_eq!(r.calls_by_hour.iter().sum::<u64>(), s.offered);
            // Tasks are on a line only when their call is known, so lines hold at most the site's.
            prop_assert!(sum(|k| k.callbacks_opened) <= s.callbacks_opened);
            prop_assert!(sum(|k| k.complaints_opened) <= s.complaints_opened);
            // Agents hold at most the site's calls; outcomes never exceed what was offered.
            prop_assert!(r.per_agent.values().map(|k| k.offered).sum::<u64>() <= s.offered);
            prop_assert!(s.answered + s.missed + s.unknown + s.interrupted <= s.offered);
            prop_assert!(s.callbacks_done_on_time + s.callbacks_overdue <= s.callbacks_opened);
            if let Some(sl) = s.service_level_pct {
                prop_assert!((0.0..=100.0).contains(&sl));
            }
            prop_assert_eq!(s.satisfaction_counts.iter().sum::<u64>() <= s.followups_done, true);
        }
    }
}
