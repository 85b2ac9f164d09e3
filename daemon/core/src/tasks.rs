//! Tasks (SERVICE-POLICY sections 2-4) as pure functions over records: what a finished call opens or updates,
//! what each action does to a task, which deadline timer a task needs next and what happens when it fires. The
//! engine keeps the indexes, the timers and the store; this module only decides.
//!
//! Long because every task action and timer of SERVICE-POLICY sections 2-4 is one state machine.

use std::time::Duration;

use serde::Deserialize;

use crate::model::{
    new_id, Call, Direction, Level, Outcome, Priority, Severity, Stage, Task, TaskEntry, TaskKind,
    TaskState, Time,
};

/// How deadlines are counted: on the wall clock, or only in open hours (`deadline_clock = "business"`).
pub trait DeadlineClock {
    /// The deadline `d` after `start`.
    fn after(&self, start: Time, d: Duration) -> Time;
    /// The close of the business day containing `t` (or of the next one, when closed at `t`).
    fn end_of_business_day(&self, t: Time) -> Time;
}

/// Open 24x7, deadlines on the wall clock; the business day ends at local midnight.
pub struct WallClock(pub chrono_tz::Tz);

impl DeadlineClock for WallClock {
    fn after(&self, start: Time, d: Duration) -> Time {
        start + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
    }
    fn end_of_business_day(&self, t: Time) -> Time {
        use chrono::TimeZone;
        let next = t
            .with_timezone(&self.0)
            .date_naive()
            .succ_opt()
            .unwrap_or_default();
        self.0
            .from_local_datetime(&next.and_hms_opt(0, 0, 0).unwrap_or_default())
            .earliest()
            .map(|d| d.with_timezone(&chrono::Utc))
            .unwrap_or(t)
    }
}

/// Deadlines on the site's calendar: counted in open hours when `business`, else on the wall clock; the business
/// day ends at closing time when `[hours]` is set, else at local midnight.
pub struct Deadlines {
    pub calendar: crate::calendar::BusinessCalendar,
    pub business: bool,
}

impl DeadlineClock for Deadlines {
    fn after(&self, start: Time, d: Duration) -> Time {
        let wall = || WallClock(self.calendar.timezone()).after(start, d);
        if self.business {
            self.calendar.add_business(start, d).unwrap_or_else(wall)
        } else {
            wall()
        }
    }
    fn end_of_business_day(&self, t: Time) -> Time {
        let midnight = || WallClock(self.calendar.timezone()).end_of_business_day(t);
        if self.calendar.is_always_open() {
            midnight()
        } else {
            self.calendar
                .end_of_business_day(t)
                .unwrap_or_else(midnight)
        }
    }
}

/// The policy settings tasks follow (SERVICE-POLICY sections 2-4).
#[derive(Debug, Clone)]
pub struct TaskPolicy {
    pub callback_due: Duration,
    pub unknown_outcome: UnknownOutcome,
    pub complaint_response_due: Duration,
    pub supervisor_decision_due: Duration,
    pub referral_due: Duration,
    pub followup_due: Duration,
    pub followup_issue_due: Duration,
    pub reopen_below: u8,
    pub warn_before: Option<Duration>,
    pub escalate_every: Duration,
}

impl Default for TaskPolicy {
    fn default() -> Self {
        let h = |n: u64| Duration::from_secs(n * 3600);
        TaskPolicy {
            callback_due: h(24),
            unknown_outcome: UnknownOutcome::Review,
            complaint_response_due: h(24),
            supervisor_decision_due: h(1),
            referral_due: h(1),
            followup_due: h(24),
            followup_issue_due: h(1),
            reopen_below: 3,
            warn_before: Some(h(2)),
            escalate_every: h(1),
        }
    }
}

/// What a call whose outcome the line cannot know asks for (`policy.unknown_outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownOutcome {
    Review,
    Callback,
    Ignore,
}

