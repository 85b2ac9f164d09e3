//! The local web page in a real browser (issue 5). Headless Chromium, driven by playwright-core from
//! `tests/browser/ui.mjs`, logs in and changes the first password, watches a ringing call appear live on the status
//! page and turn into a missed-call task, closes that task, edits the opening hours (a refused save, then a good
//! one), switches the language and downloads a report CSV.
//!
//! This test starts the daemon, the simulated modem and a small HTTP control server the script calls to make the
//! line ring (`POST /ring?number=N&name=X`), runs `node tests/browser/ui.mjs`, streams its output, asserts it exits
//! 0, then checks on disk and over the API what the browser changed.
//!
//! Needs node >= 20, `npm ci` in tests/browser and Debian's chromium (tests/run.sh installs them): it fails, never
//! skips, when one is missing. Screenshots, the downloaded CSV and the script's log go to
//! `target/browser-artifacts/`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use linekeeper_e2e::*;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Debian's Chromium; `$LK_CHROMIUM` points elsewhere.
const CHROMIUM: &str = "/usr/bin/chromium";
const NUMBER: &str = "13812345678";
const NAME: &str = "Test";
/// A date no other test or default uses, so its presence proves the save.
const HOLIDAY: &str = "2031-10-08";
/// The whole browser run; ui.mjs has its own, shorter, watchdog.
const BROWSER_RUN: Duration = Duration::from_secs(15 * 60);

fn browser_dir() -> PathBuf {
    workspace_root().join("tests").join("browser")
}

fn chromium() -> PathBuf {
    std::env::var_os("LK_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(CHROMIUM))
}

/// Node, the npm packages and Chromium are there, or the test fails saying how to get them.
fn preflight() {
    let out = std::process::Command::new("node")
        .arg("--version")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "node is not installed or not on PATH ({e}): the browser tests need node >= 20 and npm \
                 (apt-get install nodejs npm; tests/run.sh checks them)"
            )
        });
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        out.status.success() && major >= 20,
        "the browser tests need node >= 20 (playwright-core does); `node --version` says {version:?}"
    );
    let package = browser_dir().join("node_modules/playwright-core/package.json");
    assert!(
        package.is_file(),
        "{} is missing: run `npm ci` in {} (tests/run.sh does it)",
        package.display(),
        browser_dir().display()
    );
    let chromium = chromium();
    assert!(
        chromium.is_file(),
        "Chromium {} is missing: apt-get install -y chromium chromium-driver (tests/run.sh does it), \
         or point $LK_CHROMIUM at a Chromium",
        chromium.display()
    );
}

// ---------------------------------------------------------------------------------------
// The control server ui.mjs calls
// ---------------------------------------------------------------------------------------

/// `%XX` and `+` decoded (a query value).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == key).then(|| percent_decode(v))
    })
}

/// The control server: `POST /ring?number=N&name=X[&rings=K]` makes the simulated modem send RING, the caller-ID
/// block (NMBR, NAME), then K-1 more RINGs one second apart (K = 3 by default) and stop, so the daemon's
/// ring_timeout ends the call unanswered. It answers once the first RING and the caller ID are written.
async fn control_server(modem: SimModem, requests: Arc<Mutex<Vec<String>>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the control server on 127.0.0.1:0");
    let addr = listener.local_addr().expect("control server address");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let modem = modem.clone();
            let requests = requests.clone();
            tokio::spawn(async move {
                if let Err(e) = control_request(stream, modem, requests).await {
                    eprintln!("control server: {e}");
                }
            });
        }
    });
    format!("http://{addr}")
}

async fn control_request(
    mut stream: TcpStream,
    modem: SimModem,
    requests: Arc<Mutex<Vec<String>>>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(STEP, stream.read(&mut buf))
            .await
            .map_err(|_| std::io::Error::other("request head timed out"))??;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > 16 * 1024 {
            return Err(std::io::Error::other("request head too long"));
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let first = head.lines().next().unwrap_or_default().to_string();
    let mut parts = first.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    requests.lock().unwrap().push(first.clone());
    eprintln!("control server: {first}");
    let (status, body) = match (method, path) {
        ("POST", "/ring") => match query_param(query, "number") {
            Some(number) if !number.is_empty() => {
                let name = query_param(query, "name").filter(|n| !n.is_empty());
                let rings: u32 = query_param(query, "rings")
                    .and_then(|r| r.parse().ok())
                    .unwrap_or(3)
                    .clamp(1, 10);
                modem.ring().await;
                modem.caller_id(Some(&number), name.as_deref()).await;
                let m = modem.clone();
                tokio::spawn(async move {
                    for _ in 1..rings {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        m.ring().await;
                    }
                });
                (
                    "200 OK",
                    format!("ringing {number} ({name:?}): {rings} rings 1 s apart, then silence\n"),
                )
            }
            _ => ("400 Bad Request", "POST /ring needs ?number=\n".to_string()),
        },
        _ => (
            "404 Not Found",
            format!("no {method} {path} here; POST /ring?number=N&name=X[&rings=K]\n"),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

// ---------------------------------------------------------------------------------------
// Running ui.mjs
// ---------------------------------------------------------------------------------------

/// Copies the lines of `from` to this process's stderr (live, not captured by the test harness) and to `log`.
fn forward<R: AsyncRead + Unpin + Send + 'static>(
    from: R,
    log: Arc<Mutex<std::fs::File>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(from).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = writeln!(std::io::stderr().lock(), "browser| {line}");
            let _ = writeln!(log.lock().unwrap(), "{line}");
        }
    })
}

