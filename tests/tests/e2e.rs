//! End-to-end tests: the built `linekeeper` binary against a real mosquitto, a socat pty
//! pair with the simulated caller-ID modem on the far end, HTTP and the command line.
//!
//! Each test owns its broker, pty pair, daemon and temp dirs, so they run in parallel.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use linekeeper_e2e::*;
use serde_json::{json, Value};

fn nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn str_of<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {v}"))
}

fn find_by_id<'a>(items: &'a [Value], id: &str, what: &str) -> &'a Value {
    items.iter().find(|v| v["id"] == id).unwrap_or_else(|| {
        panic!(
            "{what}: no item with id {id} among {} items: {}",
            items.len(),
            clip(&Value::Array(items.to_vec()).to_string(), 3000)
        )
    })
}

fn call_ids_of(task: &Value) -> Vec<String> {
    task["call_ids"]
        .as_array()
        .unwrap_or_else(|| panic!("task.call_ids is not an array: {task}"))
        .iter()
        .map(|v| str_of(v, "a call id in task.call_ids").to_string())
        .collect()
}

/// The numbers of the calls whose `call.ended`, and of the tasks whose `task.created`, reached MQTT.
fn ended_and_created(msgs: &[MqttMsg]) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut ended, mut created) = (BTreeSet::new(), BTreeSet::new());
    for m in msgs {
        let Some(v) = m.json() else { continue };
        if m.topic == TOPIC_CALL && v["type"] == "call.ended" {
            if let Some(n) = v["call"]["number"].as_str() {
                ended.insert(n.to_string());
            }
        }
        if m.topic == TOPIC_TASK && v["type"] == "task.created" {
            if let Some(n) = v["task"]["number"].as_str() {
                created.insert(n.to_string());
            }
        }
    }
    (ended, created)
}

/// Only the fields that a restart must not change.
fn stable(item: &Value, fields: &[&str]) -> Value {
    let mut out = serde_json::Map::new();
    for f in fields {
        out.insert((*f).to_string(), item[*f].clone());
    }
    Value::Object(out)
}

const CALL_FIELDS: &[&str] = &[
    "id",
    "line",
    "direction",
    "number",
    "name",
    "started_at",
    "answered_at",
    "ended_at",
    "rings",
    "outcome",
];
const TASK_FIELDS: &[&str] = &[
    "id",
    "kind",
    "state",
    "number",
    "name",
    "call_ids",
    "attempts",
    "created_at",
    "due_at",
];

