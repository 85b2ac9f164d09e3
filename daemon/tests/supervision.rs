//! The supervisor, in the whole daemon: with a simulated modem on line1, a test makes the line adapter panic, then
//! the engine (the test switch of `RunOptions::supervisor`), and checks what `/healthz` and `/api/status` say
//! meanwhile, that each is started again, and that calls are recorded after each restart.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use linekeeper::adapters::modem::link::{BoxPort, Opener};
use linekeeper::adapters::modem::sim::{SimModem, SimOptions};
use linekeeper::config::Config;
use linekeeper::runtime::daemon::{run, RunOptions};
use linekeeper::runtime::supervisor::{Supervisor, ENGINE};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

/// Waits this long at most for anything (the restarts take a second; a slow machine may take longer).
const PATIENCE: Duration = Duration::from_secs(30);

async fn http(addr: SocketAddr, path: &str, token: &str) -> (u16, Value) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: box\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw);
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (code, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Polls `path` until `done` holds; the last answer.
async fn until(
    addr: SocketAddr,
    path: &str,
    token: &str,
    what: &str,
    done: impl Fn(u16, &Value) -> bool,
) -> (u16, Value) {
    let start = tokio::time::Instant::now();
    loop {
        let (code, body) = http(addr, path, token).await;
        if done(code, &body) {
            return (code, body);
        }
        assert!(
            start.elapsed() < PATIENCE,
            "waited {PATIENCE:?} for {what}; {path} says {code} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A call on the current simulated modem; waits until the API lists `n` calls.
async fn call(
    modem: &mut watch::Receiver<Option<SimModem>>,
    addr: SocketAddr,
    token: &str,
    number: &str,
    n: usize,
) {
    let sim = loop {
        let current = modem.borrow_and_update().clone();
        if let Some(sim) = current.filter(|s| s.is_running()) {
            break sim;
        }
        tokio::time::timeout(PATIENCE, modem.changed())
            .await
            .expect("the line opens its device again")
            .unwrap();
    };
    tokio::time::timeout(PATIENCE, sim.wait_initialized())
        .await
        .expect("the line initialises the modem");
    sim.ring().await;
    sim.caller_id(Some(number), Some("TEST")).await;
    until(
        addr,
        "/api/calls",
        token,
        "the call to be logged",
        |c, b| {
            c == 200
                && b.as_array().is_some_and(|a| {
                    a.len() == n && a[0]["number"] == number && a[0]["outcome"] == "unknown"
                })
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_line_and_engine_are_restarted_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::parse(&format!(
        "[site]\nid = \"hq\"\n[store]\npath = \"{}\"\n[web]\nlisten = \"127.0.0.1:0\"\n\
         [[line]]\nid = \"line1\"\nkind = \"modem\"\ndevice = \"/dev/null\"\nring_timeout = \"300ms\"\n",
        dir.path().display()
    ))
    .unwrap();
    let token = {
        let store = linekeeper::store::Store::open(dir.path()).unwrap();
        linekeeper::auth::create_token(
            &store,
            "t",
            linekeeper::model::Role::Viewer,
            chrono::Utc::now(),
        )
        .unwrap()
    };
    // Every (re)open of the line makes a fresh simulated modem on its far end.
    let (modem_tx, mut modem) = watch::channel::<Option<SimModem>>(None);
    let opener: Opener = Box::new(move || {
        let (ours, theirs) = tokio::io::duplex(4096);
        modem_tx.send_replace(Some(SimModem::spawn(theirs, SimOptions::default())));
        Box::pin(async move { Ok(Box::new(ours) as BoxPort) })
    });
    let sup = Supervisor::new();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(run(
        cfg,
        RunOptions {
            openers: HashMap::from([("line1".to_string(), opener)]),
            ready: Some(ready_tx),
            supervisor: Some(sup.clone()),
            ..Default::default()
        },
        async {
            let _ = stop_rx.await;
        },
    ));
    let addr = ready_rx.await.unwrap();
    let (code, health) = http(addr, "/healthz", "").await;
    assert_eq!(
        (code, &health["status"]),
        (200, &Value::from("ok")),
        "{health}"
    );
    for task in [
        ENGINE,
        "line:line1",
        "http",
        "control",
        "scheduler",
        "sighup",
    ] {
        assert_eq!(
            health["tasks"][task]["state"], "running",
            "{task}: {health}"
        );
    }
    call(&mut modem, addr, &token, "13900000001", 1).await;

    // The line adapter panics: the box says so, the line comes back by itself, calls go on.
    sup.faults().inject("line:line1");
    let (code, health) = until(addr, "/healthz", "", "the line's failure", |_, b| {
        b["tasks"]["line:line1"]["restarts"] == 1
    })
    .await;
    assert_eq!(code, 200, "only the engine makes /healthz 503: {health}");
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(
        health["tasks"]["line:line1"]["last_failure"]
            .as_str()
            .unwrap()
            .contains("fault injected"),
        "{health}"
    );
    let (_, status) = http(addr, "/api/status", &token).await;
    assert_eq!(status["tasks"]["line:line1"]["restarts"], 1, "{status}");
    call(&mut modem, addr, &token, "13900000002", 2).await;

    // The engine panics: 503 until a new engine runs on the same store, then calls are recorded again.
    sup.faults().inject(ENGINE);
    let (code, health) = until(addr, "/healthz", "", "the engine's failure", |c, _| {
        c != 200
    })
    .await;
    assert_eq!(code, 503, "{health}");
    assert!(
        health["engine"].as_str().unwrap().contains("restarted"),
        "{health}"
    );
    let (_, health) = until(addr, "/healthz", "", "the engine back", |c, _| c == 200).await;
    assert_eq!(health["tasks"][ENGINE]["restarts"], 1, "{health}");
    assert_eq!(health["engine"], "ok", "{health}");
    call(&mut modem, addr, &token, "13900000003", 3).await;

    let _ = stop_tx.send(());
    tokio::time::timeout(PATIENCE, daemon)
        .await
        .expect("the daemon stops")
        .unwrap()
        .unwrap();
    assert!(
        sup.health().is_empty(),
        "every task stopped: {:?}",
        sup.health()
    );
}
