//! Long on purpose: worked examples of every KPI, each with its hand-computed result.

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
        call("c", "L1", None, Missed, 5.0, None, secs_after(2)),    // exactly short_abandon: counts
        call("d", "L1", None, Missed, 4.9, None, secs_after(3)),    // short
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
        call("d", "L1", None, Missed, 1.0, None, utc(2026, 11, 24, 2, 0)),  // Tue, short abandon
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
        lines[1]
            .starts_with("site,10,6,3,1,0,1,4,50,25,10.3,105,40,0,0,0,0,,0,0,0,,0,0,,0,0,0,0,0"),
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