/// The task kind a finished call asks for, if any.
pub fn kind_for(call: &Call, unknown: UnknownOutcome) -> Option<TaskKind> {
    if call.direction != Direction::In || call.number.is_none() {
        // Nothing to call back: outgoing calls, and withheld or unavailable numbers.
        return None;
    }
    match (call.outcome?, unknown) {
        (Outcome::Missed, _) => Some(TaskKind::Callback),
        (Outcome::Unknown, UnknownOutcome::Callback) => Some(TaskKind::Callback),
        (Outcome::Unknown, UnknownOutcome::Review) => Some(TaskKind::Review),
        _ => None,
    }
}

fn entry(
    at: Time,
    action: impl Into<String>,
    by: Option<String>,
    note: Option<String>,
) -> TaskEntry {
    TaskEntry {
        at,
        action: action.into(),
        by,
        note,
    }
}

/// A blank open task of `kind`.
pub fn blank(kind: TaskKind, due_at: Time, now: Time) -> Task {
    Task {
        id: new_id(now),
        kind,
        state: TaskState::Open,
        number: None,
        name: None,
        call_ids: Vec::new(),
        attempts: 1,
        created_at: now,
        due_at,
        assignee: None,
        priority: Priority::Normal,
        note: None,
        overdue: false,
        closed_at: None,
        closed_by: None,
        history: Vec::new(),
        level: Level::Agent,
        escalated_at: None,
        acknowledged_at: None,
        acknowledged_by: None,
        warned: false,
        severity: None,
        stage: None,
        category: None,
        agent: None,
        first_response_at: None,
        promised_fix_at: None,
        resolved_at: None,
        supervisor_decision: false,
        satisfaction: None,
        department: None,
        parent_id: None,
        reopened: 0,
        vip: false,
    }
}

pub fn new_task(call: &Call, kind: TaskKind, due_at: Time, now: Time) -> Task {
    let action = match kind {
        TaskKind::Review => "opened: call outcome unknown, please review",
        _ => "opened: missed call",
    };
    let mut t = blank(kind, due_at, now);
    t.number = call.number.clone();
    t.name = call.name.clone();
    t.call_ids = vec![call.id.clone()];
    t.agent = call.agent.clone();
    t.vip = call.vip;
    t.history.push(entry(now, action, None, None));
    t
}

/// Another call from the same caller while the task is open: one more attempt, a higher priority, and a review
/// becomes a callback when the caller was now seen to be missed. The deadline stays that of the first call.
pub fn add_attempt(task: &mut Task, call: &Call, kind: TaskKind, now: Time) {
    if !task.call_ids.contains(&call.id) {
        task.call_ids.push(call.id.clone());
    }
    task.attempts += 1;
    task.priority = Priority::for_attempts(task.attempts);
    if task.name.is_none() {
        task.name = call.name.clone();
    }
    let mut action = format!("caller tried again (attempt {})", task.attempts);
    if task.kind == TaskKind::Review && kind == TaskKind::Callback {
        task.kind = TaskKind::Callback;
        action.push_str("; now a callback");
    }
    task.history.push(entry(now, action, None, None));
}

/// What opening a complaint needs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplaintRequest {
    /// The call it came from (its number and name are taken from the call).
    pub call_id: Option<String>,
    pub number: Option<String>,
    pub name: Option<String>,
    pub note: Option<String>,
    #[serde(default)]
    pub severity: Severity,
    pub category: Option<String>,
    pub by: Option<String>,
}

/// A complaint, due for its first response after `complaint_response_due`. A major one is escalated to the top
/// level at once (000:L355: skip levels when urgent).
pub fn new_complaint(
    req: &ComplaintRequest,
    call: Option<&Call>,
    p: &TaskPolicy,
    clock: &dyn DeadlineClock,
    now: Time,
) -> Task {
    let mut t = blank(
        TaskKind::Complaint,
        clock.after(now, p.complaint_response_due),
        now,
    );
    t.number = req
        .number
        .clone()
        .or_else(|| call.and_then(|c| c.number.clone()));
    t.name = req
        .name
        .clone()
        .or_else(|| call.and_then(|c| c.name.clone()));
    if let Some(c) = call {
        t.call_ids.push(c.id.clone());
        t.agent = c.agent.clone();
        t.vip = c.vip;
    }
    t.note = req.note.clone();
    t.severity = Some(req.severity);
    t.stage = Some(Stage::AwaitingResponse);
    t.category = req.category.clone();
    t.history.push(entry(
        now,
        "complaint opened",
        req.by.clone(),
        req.note.clone(),
    ));
    if req.severity == Severity::Major {
        t.level = Level::Manager;
        t.escalated_at = Some(now);
        t.priority = Priority::Urgent;
        t.history.push(entry(
            now,
            "major complaint: escalated to manager at once",
            None,
            None,
        ));
    }
    t
}

