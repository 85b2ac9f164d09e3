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
//!
//! Long because every KPI of SERVICE-POLICY section 6 is defined here, with the CSV layout.

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
mod tests;
