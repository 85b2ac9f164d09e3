//! `linekeeper demo` as a newcomer runs it: the printed token works, and the simulated line's calls and tasks
//! appear in the API and on a real broker.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use linekeeper_e2e::*;
use serde_json::Value;

struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(port: u16, path: &str, token: &str) -> Value {
    let r = ureq::get(&format!("http://127.0.0.1:{port}{path}"))
        .set("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    r.into_json()
        .unwrap_or_else(|e| panic!("GET {path}: not JSON: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_shows_calls_and_tasks_within_a_minute() {
    let broker = Mosquitto::launch();
    let watch = MqttWatch::start(broker.port()).await;
    let port = free_port();
    let mut child = Child(
        Command::new(daemon_bin())
            .args([
                "demo",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--speed",
                "20",
            ])
            .args(["--mqtt-port", &broker.port().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start linekeeper demo"),
    );
    // The printed banner carries the web login and the token.
    let stdout = child.0.stdout.take().expect("demo stdout");
    let (password, token) = tokio::task::spawn_blocking(move || {
        let mut password = None;
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("read demo stdout");
            if let Some((_, pw)) = line.split_once("login: admin / ") {
                password = Some(pw.trim().to_string());
            }
            if let Some(t) = line.trim().strip_prefix("API token") {
                let pw = password.expect("the web login is printed before the token");
                return (pw, t.trim().to_string());
            }
        }
        panic!("the demo ended without printing an API token");
    })
    .await
    .unwrap();
    assert!(token.starts_with("lk_"), "token {token}");
    // The printed login works at once (a throwaway store: no first change asked).
    let login = ureq::AgentBuilder::new()
        .redirects(0)
        .build()
        .post(&format!("http://127.0.0.1:{port}/login"))
        .set("Origin", &format!("http://127.0.0.1:{port}"))
        .send_form(&[("user", "admin"), ("password", &password)])
        .expect("log in with the printed password");
    assert_eq!(login.status(), 303);
    assert_eq!(login.header("location"), Some("/"));

    // At 20x, the whole script (answered, missed, withheld, the repeat caller, ...) plays in about 10 s.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (calls, tasks) = loop {
        let calls = get(port, "/api/calls", &token);
        let tasks = get(port, "/api/tasks?state=all", &token);
        let outcomes: Vec<&str> = calls
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["outcome"].as_str())
            .collect();
        let repeat = tasks
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["attempts"].as_u64() >= Some(2));
        if outcomes.contains(&"answered") && outcomes.contains(&"missed") && repeat {
            break (calls, tasks);
        }
        assert!(
            Instant::now() < deadline,
            "the demo did not show an answered call, a missed call and a repeat caller's task within 60 s:\ncalls {calls}\ntasks {tasks}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let calls = calls.as_array().unwrap();
    assert!(
        calls
            .iter()
            .any(|c| c["number_status"] == "withheld" && c["number"].is_null()),
        "a withheld caller is part of the demo: {calls:?}"
    );
    let repeat = tasks
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["attempts"].as_u64() >= Some(2))
        .unwrap();
    assert_eq!(repeat["kind"], "callback");
    assert_eq!(
        repeat["number"], "13912345678",
        "the API shows numbers whole"
    );
    assert_eq!(repeat["priority"], "high");

    // The same story reached the broker, with numbers masked.
    let ev = watch
        .wait_event(
            "linekeeper/demo/events/task",
            "a task.updated for the repeat caller",
            Duration::from_secs(30),
            |e| e["type"] == "task.updated",
        )
        .await;
    assert_eq!(ev["task"]["number"], "139****5678");
    watch
        .wait_for("retained status online", Duration::from_secs(30), |m| {
            m.topic == "linekeeper/demo/status" && m.payload == "online"
        })
        .await;
}
