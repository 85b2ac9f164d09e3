//! The box as a well-behaved MQTT device: Home Assistant discovery (retained, resent when Home Assistant comes
//! online), and two boxes on one broker without collisions, each one's events complete and in order.

use std::time::Duration;

use linekeeper_e2e::*;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use serde_json::Value;

const DISCOVERY: &str = "homeassistant/device/linekeeper_hq/config";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_assistant_discovery_is_retained_and_resent_when_it_comes_online() {
    let env = Env::start(DaemonOptions::default()).await;
    let ha = MqttWatch::start_topic(env.broker.port(), "homeassistant/#").await;
    let m = ha
        .wait_for("the retained discovery message", STEP, |m| {
            m.topic == DISCOVERY && m.retain
        })
        .await;
    let p = m.json().expect("discovery is JSON");
    assert_eq!(p["dev"]["ids"][0], "linekeeper_hq");
    assert_eq!(
        p["avty_t"], TOPIC_STATUS,
        "availability follows the box's status and last will"
    );
    let cmps = p["cmps"].as_object().unwrap();
    let state = &cmps["linekeeper_hq_line1_state"];
    assert_eq!(
        (state["p"].as_str(), state["stat_t"].as_str()),
        (Some("sensor"), Some(TOPIC_LINE_STATE))
    );
    assert_eq!(cmps["linekeeper_hq_line1_ringing"]["p"], "binary_sensor");
    assert_eq!(cmps["linekeeper_hq_calls"]["p"], "event");
    assert_eq!(cmps["linekeeper_hq_open_tasks"]["stat_t"], TOPIC_QUEUE);

    // Home Assistant restarts and says so: the box announces itself again.
    let before = ha.on(DISCOVERY).len();
    let mut o = MqttOptions::new("e2e-fake-ha", "127.0.0.1", env.broker.port());
    o.set_keep_alive(Duration::from_secs(30));
    let (c, mut el) = AsyncClient::new(o, 8);
    tokio::spawn(async move { while el.poll().await.is_ok() {} });
    c.publish("homeassistant/status", QoS::AtLeastOnce, false, "online")
        .await
        .unwrap();
    ha.wait_until("discovery sent again", STEP, |msgs| {
        msgs.iter().filter(|m| m.topic == DISCOVERY).count() > before
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_boxes_share_a_broker_without_collisions() {
    let mut hq = Env::start(DaemonOptions {
        ring_timeout: "300ms".into(),
        mask_numbers: false,
        ..Default::default()
    })
    .await;
    // A second box (site "branch") on the same broker, with its own line.
    let pty = PtyPair::new();
    let modem = open_modem(&pty).await;
    let mut branch = Daemon::new(
        &DaemonOptions {
            ring_timeout: "300ms".into(),
            mask_numbers: false,
            ..Default::default()
        },
        pty.daemon_side(),
        hq.broker.port(),
    );
    let text = std::fs::read_to_string(branch.config_path())
        .unwrap()
        .replacen("id = \"hq\"", "id = \"branch\"", 1);
    std::fs::write(branch.config_path(), text).unwrap();
    branch.start();
    wait_modem_initialized(&modem).await;
    branch.wait_link("up");
    branch.authorize();
    let all = MqttWatch::start_topic(hq.broker.port(), "#").await;

    for i in 0..10 {
        let (a, b) = (format!("1310000{i:04}"), format!("1320000{i:04}"));
        hq.modem.caller_id(Some(&a), Some("HQ")).await;
        hq.modem.ring().await;
        modem.caller_id(Some(&b), Some("BRANCH")).await;
        modem.ring().await;
        hq.daemon.wait_call_ended_http(&a);
        branch.wait_call_ended_http(&b);
    }
    for site in ["hq", "branch"] {
        let prefix = format!("linekeeper/{site}/");
        let want = if site == "hq" { "131" } else { "132" };
        all.wait_until(&format!("10 task.created on {site}"), LONG, |msgs| {
            msgs.iter()
                .filter(|m| m.topic == format!("{prefix}events/task"))
                .filter_map(|m| m.json())
                .filter(|v| v["type"] == "task.created")
                .count()
                >= 10
        })
        .await;
        let msgs: Vec<MqttMsg> = all
            .messages()
            .into_iter()
            .filter(|m| m.topic.starts_with(&prefix))
            .collect();
        let events = distinct_events(&msgs);
        assert!(!events.is_empty());
        assert_seq_contiguous(&events);
        for e in &events {
            if let Some(n) = e["call"]["number"]
                .as_str()
                .or(e["task"]["number"].as_str())
            {
                assert!(
                    n.starts_with(want),
                    "{site} published another box's call: {e}"
                );
            }
        }
        let status: Vec<&MqttMsg> = msgs
            .iter()
            .filter(|m| m.topic == format!("{prefix}status"))
            .collect();
        assert_eq!(
            status.last().map(|m| m.payload.as_str()),
            Some("online"),
            "{site} is online"
        );
    }
    let ids: Vec<Value> = all
        .messages()
        .iter()
        .filter(|m| m.topic.starts_with("homeassistant/device/"))
        .map(|m| m.json().unwrap()["dev"]["ids"][0].clone())
        .collect();
    assert!(
        ids.contains(&Value::from("linekeeper_hq"))
            && ids.contains(&Value::from("linekeeper_branch")),
        "{ids:?}"
    );
    branch.assert_running("at the end");
}

/// A broker outage while 10,000 events pile up in the outbox: all delivered afterwards, in seq order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_events_queued_during_an_outage_all_arrive_in_order() {
    let mut env = Env::start_durable(DaemonOptions {
        mask_numbers: false,
        ..Default::default()
    })
    .await;
    let first_seq = env.daemon.health()["last_seq"].as_u64().unwrap();
    env.broker.stop();
    // Answered calls: call.ringing, call.answered, call.ended = 3 events each; 3,334 calls > 10,000 events.
    let calls = 3334;
    for chunk in 0..(calls / 200 + 1) {
        let mut burst = Vec::new();
        for i in chunk * 200..((chunk + 1) * 200).min(calls) {
            burst.extend_from_slice(
                format!("RING\r\nNMBR = 1390{i:07}\r\nNAME = OUTAGE\r\nOFFHOOK\r\nONHOOK\r\n")
                    .as_bytes(),
            );
        }
        env.modem.raw(burst).await;
    }
    let deadline = std::time::Instant::now() + LONG;
    let last = loop {
        let last = env.daemon.health()["last_seq"].as_u64().unwrap();
        if last >= first_seq + 3 * calls as u64 {
            break last;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon committed only up to seq {last}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    env.broker.start();
    env.watch
        .wait_for_each(
            &format!("every event up to seq {last} on MQTT"),
            Duration::from_secs(240),
            |m| m.topic == TOPIC_CALL && m.json().is_some_and(|v| v["seq"].as_u64() == Some(last)),
        )
        .await;
    let events: Vec<Value> = distinct_events(&env.watch.messages())
        .into_iter()
        .filter(|e| e["seq"].as_u64().is_some_and(|s| s > first_seq))
        .collect();
    assert!(
        events.len() as u64 >= last - first_seq,
        "{} events for seqs {first_seq}..={last}",
        events.len()
    );
    assert_seq_contiguous(&events);
}
