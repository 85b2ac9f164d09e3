use super::*;
use crate::model::{AgentStatus, ClearedBy, LineStatus, TaskKind, TaskState};
use crate::tracker::CallerNumber;
use chrono::Utc;

const CFG: &str = r#"
[site]
id = "hq"
[[line]]
id = "line1"
kind = "modem"
device = "/dev/null"
answer_detect = true
ring_timeout = "5s"
[policy]
callback_due = "2h"
"#;

struct Rig {
    handle: EngineHandle,
    events: broadcast::Receiver<Arc<Event>>,
    _dir: tempfile::TempDir,
    store: Store,
}

async fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let cfg = Arc::new(Config::parse(CFG).unwrap());
    let clock = Clock::anchored(Utc::now());
    let (engine, handle) = Engine::new(cfg, store.clone(), clock, Default::default()).unwrap();
    let events = handle.events.subscribe();
    tokio::spawn(engine.run());
    handle
        .line_input("line1", LineInput::LinkUp { detail: None })
        .await;
    Rig {
        handle,
        events,
        _dir: dir,
        store,
    }
}

impl Rig {
    async fn next(&mut self) -> Event {
        (*self.events.recv().await.unwrap()).clone()
    }
    async fn missed_call(&self, number: &str) {
        let h = &self.handle;
        h.line_input("line1", LineInput::Ring { label: None }).await;
        h.line_input(
            "line1",
            LineInput::Number(CallerNumber::Known(number.into())),
        )
        .await;
        h.line_input("line1", LineInput::Name("CALLER".into()))
            .await;
        tokio::time::sleep(Duration::from_secs(6)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn missed_call_opens_task_repeat_merges_deadline_alerts_once() {
    let mut r = rig().await;
    r.missed_call("13800138000").await;
    let types: Vec<String> = [r.next().await, r.next().await, r.next().await]
        .iter()
        .map(|e| e.kind.clone())
        .collect();
    assert_eq!(types, vec!["call.ringing", "call.ended", "task.created"]);
    r.missed_call("13800138000").await;
    let mut last = None;
    for _ in 0..3 {
        last = Some(r.next().await);
    }
    let ev = last.unwrap();
    assert_eq!(ev.kind, "task.updated");
    let Subject::Task { task } = &ev.subject else {
        panic!()
    };
    assert_eq!(task.attempts, 2);
    assert_eq!(task.call_ids.len(), 2);
    let id = task.id.clone();
    // The deadline (2h after the first call; no warning, since warn_before = 2h is the whole span) passes:
    // overdue once, escalated to the shift lead, alerted; then one level an hour up to the manager, and no more.
    tokio::time::sleep(Duration::from_secs(2 * 3600)).await;
    let mut kinds = Vec::new();
    for _ in 0..3 {
        kinds.push(r.next().await.kind);
    }
    assert_eq!(
        kinds,
        vec!["task.overdue", "task.escalated", "alert.task_overdue"]
    );
    tokio::time::sleep(Duration::from_secs(5 * 3600)).await;
    let mut levels = Vec::new();
    while let Ok(e) = r.events.try_recv() {
        match &e.subject {
            Subject::Task { task } => levels.push((e.kind.clone(), task.level)),
            Subject::Alert { alert } => levels.push((
                e.kind.clone(),
                serde_json::from_value(alert.level.clone().into()).unwrap(),
            )),
            _ => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(
        levels,
        vec![
            ("task.escalated".to_string(), Level::Supervisor),
            ("alert.escalation".to_string(), Level::Supervisor),
            ("task.escalated".to_string(), Level::Manager),
            ("alert.escalation".to_string(), Level::Manager),
        ],
        "overdue is emitted once; the climb stops at the top"
    );
    let snap = r.handle.snapshot.borrow().clone();
    assert_eq!((snap.queue.open_tasks, snap.queue.overdue_tasks), (1, 1));
    // close by the API path
    let t = r
        .handle
        .close_task(&id, Some("alice".into()), Some("called".into()))
        .await
        .unwrap();
    assert_eq!(t.state, TaskState::Done);
    assert_eq!(r.next().await.kind, "task.done");
    assert!(r.handle.close_task(&id, None, None).await.is_err());
    let stored = r.store.task(&id).unwrap().unwrap();
    assert_eq!(stored.state, TaskState::Done);
    let snap = r.handle.snapshot.borrow().clone();
    assert_eq!((snap.queue.open_tasks, snap.queue.overdue_tasks), (0, 0));
    // seq strictly increasing with no gaps
    let seqs: Vec<u64> = r
        .store
        .events_from(0, 100)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn answered_call_counts_in_queue_and_opens_no_task() {
    let mut r = rig().await;
    let h = &r.handle;
    h.line_input("line1", LineInput::Ring { label: None }).await;
    h.line_input(
        "line1",
        LineInput::Number(CallerNumber::Known("10086".into())),
    )
    .await;
    h.line_input("line1", LineInput::Name("X".into())).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    h.line_input("line1", LineInput::OffHook).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(h.snapshot.borrow().lines[0].state, LineStatus::Offhook);
    tokio::time::sleep(Duration::from_secs(60)).await;
    h.line_input("line1", LineInput::OnHook).await;
    let kinds: Vec<String> = [r.next().await, r.next().await, r.next().await]
        .iter()
        .map(|e| e.kind.clone())
        .collect();
    assert_eq!(kinds, vec!["call.ringing", "call.answered", "call.ended"]);
    tokio::time::sleep(Duration::from_millis(10)).await;
    let q = r.handle.snapshot.borrow().queue.clone();
    assert_eq!(
        (q.offered, q.answered, q.missed, q.open_tasks),
        (1, 1, 0, 0)
    );
    assert_eq!(q.asa_s, Some(3.0));
    assert_eq!(q.service_level_pct, Some(100.0));
}

#[tokio::test(start_paused = true)]
async fn agents_take_calls_and_an_unstaffed_open_office_alerts_once() {
    let cfg = format!(
            "{CFG}[hours]\nmon = \"09:00-18:00\"\ntue = \"09:00-18:00\"\n[[agent]]\nid = \"alice\"\n[[agent]]\nid = \"bob\"\nlines = [\"line9\"]\n"
        );
    let cfg = cfg.replace(
        "[[line]]",
        "[[line]]\nid = \"line9\"\nkind = \"modem\"\ndevice = \"/dev/null\"\n[[line]]",
    );
    let cfg = Arc::new(Config::parse(&cfg).unwrap_or_else(|p| panic!("{p:?}")));
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // Monday 2026-11-30 08:00 in Shanghai
    let monday_8 = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 30, 0, 0, 0).unwrap();
    let (engine, h) =
        Engine::new(cfg, store, Clock::anchored(monday_8), Default::default()).unwrap();
    let mut ev = h.events.subscribe();
    tokio::spawn(engine.run());
    h.line_input("line1", LineInput::LinkUp { detail: None })
        .await;
    // nobody signed in: at 09:00 the office opens and that alerts, once
    tokio::time::sleep(Duration::from_secs(3600 + 60)).await;
    let a = ev.recv().await.unwrap();
    assert_eq!(a.kind, "alert.no_agent");
    assert!(ev.try_recv().is_err(), "once");
    assert_eq!(h.snapshot.borrow().queue.agents_available, Some(0));
    // alice signs in; a call on line1 is hers (bob only answers line9)
    let st = h.agent_action("alice", AgentAction::SignIn).await.unwrap();
    assert_eq!(st.state, AgentStatus::Available);
    assert_eq!(ev.recv().await.unwrap().kind, "agent.available");
    h.agent_action("bob", AgentAction::SignIn).await.unwrap();
    assert_eq!(ev.recv().await.unwrap().kind, "agent.available");
    assert_eq!(h.snapshot.borrow().queue.agents_available, Some(2));
    h.line_input("line1", LineInput::Ring { label: None }).await;
    h.line_input(
        "line1",
        LineInput::Number(CallerNumber::Known("10086".into())),
    )
    .await;
    h.line_input("line1", LineInput::Name("X".into())).await;
    h.line_input("line1", LineInput::OffHook).await;
    let mut kinds = Vec::new();
    for _ in 0..3 {
        let e = ev.recv().await.unwrap();
        if let Subject::Call { call } = &e.subject {
            assert_eq!(call.agent.as_deref(), Some("alice"), "{}", e.kind);
        }
        kinds.push(e.kind.clone());
    }
    assert_eq!(
        kinds,
        vec!["call.ringing", "agent.on_call", "call.answered"]
    );
    h.line_input("line1", LineInput::OnHook).await;
    assert_eq!(ev.recv().await.unwrap().kind, "agent.available");
    assert_eq!(ev.recv().await.unwrap().kind, "call.ended");
    // errors
    assert!(h.agent_action("carol", AgentAction::SignIn).await.is_err());
    h.agent_action("bob", AgentAction::SignOut).await.unwrap();
    assert!(
        h.agent_action("bob", AgentAction::Away).await.is_err(),
        "signed out agents cannot be away"
    );
}

/// Two calls at once on one line that knows: each gets its own agent, its own record and its own task.
#[tokio::test(start_paused = true)]
async fn two_concurrent_calls_on_one_line_each_get_an_agent_a_record_and_a_task() {
    let cfg = format!("{CFG}[[agent]]\nid = \"alice\"\n[[agent]]\nid = \"bob\"\n");
    let cfg = Arc::new(Config::parse(&cfg).unwrap_or_else(|p| panic!("{p:?}")));
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (engine, h) = Engine::new(
        cfg,
        store.clone(),
        Clock::anchored(Utc::now()),
        Default::default(),
    )
    .unwrap();
    let mut ev = h.events.subscribe();
    tokio::spawn(engine.run());
    h.line_input("line1", LineInput::LinkUp { detail: None })
        .await;
    for a in ["alice", "bob"] {
        h.agent_action(a, AgentAction::SignIn).await.unwrap();
        assert_eq!(ev.recv().await.unwrap().kind, "agent.available");
    }
    let offer = |call: &str, n: &str| LineInput::Offered {
        call: call.into(),
        direction: Direction::In,
        number: CallerNumber::Known(n.into()),
        name: None,
    };
    h.line_input("line1", offer("a", "13800000001")).await;
    h.line_input(
        "line1",
        LineInput::Answered {
            call: "a".into(),
            by: Some("201".into()),
        },
    )
    .await;
    h.line_input("line1", offer("b", "13900000002")).await;
    h.line_input(
        "line1",
        LineInput::Ended {
            call: "b".into(),
            cleared_by: ClearedBy::Caller,
        },
    )
    .await;
    h.line_input(
        "line1",
        LineInput::Ended {
            call: "a".into(),
            cleared_by: ClearedBy::Office,
        },
    )
    .await;
    let mut ended = Vec::new();
    let mut tasks = Vec::new();
    while ended.len() < 2 || tasks.is_empty() {
        let e = ev.recv().await.unwrap();
        match (&e.kind[..], &e.subject) {
            ("call.ended", Subject::Call { call }) => ended.push(call.clone()),
            ("task.created", Subject::Task { task }) => tasks.push(task.clone()),
            _ => {}
        }
    }
    let (b, a) = (&ended[0], &ended[1]);
    assert_eq!(
        (
            b.number.as_deref(),
            b.outcome,
            b.cleared_by,
            b.agent.as_deref()
        ),
        (
            Some("13900000002"),
            Some(Outcome::Missed),
            Some(ClearedBy::Caller),
            Some("bob")
        ),
        "the second call went to the agent still free"
    );
    assert_eq!(
        (
            a.number.as_deref(),
            a.outcome,
            a.answered_by.as_deref(),
            a.agent.as_deref()
        ),
        (
            Some("13800000001"),
            Some(Outcome::Answered),
            Some("201"),
            Some("alice")
        )
    );
    assert_eq!(tasks.len(), 1, "only the missed one needs a callback");
    assert_eq!(tasks[0].number.as_deref(), Some("13900000002"));
    // Both are in the store with what the line told.
    let stored = store.calls_newest_first("", "~", 10, |_| true).unwrap();
    assert_eq!(stored.len(), 2);
    assert!(stored
        .iter()
        .any(|c| c.answered_by.as_deref() == Some("201")));
}

#[tokio::test(start_paused = true)]
async fn directory_names_callers_flags_repeats_and_vips_get_alerts_and_same_day_follow_up() {
    let mut r = rig().await;
    let vip = Customer {
        number: "13800138000".into(),
        name: "Wang Fang".into(),
        vip: true,
        level: None,
        best_time: None,
        notes: None,
    };
    assert_eq!(r.handle.customers(vec![vip], vec![]).await.unwrap(), 1);
    let h = r.handle.clone();
    // an answered call with a number but no NAME line
    h.line_input("line1", LineInput::Ring { label: None }).await;
    h.line_input(
        "line1",
        LineInput::Number(CallerNumber::Known("13800138000".into())),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await; // CID settles without NAME
    h.line_input("line1", LineInput::OffHook).await;
    h.line_input("line1", LineInput::OnHook).await;
    let alert = r.next().await;
    assert_eq!(alert.kind, "alert.vip_ringing");
    let ringing = r.next().await;
    let Subject::Call { call } = &ringing.subject else {
        panic!()
    };
    assert_eq!(
        (call.name.as_deref(), call.vip, call.repeat),
        (Some("Wang Fang"), true, false)
    );
    assert_eq!(r.next().await.kind, "call.answered");
    let ended = r.next().await;
    assert_eq!(ended.kind, "call.ended");
    let created = r.next().await;
    let Subject::Task { task } = &created.subject else {
        panic!()
    };
    assert_eq!(
        (task.kind, task.vip),
        (TaskKind::Followup, true),
        "a VIP's call gets a same-day follow-up"
    );
    // midnight local is the end of the day without [hours]
    let local_due = task.due_at.with_timezone(&chrono_tz::Asia::Shanghai);
    assert_eq!(local_due.format("%H:%M").to_string(), "00:00");
    // the same number again: a repeat caller, and no second follow-up
    tokio::time::sleep(Duration::from_secs(60)).await;
    h.line_input("line1", LineInput::Ring { label: None }).await;
    h.line_input(
        "line1",
        LineInput::Number(CallerNumber::Known("13800138000".into())),
    )
    .await;
    h.line_input("line1", LineInput::Name("WANG".into())).await;
    h.line_input("line1", LineInput::OffHook).await;
    h.line_input("line1", LineInput::OnHook).await;
    assert_eq!(r.next().await.kind, "alert.vip_ringing");
    let ringing = r.next().await;
    let Subject::Call { call } = &ringing.subject else {
        panic!()
    };
    assert_eq!(
        (call.name.as_deref(), call.repeat),
        (Some("WANG"), true),
        "caller ID's name wins"
    );
    assert_eq!(r.next().await.kind, "call.answered");
    let ended = r.next().await;
    let Subject::Call { call } = &ended.subject else {
        panic!()
    };
    assert!(call.repeat, "the flag stays on the whole call");
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(
        r.events.try_recv().is_err(),
        "one open follow-up per VIP is enough"
    );
    // removed from the directory: no more VIP handling
    assert_eq!(
        r.handle
            .customers(vec![], vec!["13800138000".into()])
            .await
            .unwrap(),
        1
    );
    assert!(r
        .store
        .record::<Customer>("customer/13800138000")
        .unwrap()
        .is_none());
}

#[tokio::test(start_paused = true)]
async fn a_reload_that_changes_warn_before_recomputes_open_tasks_timers() {
    // callback_due 2h; with warn_before = 30m the warning would come 1h30 after the call.
    let mut r = rig().await;
    let cfg = |warn: &str| {
        Arc::new(
            Config::parse(&CFG.replace("[policy]", &format!("[policy]\nwarn_before = \"{warn}\"")))
                .unwrap(),
        )
    };
    assert!(r.handle.reconfigure(cfg("30m")).await);
    r.missed_call("13800138000").await;
    for _ in 0..3 {
        r.next().await; // ringing, ended, task.created
    }
    // ...but warnings are switched off before then: the next thing is the deadline itself.
    assert!(r.handle.reconfigure(cfg("off")).await);
    tokio::time::sleep(Duration::from_secs(2 * 3600)).await;
    assert_eq!(
        r.next().await.kind,
        "task.overdue",
        "no deadline_soon after warn_before went off"
    );
}

#[tokio::test(start_paused = true)]
async fn line_down_alerts_once_and_up_clears() {
    let mut r = rig().await;
    let h = &r.handle;
    h.line_input(
        "line1",
        LineInput::LinkDown {
            reason: "EOF".into(),
        },
    )
    .await;
    h.line_input(
        "line1",
        LineInput::LinkDown {
            reason: "ENOENT".into(),
        },
    )
    .await;
    h.line_input("line1", LineInput::LinkUp { detail: None })
        .await;
    let a = r.next().await;
    assert_eq!(a.kind, "alert.line_down");
    assert_eq!(r.next().await.kind, "alert.line_up");
}

#[tokio::test(start_paused = true)]
async fn restart_closes_open_calls_as_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Arc::new(Config::parse(CFG).unwrap());
    let call_id;
    {
        let store = Store::open(dir.path()).unwrap();
        let (engine, handle) = Engine::new(
            cfg.clone(),
            store,
            Clock::anchored(Utc::now()),
            Default::default(),
        )
        .unwrap();
        let mut ev = handle.events.subscribe();
        let task = tokio::spawn(engine.run());
        handle
            .line_input("line1", LineInput::LinkUp { detail: None })
            .await;
        handle
            .line_input("line1", LineInput::Ring { label: None })
            .await;
        handle.line_input("line1", LineInput::OffHook).await;
        let e = ev.recv().await.unwrap();
        let Subject::Call { call } = &e.subject else {
            panic!()
        };
        call_id = call.id.clone();
        assert_eq!(ev.recv().await.unwrap().kind, "call.answered");
        task.abort();
        let _ = task.await;
    }
    let store = Store::reopen(dir.path());
    let before = store.next_seq().unwrap();
    let (_engine, _h) = Engine::new(
        cfg,
        store.clone(),
        Clock::anchored(Utc::now()),
        Default::default(),
    )
    .unwrap();
    let c = store.call(&call_id).unwrap().unwrap();
    assert_eq!(c.outcome, Some(Outcome::Interrupted));
    let evs = store.events_from(before, 10).unwrap();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].kind, "call.ended");
    assert!(store.open_calls().unwrap().is_empty());
}