/// An action on a task, from the API, an MQTT command or a desk key.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum TaskAction {
    /// Closes a callback or review (or any task but a complaint, which is resolved).
    Done {
        by: Option<String>,
        note: Option<String>,
    },
    Cancel {
        by: Option<String>,
        note: Option<String>,
    },
    Assign {
        to: String,
        by: Option<String>,
    },
    /// Acknowledges an escalation: it stops climbing.
    Ack {
        by: Option<String>,
        note: Option<String>,
    },
    /// A complaint's response with the promised fix time (RFC 3339, or a duration from now such as "48h").
    Respond {
        by: Option<String>,
        note: Option<String>,
        promised_fix: String,
    },
    Resolve {
        by: Option<String>,
        note: Option<String>,
    },
    /// A follow-up visit's result: satisfaction 1-5.
    FollowupResult {
        by: Option<String>,
        score: u8,
        note: Option<String>,
    },
    /// Hands a complaint's matter to another department (opens a referral task).
    Refer {
        department: String,
        by: Option<String>,
        note: Option<String>,
    },
    /// Marks a complaint as a matter the supervisor decides: due within the hour, never after the business day.
    SupervisorDecision {
        by: Option<String>,
        note: Option<String>,
    },
}

impl TaskAction {
    pub fn name(&self) -> &'static str {
        match self {
            TaskAction::Done { .. } => "done",
            TaskAction::Cancel { .. } => "cancel",
            TaskAction::Assign { .. } => "assign",
            TaskAction::Ack { .. } => "ack",
            TaskAction::Respond { .. } => "respond",
            TaskAction::Resolve { .. } => "resolve",
            TaskAction::FollowupResult { .. } => "followup_result",
            TaskAction::Refer { .. } => "refer",
            TaskAction::SupervisorDecision { .. } => "supervisor_decision",
        }
    }
}

/// What an action or a timer did beyond changing the task itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Publish this task event type (`task.updated`, `task.done`, ...).
    Event(&'static str),
    /// Open this new task (a follow-up, a referral).
    Open(Box<Task>),
    /// Raise an alert.
    Alert {
        rule: &'static str,
        level: Level,
        message: String,
    },
    /// The follow-up scored low: reopen the complaint `id`.
    Reopen { id: String, score: u8 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("no task with id {0}")]
    NotFound(String),
    #[error("no agent `{0}`; agents are listed in the configuration ([[agent]])")]
    UnknownAgent(String),
    #[error("task {id} is already {state}")]
    NotOpen { id: String, state: String },
    #[error("{action} does not apply to a {kind} task{hint}")]
    WrongKind {
        action: &'static str,
        kind: &'static str,
        hint: &'static str,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("the store could not record the change: {0}")]
    Store(String),
    #[error("the daemon is shutting down")]
    ShuttingDown,
}

fn state_name(s: TaskState) -> &'static str {
    match s {
        TaskState::Open => "open",
        TaskState::Done => "done",
        TaskState::Cancelled => "cancelled",
    }
}

/// A new deadline: the warning and the overdue flag start over; the level reached stays.
fn set_due(task: &mut Task, due: Time) {
    task.due_at = due;
    task.overdue = false;
    task.warned = false;
    task.acknowledged_at = None;
}

