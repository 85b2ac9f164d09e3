//! Small-disk honesty (issue 10 item 5): a store that cannot make a change durable degrades the box, says so on
//! `/healthz`, on MQTT (`P/health`, `alert.store_failing`) and acknowledges nothing; when the disk works again the
//! held events follow in `seq` order, without a restart.
//!
//! The daemon runs with its config and store on `powerfs` (the project's FUSE disk model), whose syncs or writes
//! are made to fail on command: EIO from `fsync`, as a dying SD card gives, and ENOSPC from writes, as a full one.

use std::time::Duration;

use linekeeper_e2e::powerfs::PowerFs;
use linekeeper_e2e::{
    open_modem, test_dir, wait_modem_initialized, Daemon, DaemonOptions, Mosquitto, MqttWatch,
    PtyPair, STEP, TOPIC_ALERT, TOPIC_CALL,
};
use serde_json::Value;

const TOPIC_HEALTH: &str = "linekeeper/hq/health";

struct Rig {
    fs: PowerFs,
    // Dropped in this order: the daemon before the mount it runs on.
    daemon: Daemon,
    _mounted: linekeeper_e2e::powerfs::Mounted,
    _mnt: tempfile::TempDir,
    modem: linekeeper::adapters::modem::sim::SimModem,
    _pty: PtyPair,
    watch: MqttWatch,
    _broker: Mosquitto,
}

async fn rig() -> Rig {
    let broker = Mosquitto::launch();
    let watch = MqttWatch::start_topic(broker.port(), "linekeeper/#").await;
    let pty = PtyPair::new();
    let modem = open_modem(&pty).await;
    let fs = PowerFs::new();
    let mnt = test_dir("lk-storefail-mnt-");
    let mounted = fs
        .mount(mnt.path())
        .unwrap_or_else(|e| panic!("mounting powerfs on {}: {e}", mnt.path().display()));
    let opts = DaemonOptions {
        mask_numbers: false,
        ..Default::default()
    };
    let mut daemon = Daemon::new_at(
        &opts,
        pty.daemon_side(),
        broker.port(),
        test_dir("lk-storefail-"),
        mnt.path().join("linekeeper.toml"),
        mnt.path().join("store"),
    );
    daemon.start();
    wait_modem_initialized(&modem).await;
    daemon.wait_link("up");
    daemon.authorize();
    Rig {
        fs,
        daemon,
        _mounted: mounted,
        _mnt: mnt,
        modem,
        _pty: pty,
        watch,
        _broker: broker,
    }
}

impl Rig {
    /// RING and the caller-ID block: the daemon commits `call.ringing`.
    async fn ring(&self, number: &str) {
        self.modem.ring().await;
        self.modem.caller_id(Some(number), Some("DISK TEST")).await;
    }

    async fn wait_health(&self, from: usize, status: &str) -> Value {
        let want = status.to_string();
        let m = self
            .watch
            .wait_for_from(from, &format!("{TOPIC_HEALTH} {status}"), STEP, move |m| {
                m.topic == TOPIC_HEALTH && m.json().is_some_and(|v| v["status"] == want.as_str())
            })
            .await;
        m.json().unwrap()
    }

    async fn wait_alert(&self, from: usize, kind: &str) -> Value {
        let k = kind.to_string();
        self.watch
            .wait_event_from(from, TOPIC_ALERT, kind, STEP, move |e| {
                e["type"] == k.as_str()
            })
            .await
    }

