//! Callback tasks (SERVICE-POLICY section 2), as pure functions over records: what a finished call opens or
//! updates, and how a task is closed. The engine keeps the indexes and the store; this module only decides.

use crate::config::UnknownOutcome;
use crate::model::{
    new_id, Call, Direction, Outcome, Priority, Task, TaskEntry, TaskKind, TaskState, Time,
};

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

pub fn new_task(call: &Call, kind: TaskKind, due_at: Time, now: Time) -> Task {
    let action = match kind {
        TaskKind::Callback => "opened: missed call",
        TaskKind::Review => "opened: call outcome unknown, please review",
    };
    Task {
        id: new_id(now),
        kind,
        state: TaskState::Open,
        number: call.number.clone(),
        name: call.name.clone(),
        call_ids: vec![call.id.clone()],
        attempts: 1,
        created_at: now,
        due_at,
        assignee: None,
        priority: Priority::Normal,
        note: None,
        overdue: false,
        closed_at: None,
        closed_by: None,
        history: vec![TaskEntry {
            at: now,
            action: action.into(),
            by: None,
            note: None,
        }],
    }
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
    task.history.push(TaskEntry {
        at: now,
        action,
        by: None,
        note: None,
    });
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("no task with id {0}")]
    NotFound(String),
    #[error("task {id} is already {state}")]
    NotOpen { id: String, state: String },
    #[error("the store could not record the change: {0}")]
    Store(String),
    #[error("the daemon is shutting down")]
    ShuttingDown,
}

pub fn close(
    task: &mut Task,
    by: Option<String>,
    note: Option<String>,
    now: Time,
) -> Result<(), ActionError> {
    if task.state != TaskState::Open {
        return Err(ActionError::NotOpen {
            id: task.id.clone(),
            state: serde_json::to_value(task.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        });
    }
    task.state = TaskState::Done;
    task.closed_at = Some(now);
    task.closed_by = by.clone();
    if note.is_some() {
        task.note = note.clone();
    }
    task.history.push(TaskEntry {
        at: now,
        action: "done".into(),
        by,
        note,
    });
    Ok(())
}

pub fn mark_overdue(task: &mut Task, now: Time) {
    task.overdue = true;
    task.history.push(TaskEntry {
        at: now,
        action: "overdue".into(),
        by: None,
        note: None,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NumberStatus;
    use chrono::{TimeZone, Utc};

    fn call(outcome: Outcome, number: Option<&str>) -> Call {
        let t = Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap();
        Call {
            id: new_id(t),
            line: "line1".into(),
            direction: Direction::In,
            number: number.map(str::to_string),
            number_status: if number.is_some() {
                NumberStatus::Known
            } else {
                NumberStatus::Withheld
            },
            name: None,
            started_at: t,
            answered_at: None,
            ended_at: Some(t),
            rings: 2,
            wait_s: Some(5.0),
            talk_s: None,
            outcome: Some(outcome),
            agent: None,
            message: None,
        }
    }

    #[test]
    fn which_calls_open_tasks() {
        use UnknownOutcome::*;
        let n = Some("13800138000");
        assert_eq!(
            kind_for(&call(Outcome::Missed, n), Review),
            Some(TaskKind::Callback)
        );
        assert_eq!(
            kind_for(&call(Outcome::Unknown, n), Review),
            Some(TaskKind::Review)
        );
        assert_eq!(
            kind_for(&call(Outcome::Unknown, n), Callback),
            Some(TaskKind::Callback)
        );
        assert_eq!(kind_for(&call(Outcome::Unknown, n), Ignore), None);
        assert_eq!(kind_for(&call(Outcome::Answered, n), Review), None);
        assert_eq!(kind_for(&call(Outcome::Interrupted, n), Review), None);
        assert_eq!(
            kind_for(&call(Outcome::Missed, None), Review),
            None,
            "withheld: nothing to call back"
        );
        let mut out = call(Outcome::Missed, n);
        out.direction = Direction::Out;
        assert_eq!(kind_for(&out, Review), None);
    }

    #[test]
    fn repeat_caller_adds_attempts_and_priority_keeps_deadline() {
        let now = Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap();
        let due = now + chrono::Duration::hours(24);
        let c1 = call(Outcome::Unknown, Some("1"));
        let mut t = new_task(&c1, TaskKind::Review, due, now);
        assert_eq!((t.attempts, t.priority), (1, Priority::Normal));
        let c2 = call(Outcome::Missed, Some("1"));
        add_attempt(
            &mut t,
            &c2,
            TaskKind::Callback,
            now + chrono::Duration::hours(1),
        );
        assert_eq!(
            (t.attempts, t.priority, t.kind),
            (2, Priority::High, TaskKind::Callback)
        );
        let c3 = call(Outcome::Missed, Some("1"));
        add_attempt(
            &mut t,
            &c3,
            TaskKind::Callback,
            now + chrono::Duration::hours(2),
        );
        assert_eq!((t.attempts, t.priority), (3, Priority::Urgent));
        assert_eq!(t.due_at, due);
        assert_eq!(t.call_ids.len(), 3);
        assert_eq!(t.history.len(), 3);
    }

    #[test]
    fn close_once_with_who_and_note() {
        let now = Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap();
        let mut t = new_task(
            &call(Outcome::Missed, Some("1")),
            TaskKind::Callback,
            now,
            now,
        );
        close(
            &mut t,
            Some("alice".into()),
            Some("called back".into()),
            now,
        )
        .unwrap();
        assert_eq!(t.state, TaskState::Done);
        assert_eq!(t.closed_by.as_deref(), Some("alice"));
        let err = close(&mut t, None, None, now).unwrap_err();
        assert_eq!(err.to_string(), format!("task {} is already done", t.id));
        assert_eq!(t.history.last().unwrap().action, "done");
    }
}
