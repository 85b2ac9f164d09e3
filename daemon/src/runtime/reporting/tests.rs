use super::*;
use chrono::Utc;

fn cfg(extra: &str) -> Config {
    Config::parse(&format!("[site]\nid = \"hq\"\n{extra}")).unwrap_or_else(|p| panic!("{p:?}"))
}

fn cal(c: &Config) -> BusinessCalendar {
    BusinessCalendar::new(c.timezone(), c.hours.as_ref(), &c.shifts).unwrap()
}

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> Time {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

#[test]
fn open_around_the_clock_the_daily_report_comes_at_midnight() {
    let c = cfg("");
    // Tuesday 2026-11-24 10:00 Shanghai
    let (at, jobs) = next_jobs(utc(2026, 11, 24, 2, 0), &c, &cal(&c)).unwrap();
    assert_eq!(at, utc(2026, 11, 24, 16, 0), "local midnight");
    assert_eq!(
        jobs,
        vec![Job::Period(ReportKind::Daily, date(2026, 11, 24))]
    );
}

#[test]
fn with_hours_the_daily_report_comes_at_closing_and_skips_closed_days() {
    let c = cfg("[hours]\nmon = \"09:00-18:00\"\nfri = \"09:00-18:00\"\n");
    // Friday 2026-11-27 19:00 local: after closing. Monday 00:00 starts a week (weekly_on = "mon")...
    let (at, jobs) = next_jobs(utc(2026, 11, 27, 11, 0), &c, &cal(&c)).unwrap();
    assert_eq!(at, utc(2026, 11, 29, 16, 0));
    assert_eq!(
        jobs,
        vec![Job::Period(ReportKind::Weekly, date(2026, 11, 29))]
    );
    // ... and the next business day is Monday: its daily report at 18:00
    let (at, jobs) = next_jobs(at, &c, &cal(&c)).unwrap();
    assert_eq!(at, utc(2026, 11, 30, 10, 0), "Monday 18:00 local");
    assert_eq!(
        jobs,
        vec![Job::Period(ReportKind::Daily, date(2026, 11, 30))]
    );
}

#[test]
fn weekly_monthly_and_quarterly_come_at_the_midnight_that_starts_them() {
    let c = cfg("[hours]\nmon = \"09:00-18:00\"\n[policy]\nweekly_on = \"thu\"\n");
    // Wednesday 2026-09-30 20:00 local: next is Thursday 2026-10-01 00:00, a Thursday, the first of a month
    // and of a quarter: the week, September and Q3.
    let (at, jobs) = next_jobs(utc(2026, 9, 30, 12, 0), &c, &cal(&c)).unwrap();
    assert_eq!(at, utc(2026, 9, 30, 16, 0));
    assert_eq!(
        jobs,
        vec![
            Job::Period(ReportKind::Weekly, date(2026, 9, 30)),
            Job::Period(ReportKind::Monthly, date(2026, 9, 30)),
            Job::Period(ReportKind::Quarterly, date(2026, 9, 30)),
        ]
    );
    let (from, to) = report::period(ReportKind::Monthly, date(2026, 9, 30), c.timezone());
    assert_eq!(
        (from, to),
        (utc(2026, 8, 31, 16, 0), utc(2026, 9, 30, 16, 0)),
        "all of September"
    );
}

#[test]
fn monthly_on_the_25th_reports_the_previous_calendar_month() {
    let c = cfg("[policy]\nmonthly_on = 25\n");
    let jobs: Vec<Job> = std::iter::successors(
        next_jobs(utc(2026, 11, 20, 0, 0), &c, &cal(&c)),
        |(t, _)| next_jobs(*t, &c, &cal(&c)),
    )
    .take(10)
    .flat_map(|(_, j)| j)
    .filter(|j| matches!(j, Job::Period(ReportKind::Monthly, _)))
    .collect();
    assert_eq!(
        jobs[0],
        Job::Period(ReportKind::Monthly, date(2026, 10, 31))
    );
}

/// The scheduler makes the daily report at midnight by itself; it is stored, announced, retained, and a report
/// regenerated from the store has the same figures; its CSV parses back to them.
#[tokio::test(start_paused = true)]
async fn the_daily_report_makes_itself_and_matches_the_store() {
    use crate::runtime::engine::Engine;
    use crate::tracker::{CallerNumber, LineInput};
    let dir = tempfile::tempdir().unwrap();
    let c = Arc::new(cfg(
            "[[line]]\nid = \"line1\"\nkind = \"modem\"\ndevice = \"/dev/null\"\nanswer_detect = true\nring_timeout = \"5s\"\n",
        ));
    let store = Store::open(dir.path()).unwrap();
    // Tuesday 2026-11-24 22:00 in Shanghai
    let clock = Clock::anchored(utc(2026, 11, 24, 14, 0));
    let (engine, h) =
        Engine::new(c.clone(), store.clone(), clock.clone(), Default::default()).unwrap();
    let mut ev = h.events.subscribe();
    tokio::spawn(engine.run());
    let (_cfg_tx, cfg_rx) = watch::channel(c.clone());
    tokio::spawn(scheduler(store.clone(), h.clone(), cfg_rx, clock.clone()));
    h.line_input("line1", LineInput::LinkUp { detail: None })
        .await;
    for (i, answer) in [true, false, true].into_iter().enumerate() {
        h.line_input("line1", LineInput::Ring { label: None }).await;
        h.line_input(
            "line1",
            LineInput::Number(CallerNumber::Known(format!("1380013800{i}"))),
        )
        .await;
        h.line_input("line1", LineInput::Name("N".into())).await;
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
        if answer {
            h.line_input("line1", LineInput::OffHook).await;
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            h.line_input("line1", LineInput::OnHook).await;
        }
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    }
    // midnight comes: the daily report of the 24th
    tokio::time::sleep(std::time::Duration::from_secs(2 * 3600)).await;
    let published = loop {
        let e = ev.recv().await.unwrap();
        if e.kind == "report.published" {
            break e;
        }
    };
    let crate::model::Subject::Report { report } = &published.subject else {
        panic!()
    };
    assert_eq!(report["label"], "2026-11-24");
    assert_eq!(report["kpis"]["offered"], 3);
    assert_eq!(report["kpis"]["answered"], 2);
    assert_eq!(report["kpis"]["missed"], 1);
    assert!(
        h.snapshot.borrow().reports.contains_key("daily"),
        "retained for MQTT"
    );
    let (stored, partial) = find_or_build(
        &store,
        &c,
        ReportKind::Daily,
        Some(date(2026, 11, 24)),
        clock.now().wall,
    )
    .unwrap();
    assert!(!partial);
    let again = generate(
        &store,
        &c,
        ReportKind::Daily,
        date(2026, 11, 24),
        clock.now().wall,
    )
    .unwrap();
    assert_eq!(
        again.site_kpis, stored.site_kpis,
        "regenerated from the store, same figures"
    );
    assert_eq!(again.per_line, stored.per_line);
    let parsed = report::parse_csv(&report::to_csv(&stored)).unwrap();
    assert_eq!(
        parsed["site"], stored.site_kpis,
        "the CSV parses back to the same figures"
    );
    assert_eq!(stored.site_kpis.asa_s, Some(4.0), "answered after 4 s each");
}

/// The first sign-in after a shift started is late; a second one in the same shift is not; before the shift
/// is not late either. The daily report counts them per agent.
#[tokio::test(start_paused = true)]
async fn late_sign_ins_are_counted_per_agent() {
    use crate::runtime::engine::{AgentAction, Engine};
    let dir = tempfile::tempdir().unwrap();
    let c = Arc::new(cfg(
            "[[shift]]\nname = \"day\"\nstart = \"08:00\"\nend = \"17:00\"\n[[agent]]\nid = \"alice\"\n[[agent]]\nid = \"bob\"\n",
        ));
    let store = Store::open(dir.path()).unwrap();
    // Tuesday 2026-11-24 07:50 in Shanghai
    let clock = Clock::anchored(utc(2026, 11, 23, 23, 50));
    let (engine, h) =
        Engine::new(c.clone(), store.clone(), clock.clone(), Default::default()).unwrap();
    tokio::spawn(engine.run());
    let minutes = |m: u64| tokio::time::sleep(std::time::Duration::from_secs(60 * m));
    h.agent_action("bob", AgentAction::SignIn).await.unwrap(); // 07:50: before the shift, on time
    minutes(20).await;
    h.agent_action("alice", AgentAction::SignIn).await.unwrap(); // 08:10: late
    minutes(20).await;
    h.agent_action("alice", AgentAction::SignOut).await.unwrap();
    h.agent_action("alice", AgentAction::SignIn).await.unwrap(); // 08:30: again in the same shift, not late
    let r = generate(
        &store,
        &c,
        ReportKind::Daily,
        date(2026, 11, 24),
        clock.now().wall,
    )
    .unwrap();
    assert_eq!(r.site_kpis.late_signins, 1);
    assert_eq!(r.per_agent["alice"].late_signins, 1);
    assert_eq!(
        r.per_agent.get("bob").map(|k| k.late_signins).unwrap_or(0),
        0
    );
    let csv = report::parse_csv(&report::to_csv(&r)).unwrap();
    assert_eq!(csv["agent:alice"].late_signins, 1, "in the CSV too");
}

#[test]
fn a_shift_report_asked_for_before_any_is_stored_covers_the_running_shift() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let c = cfg("[[shift]]\nname = \"day\"\nstart = \"08:00\"\nend = \"17:00\"\n");
    let now = utc(2026, 11, 24, 2, 0); // 10:00 local
    let (r, partial) = find_or_build(&store, &c, ReportKind::Shift, None, now).unwrap();
    assert_eq!(r.label, "day 2026-11-24");
    assert_eq!((r.from, r.to), (utc(2026, 11, 24, 0, 0), now));
    assert!(partial, "the shift is still running");
    let (r, partial) =
        find_or_build(&store, &c, ReportKind::Shift, Some(date(2026, 11, 23)), now).unwrap();
    assert_eq!(
        (r.label.as_str(), r.to, partial),
        ("day 2026-11-23", utc(2026, 11, 23, 9, 0), false)
    );
    let none = find_or_build(&store, &cfg(""), ReportKind::Shift, None, now).unwrap_err();
    assert!(matches!(none, ReportError::NoShift), "{none}");
}