    /// Polls `/healthz` until its `status` is `want` and its `store` says `store_says`; returns (HTTP status, body).
    async fn wait_healthz(&mut self, want: &str, store_says: &str) -> (u16, Value) {
        let deadline = std::time::Instant::now() + STEP;
        loop {
            let r = self.daemon.get_with("/healthz", None);
            let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
            if v["status"] == want && v["store"].as_str().is_some_and(|t| t.contains(store_says)) {
                return (r.status, v);
            }
            self.daemon.assert_running("while waiting for /healthz");
            assert!(
                std::time::Instant::now() < deadline,
                "/healthz never said {want:?} with a store {store_says:?}; last: {} {}",
                r.status,
                r.body
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn call_events(&self, number: &str) -> Vec<Value> {
        self.watch
            .events(TOPIC_CALL)
            .into_iter()
            .filter(|e| e["call"]["number"] == number)
            .collect()
    }

    fn max_seq(&self) -> u64 {
        self.watch
            .events(TOPIC_CALL)
            .iter()
            .chain(self.watch.events("linekeeper/hq/events/task").iter())
            .filter_map(|e| e["seq"].as_u64())
            .max()
            .unwrap_or(0)
    }
}

async fn failing_then_healed(fail: impl Fn(&PowerFs), heal: impl Fn(&PowerFs), what: &str) {
    let mut r = rig().await;
    r.wait_health(0, "ok").await;
    // A call while all is well: it is published.
    r.ring("13900000001").await;
    // It ends when the ring timeout passes (a missed call, with its callback task).
    r.watch
        .wait_event(TOPIC_CALL, "call.ended before the failure", STEP, |e| {
            e["type"] == "call.ended" && e["call"]["number"] == "13900000001"
        })
        .await;
    let seq_before = r.max_seq();

    let mark = r.watch.mark();
    fail(&r.fs);
    r.ring("13900000002").await;
    // The commit of that call fails: degraded everywhere, with the reason. (A request in the instant between the
    // store closing and the engine reporting its failed commit sees "cannot be read"; wait for the engine's word.)
    let (code, health) = r.wait_healthz("degraded", "writes are failing since").await;
    assert_eq!(code, 503, "{what}: {health}");
    let store = health["store"].as_str().unwrap_or("");
    assert!(
        store.contains("writes are failing since") && store.contains("check free disk space"),
        "{what}: /healthz says why and what to do: {store}"
    );
    let h = r.wait_health(mark, "degraded").await;
    assert_eq!(h["store"], "failing", "{what}: {h}");
    assert!(h["error"].as_str().is_some_and(|e| !e.is_empty()), "{h}");
    let alert = r.wait_alert(mark, "alert.store_failing").await;
    assert_eq!(alert["alert"]["level"], "critical", "{alert}");
    assert!(
        alert.get("seq").is_none(),
        "a store alert cannot have a seq: {alert}"
    );
    // A client's token is never called bad because the disk fails: the API answers, or says 503 with why.
    let api = r.daemon.get("/api/calls?limit=5");
    assert!(
        api.status == 200 || (api.status == 503 && api.body.contains("cannot check the API token")),
        "{what}: GET /api/calls while the store fails: {} {}",
        api.status,
        api.body
    );
    // Nothing about the call that could not be stored was published...
    assert!(
        r.call_events("13900000002").is_empty(),
        "{what}: an event that is not durable was published: {:?}",
        r.call_events("13900000002")
    );
    // ...and a command is not acknowledged while its change cannot be made durable: it is held, and answered once
    // it is on disk (not "failed" now and done later).
    let cmd_mark = r.watch.mark();
    publish(
        &r,
        "linekeeper/hq/cmd/complaint",
        r#"{"request_id":"disk-1","number":"13900000003","note":"while the disk fails"}"#,
    )
    .await;
    // The engine has applied it (the queue counts the complaint beside the two callbacks, held in memory) and holds
    // it: no answer yet.
    r.watch
        .wait_for_from(cmd_mark, "P/queue with 3 open tasks", STEP, |m| {
            m.topic == "linekeeper/hq/queue" && m.json().is_some_and(|v| v["open_tasks"] == 3)
        })
        .await;
    let is_answer = |m: &linekeeper_e2e::MqttMsg| {
        m.topic == "linekeeper/hq/cmd/result"
            && m.json().is_some_and(|v| v["request_id"] == "disk-1")
    };
    assert!(
        !r.watch.messages_since(cmd_mark).iter().any(is_answer),
        "{what}: the command was answered while its change could not be written"
    );

    // The disk works again: without a restart, the held events follow, in seq order after the last one published.
    let mark = r.watch.mark();
    heal(&r.fs);
    let ringing = r
        .watch
        .wait_event_from(mark, TOPIC_CALL, "the held call.ringing", STEP, |e| {
            e["type"] == "call.ringing" && e["call"]["number"] == "13900000002"
        })
        .await;
    assert!(
        ringing["seq"].as_u64().unwrap() > seq_before,
        "{what}: seq {} after {seq_before}",
        ringing["seq"]
    );
    r.wait_alert(mark, "alert.store_recovered").await;
    let answer = r
        .watch
        .wait_for_from(mark, "the held command's answer", STEP, is_answer)
        .await
        .json()
        .unwrap();
    assert_eq!(answer["ok"], true, "{what}: {answer}");
    r.wait_health(mark, "ok").await;
    let (code, _) = r.wait_healthz("ok", "ok").await;
    assert_eq!(code, 200);
    // The store took the call and the complaint.
    let calls = r.daemon.get_array("/api/calls?number=13900000002");
    assert_eq!(calls.len(), 1, "{what}: {calls:?}");
    let tasks = r.daemon.get_array("/api/tasks?state=all");
    assert!(
        tasks
            .iter()
            .any(|t| t["number"] == "13900000003" && t["kind"] == "complaint"),
        "{what}: the answered complaint is not stored: {tasks:?}"
    );
}

async fn publish(r: &Rig, topic: &str, payload: &str) {
    let port = r._broker.port();
    let out = tokio::process::Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
        .args(["-t", topic, "-m", payload])
        .output()
        .await
        .expect("mosquitto_pub");
    assert!(out.status.success(), "mosquitto_pub: {out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsync_errors_degrade_the_box_and_nothing_is_acknowledged_until_the_disk_recovers() {
    failing_then_healed(
        |fs| fs.fail_syncs(Some(libc::EIO)),
        |fs| fs.fail_syncs(None),
        "fsync EIO",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_degrades_the_box_and_nothing_is_acknowledged_until_there_is_room() {
    failing_then_healed(
        |fs| fs.fail_writes(Some(libc::ENOSPC)),
        |fs| fs.fail_writes(None),
        "writes ENOSPC",
    )
    .await;
}
