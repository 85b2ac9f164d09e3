use super::*;
use chrono::TimeZone;

struct Clock {
    wall0: Time,
    mono0: Mono,
}
impl Clock {
    fn new() -> Self {
        Clock {
            wall0: chrono::Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap(),
            mono0: Mono::ZERO,
        }
    }
    fn at(&self, ms: u64) -> Now {
        Now {
            wall: self.wall0 + chrono::Duration::milliseconds(ms as i64),
            mono: self.mono0 + Duration::from_millis(ms),
        }
    }
}

fn up(answer_detect: bool, c: &Clock) -> CallTracker {
    let mut t = CallTracker::new("line1", answer_detect, Duration::from_secs(7), c.at(0).wall);
    assert!(t
        .on_input(LineInput::LinkUp { detail: None }, c.at(0))
        .is_empty());
    assert_eq!(t.state().state, LineStatus::Idle);
    t
}

fn kinds(v: &[CallTransition]) -> Vec<CallEventKind> {
    v.iter().map(|t| t.kind).collect()
}

fn known(n: &str) -> LineInput {
    LineInput::Number(CallerNumber::Known(n.into()))
}

#[test]
fn us_style_cid_between_rings_then_missed() {
    let c = Clock::new();
    let mut t = up(true, &c);
    assert!(t
        .on_input(LineInput::Ring { label: None }, c.at(1000))
        .is_empty());
    assert_eq!(t.state().state, LineStatus::Ringing);
    assert!(t.on_input(known("13800138000"), c.at(2500)).is_empty());
    let r = t.on_input(LineInput::Name("ZHANG WEI".into()), c.at(2510));
    assert_eq!(kinds(&r), vec![CallEventKind::Ringing]);
    assert_eq!(r[0].call.number.as_deref(), Some("13800138000"));
    assert_eq!(r[0].call.name.as_deref(), Some("ZHANG WEI"));
    assert_eq!(r[0].call.rings, 1);
    // second ring does not announce twice
    assert!(t
        .on_input(LineInput::Ring { label: None }, c.at(6000))
        .is_empty());
    assert_eq!(t.deadline(), Some(c.at(13000).mono));
    assert!(t.on_timer(c.at(12999)).is_empty());
    let e = t.on_timer(c.at(13000));
    assert_eq!(kinds(&e), vec![CallEventKind::Ended]);
    let call = &e[0].call;
    assert_eq!(call.outcome, Some(Outcome::Missed));
    assert_eq!(call.rings, 2);
    assert_eq!(call.wait_s, Some(5.0));
    assert_eq!(t.state().state, LineStatus::Idle);
    assert_eq!(t.deadline(), None);
}

#[test]
fn another_callers_number_while_ringing_starts_a_new_call() {
    let c = Clock::new();
    let mut t = up(true, &c);
    t.on_input(LineInput::Ring { label: None }, c.at(0));
    t.on_input(known("13800000001"), c.at(1000));
    let first = t.on_input(LineInput::Name("A".into()), c.at(1001));
    assert_eq!(kinds(&first), vec![CallEventKind::Ringing]);
    // The same caller ID again (some exchanges repeat it) is the same call.
    assert!(t.on_input(known("13800000001"), c.at(5000)).is_empty());
    // The first caller gave up and a second one rings before the 7 s ring timeout.
    t.on_input(LineInput::Ring { label: None }, c.at(6000));
    let r = t.on_input(known("13900000002"), c.at(7000));
    assert_eq!(kinds(&r), vec![CallEventKind::Ended]);
    assert_eq!(r[0].call.number.as_deref(), Some("13800000001"));
    assert_eq!(r[0].call.outcome, Some(Outcome::Missed));
    let second = t.on_input(LineInput::Name("B".into()), c.at(7001));
    assert_eq!(kinds(&second), vec![CallEventKind::Ringing]);
    assert_ne!(second[0].call.id, first[0].call.id);
    assert_eq!(second[0].call.number.as_deref(), Some("13900000002"));
    assert_eq!(second[0].call.name.as_deref(), Some("B"));
    let a = t.on_input(LineInput::OffHook, c.at(9000));
    assert_eq!(a[0].call.id, second[0].call.id);
    assert_eq!(
        a[0].call.wait_s,
        Some(2.0),
        "the second call waited from its caller ID"
    );
}