async fn run_ui(vars: &[(&str, String)], artifacts: &Path) -> std::process::ExitStatus {
    let script = browser_dir().join("ui.mjs");
    let log_path = artifacts.join("ui.log");
    let log = Arc::new(Mutex::new(
        std::fs::File::create(&log_path).expect("create ui.log"),
    ));
    let mut child = tokio::process::Command::new("node")
        .arg(&script)
        .current_dir(browser_dir())
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run node {}: {e}", script.display()));
    let out = forward(child.stdout.take().expect("piped stdout"), log.clone());
    let err = forward(child.stderr.take().expect("piped stderr"), log);
    let status = match tokio::time::timeout(BROWSER_RUN, child.wait()).await {
        Ok(status) => status.expect("wait for node"),
        Err(_) => {
            let _ = child.kill().await;
            panic!(
                "node {} did not finish within {BROWSER_RUN:?}; its output is in {}",
                script.display(),
                log_path.display()
            );
        }
    };
    let _ = out.await;
    let _ = err.await;
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_page_flows_in_headless_chromium() {
    preflight();
    let artifacts = target_dir().join("browser-artifacts");
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", artifacts.display()));

    // With answer detection an unanswered call is `missed` and opens a callback task; 4 s after the last RING the
    // call ends, so the browser has several seconds to see the line ringing.
    let mut env = Env::start(DaemonOptions {
        answer_detect: true,
        ring_timeout: "4s".into(),
        ..DaemonOptions::default()
    })
    .await;
    let password = env.daemon.wait_logged_password();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let control = control_server(env.modem.clone(), requests.clone()).await;
    eprintln!(
        "browser test: daemon {}, control server {control}, artifacts in {}",
        env.daemon.url("/"),
        artifacts.display()
    );

    let vars = [
        ("LK_URL", env.daemon.url("")),
        ("LK_USER", "admin".to_string()),
        ("LK_PASSWORD", password),
        ("LK_CONTROL", control),
        ("LK_ARTIFACTS", artifacts.to_string_lossy().into_owned()),
        ("LK_CHROMIUM", chromium().to_string_lossy().into_owned()),
        ("LK_NUMBER", NUMBER.to_string()),
        ("LK_NAME", NAME.to_string()),
        ("LK_HOLIDAY", HOLIDAY.to_string()),
    ];
    // On a failure the harness prints the daemon's, broker's and socat's logs as it drops them.
    let status = run_ui(&vars, &artifacts).await;
    assert!(
        status.success(),
        "the browser flows failed ({status}); the script's output is above and in {}, the screenshots \
         (failure.png, failure.html) beside it",
        artifacts.join("ui.log").display()
    );
    env.daemon.assert_running("after the browser flows");
    assert!(
        requests
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.starts_with("POST /ring?")),
        "the script never asked the control server to ring"
    );

    // What the browser did, seen from outside the page.
    let config =
        std::fs::read_to_string(env.daemon.config_path()).expect("read the daemon's config");
    assert!(
        config.contains(HOLIDAY),
        "the hours saved in the browser must be in the config file {}; it reads:\n{config}",
        env.daemon.config_path().display()
    );
    assert!(
        !config.contains("25:00"),
        "the refused opening time reached the config file:\n{config}"
    );
    let check = env.daemon.cli(&["check-config"]);
    assert_eq!(
        check.code,
        Some(0),
        "the config file the page saved must be valid:\n{check}"
    );
    let calls = env.daemon.calls();
    let call = calls
        .iter()
        .find(|c| c["number"] == NUMBER)
        .unwrap_or_else(|| panic!("GET /api/calls has no call from {NUMBER}: {calls:?}"));
    assert_eq!(
        call["outcome"], "missed",
        "the call the browser saw: {call}"
    );
    let tasks = env.daemon.tasks("all");
    let task = tasks
        .iter()
        .find(|t| t["number"] == NUMBER)
        .unwrap_or_else(|| panic!("GET /api/tasks?state=all has no task for {NUMBER}: {tasks:?}"));
    assert_eq!(task["kind"], "callback", "{task}");
    assert_eq!(task["state"], "done", "the browser closed the task: {task}");
}
