//! A scripted week on a paused clock (SERVICE-POLICY sections 2-6): calls, agent sign-in and API actions go in;
//! exactly the expected task events, alerts, escalations and report figures come out. Every expected value is
//! worked out by hand in the comments. Shanghai time; open Mon-Fri 09:00-18:00; deadlines in business hours.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use linekeeper::clock::Clock;
use linekeeper::config::Config;
use linekeeper::model::{Event, Subject, Time};
use linekeeper::report::ReportKind;
use linekeeper::runtime::engine::{AgentAction, Engine, EngineHandle};
use linekeeper::store::Store;
use linekeeper::tasks::{ComplaintRequest, TaskAction};
use linekeeper::tracker::{CallerNumber, LineInput};

const CFG: &str = r#"
[site]
id = "hq"
timezone = "Asia/Shanghai"
[[line]]
id = "line1"
kind = "modem"
device = "/dev/null"
answer_detect = true
ring_timeout = "7s"
[hours]
mon = "09:00-18:00"
tue = "09:00-18:00"
wed = "09:00-18:00"
thu = "09:00-18:00"
fri = "09:00-18:00"
[policy]
deadline_clock = "business"
callback_due = "4h"
warn_before = "2h"
escalate_every = "1h"
ring_alert_after = "off"
complaint_response_due = "24h"
followup_due = "24h"
followup_issue_due = "1h"
[[agent]]
id = "alice"
"#;

fn shanghai(d: u32, h: u32, m: u32, s: u32) -> Time {
    chrono_tz::Asia::Shanghai
        .with_ymd_and_hms(2026, if d >= 30 { 11 } else { 12 }, d, h, m, s)
        .unwrap()
        .with_timezone(&Utc)
}

struct Week {
    h: EngineHandle,
    clock: Clock,
}

impl Week {
    async fn until(&self, t: Time) {
        let now = self.clock.now().wall;
        assert!(t >= now, "the script goes forward: {t} < {now}");
        tokio::time::sleep((t - now).to_std().unwrap()).await;
    }
    async fn line(&self, i: LineInput) {
        self.h.line_input("line1", i).await;
    }
    /// RING, caller ID a second later, a RING every 5 s until `rings`; answered `answer_after` s after the first
    /// ring and hung up `talk` s later, or left to stop ringing.
    async fn call(&self, number: &str, rings: u32, answer: Option<(u64, u64)>) {
        self.line(LineInput::Ring { label: None }).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        self.line(LineInput::Number(CallerNumber::Known(number.into())))
            .await;
        self.line(LineInput::Name("CALLER".into())).await;
        let mut elapsed = 1;
        for _ in 1..rings {
            tokio::time::sleep(Duration::from_secs(4)).await;
            elapsed += 4;
            self.line(LineInput::Ring { label: None }).await;
        }
        if let Some((after, talk)) = answer {
            tokio::time::sleep(Duration::from_secs(after - elapsed)).await;
            self.line(LineInput::OffHook).await;
            tokio::time::sleep(Duration::from_secs(talk)).await;
            self.line(LineInput::OnHook).await;
        } else {
            // until the ring timeout has ended it
            tokio::time::sleep(Duration::from_secs(8)).await;
        }
    }
    async fn act(&self, id: &str, a: TaskAction) {
        self.h
            .task_action(id, a)
            .await
            .unwrap_or_else(|e| panic!("{id}: {e}"));
    }
}

/// "Mon 09:30:19 task.created callback" and the like, for the task events and alerts.
fn describe(e: &Event) -> Option<String> {
    let at = e.at.format("%a %H:%M:%S");
    match &e.subject {
        Subject::Task { task } => {
            let mut s = format!("{at} {} {}", e.kind, task.kind.as_str());
            if e.kind == "task.escalated" {
                s.push_str(&format!(" -> {}", task.level.as_str()));
            }
            if e.kind == "task.created" || e.kind == "task.updated" {
                let due = task.due_at.with_timezone(&chrono_tz::Asia::Shanghai);
                s.push_str(&format!(
                    " due {} x{}",
                    due.format("%a %H:%M:%S"),
                    task.attempts
                ));
            }
            Some(s)
        }
        Subject::Alert { alert } => Some(format!("{at} {} {}", e.kind, alert.level)),
        _ => None,
    }
}