/// Parses a promised fix time: RFC 3339, or a duration from `now`.
pub fn parse_when(s: &str, now: Time) -> Result<Time, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s.trim()) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    humantime::parse_duration(s.trim())
        .ok()
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .map(|d| now + d)
        .ok_or_else(|| format!("`{s}` is neither an RFC 3339 time nor a duration such as \"48h\""))
}

/// Applies an action to an open task. On error the task is unchanged.
pub fn apply(
    task: &mut Task,
    action: TaskAction,
    p: &TaskPolicy,
    clock: &dyn DeadlineClock,
    now: Time,
) -> Result<Vec<Effect>, ActionError> {
    if task.state != TaskState::Open {
        return Err(ActionError::NotOpen {
            id: task.id.clone(),
            state: state_name(task.state).into(),
        });
    }
    let kind = task.kind;
    let wrong = |action: &'static str, hint: &'static str| ActionError::WrongKind {
        action,
        kind: kind.as_str(),
        hint,
    };
    let mut effects = Vec::new();
    match action {
        TaskAction::Done { by, note } => {
            match kind {
                TaskKind::Complaint => {
                    return Err(wrong("done", "; resolve it (a follow-up visit follows)"))
                }
                TaskKind::Followup => {
                    return Err(wrong(
                        "done",
                        "; record the result with followup_result and a score",
                    ))
                }
                _ => {}
            }
            close(task, TaskState::Done, "done", by, note, now);
            effects.push(Effect::Event("task.done"));
        }
        TaskAction::Cancel { by, note } => {
            close(task, TaskState::Cancelled, "cancelled", by, note, now);
            effects.push(Effect::Event("task.cancelled"));
        }
        TaskAction::Assign { to, by } => {
            if to.trim().is_empty() {
                return Err(ActionError::Invalid(
                    "assign needs `to`: who takes the task".into(),
                ));
            }
            task.history
                .push(entry(now, format!("assigned to {to}"), by, None));
            task.assignee = Some(to);
            effects.push(Effect::Event("task.updated"));
        }
        TaskAction::Ack { by, note } => {
            if task.acknowledged_at.is_some() {
                return Err(ActionError::Invalid(format!(
                    "task {} is already acknowledged",
                    task.id
                )));
            }
            task.acknowledged_at = Some(now);
            task.acknowledged_by = by.clone();
            task.history.push(entry(
                now,
                format!("acknowledged at level {}", task.level.as_str()),
                by,
                note,
            ));
            effects.push(Effect::Event("task.updated"));
        }
        TaskAction::Respond {
            by,
            note,
            promised_fix,
        } => {
            if kind != TaskKind::Complaint {
                return Err(wrong("respond", ""));
            }
            let fix = parse_when(&promised_fix, now).map_err(ActionError::Invalid)?;
            if fix <= now {
                return Err(ActionError::Invalid(
                    "the promised fix time must be in the future".into(),
                ));
            }
            if task.first_response_at.is_none() {
                task.first_response_at = Some(now);
            }
            task.promised_fix_at = Some(fix);
            task.stage = Some(Stage::InProgress);
            set_due(task, fix);
            task.history.push(entry(
                now,
                format!("responded; fix promised by {}", fix.to_rfc3339()),
                by,
                note,
            ));
            effects.push(Effect::Event("task.updated"));
        }
        TaskAction::Resolve { by, note } => {
            if kind != TaskKind::Complaint {
                return Err(wrong("resolve", ""));
            }
            if task.first_response_at.is_none() {
                task.first_response_at = Some(now);
            }
            task.resolved_at = Some(now);
            task.stage = Some(Stage::Resolved);
            close(task, TaskState::Done, "resolved", by.clone(), note, now);
            effects.push(Effect::Event("task.done"));
            // Every resolved complaint gets a follow-up visit; a VIP's the same day (000:L75, L79).
            let due = if task.vip {
                clock.end_of_business_day(now)
            } else {
                clock.after(now, p.followup_due)
            };
            let mut f = blank(TaskKind::Followup, due, now);
            f.number = task.number.clone();
            f.name = task.name.clone();
            f.call_ids = task.call_ids.clone();
            f.parent_id = Some(task.id.clone());
            f.agent = task.agent.clone();
            f.vip = task.vip;
            f.history.push(entry(
                now,
                format!("follow-up visit for complaint {}", task.id),
                by,
                None,
            ));
            effects.push(Effect::Open(Box::new(f)));
        }
        TaskAction::FollowupResult { by, score, note } => {
            if kind != TaskKind::Followup {
                return Err(wrong("followup_result", ""));
            }
            if !(1..=5).contains(&score) {
                return Err(ActionError::Invalid(format!(
                    "score {score} must be 1 to 5"
                )));
            }
            task.satisfaction = Some(score);
            close(
                task,
                TaskState::Done,
                &format!("follow-up done, satisfaction {score}"),
                by,
                note,
                now,
            );
            effects.push(Effect::Event("task.done"));
            if score < p.reopen_below {
                if let Some(parent) = task.parent_id.clone() {
                    effects.push(Effect::Reopen { id: parent, score });
                }
            }
        }
        TaskAction::Refer {
            department,
            by,
            note,
        } => {
            if kind != TaskKind::Complaint {
                return Err(wrong("refer", ""));
            }
            if department.trim().is_empty() {
                return Err(ActionError::Invalid("refer needs the `department`".into()));
            }
            let mut r = blank(TaskKind::Referral, clock.after(now, p.referral_due), now);
            r.number = task.number.clone();
            r.name = task.name.clone();
            r.parent_id = Some(task.id.clone());
            r.department = Some(department.clone());
            r.note = note.clone();
            r.history.push(entry(
                now,
                format!("referred to {department}"),
                by.clone(),
                note.clone(),
            ));
            task.history.push(entry(
                now,
                format!("referred to {department} (task {})", r.id),
                by,
                note,
            ));
            effects.push(Effect::Event("task.updated"));
            effects.push(Effect::Open(Box::new(r)));
        }
        TaskAction::SupervisorDecision { by, note } => {
            if kind != TaskKind::Complaint {
                return Err(wrong("supervisor_decision", ""));
            }
            task.supervisor_decision = true;
            let due = clock
                .after(now, p.supervisor_decision_due)
                .min(clock.end_of_business_day(now))
                .min(task.due_at);
            set_due(task, due);
            task.history
                .push(entry(now, "supervisor decision needed", by, note));
            effects.push(Effect::Event("task.updated"));
        }
    }
    Ok(effects)
}

