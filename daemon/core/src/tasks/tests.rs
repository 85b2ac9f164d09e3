use super::*;
use crate::model::NumberStatus;
use chrono::{TimeZone, Utc};

fn t0() -> Time {
    Utc.with_ymd_and_hms(2026, 11, 24, 1, 0, 0).unwrap() // 09:00 in Shanghai
}
fn hours(n: i64) -> chrono::Duration {
    chrono::Duration::hours(n)
}
const CLOCK: WallClock = WallClock(chrono_tz::Asia::Shanghai);

fn call(outcome: Outcome, number: Option<&str>) -> Call {
    let t = t0();
    Call {
        number: number.map(str::to_string),
        number_status: if number.is_some() {
            NumberStatus::Known
        } else {
            NumberStatus::Withheld
        },
        name: Some("LI NA".into()),
        ended_at: Some(t),
        rings: 2,
        wait_s: Some(5.0),
        outcome: Some(outcome),
        agent: Some("alice".into()),
        ..Call::new(new_id(t), "line1", Direction::In, t)
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
    let now = t0();
    let due = now + hours(24);
    let mut t = new_task(
        &call(Outcome::Unknown, Some("1")),
        TaskKind::Review,
        due,
        now,
    );
    assert_eq!((t.attempts, t.priority), (1, Priority::Normal));
    add_attempt(
        &mut t,
        &call(Outcome::Missed, Some("1")),
        TaskKind::Callback,
        now + hours(1),
    );
    assert_eq!(
        (t.attempts, t.priority, t.kind),
        (2, Priority::High, TaskKind::Callback)
    );
    add_attempt(
        &mut t,
        &call(Outcome::Missed, Some("1")),
        TaskKind::Callback,
        now + hours(2),
    );
    assert_eq!((t.attempts, t.priority), (3, Priority::Urgent));
    assert_eq!(t.due_at, due);
    assert_eq!(t.call_ids.len(), 3);
    assert_eq!(t.history.len(), 3);
}

#[test]
fn done_once_with_who_and_note() {
    let p = TaskPolicy::default();
    let now = t0();
    let mut t = new_task(
        &call(Outcome::Missed, Some("1")),
        TaskKind::Callback,
        now,
        now,
    );
    let done = TaskAction::Done {
        by: Some("alice".into()),
        note: Some("called back".into()),
    };
    assert_eq!(
        apply(&mut t, done.clone(), &p, &CLOCK, now).unwrap(),
        vec![Effect::Event("task.done")]
    );
    assert_eq!(t.state, TaskState::Done);
    assert_eq!(t.closed_by.as_deref(), Some("alice"));
    let err = apply(&mut t, done, &p, &CLOCK, now).unwrap_err();
    assert_eq!(err.to_string(), format!("task {} is already done", t.id));
    assert_eq!(t.history.last().unwrap().action, "done");
}

/// A complaint's whole life on the wall clock, every deadline worked out by hand.
#[test]
fn complaint_life_respond_resolve_followup_low_score_reopens() {
    let p = TaskPolicy::default();
    let now = t0();
    let c = call(Outcome::Answered, Some("13912345678"));
    let req = ComplaintRequest {
        note: Some("parcel broken".into()),
        ..Default::default()
    };
    let mut t = new_complaint(&req, Some(&c), &p, &CLOCK, now);
    assert_eq!(t.kind, TaskKind::Complaint);
    assert_eq!(t.due_at, now + hours(24), "first response within 24h");
    assert_eq!(t.stage, Some(Stage::AwaitingResponse));
    assert_eq!(t.agent.as_deref(), Some("alice"));
    // done does not apply to complaints
    let e = apply(
        &mut t,
        TaskAction::Done {
            by: None,
            note: None,
        },
        &p,
        &CLOCK,
        now,
    )
    .unwrap_err();
    assert!(e.to_string().contains("resolve it"), "{e}");
    // respond after 3h, promising a fix in 48h: that is the next deadline
    let r = TaskAction::Respond {
        by: Some("bob".into()),
        note: None,
        promised_fix: "48h".into(),
    };
    apply(&mut t, r, &p, &CLOCK, now + hours(3)).unwrap();
    assert_eq!(t.first_response_at, Some(now + hours(3)));
    assert_eq!(t.due_at, now + hours(51));
    assert_eq!(t.stage, Some(Stage::InProgress));
    // resolve after 20h: done, and a follow-up due 24h later
    let fx = apply(
        &mut t,
        TaskAction::Resolve {
            by: Some("bob".into()),
            note: None,
        },
        &p,
        &CLOCK,
        now + hours(23),
    )
    .unwrap();
    assert_eq!(t.state, TaskState::Done);
    let Effect::Open(mut f) = fx[1].clone() else {
        panic!("{fx:?}")
    };
    assert_eq!(
        (f.kind, f.due_at, f.parent_id.as_deref()),
        (TaskKind::Followup, now + hours(47), Some(t.id.as_str()))
    );
    // the follow-up scores 2 (< 3): the complaint reopens, due within 1h, with an alert
    let bad = TaskAction::FollowupResult {
        by: None,
        score: 9,
        note: None,
    };
    assert!(apply(&mut f, bad, &p, &CLOCK, now + hours(30)).is_err());
    let fx = apply(
        &mut f,
        TaskAction::FollowupResult {
            by: None,
            score: 2,
            note: None,
        },
        &p,
        &CLOCK,
        now + hours(30),
    )
    .unwrap();
    assert_eq!(
        fx[1],
        Effect::Reopen {
            id: t.id.clone(),
            score: 2
        }
    );
    let fx = reopen(&mut t, 2, &p, &CLOCK, now + hours(30));
    assert_eq!(t.state, TaskState::Open);
    assert_eq!(t.due_at, now + hours(31));
    assert_eq!(t.reopened, 1);
    assert!(matches!(
        fx[1],
        Effect::Alert {
            rule: "complaint_reopened",
            ..
        }
    ));
}

#[test]
fn a_good_followup_score_does_not_reopen() {
    let p = TaskPolicy::default();
    let mut f = blank(TaskKind::Followup, t0(), t0());
    f.parent_id = Some("C".into());
    let fx = apply(
        &mut f,
        TaskAction::FollowupResult {
            by: None,
            score: 3,
            note: None,
        },
        &p,
        &CLOCK,
        t0(),
    )
    .unwrap();
    assert_eq!(fx, vec![Effect::Event("task.done")]);
    assert_eq!(f.satisfaction, Some(3));
}

#[test]
fn major_complaint_goes_to_the_top_at_once() {
    let p = TaskPolicy::default();
    let req = ComplaintRequest {
        severity: Severity::Major,
        ..Default::default()
    };
    let t = new_complaint(&req, None, &p, &CLOCK, t0());
    assert_eq!(t.level, Level::Manager);
    assert_eq!(t.priority, Priority::Urgent);
}

#[test]
fn supervisor_decision_is_due_in_an_hour_but_never_past_the_business_day() {
    let p = TaskPolicy::default();
    let mut t = new_complaint(&ComplaintRequest::default(), None, &p, &CLOCK, t0());
    apply(
        &mut t,
        TaskAction::SupervisorDecision {
            by: None,
            note: None,
        },
        &p,
        &CLOCK,
        t0(),
    )
    .unwrap();
    assert_eq!(t.due_at, t0() + hours(1));
    // at 23:30 local the day ends at midnight: due in 30 minutes
    let late = Utc.with_ymd_and_hms(2026, 11, 24, 15, 30, 0).unwrap();
    let mut t = new_complaint(&ComplaintRequest::default(), None, &p, &CLOCK, late);
    apply(
        &mut t,
        TaskAction::SupervisorDecision {
            by: None,
            note: None,
        },
        &p,
        &CLOCK,
        late,
    )
    .unwrap();
    assert_eq!(
        t.due_at,
        Utc.with_ymd_and_hms(2026, 11, 24, 16, 0, 0).unwrap()
    );
}

#[test]
fn referral_opens_a_task_due_in_an_hour_that_climbs_on_breach() {
    let p = TaskPolicy {
        warn_before: None,
        ..Default::default()
    };
    let mut c = new_complaint(&ComplaintRequest::default(), None, &p, &CLOCK, t0());
    let fx = apply(
        &mut c,
        TaskAction::Refer {
            department: "logistics".into(),
            by: None,
            note: None,
        },
        &p,
        &CLOCK,
        t0(),
    )
    .unwrap();
    let Effect::Open(mut r) = fx[1].clone() else {
        panic!()
    };
    assert_eq!((r.kind, r.due_at), (TaskKind::Referral, t0() + hours(1)));
    assert_eq!(next_timer(&r, &p), Some((t0() + hours(1), Timer::Due)));
    let fx = on_timer(&mut r, Timer::Due, t0() + hours(1));
    assert_eq!(fx[0], Effect::Event("task.overdue"));
    assert_eq!(fx[1], Effect::Event("task.escalated"));
    assert_eq!(r.level, Level::ShiftLead);
}

#[test]
fn escalation_warns_then_climbs_every_hour_until_acknowledged() {
    let p = TaskPolicy::default(); // warn 2h before, climb every 1h
    let now = t0();
    let mut t = new_task(
        &call(Outcome::Missed, Some("1")),
        TaskKind::Callback,
        now + hours(24),
        now,
    );
    assert_eq!(next_timer(&t, &p), Some((now + hours(22), Timer::Warn)));
    let fx = on_timer(&mut t, Timer::Warn, now + hours(22));
    assert!(matches!(
        &fx[0],
        Effect::Alert {
            rule: "deadline_soon",
            level: Level::Agent,
            ..
        }
    ));
    assert_eq!(next_timer(&t, &p), Some((now + hours(24), Timer::Due)));
    on_timer(&mut t, Timer::Due, now + hours(24));
    assert_eq!((t.overdue, t.level), (true, Level::ShiftLead));
    assert_eq!(next_timer(&t, &p), Some((now + hours(25), Timer::Climb)));
    on_timer(&mut t, Timer::Climb, now + hours(25));
    assert_eq!(t.level, Level::Supervisor);
    apply(
        &mut t,
        TaskAction::Ack {
            by: Some("lead".into()),
            note: None,
        },
        &p,
        &CLOCK,
        now + hours(25),
    )
    .unwrap();
    assert_eq!(next_timer(&t, &p), None, "acknowledged: no more climbing");
    assert!(apply(
        &mut t,
        TaskAction::Ack {
            by: None,
            note: None
        },
        &p,
        &CLOCK,
        now + hours(26)
    )
    .is_err());
    // unacknowledged, it stops at the top
    let mut u = new_task(
        &call(Outcome::Missed, Some("2")),
        TaskKind::Callback,
        now,
        now,
    );
    on_timer(&mut u, Timer::Due, now);
    on_timer(&mut u, Timer::Climb, now + hours(1));
    on_timer(&mut u, Timer::Climb, now + hours(2));
    assert_eq!(u.level, Level::Manager);
    assert_eq!(next_timer(&u, &p), None);
}

#[test]
fn no_warning_when_the_deadline_is_closer_than_warn_before() {
    let p = TaskPolicy::default();
    let now = t0();
    let t = blank(TaskKind::Referral, now + hours(1), now);
    assert_eq!(next_timer(&t, &p), Some((now + hours(1), Timer::Due)));
}

#[test]
fn actions_check_kind_and_input() {
    let p = TaskPolicy::default();
    let mut cb = new_task(
        &call(Outcome::Missed, Some("1")),
        TaskKind::Callback,
        t0(),
        t0(),
    );
    for a in [
        TaskAction::Resolve {
            by: None,
            note: None,
        },
        TaskAction::Respond {
            by: None,
            note: None,
            promised_fix: "1h".into(),
        },
        TaskAction::Refer {
            department: "x".into(),
            by: None,
            note: None,
        },
        TaskAction::FollowupResult {
            by: None,
            score: 5,
            note: None,
        },
    ] {
        let e = apply(&mut cb, a, &p, &CLOCK, t0()).unwrap_err();
        assert!(matches!(e, ActionError::WrongKind { .. }), "{e}");
    }
    assert!(apply(
        &mut cb,
        TaskAction::Assign {
            to: " ".into(),
            by: None
        },
        &p,
        &CLOCK,
        t0()
    )
    .is_err());
    apply(
        &mut cb,
        TaskAction::Assign {
            to: "carol".into(),
            by: None,
        },
        &p,
        &CLOCK,
        t0(),
    )
    .unwrap();
    assert_eq!(cb.assignee.as_deref(), Some("carol"));
    let mut c = new_complaint(&ComplaintRequest::default(), None, &p, &CLOCK, t0());
    let e = apply(
        &mut c,
        TaskAction::Respond {
            by: None,
            note: None,
            promised_fix: "soon".into(),
        },
        &p,
        &CLOCK,
        t0(),
    );
    assert!(e.unwrap_err().to_string().contains("soon"));
    let past = TaskAction::Respond {
        by: None,
        note: None,
        promised_fix: "2020-01-01T00:00:00Z".into(),
    };
    assert!(apply(&mut c, past, &p, &CLOCK, t0()).is_err());
    assert_eq!(
        c.stage,
        Some(Stage::AwaitingResponse),
        "a refused action changes nothing"
    );
}

#[test]
fn business_deadlines_count_open_hours_only() {
    use crate::calendar::{BusinessCalendar, HoursConfig};
    let tz = chrono_tz::Asia::Shanghai;
    let cal =
        BusinessCalendar::new(tz, Some(&HoursConfig::mon_to_fri("09:00-18:00")), &[]).unwrap();
    // Friday 2026-11-27 17:00 local = 09:00 UTC; 24h of open time = Friday 1h + Mon 9h + Tue 9h + Wed 5h
    let fri = Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap();
    let business = Deadlines {
        calendar: cal.clone(),
        business: true,
    };
    assert_eq!(
        business.after(fri, Duration::from_secs(24 * 3600)),
        Utc.with_ymd_and_hms(2026, 12, 2, 6, 0, 0).unwrap(),
        "Wednesday 14:00 local"
    );
    let wall = Deadlines {
        calendar: cal,
        business: false,
    };
    assert_eq!(wall.after(fri, Duration::from_secs(3600)), fri + hours(1));
    // the business day ends at closing time, 18:00 local = 10:00 UTC
    assert_eq!(
        wall.end_of_business_day(fri),
        Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap()
    );
    // a missed call after hours, business clock: due 24 open hours after Monday's opening
    let sat = Utc.with_ymd_and_hms(2026, 11, 28, 3, 0, 0).unwrap();
    assert_eq!(
        business.after(sat, Duration::from_secs(9 * 3600)),
        Utc.with_ymd_and_hms(2026, 11, 30, 10, 0, 0).unwrap(),
        "Monday 18:00 local"
    );
}

#[test]
fn actions_parse_from_json() {
    let a: TaskAction =
        serde_json::from_str(r#"{"action":"respond","promised_fix":"48h","by":"bob"}"#).unwrap();
    assert_eq!(a.name(), "respond");
    assert!(serde_json::from_str::<TaskAction>(r#"{"action":"explode"}"#).is_err());
    assert!(serde_json::from_str::<TaskAction>(r#"{"action":"done","extra":1}"#).is_err());
}