#[test]
fn call_waiting_caller_id_leaves_the_answered_call_as_it_is() {
    let c = Clock::new();
    let mut t = up(true, &c);
    t.on_input(LineInput::Ring { label: None }, c.at(0));
    t.on_input(known("13800000001"), c.at(1000));
    t.on_input(LineInput::Name("A".into()), c.at(1001));
    t.on_input(LineInput::OffHook, c.at(3000));
    assert!(t.on_input(known("13900000002"), c.at(20000)).is_empty());
    assert!(t
        .on_input(LineInput::Name("B".into()), c.at(20001))
        .is_empty());
    let e = t.on_input(LineInput::OnHook, c.at(60000));
    assert_eq!(e[0].call.number.as_deref(), Some("13800000001"));
    assert_eq!(e[0].call.name.as_deref(), Some("A"));
    assert_eq!(e[0].call.outcome, Some(Outcome::Answered));
}

fn offered(call: &str, number: &str) -> LineInput {
    LineInput::Offered {
        call: call.into(),
        direction: Direction::In,
        number: CallerNumber::Known(number.into()),
        name: Some("CALLER".into()),
    }
}

fn answered(call: &str, by: &str) -> LineInput {
    LineInput::Answered {
        call: call.into(),
        by: Some(by.into()),
    }
}

fn ended(call: &str, by: ClearedBy) -> LineInput {
    LineInput::Ended {
        call: call.into(),
        cleared_by: by,
    }
}

/// A scripted line that knows: answered at an extension, who hung up first, talk and wait times.
#[test]
fn a_line_that_knows_reports_who_answered_and_who_cleared() {
    let c = Clock::new();
    let mut t = up(false, &c);
    let r = t.on_input(offered("sip-1", "13800000001"), c.at(0));
    assert_eq!(kinds(&r), vec![CallEventKind::Ringing]);
    assert_eq!(r[0].call.name.as_deref(), Some("CALLER"));
    assert_eq!(t.deadline(), None, "the line tells when it ends: no timer");
    let a = t.on_input(answered("sip-1", "201"), c.at(4000));
    assert_eq!(kinds(&a), vec![CallEventKind::Answered]);
    assert_eq!(a[0].call.answered_by.as_deref(), Some("201"));
    assert_eq!(a[0].call.wait_s, Some(4.0));
    let e = t.on_input(ended("sip-1", ClearedBy::Office), c.at(64000));
    let call = &e[0].call;
    assert_eq!(
        call.outcome,
        Some(Outcome::Answered),
        "answer_detect is for modems only"
    );
    assert_eq!(
        (call.talk_s, call.cleared_by),
        (Some(60.0), Some(ClearedBy::Office))
    );
    assert_eq!(t.state().state, LineStatus::Idle);
}

#[test]
fn a_call_that_ends_unanswered_on_a_line_that_knows_is_missed() {
    let c = Clock::new();
    let mut t = up(false, &c);
    t.on_input(offered("b-7", "13800000001"), c.at(0));
    let e = t.on_input(ended("b-7", ClearedBy::Caller), c.at(9000));
    let call = &e[0].call;
    assert_eq!(call.outcome, Some(Outcome::Missed));
    assert_eq!(
        (call.wait_s, call.cleared_by),
        (Some(9.0), Some(ClearedBy::Caller))
    );
}