#[test]
fn a_month_read_in_slices_is_the_month_in_order() {
    use crate::model::{new_id, Call, Direction};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (from, to) = (utc(2026, 10, 31, 16, 0), utc(2026, 11, 30, 16, 0));
    let calls: Vec<Call> = (0..3000)
        .map(|i| {
            let t = from + ChronoDuration::minutes(i * 15) - ChronoDuration::days(1);
            Call {
                ended_at: Some(t),
                rings: 1,
                ..Call::new(new_id(t), "line1", Direction::In, t)
            }
        })
        .collect();
    store
        .commit(
            &crate::store::Change {
                calls,
                ..Default::default()
            },
            1,
        )
        .unwrap();
    let sliced = calls_in_parallel(&store, from, to).unwrap();
    let whole = store.calls_between(&id_floor(from), &id_floor(to)).unwrap();
    assert!(whole.len() > 2000, "{}", whole.len());
    assert_eq!(sliced, whole);
}

#[test]
fn shift_ends_are_handover_times() {
    let c = cfg("[[shift]]\nname = \"day\"\nstart = \"08:00\"\nend = \"17:00\"\n");
    let (at, jobs) = next_jobs(utc(2026, 11, 24, 2, 0), &c, &cal(&c)).unwrap();
    assert_eq!(at, utc(2026, 11, 24, 9, 0), "17:00 local");
    assert_eq!(
        jobs,
        vec![Job::Shift {
            name: "day".into(),
            date: date(2026, 11, 24),
            from: utc(2026, 11, 24, 0, 0),
            to: utc(2026, 11, 24, 9, 0),
        }]
    );
}