fn by_id(items: &[Value], fields: &[&str]) -> std::collections::BTreeMap<String, Value> {
    items
        .iter()
        .map(|v| {
            (
                v["id"].as_str().unwrap_or_default().to_string(),
                stable(v, fields),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Calls and tasks
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_call_is_published_logged_and_closed() {
    let env = Env::start(DaemonOptions::default()).await;
    let number = "13800138000";
    let shown = "138****8000";
    let name = "ZHANG SAN";

    // First missed call.
    let from = env.watch.mark();
    env.ring_with_caller_id(number, name).await;
    let ringing = env.wait_ringing(from, shown).await;
    assert_event_envelope(&ringing);
    let call = &ringing["call"];
    assert_eq!(call["name"], name, "call.ringing name: {ringing}");
    assert_eq!(call["line"], LINE, "call.ringing line: {ringing}");
    assert_eq!(call["direction"], "in", "call.ringing direction: {ringing}");
    assert!(
        call["started_at"].is_string(),
        "call.ringing without started_at: {ringing}"
    );
    let call_id = str_of(&call["id"], "call.id").to_string();

    let (ringing_idx, state_msg) = env
        .watch
        .wait_for_idx(
            from,
            "the line state `ringing` with the masked number",
            STEP,
            |m| {
                m.topic == TOPIC_LINE_STATE
                    && m.json()
                        .is_some_and(|v| v["state"] == "ringing" && v["number"] == shown)
            },
        )
        .await;
    let state = state_msg.json().expect("JSON");
    assert_eq!(state["line"], LINE, "line state: {state}");
    assert_eq!(
        state["call_id"],
        call_id.as_str(),
        "line state while ringing: {state}"
    );

    let ended = env.wait_call_event(&call_id, "call.ended").await;
    assert_event_envelope(&ended);
    let c = &ended["call"];
    assert_eq!(c["outcome"], "missed", "call.ended outcome: {ended}");
    assert_eq!(
        c["number"], shown,
        "call.ended number must be masked: {ended}"
    );
    assert_eq!(c["rings"], 2, "two RINGs were sent: {ended}");
    assert!(
        c["answered_at"].is_null(),
        "a missed call has no answered_at: {ended}"
    );
    assert!(
        c["ended_at"].is_string(),
        "call.ended without ended_at: {ended}"
    );
    assert!(
        ended["seq"].as_u64() > ringing["seq"].as_u64(),
        "call.ended seq must be above call.ringing seq: {ringing} / {ended}"
    );

    let created = task_created_for(&env, &call_id).await;
    assert_event_envelope(&created);
    let t = &created["task"];
    assert_eq!(t["kind"], "callback", "task.created kind: {created}");
    assert_eq!(t["state"], "open", "task.created state: {created}");
    assert_eq!(
        t["number"], shown,
        "task.created number must be masked: {created}"
    );
    assert_eq!(t["attempts"], 1, "task.created attempts: {created}");
    assert!(
        t["due_at"].is_string(),
        "task.created without due_at: {created}"
    );
    assert!(
        t["created_at"].is_string(),
        "task.created without created_at: {created}"
    );
    let task_id = str_of(&t["id"], "task.id").to_string();

    env.wait_line_state(ringing_idx + 1, "idle").await;

    // The HTTP API has the full number.
    let calls = env.daemon.calls();
    let api_call = find_by_id(&calls, &call_id, "GET /api/calls");
    assert_eq!(
        api_call["number"], number,
        "GET /api/calls number: {api_call}"
    );
    assert_eq!(
        api_call["outcome"], "missed",
        "GET /api/calls outcome: {api_call}"
    );
    let open = env.daemon.tasks("open");
    let api_task = find_by_id(&open, &task_id, "GET /api/tasks?state=open");
    assert_eq!(
        api_task["number"], number,
        "GET /api/tasks number: {api_task}"
    );
    assert_eq!(
        api_task["kind"], "callback",
        "GET /api/tasks kind: {api_task}"
    );

    // A second missed call from the same number updates the open task.
    let from = env.watch.mark();
    env.ring_with_caller_id(number, name).await;
    let ringing2 = env.wait_ringing(from, shown).await;
    let call2_id = str_of(&ringing2["call"]["id"], "call.id").to_string();
    assert_ne!(call2_id, call_id, "a second call must get a new id");
    let ended2 = env.wait_call_event(&call2_id, "call.ended").await;
    assert_eq!(
        ended2["call"]["outcome"], "missed",
        "second call.ended: {ended2}"
    );
    let tid = task_id.clone();
    let updated = env
        .watch
        .wait_event(
            TOPIC_TASK,
            &format!("task.updated for task {task_id} (second missed call)"),
            STEP,
            move |e| e["type"] == "task.updated" && e["task"]["id"] == tid.as_str(),
        )
        .await;
    assert_event_envelope(&updated);
    assert_eq!(
        updated["task"]["attempts"], 2,
        "task.updated attempts: {updated}"
    );
    let ids = call_ids_of(&updated["task"]);
    assert!(
        ids.contains(&call_id) && ids.contains(&call2_id),
        "task.updated call_ids must hold both calls: {updated}"
    );
    let created_events = env.watch.events_of(TOPIC_TASK, "task.created");
    assert_eq!(
        created_events.len(),
        1,
        "the second missed call must not create another task: {created_events:?}"
    );
    let open = env.daemon.tasks("open");
    assert_eq!(
        open.iter().filter(|t| t["number"] == number).count(),
        1,
        "one open task for {number}: {open:?}"
    );

    // Closing the task by the API.
    let resp = env.daemon.post_json(
        &format!("/api/tasks/{task_id}/done"),
        &json!({"by": "alice", "note": "called back"}),
    );
    assert_eq!(
        resp.status, 200,
        "POST /api/tasks/{task_id}/done answered {}: {}",
        resp.status, resp.body
    );
    let tid = task_id.clone();
    let done = env
        .watch
        .wait_event(
            TOPIC_TASK,
            &format!("task.done for task {task_id}"),
            STEP,
            move |e| e["type"] == "task.done" && e["task"]["id"] == tid.as_str(),
        )
        .await;
    assert_event_envelope(&done);
    assert_eq!(done["task"]["state"], "done", "task.done state: {done}");
    assert!(
        !ids_of_state(&env.daemon, "open").contains(&task_id),
        "a done task must leave ?state=open"
    );
    assert!(
        ids_of_state(&env.daemon, "done").contains(&task_id),
        "a done task must be in ?state=done"
    );
    assert!(
        ids_of_state(&env.daemon, "all").contains(&task_id),
        "a done task must be in ?state=all"
    );

    // Every event so far: a valid envelope, seq strictly increasing in publishing order.
    let events = distinct_events(&env.watch.messages());
    for e in &events {
        assert_event_envelope(e);
    }
    assert_seq_increasing(&events);

    // The retained queue summary follows: one open task before the close, none after.
    env.watch
        .wait_for(
            "a queue summary with open_tasks 1 and missed >= 2",
            STEP,
            |m| {
                m.topic == TOPIC_QUEUE
                    && m.json().is_some_and(|q| {
                        q["open_tasks"] == 1 && q["missed"].as_u64().is_some_and(|n| n >= 2)
                    })
            },
        )
        .await;
    env.watch
        .wait_until(
            "the latest queue summary to show open_tasks 0",
            STEP,
            |msgs| {
                msgs.iter()
                    .rev()
                    .find(|m| m.topic == TOPIC_QUEUE)
                    .and_then(|m| m.json())
                    .is_some_and(|q| q["open_tasks"] == 0)
            },
        )
        .await;
}

/// Waits for the `task.created` event of the task opened for this call.
async fn task_created_for(env: &Env, call_id: &str) -> Value {
    let cid = call_id.to_string();
    env.watch
        .wait_event(
            TOPIC_TASK,
            &format!("task.created for call {call_id}"),
            STEP,
            move |e| {
                e["type"] == "task.created"
                    && e["task"]["call_ids"]
                        .as_array()
                        .is_some_and(|ids| ids.iter().any(|i| i == cid.as_str()))
            },
        )
        .await
}

fn ids_of_state(daemon: &Daemon, state: &str) -> BTreeSet<String> {
    ids(&daemon.tasks(state), "id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_call_has_answered_outcome_and_no_task() {
    let env = Env::start(DaemonOptions::default()).await;
    let number = "13912345678";
    let shown = masked(number);

    let from = env.watch.mark();
    env.ring_with_caller_id(number, "WANG WU").await;
    let ringing = env.wait_ringing(from, &shown).await;
    let call_id = str_of(&ringing["call"]["id"], "call.id").to_string();

    env.modem.offhook().await;
    let answered = env.wait_call_event(&call_id, "call.answered").await;
    assert_event_envelope(&answered);
    assert!(
        answered["call"]["answered_at"].is_string(),
        "call.answered without answered_at: {answered}"
    );
    env.wait_line_state(from, "offhook").await;

    env.modem.onhook().await;
    let ended = env.wait_call_event(&call_id, "call.ended").await;
    let c = &ended["call"];
    assert_eq!(c["outcome"], "answered", "call.ended outcome: {ended}");
    assert!(
        c["answered_at"].is_string(),
        "answered call without answered_at: {ended}"
    );
    assert!(
        c["ended_at"].is_string(),
        "call.ended without ended_at: {ended}"
    );
    assert!(
        c["wait_s"].is_number(),
        "answered call.ended without wait_s: {ended}"
    );
    assert!(
        c["talk_s"].is_number(),
        "answered call.ended without talk_s: {ended}"
    );

    // A later missed call from another number makes a task; events go out in seq
    // order, so once its task.created is here any task for the answered call would be too.
    let other = "13700000001";
    let from = env.watch.mark();
    env.ring_with_caller_id(other, "LATER").await;
    let r2 = env.wait_ringing(from, &masked(other)).await;
    let call2 = str_of(&r2["call"]["id"], "call.id").to_string();
    env.watch
        .wait_event(
            TOPIC_TASK,
            &format!("task.created for the later missed call {call2}"),
            STEP,
            move |e| {
                e["type"] == "task.created"
                    && e["task"]["call_ids"]
                        .as_array()
                        .is_some_and(|ids| ids.iter().any(|i| i == call2.as_str()))
            },
        )
        .await;
    let task_events_for_answered: Vec<Value> = env
        .watch
        .events(TOPIC_TASK)
        .into_iter()
        .filter(|e| e["task"]["number"] == shown.as_str())
        .collect();
    assert!(
        task_events_for_answered.is_empty(),
        "an answered call must not make a task, saw: {task_events_for_answered:?}"
    );
    let all = env.daemon.tasks("all");
    assert!(
        !all.iter().any(|t| t["number"] == number),
        "GET /api/tasks?state=all has a task for the answered number: {all:?}"
    );
    let calls = env.daemon.calls();
    let api_call = find_by_id(&calls, &call_id, "GET /api/calls");
    assert_eq!(
        api_call["outcome"], "answered",
        "GET /api/calls: {api_call}"
    );
    assert_eq!(api_call["number"], number, "GET /api/calls: {api_call}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn line_without_answer_detect_gives_unknown_and_review_task() {
    let env = Env::start(DaemonOptions {
        answer_detect: false,
        ..DaemonOptions::default()
    })
    .await;
    let number = "13698765432";
    let from = env.watch.mark();
    env.ring_with_caller_id(number, "ZHAO LIU").await;
    let ringing = env.wait_ringing(from, &masked(number)).await;
    let call_id = str_of(&ringing["call"]["id"], "call.id").to_string();
    let ended = env.wait_call_event(&call_id, "call.ended").await;
    assert_eq!(
        ended["call"]["outcome"], "unknown",
        "a line without answer detection cannot tell answered from missed: {ended}"
    );
    let created = task_created_for(&env, &call_id).await;
    assert_eq!(
        created["task"]["kind"], "review",
        "unknown_outcome = review must make a review task: {created}"
    );
    let calls = env.daemon.calls();
    assert_eq!(
        find_by_id(&calls, &call_id, "GET /api/calls")["outcome"],
        "unknown"
    );
}

// ---------------------------------------------------------------------------------------
// Durability
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_every_call_and_task() {
    let mut env = Env::start(DaemonOptions::default()).await;

    // A missed call (task stays open), an answered call, a missed call whose task is closed.
    let a = "13911112222";
    let from = env.watch.mark();
    env.ring_with_caller_id(a, "CALLER A").await;
    let r = env.wait_ringing(from, &masked(a)).await;
    let a_id = str_of(&r["call"]["id"], "call.id").to_string();
    env.wait_call_event(&a_id, "call.ended").await;

    let b = "13933334444";
    let from = env.watch.mark();
    env.ring_with_caller_id(b, "CALLER B").await;
    let r = env.wait_ringing(from, &masked(b)).await;
    let b_id = str_of(&r["call"]["id"], "call.id").to_string();
    env.modem.offhook().await;
    env.wait_call_event(&b_id, "call.answered").await;
    env.modem.onhook().await;
    env.wait_call_event(&b_id, "call.ended").await;

    let c = "13955556666";
    let from = env.watch.mark();
    env.ring_with_caller_id(c, "CALLER C").await;
    let r = env.wait_ringing(from, &masked(c)).await;
    let c_id = str_of(&r["call"]["id"], "call.id").to_string();
    env.wait_call_event(&c_id, "call.ended").await;
    let created = task_created_for(&env, &c_id).await;
    let c_task = str_of(&created["task"]["id"], "task.id").to_string();
    let resp = env.daemon.post_json(
        &format!("/api/tasks/{c_task}/done"),
        &json!({"by": "alice", "note": "called back"}),
    );
    assert_eq!(resp.status, 200, "closing task {c_task}: {}", resp.body);
    let tid = c_task.clone();
    env.watch
        .wait_event(TOPIC_TASK, "task.done for task C", STEP, move |e| {
            e["type"] == "task.done" && e["task"]["id"] == tid.as_str()
        })
        .await;

    let calls_before = env.daemon.calls();
    let tasks_before = env.daemon.tasks("all");
    assert_eq!(
        calls_before.len(),
        3,
        "three calls before the restart: {calls_before:?}"
    );
    assert_eq!(
        tasks_before.len(),
        2,
        "two tasks before the restart: {tasks_before:?}"
    );
    let max_seq_before = distinct_events(&env.watch.messages())
        .iter()
        .filter_map(|e| e["seq"].as_u64())
        .max()
        .expect("events were published");

    // Export works while the daemon runs.
    let export = env.daemon.cli(&["export", "calls", "--format", "json"]);
    assert_eq!(
        export.code,
        Some(0),
        "export calls while running:\n{export}"
    );
    let exported: Vec<Value> = serde_json::from_str(&export.stdout).unwrap_or_else(|e| {
        panic!("export calls --format json must print a JSON array ({e}):\n{export}")
    });
    assert_eq!(
        ids(&exported, "id"),
        ids(&calls_before, "id"),
        "export calls (daemon running) must list the same calls as GET /api/calls"
    );

    // kill -9: the broker publishes the will.
    let from = env.watch.mark();
    env.daemon.kill9();
    env.watch
        .wait_for_from(
            from,
            "the retained status to become offline (last will)",
            STEP,
            |m| m.topic == TOPIC_STATUS && m.payload == "offline",
        )
        .await;

    // While it is down: export and token creation work.
    let export = env.daemon.cli(&["export", "calls", "--format", "json"]);
    assert_eq!(
        export.code,
        Some(0),
        "export calls while stopped:\n{export}"
    );
    let exported: Vec<Value> = serde_json::from_str(&export.stdout).unwrap_or_else(|e| {
        panic!("export calls --format json must print a JSON array ({e}):\n{export}")
    });
    assert_eq!(
        ids(&exported, "id"),
        ids(&calls_before, "id"),
        "export calls (daemon stopped) must list the same calls as GET /api/calls"
    );
    let offline_token = env.daemon.token("made-while-stopped");

    let from = env.watch.mark();
    env.restart_daemon().await;
    env.watch
        .wait_for_from(from, "the status to become online again", STEP, |m| {
            m.topic == TOPIC_STATUS && m.payload == "online"
        })
        .await;

    // The token made while the daemon was down works now.
    env.daemon.use_token(offline_token);
    let calls_after = env.daemon.calls();
    let tasks_after = env.daemon.tasks("all");
    assert_eq!(
        by_id(&calls_after, CALL_FIELDS),
        by_id(&calls_before, CALL_FIELDS),
        "GET /api/calls changed across kill -9 and restart"
    );
    assert_eq!(
        by_id(&tasks_after, TASK_FIELDS),
        by_id(&tasks_before, TASK_FIELDS),
        "GET /api/tasks?state=all changed across kill -9 and restart"
    );
    let open: BTreeSet<String> = ids(&env.daemon.tasks("open"), "id");
    assert_eq!(
        open.len(),
        1,
        "exactly task A stays open after the restart: {open:?}"
    );
    assert!(
        !open.contains(&c_task),
        "the closed task C must stay closed"
    );

    // A new call after the restart: logged, and seq is never reused.
    let d = "13977778888";
    let from = env.watch.mark();
    env.ring_with_caller_id(d, "CALLER D").await;
    let r = env.wait_ringing(from, &masked(d)).await;
    assert!(
        r["seq"].as_u64().is_some_and(|s| s > max_seq_before),
        "seq after the restart must be above every seq before it ({max_seq_before}): {r}"
    );
    let d_id = str_of(&r["call"]["id"], "call.id").to_string();
    env.wait_call_event(&d_id, "call.ended").await;
    let calls = env.daemon.calls();
    assert_eq!(calls.len(), 4, "four calls after the restart: {calls:?}");
    find_by_id(&calls, &d_id, "GET /api/calls after the restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_a_burst_loses_no_published_call() {
    let mut env = Env::start(DaemonOptions {
        ring_timeout: "300ms".into(),
        mask_numbers: false,
        ..DaemonOptions::default()
    })
    .await;
    let seed = nanos();
    let kill_at = 60 + (seed % 60) as usize;
    let kill_delay = Duration::from_millis((seed / 60) % 450);
    eprintln!("burst: kill -9 at call {kill_at}, {kill_delay:?} after its RING");

    let number = |i: usize| format!("1390000{i:04}");
    let mut i = 0;
    while i < 200 {
        let n = number(i);
        env.modem.caller_id(Some(&n), Some("BURST")).await;
        env.modem.ring().await;
        if i == kill_at {
            tokio::time::sleep(kill_delay).await;
            env.daemon.kill9();
            i += 1;
            break;
        }
        let nn = n.clone();
        env.watch
            .wait_event(
                TOPIC_CALL,
                &format!("call.ended for {n} (burst call {i})"),
                STEP,
                move |e| e["type"] == "call.ended" && e["call"]["number"] == nn.as_str(),
            )
            .await;
        i += 1;
    }
    let ended_before_kill = env.watch.events_of(TOPIC_CALL, "call.ended").len();
    assert!(
        ended_before_kill >= kill_at,
        "at least {kill_at} call.ended before the kill, saw {ended_before_kill}"
    );

    env.restart_daemon().await;

    // The rest of the burst after the restart.
    let first_after = i;
    while i < 200 {
        let n = number(i);
        env.modem.caller_id(Some(&n), Some("BURST")).await;
        env.modem.ring().await;
        let nn = n.clone();
        env.watch
            .wait_event(
                TOPIC_CALL,
                &format!("call.ended for {n} (burst call {i})"),
                STEP,
                move |e| e["type"] == "call.ended" && e["call"]["number"] == nn.as_str(),
            )
            .await;
        i += 1;
    }

    let calls = env.daemon.calls();
    let stored = ids(&calls, "id");
    assert_eq!(
        stored.len(),
        calls.len(),
        "GET /api/calls lists a call twice"
    );
    let published: BTreeSet<String> = env
        .watch
        .events_of(TOPIC_CALL, "call.ended")
        .iter()
        .filter_map(|e| e["call"]["id"].as_str().map(str::to_string))
        .collect();
    let lost: Vec<&String> = published.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} calls whose call.ended was published are missing from GET /api/calls after \
         kill -9 and restart (kill at call {kill_at} + {kill_delay:?}): {lost:?}; \
         {} calls stored, {} call.ended ids published",
        lost.len(),
        stored.len(),
        published.len()
    );
    for j in first_after..200 {
        assert!(
            calls.iter().any(|c| c["number"] == number(j).as_str()),
            "call {j} ({}) after the restart is not in GET /api/calls",
            number(j)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage_loses_no_event() {
    let mut env = Env::start_durable(DaemonOptions {
        ring_timeout: "300ms".into(),
        mask_numbers: false,
        ..DaemonOptions::default()
    })
    .await;
    let number = |i: usize| format!("1370000{i:04}");
    for i in 0..50 {
        if i == 15 {
            env.broker.stop();
        }
        if i == 35 {
            env.broker.start();
        }
        let n = number(i);
        env.modem.caller_id(Some(&n), Some("OUTAGE")).await;
        env.modem.ring().await;
        env.daemon.wait_call_ended_http(&n);
    }
    assert!(
        env.watch.connacks() >= 2,
        "the watcher should have reconnected after the broker restart"
    );

    env.watch
        .wait_until(
            "call.ended and task.created on MQTT for all 50 calls",
            LONG,
            |msgs| {
                let (ended, created) = ended_and_created(msgs);
                (0..50).all(|i| ended.contains(&number(i)) && created.contains(&number(i)))
            },
        )
        .await;
    let ringing: BTreeSet<String> = env
        .watch
        .events_of(TOPIC_CALL, "call.ringing")
        .iter()
        .filter_map(|e| e["call"]["number"].as_str().map(str::to_string))
        .collect();
    for i in 0..50 {
        assert!(
            ringing.contains(&number(i)),
            "call.ringing for call {i} ({}) never arrived",
            number(i)
        );
    }

    let events = distinct_events(&env.watch.messages());
    for e in &events {
        assert_event_envelope(e);
    }
    assert_seq_contiguous(&events);
    let calls = env.daemon.calls();
    assert_eq!(calls.len(), 50, "GET /api/calls must hold the 50 calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_while_the_daemon_restarts_loses_no_event() {
    let mut env = Env::start_durable(DaemonOptions {
        ring_timeout: "300ms".into(),
        mask_numbers: false,
        ..DaemonOptions::default()
    })
    .await;
    let number = |i: usize| format!("1360000{i:04}");
    async fn missed_calls(env: &mut Env, numbers: impl Iterator<Item = String>) {
        for n in numbers {
            env.modem.caller_id(Some(&n), Some("RESTART")).await;
            env.modem.ring().await;
            env.daemon.wait_call_ended_http(&n);
        }
    }
    missed_calls(&mut env, (0..5).map(number)).await;
    // The broker goes away; calls go on; the daemon is killed and started again; more calls.
    env.broker.stop();
    missed_calls(&mut env, (5..15).map(number)).await;
    env.daemon.kill9();
    env.restart_daemon().await;
    missed_calls(&mut env, (15..25).map(number)).await;
    env.broker.start();
    env.watch
        .wait_until(
            "call.ended and task.created on MQTT for all 25 calls after the outage",
            LONG,
            |msgs| {
                let (ended, created) = ended_and_created(msgs);
                (0..25).all(|i| ended.contains(&number(i)) && created.contains(&number(i)))
            },
        )
        .await;
    let events = distinct_events(&env.watch.messages());
    for e in &events {
        assert_event_envelope(e);
    }
    assert_seq_contiguous(&events);
}

// ---------------------------------------------------------------------------------------
// The serial line
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serial_link_loss_and_return() {
    let mut env = Env::start(DaemonOptions::default()).await;
    let from = env.watch.mark();
    env.pty.kill();

    let (down_idx, down) = env.wait_line_state(from, "down").await;
    assert_eq!(down["line"], LINE, "line state: {down}");
    env.watch
        .wait_for_from(from, "an alert.line_down on the alert topic", STEP, |m| {
            m.topic == TOPIC_ALERT && m.json().is_some_and(|a| a["type"] == "alert.line_down")
        })
        .await;
    env.daemon.wait_link("down");
    // The down state is retained: a new subscriber gets it at once.
    let fresh = MqttWatch::start(env.broker.port()).await;
    fresh
        .wait_for(
            "the retained line state `down` for a new subscriber",
            STEP,
            |m| {
                m.topic == TOPIC_LINE_STATE
                    && m.retain
                    && m.json().is_some_and(|v| v["state"] == "down")
            },
        )
        .await;
    drop(fresh);
    env.daemon.assert_running("after the serial link was lost");

    env.pty.restart();
    env.modem = open_modem(&env.pty).await;
    wait_modem_initialized(&env.modem).await;
    assert!(
        env.modem.is_running(),
        "the simulated modem stopped before the daemon initialized it again"
    );
    env.wait_line_state(down_idx + 1, "idle").await;
    env.daemon.wait_link("up");

    let number = "13811112222";
    let from = env.watch.mark();
    env.ring_with_caller_id(number, "AFTER REPLUG").await;
    let ringing = env.wait_ringing(from, &masked(number)).await;
    let call_id = str_of(&ringing["call"]["id"], "call.id").to_string();
    env.wait_call_event(&call_id, "call.ended").await;
    let calls = env.daemon.calls();
    assert_eq!(
        find_by_id(&calls, &call_id, "GET /api/calls")["number"],
        number
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_serial_line_is_survived() {
    let mut env = Env::start(DaemonOptions::default()).await;

    let seed = 0x5eed_1234_abcd_0001;
    env.modem.raw(pseudo_random_bytes(seed, 1 << 20)).await;
    // Overlong lines: a caller-ID field that never ends, then a huge line that does.
    let mut long = b"\r\nNMBR = ".to_vec();
    long.extend(std::iter::repeat_n(b'7', 200_000));
    long.extend(std::iter::repeat_n(b'A', 300_000));
    long.extend_from_slice(b"\r\n");
    long.extend(std::iter::repeat_n(b'R', 100_000));
    long.extend_from_slice(b"ING\r\n");
    env.modem.raw(long).await;
    env.modem.raw(b"\r\n\r\n".to_vec()).await;

    env.daemon
        .assert_running("after 1 MB of random bytes and overlong lines");
    env.daemon.wait_healthy();
    env.daemon.wait_link("up");

    let number = "13722223333";
    let from = env.watch.mark();
    env.ring_with_caller_id(number, "LI SI").await;
    let ringing = env.wait_ringing(from, &masked(number)).await;
    assert_eq!(
        ringing["call"]["name"], "LI SI",
        "call.ringing after garbage: {ringing}"
    );
    let call_id = str_of(&ringing["call"]["id"], "call.id").to_string();
    let ended = env.wait_call_event(&call_id, "call.ended").await;
    assert_eq!(
        ended["call"]["outcome"], "missed",
        "call.ended after garbage: {ended}"
    );
    let calls = env.daemon.calls();
    assert_eq!(
        find_by_id(&calls, &call_id, "GET /api/calls")["number"],
        number
    );
    env.daemon.assert_running("at the end of the garbage test");
}

// ---------------------------------------------------------------------------------------
// HTTP and status
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_requires_a_valid_token() {
    let env = Env::start(DaemonOptions::default()).await;
    let token = env.daemon.token("auth-test");
    let good = format!("Bearer {token}");
    let wrong = format!("Bearer {}x", token);
    let cases: Vec<(&str, Option<&str>)> = vec![
        ("no Authorization header", None),
        ("a wrong token", Some(wrong.as_str())),
        ("a made-up token", Some("Bearer not-a-token")),
        ("an empty bearer", Some("Bearer ")),
        ("the token without `Bearer`", Some(token.as_str())),
        ("Basic auth", Some("Basic YWxpY2U6c2VjcmV0")),
    ];
    for path in [
        "/api/calls",
        "/api/tasks?state=all",
        "/api/tasks?state=open",
    ] {
        for (what, auth) in &cases {
            let resp = env.daemon.get_with(path, *auth);
            assert_eq!(
                resp.status,
                401,
                "GET {path} with {what} must be 401, got {}: {}",
                resp.status,
                clip(&resp.body, 500)
            );
            assert!(
                !resp.body.trim_start().starts_with('['),
                "GET {path} with {what} must return no data: {}",
                clip(&resp.body, 500)
            );
        }
        let ok = env.daemon.get_with(path, Some(&good));
        assert_eq!(ok.status, 200, "GET {path} with a valid token: {}", ok.body);
    }
    for (what, auth) in &cases {
        let resp = env.daemon.post_json_with(
            "/api/tasks/nonexistent/done",
            *auth,
            &json!({"by": "mallory", "note": "x"}),
        );
        assert_eq!(
            resp.status,
            401,
            "POST /api/tasks/nonexistent/done with {what} must be 401, got {}: {}",
            resp.status,
            clip(&resp.body, 500)
        );
    }
    let health = env.daemon.get_with("/healthz", None);
    assert_eq!(
        health.status, 200,
        "/healthz needs no token: {}",
        health.body
    );
}

/// `linekeeper token create NAME` makes a viewer: it reads, and every change it tries is 403 with an audit entry; a
/// token made `--role agent` works tasks but may not reload the configuration or export the directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_roles_limit_what_the_api_does() {
    let env = Env::start(DaemonOptions::default()).await;
    let out = env.daemon.cli(&["token", "create", "wallboard"]);
    assert_eq!(out.code, Some(0), "{out}");
    let viewer = format!("Bearer {}", out.stdout.trim());
    let agent = format!("Bearer {}", env.daemon.token_with_role("desk", "agent"));
    let admin = format!("Bearer {}", env.daemon.token("admin"));
    let calls = env.daemon.get_with("/api/calls", Some(&viewer));
    assert_eq!(calls.status, 200, "a viewer reads calls: {}", calls.body);
    let complaint = json!({"number": "13900001111", "note": "broken"});
    let refused = env
        .daemon
        .post_json_with("/api/complaints", Some(&viewer), &complaint);
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused.body.contains("forbidden") && refused.body.contains("viewer"),
        "the refusal says why: {}",
        refused.body
    );
    let opened = env
        .daemon
        .post_json_with("/api/complaints", Some(&agent), &complaint);
    assert_eq!(
        opened.status, 200,
        "an agent opens a complaint: {}",
        opened.body
    );
    for (method, path) in [("POST", "/api/reload"), ("GET", "/api/customers/export")] {
        let resp = if method == "POST" {
            env.daemon.post_json_with(path, Some(&agent), &json!({}))
        } else {
            env.daemon.get_with(path, Some(&agent))
        };
        assert_eq!(resp.status, 403, "an agent: {method} {path}: {}", resp.body);
    }
    let export = env.daemon.get_with("/api/customers/export", Some(&admin));
    assert_eq!(export.status, 200, "{}", export.body);
    let bad = env.daemon.cli(&["token", "create", "x", "--role", "owner"]);
    assert_ne!(bad.code, Some(0), "an unknown role is refused: {bad}");
    assert!(bad.stderr.contains("viewer"), "it names the roles: {bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_state_and_health() {
    let env = Env::start(DaemonOptions::default()).await;
    let fresh = MqttWatch::start(env.broker.port()).await;
    fresh
        .wait_for("retained status `online`", STEP, |m| {
            m.topic == TOPIC_STATUS && m.retain && m.payload == "online"
        })
        .await;
    let state = fresh
        .wait_for("retained line state `idle`", STEP, |m| {
            m.topic == TOPIC_LINE_STATE
                && m.retain
                && m.json().is_some_and(|v| v["state"] == "idle")
        })
        .await
        .json()
        .expect("JSON");
    assert_eq!(state["line"], LINE, "line state: {state}");
    assert!(
        state["since"].is_string(),
        "line state without since: {state}"
    );
    let queue = fresh
        .wait_for("a retained queue summary", STEP, |m| {
            m.topic == TOPIC_QUEUE && m.retain && m.json().is_some()
        })
        .await
        .json()
        .expect("JSON");
    for key in [
        "ringing",
        "talking",
        "open_tasks",
        "overdue_tasks",
        "agents_available",
        "offered",
        "answered",
        "missed",
        "service_level_pct",
        "asa_s",
    ] {
        assert!(
            queue.get(key).is_some(),
            "the queue summary lacks {key:?}: {queue}"
        );
    }

    let health = env.daemon.health();
    assert!(
        health["status"].is_string(),
        "/healthz without status: {health}"
    );
    assert!(
        health.get("mqtt").is_some(),
        "/healthz without mqtt: {health}"
    );
    assert!(
        health.get("store").is_some(),
        "/healthz without store: {health}"
    );
    let lines = health["lines"]
        .as_array()
        .unwrap_or_else(|| panic!("/healthz lines is not an array: {health}"));
    let line = lines
        .iter()
        .find(|l| l["id"] == LINE)
        .unwrap_or_else(|| panic!("/healthz lists no {LINE}: {health}"));
    assert_eq!(line["link"], "up", "/healthz line link: {health}");
}

// ---------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------

#[test]
fn check_config_reports_unknown_key_and_bad_duration() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = render_config(
        &DaemonOptions {
            callback_due: "soonish".into(),
            ..DaemonOptions::default()
        },
        &dir.path().join("store"),
        &dir.path().join("ttyFAKE"),
        1883,
        8080,
    )
    .replace(
        "name = \"Test office\"\n",
        "name = \"Test office\"\ncolour = \"blue\"\n",
    );
    assert!(text.contains("colour"));
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text).expect("write config");
    let out = linekeeper_cli(&["check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(
        out.code,
        Some(2),
        "check-config on a bad config must exit 2:\n{out}"
    );
    let all = out.all();
    let line_with = |needle: &str| all.lines().find(|l| l.contains(needle)).map(str::to_string);
    let unknown = line_with("colour")
        .unwrap_or_else(|| panic!("check-config must name the unknown key `site.colour`:\n{out}"));
    let duration = line_with("callback_due").unwrap_or_else(|| {
        panic!("check-config must name the bad duration `policy.callback_due`:\n{out}")
    });
    assert_ne!(
        unknown, duration,
        "each problem goes on its own line:\n{out}"
    );
}

#[test]
fn example_config_passes_check_config() {
    let example = workspace_root().join("config/linekeeper.example.toml");
    assert!(
        example.is_file(),
        "{} must exist (the documented example config)",
        example.display()
    );
    let out = linekeeper_cli(&["check-config", "--config", example.to_str().unwrap()]);
    assert_eq!(
        out.code,
        Some(0),
        "the example config must pass check-config:\n{out}"
    );
}

#[test]
fn check_config_accepts_the_test_config() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = render_config(
        &DaemonOptions::default(),
        &dir.path().join("store"),
        &dir.path().join("ttyFAKE"),
        1883,
        8080,
    );
    let path = dir.path().join("good.toml");
    std::fs::write(&path, text).expect("write config");
    let out = linekeeper_cli(&["check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(
        out.code,
        Some(0),
        "the config the e2e tests use must pass check-config:\n{out}"
    );
}

// ---------------------------------------------------------------------------------------
// The harness itself (no daemon): so a harness fault is not mistaken for a daemon fault
// ---------------------------------------------------------------------------------------

async fn read_until<R: tokio::io::AsyncRead + Unpin>(io: &mut R, needle: &str, seen: &mut String) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 256];
    let deadline = tokio::time::Instant::now() + STEP;
    while !seen.contains(needle) {
        match tokio::time::timeout_at(deadline, io.read(&mut buf)).await {
            Ok(Ok(0)) => panic!("EOF while waiting for {needle:?}; read so far: {seen:?}"),
            Ok(Ok(n)) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            Ok(Err(e)) => panic!("read error while waiting for {needle:?}: {e}; read: {seen:?}"),
            Err(_) => panic!("timed out waiting for {needle:?}; read so far: {seen:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_peers_work() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_serial::SerialPortBuilderExt;

    // Broker, persistent watcher, and a publisher across a broker restart.
    let mut broker = Mosquitto::launch_persistent();
    let watch = MqttWatch::start_persistent(broker.port()).await;
    let publish = |port: u16, payload: &'static str| async move {
        let mut opts = rumqttc::MqttOptions::new(format!("e2e-pub-{payload}"), "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(5));
        let (client, mut eventloop) = rumqttc::AsyncClient::new(opts, 10);
        client
            .publish(
                "linekeeper/selftest",
                rumqttc::QoS::AtLeastOnce,
                false,
                payload,
            )
            .await
            .expect("queue the publish");
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            match tokio::time::timeout_at(deadline, eventloop.poll()).await {
                Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)))) => break,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => panic!("publisher error: {e}"),
                Err(_) => panic!("no PUBACK for {payload} within {STEP:?}"),
            }
        }
    };
    publish(broker.port(), "one").await;
    watch
        .wait_for("selftest `one`", STEP, |m| m.payload == "one")
        .await;
    broker.stop();
    broker.start();
    publish(broker.port(), "two").await;
    watch
        .wait_for("selftest `two` after the broker restart", LONG, |m| {
            m.payload == "two"
        })
        .await;
    assert!(watch.connacks() >= 2, "the watcher reconnected");

    // The pty pair and the simulated modem.
    let mut pty = PtyPair::new();
    let modem = open_modem(&pty).await;
    let mut port = tokio_serial::new(pty.daemon_side().to_string_lossy(), 115_200)
        .open_native_async()
        .expect("open the daemon side");
    let mut seen = String::new();
    port.write_all(b"ATZ\r").await.expect("write ATZ");
    read_until(&mut port, "OK", &mut seen).await;
    port.write_all(b"AT+VCID=1\r").await.expect("write VCID");
    read_until(&mut port, "VCID=1", &mut seen).await;
    tokio::time::timeout(STEP, modem.wait_initialized())
        .await
        .expect("modem initialized");
    modem.ring().await;
    read_until(&mut port, "RING", &mut seen).await;

    pty.kill();
    assert!(!pty.daemon_side().exists(), "the daemon-side link is gone");
    let mut buf = [0u8; 64];
    let eof = tokio::time::timeout(STEP, port.read(&mut buf)).await;
    assert!(
        matches!(eof, Ok(Ok(0)) | Ok(Err(_))),
        "the daemon side must see EOF or an error once socat is gone: {eof:?}"
    );
    drop(port);
    drop(modem);

    pty.restart();
    let modem = open_modem(&pty).await;
    let mut port = tokio_serial::new(pty.daemon_side().to_string_lossy(), 115_200)
        .open_native_async()
        .expect("open the daemon side again");
    let mut seen = String::new();
    port.write_all(b"ATZ\r").await.expect("write ATZ");
    read_until(&mut port, "OK", &mut seen).await;
    modem.caller_id(Some("13800138000"), Some("TEST")).await;
    read_until(&mut port, "NMBR = 13800138000", &mut seen).await;
}
