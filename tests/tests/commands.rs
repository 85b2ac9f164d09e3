//! Supervisors' commands over MQTT against a real mosquitto: a complaint's whole life driven by `cmd/complaint`
//! and `cmd/task`, answered on `cmd/result`, published on `events/task` in order and visible in the API; and
//! every kind of bad command answered with an error that changes nothing.

use std::time::Duration;

use linekeeper_e2e::*;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use serde_json::{json, Value};

const CMD_TASK: &str = "linekeeper/hq/cmd/task";
const CMD_COMPLAINT: &str = "linekeeper/hq/cmd/complaint";
const RESULT: &str = "linekeeper/hq/cmd/result";

async fn commander(port: u16) -> AsyncClient {
    let mut o = MqttOptions::new(
        format!("e2e-commander-{}", std::process::id()),
        "127.0.0.1",
        port,
    );
    o.set_keep_alive(Duration::from_secs(30));
    let (client, mut el) = AsyncClient::new(o, 16);
    tokio::spawn(async move { while el.poll().await.is_ok() {} });
    client
}

async fn send(c: &AsyncClient, topic: &str, payload: impl Into<Vec<u8>>) {
    c.publish(topic, QoS::AtLeastOnce, false, payload.into())
        .await
        .expect("publish a command");
}

/// Waits for the answer to `request_id`.
async fn result(env: &Env, request_id: &str) -> Value {
    let id = request_id.to_string();
    let m = env
        .watch
        .wait_for(&format!("the answer to {request_id}"), STEP, move |m| {
            m.topic == RESULT && m.json().is_some_and(|v| v["request_id"] == id.as_str())
        })
        .await;
    m.json().unwrap()
}