/// Two calls at once on one line (a SIP trunk, or call waiting on a line that knows): each keeps its own
/// record; the line shows the one still ringing.
#[test]
fn two_concurrent_calls_on_one_line_keep_their_own_records() {
    let c = Clock::new();
    let mut t = up(false, &c);
    let first = t.on_input(offered("a", "13800000001"), c.at(0));
    t.on_input(answered("a", "201"), c.at(2000));
    assert_eq!(t.state().state, LineStatus::Offhook);
    let second = t.on_input(offered("b", "13900000002"), c.at(10000));
    assert_ne!(first[0].call.id, second[0].call.id);
    let s = t.state();
    assert_eq!(
        (s.state, s.number.as_deref()),
        (LineStatus::Ringing, Some("13900000002"))
    );
    assert!(
        t.on_input(offered("b", "13900000002"), c.at(10001))
            .is_empty(),
        "a repeated offer is the same call"
    );
    assert!(
        t.on_input(answered("zzz", "202"), c.at(11000)).is_empty(),
        "an unknown call is ignored"
    );
    let b = t.on_input(ended("b", ClearedBy::Caller), c.at(15000));
    assert_eq!(
        (b[0].call.id.as_str(), b[0].call.outcome),
        (second[0].call.id.as_str(), Some(Outcome::Missed))
    );
    assert_eq!(
        t.state().state,
        LineStatus::Offhook,
        "the first call is still up"
    );
    let a = t.on_input(ended("a", ClearedBy::Caller), c.at(30000));
    assert_eq!(
        (a[0].call.outcome, a[0].call.talk_s),
        (Some(Outcome::Answered), Some(28.0))
    );
    assert_eq!(t.state().state, LineStatus::Idle);
}

#[test]
fn calls_per_line_are_bounded_and_a_lost_link_ends_them_all() {
    let c = Clock::new();
    let mut t = up(false, &c);
    for i in 0..MAX_CALLS + 5 {
        t.on_input(offered(&format!("c{i}"), "13800000001"), c.at(i as u64));
    }
    t.on_input(answered("c0", "201"), c.at(100));
    let e = t.on_input(
        LineInput::LinkDown {
            reason: "unplugged".into(),
        },
        c.at(200),
    );
    assert_eq!(e.len(), MAX_CALLS, "offers beyond the cap are not tracked");
    assert_eq!(e[0].call.outcome, Some(Outcome::Answered));
    assert!(e[1..]
        .iter()
        .all(|t| t.call.outcome == Some(Outcome::Unknown)));
    assert_eq!(t.state().state, LineStatus::Down);
}

#[test]
fn plain_modem_ends_unknown() {
    let c = Clock::new();
    let mut t = up(false, &c);
    t.on_input(LineInput::Ring { label: None }, c.at(0));
    let r = t.on_input(LineInput::Ring { label: None }, c.at(5000));
    assert_eq!(
        kinds(&r),
        vec![CallEventKind::Ringing],
        "no CID: announced at ring 2"
    );
    assert_eq!(r[0].call.number_status, NumberStatus::None);
    let e = t.on_timer(c.at(12000));
    assert_eq!(e[0].call.outcome, Some(Outcome::Unknown));
}

#[test]
fn cid_before_first_ring_and_number_without_name_settles() {
    let c = Clock::new();
    let mut t = up(true, &c);
    assert!(t.on_input(known("075512345678"), c.at(0)).is_empty());
    assert_eq!(t.deadline(), Some(c.at(300).mono));
    let r = t.on_timer(c.at(300));
    assert_eq!(kinds(&r), vec![CallEventKind::Ringing]);
    assert_eq!(r[0].call.rings, 0);
    assert!(t
        .on_input(LineInput::Ring { label: None }, c.at(800))
        .is_empty());
    assert_eq!(t.state().rings, 1);
}

#[test]
fn cid_first_then_ring_announces_at_ring() {
    let c = Clock::new();
    let mut t = up(true, &c);
    t.on_input(known("10086"), c.at(0));
    let r = t.on_input(
        LineInput::Ring {
            label: Some("A".into()),
        },
        c.at(100),
    );
    assert_eq!(kinds(&r), vec![CallEventKind::Ringing]);
    assert_eq!(r[0].call.rings, 1);
}

