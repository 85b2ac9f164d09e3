//! The records and events of the interface contract (PRODUCT.md): calls, tasks, events, line state.

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};

pub type Time = DateTime<Utc>;

/// A new unique, time-sortable id: a ULID, 48 bits of the milliseconds of `at`, then 80 random bits, incremented
/// instead within one millisecond so that ids made in order sort in order.
pub fn new_id(at: Time) -> String {
    use std::sync::Mutex;
    static LAST: Mutex<(u64, u128)> = Mutex::new((0, 0));
    let ms = at.timestamp_millis().max(0) as u64;
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    let random = if ms == last.0 && last.1 < (1u128 << 80) - 1 {
        last.1 + 1
    } else {
        let mut b = [0u8; 16];
        let _ = getrandom::fill(&mut b[6..]);
        // The top bit stays clear, so increments within a millisecond cannot overflow 80 bits.
        b[6] &= 0x7f;
        u128::from_be_bytes(b)
    };
    if ms >= last.0 {
        *last = (ms, random);
    }
    ulid::Ulid::from_parts(ms, random).to_string()
}

/// The smallest id of anything made at or after `at` (ids are ULIDs, so they sort by time).
pub fn id_floor(at: Time) -> String {
    let ms = at.timestamp_millis().max(0) as u64;
    ulid::Ulid::from_parts(ms, 0).to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Answered,
    Missed,
    Unknown,
    Interrupted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Missed => "missed",
            Outcome::Unknown => "unknown",
            Outcome::Interrupted => "interrupted",
        }
    }
}

/// Why a call has no number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NumberStatus {
    Known,
    Withheld,
    Unavailable,
    /// No caller ID arrived at all.
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    pub id: String,
    pub line: String,
    pub direction: Direction,
    pub number: Option<String>,
    pub number_status: NumberStatus,
    pub name: Option<String>,
    pub started_at: Time,
    pub answered_at: Option<Time>,
    pub ended_at: Option<Time>,
    pub rings: u32,
    pub wait_s: Option<f64>,
    pub talk_s: Option<f64>,
    pub outcome: Option<Outcome>,
    pub agent: Option<String>,
    /// The same number called within `repeat_window` before.
    #[serde(default)]
    pub repeat: bool,
    /// The caller is on the VIP list.
    #[serde(default)]
    pub vip: bool,
    /// The wall clock was not known to be synchronised when the call was recorded.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clock_unsynced: bool,
    /// Extra text the caller-ID block carried (MESG).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Who answered (an extension, phone or agent id), on lines that tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_by: Option<String>,
    /// Who hung up first, on lines that tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleared_by: Option<ClearedBy>,
}

/// Who hung up first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClearedBy {
    Caller,
    Office,
    Unknown,
}

impl Call {
    /// The one constructor: a call that just began on `line`, nothing known about it yet. Set what is known with
    /// struct update syntax: `Call { number: Some(n), ..Call::new(id, line, Direction::In, at) }`.
    pub fn new(
        id: impl Into<String>,
        line: impl Into<String>,
        direction: Direction,
        started_at: Time,
    ) -> Call {
        Call {
            id: id.into(),
            line: line.into(),
            direction,
            number: None,
            number_status: NumberStatus::None,
            name: None,
            started_at,
            answered_at: None,
            ended_at: None,
            rings: 0,
            wait_s: None,
            talk_s: None,
            outcome: None,
            agent: None,
            repeat: false,
            vip: false,
            clock_unsynced: false,
            message: None,
            answered_by: None,
            cleared_by: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    /// A missed call to return.
    Callback,
    /// A call whose outcome the line could not see, to settle with one click.
    Review,
    /// A customer's complaint (SERVICE-POLICY section 3).
    Complaint,
    /// A follow-up visit (回访) after a resolved complaint, recording a satisfaction score.
    Followup,
    /// A matter handed to another department, to be agreed within `referral_due`.
    Referral,
}

impl TaskKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Callback => "callback",
            TaskKind::Review => "review",
            TaskKind::Complaint => "complaint",
            TaskKind::Followup => "followup",
            TaskKind::Referral => "referral",
        }
    }
}