#[tokio::test(start_paused = true)]
async fn a_scripted_week() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Arc::new(Config::parse(CFG).unwrap());
    let store = Store::open(dir.path()).unwrap();
    // Monday 2026-11-30 08:00
    let clock = Clock::anchored(shanghai(30, 8, 0, 0));
    let (engine, h) = Engine::new(
        cfg.clone(),
        store.clone(),
        clock.clone(),
        Default::default(),
    )
    .unwrap();
    let mut rx = h.events.subscribe();
    tokio::spawn(engine.run());
    let w = Week {
        h: h.clone(),
        clock: clock.clone(),
    };
    w.line(LineInput::LinkUp { detail: None }).await;

    // Monday. 09:00 the office opens with nobody signed in: alert. 09:05 alice signs in.
    w.until(shanghai(30, 9, 5, 0)).await;
    h.agent_action("alice", AgentAction::SignIn).await.unwrap();
    // 09:10 call A, answered after 6 s (within the 10 s target), 120 s of talk.
    w.until(shanghai(30, 9, 10, 0)).await;
    w.call("13800000001", 2, Some((6, 120))).await;
    // 09:30 call B rings 3 times (last ring at +9 s) and stops: ends at +16 s (7 s ring timeout), missed.
    // Callback due 4 business hours later: 13:30:16; warned 2 h before: 11:30:16.
    w.until(shanghai(30, 9, 30, 0)).await;
    w.call("13800000002", 3, None).await;
    // 10:00 a complaint from call A. First response due in 24 business hours: Mon 10-18 (8 h) + Tue (9 h) +
    // Wed 09-16 (7 h) = Wed 16:00.
    w.until(shanghai(30, 10, 0, 0)).await;
    let call_a = store
        .calls_newest_first("", "~", 10, |c| c.number.as_deref() == Some("13800000001"))
        .unwrap()[0]
        .id
        .clone();
    let complaint = h
        .open_complaint(ComplaintRequest {
            call_id: Some(call_a),
            note: Some("rude".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        complaint.agent.as_deref(),
        Some("alice"),
        "the complaint names the agent who took the call"
    );
    // 13:30:16 B is overdue: escalated to the shift lead. 14:00 B calls again, missed (ends 14:00:16): one more
    // attempt on the same task, the deadline stays. 14:30:16 not acknowledged: up to the supervisor.
    w.until(shanghai(30, 14, 0, 0)).await;
    w.call("13800000002", 3, None).await;
    let b = store
        .tasks_newest_first(10, |t| t.number.as_deref() == Some("13800000002"))
        .unwrap()[0]
        .id
        .clone();
    // 14:45 the supervisor acknowledges: the climb stops. 15:00 alice calls back: done.
    w.until(shanghai(30, 14, 45, 0)).await;
    w.act(
        &b,
        TaskAction::Ack {
            by: Some("lead".into()),
            note: None,
        },
    )
    .await;
    w.until(shanghai(30, 15, 0, 0)).await;
    w.act(
        &b,
        TaskAction::Done {
            by: Some("alice".into()),
            note: Some("called back".into()),
        },
    )
    .await;
    // 17:50 call C, missed (ends 17:50:16): due 9 min 44 s today + 3 h 50 min 16 s Tuesday = Tue 12:50:16.
    w.until(shanghai(30, 17, 50, 0)).await;
    w.call("13800000003", 3, None).await;
    let c = store
        .tasks_newest_first(10, |t| t.number.as_deref() == Some("13800000003"))
        .unwrap()[0]
        .id
        .clone();

    // Tuesday. 09:30 C is called back in time. 10:00 the complaint gets its response: fixed by Thursday 18:00.
    w.until(shanghai(1, 9, 30, 0)).await;
    w.act(
        &c,
        TaskAction::Done {
            by: Some("alice".into()),
            note: None,
        },
    )
    .await;
    w.until(shanghai(1, 10, 0, 0)).await;
    let promised = "2026-12-03T18:00:00+08:00".to_string();
    w.act(
        &complaint.id,
        TaskAction::Respond {
            by: Some("alice".into()),
            note: None,
            promised_fix: promised,
        },
    )
    .await;

    // Thursday 11:00 resolved: a follow-up due in 24 business hours: Thu 11-18 (7 h) + Fri (9 h) + Mon 09-17 (8 h).
    w.until(shanghai(3, 11, 0, 0)).await;
    w.act(
        &complaint.id,
        TaskAction::Resolve {
            by: Some("alice".into()),
            note: None,
        },
    )
    .await;
    let followup = store
        .tasks_newest_first(10, |t| t.kind == linekeeper::model::TaskKind::Followup)
        .unwrap()[0]
        .id
        .clone();

    // Friday 10:00 the follow-up scores 2 (< 3): the complaint reopens, due in 1 business hour (11:00), and since
    // that is within warn_before, the warning comes at once. 11:00 overdue: shift lead; 12:00: supervisor.
    w.until(shanghai(4, 10, 0, 0)).await;
    w.act(
        &followup,
        TaskAction::FollowupResult {
            by: Some("carol".into()),
            score: 2,
            note: None,
        },
    )
    .await;
    w.until(shanghai(4, 12, 30, 0)).await;

    let mut seen = Vec::new();
    while let Ok(e) = rx.try_recv() {
        if let Some(d) = describe(&e) {
            seen.push(d);
        }
    }
    let expected = [
        "Mon 09:00:00 alert.no_agent shift_lead",
        "Mon 09:30:16 task.created callback due Mon 13:30:16 x1",
        "Mon 10:00:00 task.created complaint due Wed 16:00:00 x1",
        "Mon 11:30:16 alert.deadline_soon agent",
        "Mon 13:30:16 task.overdue callback",
        "Mon 13:30:16 task.escalated callback -> shift_lead",
        "Mon 13:30:16 alert.task_overdue shift_lead",
        "Mon 14:00:16 task.updated callback due Mon 13:30:16 x2",
        "Mon 14:30:16 task.escalated callback -> supervisor",
        "Mon 14:30:16 alert.escalation supervisor",
        "Mon 14:45:00 task.updated callback due Mon 13:30:16 x2",
        "Mon 15:00:00 task.done callback",
        "Mon 17:50:16 task.created callback due Tue 12:50:16 x1",
        "Tue 09:30:00 task.done callback",
        "Tue 10:00:00 task.updated complaint due Thu 18:00:00 x1",
        "Thu 11:00:00 task.done complaint",
        "Thu 11:00:00 task.created followup due Mon 17:00:00 x1",
        "Fri 10:00:00 task.done followup",
        "Fri 10:00:00 task.updated complaint due Fri 11:00:00 x1",
        "Fri 10:00:00 alert.complaint_reopened shift_lead",
        "Fri 10:00:00 alert.deadline_soon agent",
        "Fri 11:00:00 task.overdue complaint",
        "Fri 11:00:00 task.escalated complaint -> shift_lead",
        "Fri 11:00:00 alert.task_overdue shift_lead",
        "Fri 12:00:00 task.escalated complaint -> supervisor",
        "Fri 12:00:00 alert.escalation supervisor",
    ];
    assert_eq!(
        seen, expected,
        "the week's task events and alerts, in order"
    );

    // Monday's daily report: calls A (answered after 6 s), B, B again, C (missed after 9 s of ringing each).
    // offered 4, answered 1, missed 3, no short abandons (all waited >= 5 s): service level 1/4 = 25.0 %,
    // abandon rate 3/4 = 75.0 %, ASA 6.0 s, mean talk 120.0 s; callbacks opened 2: B done after its deadline
    // (overdue), C done in time; one complaint, reopened.
    let r = linekeeper::runtime::reporting::generate(
        &store,
        &cfg,
        ReportKind::Daily,
        shanghai(30, 12, 0, 0)
            .with_timezone(&chrono_tz::Asia::Shanghai)
            .date_naive(),
        clock.now().wall,
    )
    .unwrap();
    let k = &r.site_kpis;
    assert_eq!(
        (k.offered, k.answered, k.missed, k.unknown, k.short_abandons),
        (4, 1, 3, 0, 0)
    );
    assert_eq!(
        (
            k.service_level_pct,
            k.abandon_rate_pct,
            k.asa_s,
            k.mean_talk_s
        ),
        (Some(25.0), Some(75.0), Some(6.0), Some(120.0))
    );
    assert_eq!(k.repeat_callers, 1, "B's second call");
    assert_eq!(
        (
            k.callbacks_opened,
            k.callbacks_done_on_time,
            k.callbacks_overdue
        ),
        (2, 1, 1)
    );
    assert_eq!(
        (
            k.complaints_opened,
            k.complaints_reopened,
            k.complaints_resolved
        ),
        (1, 1, 0)
    );
    assert_eq!(
        r.per_agent["alice"].offered, 4,
        "alice was the available agent for every call"
    );
    assert_eq!(r.per_agent["alice"].answered, 1);
    assert_eq!(
        r.per_agent["alice"].complaints_opened, 1,
        "complaints against each agent"
    );
    assert_eq!(
        r.calls_by_hour[9] + r.calls_by_hour[14] + r.calls_by_hour[17],
        4
    );
    let q = h.snapshot.borrow().queue.clone();
    assert_eq!(
        (q.open_tasks, q.overdue_tasks),
        (1, 1),
        "only the reopened complaint is open, and it is overdue"
    );
}