#[test]
fn answered_call_measures_wait_and_talk() {
    let c = Clock::new();
    let mut t = up(true, &c);
    t.on_input(LineInput::Ring { label: None }, c.at(0));
    t.on_input(LineInput::Number(CallerNumber::Withheld), c.at(1000));
    t.on_input(LineInput::Name("WITHHELD".into()), c.at(1001));
    let a = t.on_input(LineInput::OffHook, c.at(3000));
    assert_eq!(kinds(&a), vec![CallEventKind::Answered]);
    assert_eq!(a[0].call.wait_s, Some(3.0));
    assert_eq!(t.state().state, LineStatus::Offhook);
    assert_eq!(t.deadline(), None, "no timer while talking");
    let e = t.on_input(LineInput::OnHook, c.at(63000));
    let call = &e[0].call;
    assert_eq!(call.outcome, Some(Outcome::Answered));
    assert_eq!(call.talk_s, Some(60.0));
    assert_eq!(call.number, None);
    assert_eq!(call.number_status, NumberStatus::Withheld);
}

#[test]
fn offhook_before_cid_announces_then_answers() {
    let c = Clock::new();
    let mut t = up(true, &c);
    t.on_input(LineInput::Ring { label: None }, c.at(0));
    let a = t.on_input(LineInput::OffHook, c.at(500));
    assert_eq!(
        kinds(&a),
        vec![CallEventKind::Ringing, CallEventKind::Answered]
    );
}

#[test]
fn outgoing_call_is_recorded_without_ringing() {
    let c = Clock::new();
    let mut t = up(true, &c);
    assert!(t.on_input(LineInput::OffHook, c.at(0)).is_empty());
    assert_eq!(t.state().state, LineStatus::Offhook);
    let e = t.on_input(LineInput::OnHook, c.at(30000));
    assert_eq!(e[0].call.direction, Direction::Out);
    assert_eq!(e[0].call.outcome, Some(Outcome::Unknown));
}

#[test]
fn link_down_ends_the_call_and_marks_the_line() {
    let c = Clock::new();
    let mut t = up(true, &c);
    t.on_input(LineInput::Ring { label: None }, c.at(0));
    let e = t.on_input(
        LineInput::LinkDown {
            reason: "EOF".into(),
        },
        c.at(100),
    );
    assert_eq!(kinds(&e), vec![CallEventKind::Ended]);
    assert_eq!(e[0].call.outcome, Some(Outcome::Unknown));
    let s = t.state();
    assert_eq!(s.state, LineStatus::Down);
    assert_eq!(s.reason.as_deref(), Some("EOF"));
    assert_eq!(t.deadline(), None);
    t.on_input(LineInput::LinkUp { detail: None }, c.at(200));
    assert_eq!(t.state().state, LineStatus::Idle);
}

#[test]
fn stray_onhook_and_message_on_idle_line_do_nothing() {
    let c = Clock::new();
    let mut t = up(true, &c);
    assert!(t.on_input(LineInput::OnHook, c.at(0)).is_empty());
    assert!(t
        .on_input(LineInput::Message("110101".into()), c.at(0))
        .is_empty());
    assert_eq!(t.state().state, LineStatus::Idle);
    assert_eq!(t.deadline(), None);
}

#[test]
fn each_call_gets_a_new_id() {
    let c = Clock::new();
    let mut t = up(true, &c);
    let mut ids = Vec::new();
    for i in 0..3u64 {
        let base = i * 20_000;
        t.on_input(known("1"), c.at(base));
        t.on_input(LineInput::Name("X".into()), c.at(base));
        let e = t.on_timer(c.at(base + 7000));
        ids.push(e.last().unwrap().call.id.clone());
    }
    assert!(ids[0] < ids[1] && ids[1] < ids[2]);
}