/// Escalation levels (SERVICE-POLICY section 4), in order.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    #[default]
    Agent,
    ShiftLead,
    Supervisor,
    Manager,
}

impl Level {
    pub fn next(self) -> Level {
        match self {
            Level::Agent => Level::ShiftLead,
            Level::ShiftLead => Level::Supervisor,
            Level::Supervisor | Level::Manager => Level::Manager,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Agent => "agent",
            Level::ShiftLead => "shift_lead",
            Level::Supervisor => "supervisor",
            Level::Manager => "manager",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Normal,
    /// Compensation or beyond the agent: alerts the top level at once.
    Major,
}

/// Where a complaint stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Waiting for the first response (due `complaint_response_due`).
    AwaitingResponse,
    /// Responded with a promised fix time, which is the deadline now.
    InProgress,
    /// Resolved; a follow-up visit is open.
    Resolved,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    Open,
    Done,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Normal,
    High,
    Urgent,
}

impl Priority {
    /// Each further attempt by the same caller raises the priority one step.
    pub fn for_attempts(attempts: u32) -> Priority {
        match attempts {
            0 | 1 => Priority::Normal,
            2 => Priority::High,
            _ => Priority::Urgent,
        }
    }
}

/// One entry of a task's history; entries are only ever appended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskEntry {
    pub at: Time,
    pub action: String,
    pub by: Option<String>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub kind: TaskKind,
    pub state: TaskState,
    pub number: Option<String>,
    pub name: Option<String>,
    pub call_ids: Vec<String>,
    pub attempts: u32,
    pub created_at: Time,
    pub due_at: Time,
    pub assignee: Option<String>,
    pub priority: Priority,
    pub note: Option<String>,
    pub overdue: bool,
    pub closed_at: Option<Time>,
    pub closed_by: Option<String>,
    pub history: Vec<TaskEntry>,
    /// Escalation level reached (agent until a deadline is missed).
    #[serde(default)]
    pub level: Level,
    #[serde(default)]
    pub escalated_at: Option<Time>,
    #[serde(default)]
    pub acknowledged_at: Option<Time>,
    #[serde(default)]
    pub acknowledged_by: Option<String>,
    /// A warning `warn_before` the deadline was sent for the current deadline.
    #[serde(default)]
    pub warned: bool,
    /// Complaints: how serious, and where it stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The agent who took the call the task came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_response_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promised_fix_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Time>,
    /// A matter the supervisor can decide: due within `supervisor_decision_due`, never after the business day.
    #[serde(default)]
    pub supervisor_decision: bool,
    /// Follow-ups: the score 1-5; referrals: the department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub satisfaction: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// Follow-ups and referrals: the complaint they belong to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    #[serde(default)]
    pub reopened: u32,
    /// The caller is on the VIP list.
    #[serde(default)]
    pub vip: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    SignedOut,
    Available,
    Away,
    OnCall,
}

/// An agent's live state (`P/agent/{id}/state`, retained).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentState {
    pub agent: String,
    pub name: String,
    pub state: AgentStatus,
    pub since: Time,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sign_in: Option<Time>,
}

/// A sign-in, kept for the reports: the first one after a shift has started is late (SERVICE-POLICY §5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignIn {
    pub agent: String,
    pub at: Time,
    pub shift: Option<String>,
    pub late: bool,
}

/// What an event is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Subject {
    Call {
        call: Call,
    },
    Task {
        task: Box<Task>,
    },
    Alert {
        alert: Alert,
    },
    Agent {
        agent: AgentState,
    },
    /// A report was made: its kind, label, period and site figures (the whole report is retained on
    /// `P/report/{kind}` and served by the API).
    Report {
        report: serde_json::Value,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// `line_down`, `line_up`, `task_overdue`
    pub rule: String,
    pub level: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<Time>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event_id: String,
    pub seq: u64,
    #[serde(rename = "type")]
    pub kind: String,
    pub at: DateTime<FixedOffset>,
    #[serde(flatten)]
    pub subject: Subject,
}

