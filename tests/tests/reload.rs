//! Live reconfiguration: a broken file is refused with every problem listed and the old configuration stays;
//! a good one is applied without dropping the call in progress; SIGHUP does the same as `POST /api/reload`.

use std::time::{Duration, Instant};

use linekeeper_e2e::*;
use serde_json::{json, Value};

fn rewrite(daemon: &Daemon, edit: impl Fn(String) -> String) {
    let path = daemon.config_path();
    let text = std::fs::read_to_string(path).expect("read the config");
    std::fs::write(path, edit(text)).expect("write the config");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_refuses_bad_files_and_applies_good_ones_without_dropping_a_call() {
    let env = Env::start(DaemonOptions::default()).await;
    let original = std::fs::read_to_string(env.daemon.config_path()).unwrap();

    // A call is ringing while the configuration changes.
    env.ring_with_caller_id("13700001111", "RELOAD").await;
    let ringing = env
        .watch
        .wait_event(TOPIC_CALL, "call.ringing", STEP, |e| {
            e["type"] == "call.ringing"
        })
        .await;
    let call_id = ringing["call"]["id"].as_str().unwrap().to_string();

    // 1. A broken file: every problem listed, nothing applied.
    rewrite(&env.daemon, |t| {
        t.replace("[policy]", "[policy]\ncolour = \"red\"")
            .replace("callback_due = \"24h\"", "callback_due = \"soon\"")
    });
    let r = env.daemon.post_json("/api/reload", &json!({}));
    assert_eq!(r.status, 400, "{}", r.body);
    let problems = r.json()["problems"].to_string();
    assert!(
        problems.contains("policy.colour") && problems.contains("policy.callback_due"),
        "{problems}"
    );

    // 2. A good file: callback_due 1h, a longer ring timeout; the ringing call goes on.
    rewrite(&env.daemon, |_| {
        original
            .replace("callback_due = \"24h\"", "callback_due = \"1h\"")
            .replace("ring_timeout = \"2s\"", "ring_timeout = \"3s\"")
    });
    env.modem.ring().await; // still ringing: the ring timeout starts over
    let r = env.daemon.post_json("/api/reload", &json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.json()["changed"].to_string().contains("policy: applied"),
        "{}",
        r.body
    );
    let ended = env.wait_call_event(&call_id, "call.ended").await;
    assert_eq!(
        ended["call"]["outcome"], "missed",
        "the call in progress was kept: {ended}"
    );
    let created = env
        .watch
        .wait_event(TOPIC_TASK, "task.created", STEP, |e| {
            e["type"] == "task.created"
        })
        .await;
    let at = |k: &str| {
        chrono::DateTime::parse_from_rfc3339(created["task"][k].as_str().unwrap()).unwrap()
    };
    assert_eq!(
        at("due_at") - at("created_at"),
        chrono::Duration::hours(1),
        "the new callback_due applies"
    );

    // 3. SIGHUP: an agent added to the file appears.
    rewrite(&env.daemon, |t| {
        format!("{t}\n[[agent]]\nid = \"alice\"\nname = \"Alice\"\n")
    });
    let pid = env.daemon.pid().expect("the daemon runs");
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let deadline = Instant::now() + STEP;
    loop {
        let agents: Value = env.daemon.get("/api/agents").json();
        if agents
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["agent"] == "alice"))
        {
            assert_eq!(agents[0]["state"], "signed_out");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not apply the new agent: {agents}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = env
        .daemon
        .post_json("/api/agents/alice/sign_in", &json!({}));
    assert_eq!(
        (r.status, r.json()["state"].as_str()),
        (200, Some("available")),
        "{}",
        r.body
    );

    // 4. What needs a restart is refused.
    rewrite(&env.daemon, |t| t.replace("127.0.0.1:", "0.0.0.0:"));
    let r = env.daemon.post_json("/api/reload", &json!({}));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("web.listen"), "{}", r.body);
    assert!(env.daemon.health()["status"] == "ok");
}
