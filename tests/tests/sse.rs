//! The server-sent event stream as a browser or `curl -N` reads it: events as they happen, with full numbers, and a
//! client that reconnects with `Last-Event-ID` gets what it missed.

use std::io::{BufRead, BufReader};
use std::sync::mpsc;

use linekeeper_e2e::*;
use serde_json::Value;

/// Opens `/api/events` and hands every (id, event, data) to the returned channel.
fn stream(
    url: String,
    token: String,
    last_event_id: Option<u64>,
) -> mpsc::Receiver<(u64, String, Value)> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut req = ureq::get(&url).set("Authorization", &format!("Bearer {token}"));
        if let Some(id) = last_event_id {
            req = req.set("Last-Event-ID", &id.to_string());
        }
        let resp = req.call().expect("open the event stream");
        assert_eq!(resp.header("content-type"), Some("text/event-stream"));
        let (mut id, mut event) = (0, String::new());
        for line in BufReader::new(resp.into_reader()).lines() {
            let Ok(line) = line else { return };
            if let Some(v) = line.strip_prefix("id:") {
                id = v.trim().parse().unwrap_or(0);
            } else if let Some(v) = line.strip_prefix("event:") {
                event = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                let data: Value = serde_json::from_str(v.trim()).expect("event data is JSON");
                if tx.send((id, event.clone(), data)).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

fn next_of(rx: &mpsc::Receiver<(u64, String, Value)>, kind: &str) -> (u64, Value) {
    loop {
        let (id, event, data) = rx
            .recv_timeout(STEP)
            .unwrap_or_else(|_| panic!("no {kind} on the stream within {STEP:?}"));
        if event == kind {
            return (id, data);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_live_and_resume_with_last_event_id() {
    let env = Env::start(DaemonOptions::default()).await;
    let token = env.daemon.token("sse");
    let url = env.daemon.url("/api/events");
    // Resuming from the current seq: events that happen while the stream is still connecting are not missed.
    let last = env.daemon.health()["last_seq"].as_u64().unwrap();
    let live = stream(url.clone(), token.clone(), Some(last));
    env.ring_with_caller_id("13800138000", "SSE").await;
    let (id, ringing) = tokio::task::spawn_blocking(move || next_of(&live, "call.ringing"))
        .await
        .unwrap();
    assert_eq!(
        ringing["seq"].as_u64(),
        Some(id),
        "the SSE id is the event's seq"
    );
    assert_eq!(
        ringing["call"]["number"], "13800138000",
        "numbers are whole for token holders"
    );
    // A client that saw up to the event before it reconnects and gets this one again, and what follows.
    let resumed = stream(url, token, Some(id - 1));
    let (again, data) = tokio::task::spawn_blocking(move || next_of(&resumed, "call.ringing"))
        .await
        .unwrap();
    assert_eq!(
        (again, data["event_id"].clone()),
        (id, ringing["event_id"].clone())
    );
}