async fn ok(env: &Env, request_id: &str) -> Value {
    let r = result(env, request_id).await;
    assert_eq!(r["ok"], true, "command {request_id} failed: {r}");
    r["task"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complaint_lives_its_whole_life_over_mqtt_commands() {
    let env = Env::start(DaemonOptions::default()).await;
    let c = commander(env.broker.port()).await;
    // the daemon subscribes to its command topics on connecting; wait for its retained birth message first
    env.watch
        .wait_for("status online", STEP, |m| {
            m.topic == TOPIC_STATUS && m.payload == "online"
        })
        .await;

    send(
        &c,
        CMD_COMPLAINT,
        json!({"request_id":"open-1","number":"13912345678","note":"parcel broken","by":"alice"})
            .to_string(),
    )
    .await;
    let t = ok(&env, "open-1").await;
    assert_eq!(t["kind"], "complaint");
    assert_eq!(t["number"], "139****5678", "numbers are masked on MQTT");
    let id = t["id"].as_str().unwrap().to_string();

    send(
        &c,
        CMD_TASK,
        json!({"request_id":"r-2","task_id":id,"action":"respond","promised_fix":"48h","by":"bob"})
            .to_string(),
    )
    .await;
    assert_eq!(ok(&env, "r-2").await["stage"], "in_progress");
    send(
        &c,
        CMD_TASK,
        json!({"request_id":"r-3","task_id":id,"action":"resolve","by":"bob"}).to_string(),
    )
    .await;
    assert_eq!(ok(&env, "r-3").await["state"], "done");
    let followup = env
        .watch
        .wait_event(TOPIC_TASK, "the follow-up's task.created", STEP, |e| {
            e["type"] == "task.created" && e["task"]["kind"] == "followup"
        })
        .await;
    assert_eq!(followup["task"]["parent_id"].as_str(), Some(id.as_str()));
    let fid = followup["task"]["id"].as_str().unwrap().to_string();
    send(
        &c,
        CMD_TASK,
        json!({"request_id":"r-4","task_id":fid,"action":"followup_result","score":2}).to_string(),
    )
    .await;
    assert_eq!(ok(&env, "r-4").await["satisfaction"], 2);
    env.watch
        .wait_event(TOPIC_ALERT, "the complaint_reopened alert", STEP, |e| {
            e["alert"]["rule"] == "complaint_reopened"
        })
        .await;

    // The complaint's events, in order, on MQTT
    // (events go out in seq order, so the reopening task.updated came before its alert)
    let id2 = id.clone();
    let seen: Vec<String> = env
        .watch
        .events(TOPIC_TASK)
        .iter()
        .filter(|e| e["task"]["id"] == id2.as_str())
        .map(|e| {
            format!(
                "{} {}",
                e["type"].as_str().unwrap(),
                e["task"]["state"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            "task.created open",
            "task.updated open",
            "task.done done",
            "task.updated open"
        ],
        "the complaint's life on MQTT"
    );
    // and in the API, with its full history
    let task = env.daemon.get(&format!("/api/tasks/{id}")).json();
    assert_eq!(
        (task["state"].as_str(), task["reopened"].as_u64()),
        (Some("open"), Some(1)),
        "{task}"
    );
    assert_eq!(task["number"], "13912345678", "the API shows numbers whole");
    assert_eq!(task["history"].as_array().unwrap().len(), 4, "{task}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_commands_get_errors_and_change_nothing() {
    let env = Env::start(DaemonOptions::default()).await;
    let c = commander(env.broker.port()).await;
    env.watch
        .wait_for("status online", STEP, |m| {
            m.topic == TOPIC_STATUS && m.payload == "online"
        })
        .await;
    let before = env.daemon.tasks("all").len();

    send(&c, CMD_TASK, "{ not json").await;
    send(
        &c,
        CMD_TASK,
        json!({"task_id":"X","action":"done"}).to_string(),
    )
    .await;
    env.watch
        .wait_until("two answers without request id", STEP, |msgs| {
            msgs.iter()
                .filter(|m| {
                    m.topic == RESULT && m.json().is_some_and(|v| v["request_id"].is_null())
                })
                .count()
                >= 2
        })
        .await;
    let cases = [
        (
            "u-1",
            CMD_TASK,
            json!({"request_id":"u-1","task_id":"NOPE","action":"done"}),
            "no task with id NOPE",
        ),
        (
            "u-2",
            CMD_TASK,
            json!({"request_id":"u-2","task_id":"NOPE","action":"explode"}),
            "bad task command",
        ),
        (
            "u-3",
            "linekeeper/hq/cmd/reboot",
            json!({"request_id":"u-3"}),
            "unknown command",
        ),
        (
            "u-4",
            CMD_COMPLAINT,
            json!({"request_id":"u-4"}),
            "needs a call_id",
        ),
        (
            "u-5",
            CMD_TASK,
            json!({"request_id":"u-5","action":"done"}),
            "needs `task_id`",
        ),
    ];
    for (_, topic, body, _) in &cases {
        send(&c, topic, body.to_string()).await;
    }
    for (id, _, _, want) in &cases {
        let r = result(&env, id).await;
        assert_eq!(r["ok"], false, "{id}: {r}");
        assert!(
            r["error"].as_str().unwrap().contains(want),
            "{id}: want `{want}` in {r}"
        );
    }
    // a duplicate request id is refused the second time
    send(
        &c,
        CMD_COMPLAINT,
        json!({"request_id":"dup","note":"rude agent"}).to_string(),
    )
    .await;
    ok(&env, "dup").await;
    send(
        &c,
        CMD_COMPLAINT,
        json!({"request_id":"dup","note":"rude agent"}).to_string(),
    )
    .await;
    env.watch
        .wait_until("the duplicate refused", STEP, |msgs| {
            msgs.iter().any(|m| {
                m.topic == RESULT
                    && m.json()
                        .is_some_and(|v| v["request_id"] == "dup" && v["ok"] == false)
            })
        })
        .await;
    assert_eq!(
        env.daemon.tasks("all").len(),
        before + 1,
        "only the one good complaint was opened"
    );
    // The daemon hears its own answers on cmd/result; it must never answer those.
    for m in env.watch.on(RESULT) {
        assert!(
            m.json().is_some_and(|v| v.get("ok").is_some()),
            "not an answer on {RESULT}: {:?}",
            m.payload
        );
    }
}

/// The dashboard button (Home Assistant's "Acknowledge all escalations") acknowledges every overdue task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ack_all_button_acknowledges_every_overdue_task() {
    let env = Env::start(DaemonOptions {
        ring_timeout: "300ms".into(),
        callback_due: "1s".into(),
        ..DaemonOptions::default()
    })
    .await;
    let c = commander(env.broker.port()).await;
    env.modem.caller_id(Some("13700000001"), Some("LATE")).await;
    env.modem.ring().await;
    let escalated = env
        .watch
        .wait_event(TOPIC_TASK, "task.escalated", STEP, |e| {
            e["type"] == "task.escalated"
        })
        .await;
    let id = escalated["task"]["id"].as_str().unwrap().to_string();
    send(&c, "linekeeper/hq/cmd/button", "ack_all").await;
    let r = result(&env, "button:ack_all").await;
    assert_eq!(
        (r["ok"].as_bool(), r["acknowledged"].as_u64()),
        (Some(true), Some(1)),
        "{r}"
    );
    let task = env.daemon.get(&format!("/api/tasks/{id}")).json();
    assert_eq!(task["acknowledged_by"], "dashboard", "{task}");
    send(&c, "linekeeper/hq/cmd/button", "explode").await;
    let r = result(&env, "button:explode").await;
    assert_eq!(r["ok"], false, "{r}");
}

/// `mqtt.command_role = "agent"`: commands an agent may give are carried out, a supervisor's are refused with
/// `forbidden` and change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_act_with_the_configured_role() {
    let env = Env::start(DaemonOptions {
        command_role: "agent".into(),
        ..DaemonOptions::default()
    })
    .await;
    let c = commander(env.broker.port()).await;
    env.watch
        .wait_for("status online", STEP, |m| {
            m.topic == TOPIC_STATUS && m.payload == "online"
        })
        .await;
    send(
        &c,
        CMD_COMPLAINT,
        json!({"request_id":"agent-1","number":"13800000009","note":"late"}).to_string(),
    )
    .await;
    let task = ok(&env, "agent-1").await;
    let id = task["id"].as_str().unwrap().to_string();
    send(
        &c,
        CMD_TASK,
        json!({"request_id":"agent-2","task_id":id,"action":"cancel"}).to_string(),
    )
    .await;
    let r = result(&env, "agent-2").await;
    assert_eq!(r["ok"], false, "{r}");
    assert!(
        r["error"].as_str().unwrap().starts_with("forbidden"),
        "an agent may not cancel: {r}"
    );
    send(&c, "linekeeper/hq/cmd/button", "ack_all").await;
    let r = result(&env, "button:ack_all").await;
    assert!(r["error"].as_str().unwrap().starts_with("forbidden"), "{r}");
    let t = env.daemon.get(&format!("/api/tasks/{id}")).json();
    assert_eq!(
        t["state"], "open",
        "the refused cancel changed nothing: {t}"
    );
}