impl Event {
    /// The topic below `P/` this event goes to.
    pub fn topic_suffix(&self) -> &'static str {
        match self.subject {
            Subject::Call { .. } => "events/call",
            Subject::Task { .. } => "events/task",
            Subject::Alert { .. } => "alert",
            Subject::Agent { .. } => "events/agent",
            Subject::Report { .. } => "events/report",
        }
    }

    /// The event with every phone number masked, for MQTT.
    pub fn masked(&self) -> Event {
        let mut e = self.clone();
        match &mut e.subject {
            Subject::Call { call } => call.number = call.number.as_deref().map(mask_number),
            Subject::Task { task } => task.number = task.number.as_deref().map(mask_number),
            Subject::Alert { .. } | Subject::Agent { .. } | Subject::Report { .. } => {}
        }
        e
    }
}

/// Masks a phone number for publication: `13800138000` -> `138****8000`. Keeps the first three and last four
/// characters of numbers of 9 or more; shorter numbers keep only their last two.
pub fn mask_number(n: &str) -> String {
    let chars: Vec<char> = n.chars().collect();
    let len = chars.len();
    if len >= 9 {
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[len - 4..].iter().collect();
        format!("{head}****{tail}")
    } else if len > 2 {
        let tail: String = chars[len - 2..].iter().collect();
        format!("{}{tail}", "*".repeat(len - 2))
    } else {
        "*".repeat(len)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineStatus {
    Idle,
    Ringing,
    Offhook,
    Down,
}

/// Retained per-line state (`P/line/{line}/state`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineState {
    pub line: String,
    pub state: LineStatus,
    pub since: Time,
    pub call_id: Option<String>,
    pub number: Option<String>,
    pub name: Option<String>,
    pub rings: u32,
    /// Why the line is down, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl LineState {
    pub fn masked(&self) -> LineState {
        let mut s = self.clone();
        s.number = s.number.as_deref().map(mask_number);
        s
    }
}

/// Retained queue summary (`P/queue`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueSummary {
    pub ringing: u32,
    pub talking: u32,
    pub open_tasks: u64,
    pub overdue_tasks: u64,
    /// Agents are not tracked by this version (they come with desk-phone keys): always null.
    pub agents_available: Option<u32>,
    pub date: String,
    pub offered: u64,
    pub answered: u64,
    pub missed: u64,
    pub unknown: u64,
    /// Answered within `answer_target` / calls whose outcome is known; null when none is known.
    pub service_level_pct: Option<f64>,
    /// Mean wait of answered calls; null when none was answered.
    pub asa_s: Option<f64>,
}

pub fn rfc3339_local(t: Time, tz: chrono_tz::Tz) -> DateTime<FixedOffset> {
    use chrono::Offset;
    let local = t.with_timezone(&tz);
    local.with_timezone(&local.offset().fix())
}

/// Who may do what, lowest first: a viewer reads; an agent works calls and tasks; a supervisor manages tasks, the
/// directory and reports; an admin configures the box, its users and tokens. Web users and API tokens both have one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Agent,
    Supervisor,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Agent, Role::Supervisor, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_like_the_contract() {
        assert_eq!(mask_number("13800138000"), "138****8000");
        assert_eq!(mask_number("+8613800138000"), "+86****8000");
        assert_eq!(mask_number("075512345678"), "075****5678");
        assert_eq!(mask_number("12345"), "***45");
        assert_eq!(mask_number("12"), "**");
        assert_eq!(mask_number(""), "");
    }

    #[test]
    fn ids_sort_by_time_and_are_unique() {
        // Far in the future, so ids that other tests make meanwhile (paused clocks run hours ahead) are older.
        let t0 = chrono::TimeZone::with_ymd_and_hms(&Utc, 2100, 1, 1, 0, 0, 0).unwrap();
        let a = new_id(t0);
        let b = new_id(t0);
        let c = new_id(t0 + chrono::Duration::milliseconds(5));
        assert!(a < b && b < c, "{a} {b} {c}");
        assert!(id_floor(t0) <= a);
        assert!(id_floor(t0 + chrono::Duration::milliseconds(5)) > b);
    }

    #[test]
    fn priority_climbs_with_attempts() {
        assert_eq!(Priority::for_attempts(1), Priority::Normal);
        assert_eq!(Priority::for_attempts(2), Priority::High);
        assert_eq!(Priority::for_attempts(7), Priority::Urgent);
    }
}