/// A follow-up scored below `reopen_below`: the complaint opens again, due within `followup_issue_due`
/// (003:L714: problems found in a follow-up go to the responsible team within 1 hour), and alerts.
pub fn reopen(
    complaint: &mut Task,
    score: u8,
    p: &TaskPolicy,
    clock: &dyn DeadlineClock,
    now: Time,
) -> Vec<Effect> {
    complaint.state = TaskState::Open;
    complaint.stage = Some(Stage::InProgress);
    complaint.closed_at = None;
    complaint.closed_by = None;
    complaint.reopened += 1;
    set_due(complaint, clock.after(now, p.followup_issue_due));
    complaint.history.push(entry(
        now,
        format!("reopened: follow-up satisfaction {score}"),
        None,
        None,
    ));
    vec![
        Effect::Event("task.updated"),
        Effect::Alert {
            rule: "complaint_reopened",
            level: complaint.level.max(Level::ShiftLead),
            message: format!(
                "complaint {} reopened: the follow-up scored {score} of 5",
                complaint.id
            ),
        },
    ]
}

fn close(
    task: &mut Task,
    state: TaskState,
    action: &str,
    by: Option<String>,
    note: Option<String>,
    now: Time,
) {
    task.state = state;
    task.closed_at = Some(now);
    task.closed_by = by.clone();
    if note.is_some() {
        task.note = note.clone();
    }
    task.history.push(entry(now, action, by, note));
}

/// The deadline timers a task can need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// `warn_before` the deadline.
    Warn,
    /// The deadline.
    Due,
    /// `escalate_every` after the last escalation, until acknowledged or at the top.
    Climb,
}

/// The next timer an open task needs, if any. One timer per task, so an idle box with many open tasks sleeps until
/// the earliest of them.
pub fn next_timer(task: &Task, p: &TaskPolicy) -> Option<(Time, Timer)> {
    next_timer_for(&TimerFacts::from(task), p)
}

/// The few fields of a task its timers depend on, kept in memory for every open task so that a policy change
/// recomputes all timers without reading the tasks back.
#[derive(Debug, Clone, PartialEq)]
pub struct TimerFacts {
    pub open: bool,
    pub overdue: bool,
    pub warned: bool,
    pub due_at: Time,
    pub created_at: Time,
    pub acknowledged: bool,
    pub level: Level,
    pub escalated_at: Option<Time>,
}

impl From<&Task> for TimerFacts {
    fn from(t: &Task) -> Self {
        TimerFacts {
            open: t.state == TaskState::Open,
            overdue: t.overdue,
            warned: t.warned,
            due_at: t.due_at,
            created_at: t.created_at,
            acknowledged: t.acknowledged_at.is_some(),
            level: t.level,
            escalated_at: t.escalated_at,
        }
    }
}

pub fn next_timer_for(f: &TimerFacts, p: &TaskPolicy) -> Option<(Time, Timer)> {
    if !f.open {
        return None;
    }
    if !f.overdue {
        if let Some(w) = p
            .warn_before
            .and_then(|w| chrono::Duration::from_std(w).ok())
        {
            let at = f.due_at - w;
            if !f.warned && at > f.created_at {
                return Some((at, Timer::Warn));
            }
        }
        return Some((f.due_at, Timer::Due));
    }
    if f.acknowledged || f.level == Level::Manager {
        return None;
    }
    let since = f.escalated_at.unwrap_or(f.due_at);
    Some((
        since + chrono::Duration::from_std(p.escalate_every).unwrap_or(chrono::Duration::MAX),
        Timer::Climb,
    ))
}

fn what(task: &Task) -> String {
    let who = task
        .name
        .clone()
        .or_else(|| task.number.clone())
        .unwrap_or_default();
    format!(
        "{} task {}{}",
        task.kind.as_str(),
        task.id,
        if who.is_empty() {
            String::new()
        } else {
            format!(" ({who})")
        }
    )
}

/// A timer fired at `now`.
pub fn on_timer(task: &mut Task, timer: Timer, now: Time) -> Vec<Effect> {
    match timer {
        Timer::Warn => {
            task.warned = true;
            vec![Effect::Alert {
                rule: "deadline_soon",
                level: task.level,
                message: format!("{} is due at {}", what(task), task.due_at.to_rfc3339()),
            }]
        }
        Timer::Due => {
            task.overdue = true;
            task.warned = true;
            task.history.push(entry(now, "overdue", None, None));
            let mut effects = vec![Effect::Event("task.overdue")];
            if task.level < Level::Manager && task.acknowledged_at.is_none() {
                task.level = task.level.next();
                task.escalated_at = Some(now);
                task.history.push(entry(
                    now,
                    format!("escalated to {}", task.level.as_str()),
                    None,
                    None,
                ));
                effects.push(Effect::Event("task.escalated"));
            }
            effects.push(Effect::Alert {
                rule: "task_overdue",
                level: task.level,
                message: format!(
                    "{} passed its deadline {}",
                    what(task),
                    task.due_at.to_rfc3339()
                ),
            });
            effects
        }
        Timer::Climb => {
            task.level = task.level.next();
            task.escalated_at = Some(now);
            task.history.push(entry(
                now,
                format!("escalated to {}", task.level.as_str()),
                None,
                None,
            ));
            vec![
                Effect::Event("task.escalated"),
                Effect::Alert {
                    rule: "escalation",
                    level: task.level,
                    message: format!(
                        "{} is still overdue (deadline {}) and unacknowledged: now at {}",
                        what(task),
                        task.due_at.to_rfc3339(),
                        task.level.as_str()
                    ),
                },
            ]
        }
    }
}

#[cfg(test)]
mod tests;
