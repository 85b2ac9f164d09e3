//! `webbench`: the local web page (issue 5) measured against the built release daemon, from the outside.
//!
//! ```text
//! cargo build --release -p linekeeper -p linekeeper-e2e
//! target/release/webbench [--calls N] [--requests N] [--clients N] [--events N] [--refresh] [--keep] [--quick]
//! ```
//!
//! Before the daemon (`target/release/linekeeper`, or `$LINEKEEPER_BIN`) starts, its store is seeded in this
//! process with the library (`Store::commit`): `--calls` calls over the past year (answered, missed, unknown;
//! a few withheld; a third with a Chinese name; 20,000 distinct callers) and one task per 25 calls (callbacks,
//! reviews, complaints; closed, except those of the last two days and one in ten older ones, all due hours from
//! now so no timer fires during the bench). Then `linekeeper passwd admin` (the first web user, an admin, with a
//! one-time password), `linekeeper token create` and `linekeeper check-config`; the daemon runs with one modem
//! line whose device does not exist (the line is just down), no MQTT and three agents. The bench signs in as a
//! browser does (`POST /login`, then the forced password change with the page's CSRF token) and measures:
//!
//! 1. **status page weight**: the bytes of `GET /` and of every asset it loads (the `<script src>` and
//!    `<link href>` of the HTML, and `url(...)` of the CSS), uncompressed; and the references to anything outside
//!    the box (`http:`, `https:` or `//` URLs in `src`, `href`, `action`, `url(...)` or script strings), which
//!    must be none;
//! 2. **page times** with the store seeded: `--requests` sequential GETs (after 10 warm-up ones) of each page on
//!    one keep-alive connection; p50, p90, p99 and max, the answer's size and rows, and the daemon's CPU time per
//!    GET. Besides the pages of the issue, a search for one customer's full number (a few calls, so the whole
//!    call log is read to fill a page) is timed too;
//! 3. **browsers on the live stream**: `--clients` server-sent-event clients on `GET /api/events` with the session
//!    cookie, each a thread reading the chunked stream on its own connection; then `--events` agent state changes
//!    (`POST /api/agents/{a2|a3}/{away|available}` with the API token, one at a time, each waiting until every
//!    client has its event). Every client must receive every event `seq`, contiguous and in order (else exit 1).
//!    The delay from the POST's answer to the last client's receipt of its event, the daemon's CPU time during
//!    the phase and its VmRSS at the end. With `--refresh` each client also does what the page's script does on
//!    each event: `GET /ui/status.json` (one at a time; an event that comes while one runs makes none), and checks
//!    that the answer is not older than the agent event the client already had.
//!
//! The figures go out as a table and, last, as one line of JSON (`WEBBENCH_JSON {...}`). Targets are printed
//! beside them and never asserted; the bench fails (exit 1) only when a result is not sane (a client that missed
//! an event, a page that does not answer 200, a call or task list that does not show what the store holds). `--quick` (10,000 calls, 50
//! requests a page, 5 clients, 50 events) is the CI smoke test.
//!
//! Everything runs on one machine: the clients compete with the daemon for the CPUs.

use std::io::{BufRead, BufReader, Read, Write as _};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::process::ExitCode;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, Utc};
use linekeeper::model::{Call, Severity, Stage, Task, TaskKind, TaskState, Time};
use linekeeper::store::Store;
use linekeeper_e2e::bench::{
    self, check_interrupted, cpu_secs, dir_bytes, json_report, kb, machine, mb, mix, ms_between,
    round, seed_calls, seed_tasks, status_mb, status_value, task_entry, task_for_call, withheld,
    Daemon, Machine, Ms, RandomCall, Table,
};
use serde_json::{json, Value};

/// Deadline for every client to receive one event.
const EVENT_WAIT: Duration = Duration::from_secs(10);
/// Deadline for every client to connect to the stream.
const CONNECT_WAIT: Duration = Duration::from_secs(20);
/// Untimed GETs before the timed ones, per page.
const WARMUP: usize = 10;
/// One task per this many calls.
const CALLS_PER_TASK: usize = 25;
/// Calls of the seeded store span this many days, ending an hour ago.
const SPAN_DAYS: i64 = 365;
/// The new password set at the forced change.
const NEW_PASSWORD: &str = "webbench-Passw0rd-long";

// Targets, printed beside the figures (never asserted).
const TARGET_WEIGHT_KB: f64 = 100.0;
const TARGET_PAGE_P99_MS: f64 = 20.0;

// ---------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Options {
    /// Calls seeded into the store.
    calls: usize,
    /// Timed GETs per page.
    requests: usize,
    /// Server-sent-event clients.
    clients: usize,
    /// Events made through the API while the clients listen.
    events: usize,
    /// The clients also fetch `/ui/status.json` on each event, as the page's script does.
    refresh: bool,
    /// Keep the work dir (store, config, logs).
    keep: bool,
    quick: bool,
}

const USAGE: &str = "\
usage: webbench [--calls N] [--requests N] [--clients N] [--events N] [--refresh] [--keep] [--quick]

  --calls N      calls in the store before the daemon starts (default 100000)
  --requests N   timed GETs of each page, after 10 warm-up ones (default 200)
  --clients N    server-sent-event clients on /api/events (default 20)
  --events N     events made through the API while they listen (default 300)
  --refresh      each client also GETs /ui/status.json on each event, like the page's script
  --keep         keep the work dir (store, config, daemon log) and print its path
  --quick        calls 10000, requests 50, clients 5, events 50; other flags still apply

The daemon is $LINEKEEPER_BIN, else target/release/linekeeper.";

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let quick = bench::quick(args);
        let mut o = if quick {
            Options {
                calls: 10_000,
                requests: 50,
                clients: 5,
                events: 50,
                refresh: false,
                keep: false,
                quick,
            }
        } else {
            Options {
                calls: 100_000,
                requests: 200,
                clients: 20,
                events: 300,
                refresh: false,
                keep: false,
                quick,
            }
        };
        bench::parse_flags(args, USAGE, |flag, args| {
            match flag {
                "--calls" => o.calls = args.number(flag)? as usize,
                "--requests" => o.requests = args.number(flag)? as usize,
                "--clients" => o.clients = args.number(flag)? as usize,
                "--events" => o.events = args.number(flag)? as usize,
                "--refresh" => o.refresh = true,
                "--keep" => o.keep = true,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        if o.calls == 0 || o.requests == 0 || o.clients == 0 || o.events == 0 {
            bail!("--calls, --requests, --clients and --events must be at least 1");
        }
        Ok(o)
    }
}

// ---------------------------------------------------------------------------------------
// The daemon
// ---------------------------------------------------------------------------------------

/// The daemon with one modem line whose device does not exist (the line is just down), no MQTT and three
/// agents; killed if the bench dies.
fn new_daemon(dir: &Path) -> Result<Daemon> {
    let device = dir.join("no-such-modem");
    let mut daemon = Daemon::new("webbench", dir, |store, port| {
        format!(
            r#"# written by webbench
[site]
id = "bench"
name = "webbench"
timezone = "Asia/Shanghai"

[store]
path = "{store}"

# A modem that is not there: the line is just down.
[[line]]
id = "line1"
kind = "modem"
device = "{device}"

[web]
listen = "127.0.0.1:{port}"

[[agent]]
id = "a1"
name = "A1"

[[agent]]
id = "a2"
name = "A2"

[[agent]]
id = "a3"
name = "A3"
"#,
            store = store.display(),
            device = device.display(),
        )
    })?;
    daemon.die_with_bench = true;
    Ok(daemon)
}

// ---------------------------------------------------------------------------------------
// Seeding the store
// ---------------------------------------------------------------------------------------

#[derive(Debug, Default, Clone)]
struct Seeded {
    calls: usize,
    tasks: usize,
    open_tasks: usize,
    /// A customer's number (that of the middle call) and how many calls it has: a search for it reads the whole
    /// call log, as any search with fewer than a page of matches does.
    customer: String,
    customer_calls: usize,
    secs: f64,
    store_mb: f64,
}

/// The number of caller `c` (of 20,000): 11 digits starting 138, 139, 150 or 186.
fn caller_number(c: u64) -> String {
    let prefix = ["138", "139", "150", "186"][(c % 4) as usize];
    format!("{prefix}{:08}", c.wrapping_mul(40_503) % 100_000_000)
}

/// The `i`th of `n` calls over the `SPAN_DAYS` days before `newest`, oldest first.
fn seeded_call(i: usize, n: usize, newest: Time) -> Call {
    let r = mix(i as u64);
    let span_ms = SPAN_DAYS * 86_400_000;
    let back_ms = (n - 1 - i) as i64 * span_ms / n as i64;
    let started = newest - chrono::Duration::milliseconds(back_ms);
    let caller = (r >> 20) % 20_000;
    let wait = 2.0 + ((r >> 8) % 300) as f64 / 10.0;
    RandomCall {
        r,
        started,
        line: "line1",
        number: caller_number(caller),
        name: (!withheld(r) && caller.is_multiple_of(3)).then(|| format!("客户{}", caller % 1000)),
        wait_s: wait,
        talk_s: 20.0 + ((r >> 32) % 600) as f64,
        // An unknown call ends when the ringing stops.
        unknown_s: wait,
        // Agents a1 .. a3, as configured.
        agents: 3,
        secs: |s| chrono::Duration::milliseconds((s * 1000.0) as i64),
    }
    .call()
}

/// The `j`th task, opened from `call`. Tasks of the last two days and one in ten older ones are open and due
/// hours from `now` (after any warning time: no timer fires during the bench); the others are closed.
fn seeded_task(j: usize, call: &Call, now: Time) -> Task {
    let h = chrono::Duration::hours;
    let created = call.ended_at.unwrap_or(call.started_at);
    let (kind, note) = match j % 10 {
        0..=5 => (TaskKind::Callback, None),
        6 | 7 => (TaskKind::Review, None),
        _ => (
            TaskKind::Complaint,
            Some("账单有误，请回电 / billing question"),
        ),
    };
    let open = now - created < h(48) || j % 10 == 3;
    let due = if open {
        now + h(4 + (j % 40) as i64)
    } else {
        created + h(24)
    };
    let mut t = task_for_call(kind, due, created, call);
    t.assignee = Some(format!("a{}", 1 + j % 3));
    t.note = note.map(String::from);
    t.attempts = (j % 3) as u32;
    if kind == TaskKind::Complaint {
        t.severity = Some(Severity::Normal);
        t.category = Some(["billing", "service", "product"][j % 3].into());
        t.stage = Some(if open {
            Stage::AwaitingResponse
        } else {
            Stage::Resolved
        });
    }
    if !open {
        let closed = created + h(2);
        if j % 5 == 4 {
            t.state = TaskState::Cancelled;
            t.closed_by = Some("a1".into());
            t.history.push(task_entry(closed, "cancel", Some("a1")));
        } else {
            t.state = TaskState::Done;
            t.closed_by = t.assignee.clone();
            t.history
                .push(task_entry(closed, "done", t.assignee.as_deref()));
            if kind == TaskKind::Complaint {
                t.first_response_at = Some(created + h(1));
                t.resolved_at = Some(closed);
            }
        }
        t.closed_at = Some(closed);
    }
    t
}

/// Seeds a new store with `n` calls and their tasks, in commits of `bench::SEED_BATCH` records; the store is
/// closed (and its lock released) on return.
fn seed_store(path: &Path, n: usize) -> Result<Seeded> {
    let t0 = Instant::now();
    let store = Store::open(path).context("opening the store to seed it")?;
    let now = DateTime::<Utc>::from(SystemTime::now());
    let newest = now - chrono::Duration::hours(1);
    let mut s = Seeded::default();
    let mut task_list = Vec::new();
    seed_calls(&store, n, |c| {
        let call = seeded_call(c, n, newest);
        if s.customer.is_empty() && c >= n / 2 {
            s.customer = call.number.clone().unwrap_or_default();
        }
        if c % CALLS_PER_TASK == CALLS_PER_TASK / 2 {
            task_list.push(seeded_task(task_list.len(), &call, now));
        }
        call
    })?;
    seed_tasks(&store, task_list.len(), |j| task_list[j].clone())?;
    s.customer_calls = store
        .calls_newest_first("", "~", usize::MAX, |c| {
            c.number.as_deref() == Some(s.customer.as_str())
        })?
        .len();
    drop(store);
    s.calls = n;
    s.tasks = task_list.len();
    s.open_tasks = task_list
        .iter()
        .filter(|t| t.state == TaskState::Open)
        .count();
    s.secs = t0.elapsed().as_secs_f64();
    s.store_mb = mb(dir_bytes(path));
    Ok(s)
}

// ---------------------------------------------------------------------------------------
// HTTP as a browser and as an API client
// ---------------------------------------------------------------------------------------

/// One answer: status, the headers that matter here, the body and the time to the last byte.
struct Answer {
    status: u16,
    location: Option<String>,
    set_cookie: Vec<String>,
    content_type: String,
    content_encoding: Option<String>,
    body: Vec<u8>,
    ms: f64,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn answer(result: std::result::Result<ureq::Response, ureq::Error>, t0: Instant) -> Result<Answer> {
    let r = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(anyhow!(e)),
    };
    let status = r.status();
    let location = r.header("location").map(String::from);
    let set_cookie = r.all("set-cookie").into_iter().map(String::from).collect();
    let content_type = r.header("content-type").unwrap_or("").to_string();
    let content_encoding = r.header("content-encoding").map(String::from);
    let mut body = Vec::new();
    r.into_reader()
        .take(64 * 1024 * 1024)
        .read_to_end(&mut body)
        .context("reading the body")?;
    Ok(Answer {
        status,
        location,
        set_cookie,
        content_type,
        content_encoding,
        body,
        ms: t0.elapsed().as_secs_f64() * 1000.0,
    })
}

/// A browser signed in to the page (keep-alive, no redirects followed) and the API token.
struct Web {
    http: ureq::Agent,
    port: u16,
    cookie: String,
    token: String,
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(5))
        .timeout(Duration::from_secs(60))
        .redirects(0)
        .build()
}

impl Web {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn get(&self, path: &str) -> Result<Answer> {
        let t0 = Instant::now();
        let r = self
            .http
            .get(&self.url(path))
            .set("Cookie", &self.cookie)
            .call();
        answer(r, t0).with_context(|| format!("GET {path}"))
    }

    /// A page that must answer 200.
    fn get_ok(&self, path: &str) -> Result<Answer> {
        check_interrupted()?;
        let a = self.get(path)?;
        if a.status != 200 {
            bail!(
                "GET {path} answered {}{}: {}",
                a.status,
                a.location
                    .as_deref()
                    .map(|l| format!(" (to {l})"))
                    .unwrap_or_default(),
                clip(&a.text(), 500)
            );
        }
        Ok(a)
    }

    /// A form POST from a page of this server (Origin set), with the session cookie when there is one.
    fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Result<Answer> {
        let t0 = Instant::now();
        let mut req = self
            .http
            .post(&self.url(path))
            .set("Origin", &self.origin());
        if !self.cookie.is_empty() {
            req = req.set("Cookie", &self.cookie);
        }
        answer(req.send_form(fields), t0).with_context(|| format!("POST {path}"))
    }

    /// An API POST with the bearer token.
    fn post_api(&self, path: &str, body: &Value) -> Result<Answer> {
        let t0 = Instant::now();
        let r = self
            .http
            .post(&self.url(path))
            .set("Authorization", &format!("Bearer {}", self.token))
            .send_json(body.clone());
        answer(r, t0).with_context(|| format!("POST {path}"))
    }
}

fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The value of attribute `name` in `html`'s first element that has it.
fn attribute(html: &str, name: &str) -> Option<String> {
    let key = format!("{name}=\"");
    let start = html.find(&key)? + key.len();
    let len = html[start..].find('"')?;
    Some(html[start..start + len].to_string())
}

/// The `lk_session=VALUE` of a Set-Cookie header.
fn session_cookie(set_cookie: &[String]) -> Option<String> {
    set_cookie.iter().find_map(|c| {
        let pair = c.split(';').next()?.trim();
        let value = pair.strip_prefix("lk_session=")?;
        (!value.is_empty()).then(|| pair.to_string())
    })
}

struct SignIn {
    login_ms: f64,
    password_ms: f64,
}

/// Signs in as a browser does: the login form, then the forced password change with the page's CSRF token.
fn sign_in(web: &mut Web, password: &str) -> Result<SignIn> {
    let login = web.post_form("/login", &[("user", "admin"), ("password", password)])?;
    if login.status != 303 {
        bail!(
            "POST /login answered {} (want 303): {}",
            login.status,
            clip(&login.text(), 500)
        );
    }
    web.cookie = session_cookie(&login.set_cookie).ok_or_else(|| {
        anyhow!(
            "POST /login answered 303 without an lk_session cookie (Set-Cookie: {:?})",
            login.set_cookie
        )
    })?;
    let page = web.get_ok("/password")?;
    let html = page.text();
    let body_tag = html
        .find("<body")
        .map(|i| &html[i..])
        .ok_or_else(|| anyhow!("GET /password has no <body>"))?;
    let csrf = attribute(body_tag, "data-csrf")
        .ok_or_else(|| anyhow!("the <body> of /password has no data-csrf"))?;
    let changed = web.post_form(
        "/password",
        &[
            ("csrf", csrf.as_str()),
            ("current", password),
            ("new", NEW_PASSWORD),
            ("confirm", NEW_PASSWORD),
        ],
    )?;
    if changed.status != 303 || changed.location.as_deref() != Some("/") {
        bail!(
            "POST /password answered {} to {:?} (want 303 to /): {}",
            changed.status,
            changed.location,
            clip(&changed.text(), 500)
        );
    }
    Ok(SignIn {
        login_ms: login.ms,
        password_ms: changed.ms,
    })
}

// ---------------------------------------------------------------------------------------
// 1. The status page's weight
// ---------------------------------------------------------------------------------------

struct Weight {
    html_bytes: usize,
    /// Each asset loaded: path, bytes, content type.
    assets: Vec<(String, usize, String)>,
    total_bytes: usize,
    /// References to anything outside the box: where, what.
    external: Vec<(String, String)>,
    /// Responses that came compressed (none expected: the bench asks for none).
    compressed: usize,
    csp: Option<String>,
}

/// The values of `attr="..."` inside the tags named `tag` (`<script ...>`, `<link ...>`).
fn tag_attributes(html: &str, tag: &str, attr: &str) -> Vec<String> {
    let open = format!("<{tag}");
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let end = after.find('>').unwrap_or(after.len());
        let inside = &after[..end];
        if after.starts_with([' ', '\t', '\n', '>']) {
            if let Some(v) = attribute(&format!(" {inside}"), &format!(" {attr}")) {
                out.push(v);
            }
        }
        rest = &after[end..];
    }
    out
}

/// The targets of `url(...)` in a stylesheet.
fn css_urls(css: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = css;
    while let Some(i) = rest.find("url(") {
        let after = &rest[i + 4..];
        let end = after.find(')').unwrap_or(after.len());
        out.push(after[..end].trim().trim_matches(['"', '\'']).to_string());
        rest = &after[end..];
    }
    out
}

fn is_external(url: &str) -> bool {
    let u = url.trim().to_ascii_lowercase();
    u.starts_with("http:") || u.starts_with("https:") || u.starts_with("//")
}

/// References to other hosts in a text: `src=`, `href=`, `action=` and `url(` values and quoted strings that
/// are `http:`, `https:` or `//` URLs (JavaScript comments, `// ...`, are not strings).
fn external_refs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=", "href=", "action="] {
        let mut rest = text;
        while let Some(i) = rest.find(attr) {
            let after = &rest[i + attr.len()..];
            let v = after.trim_start_matches(['"', '\'']);
            let end = v.find(['"', '\'', ' ', '>']).unwrap_or(v.len());
            if is_external(&v[..end]) {
                out.push(format!("{attr}{}", &v[..end]));
            }
            rest = after;
        }
    }
    for u in css_urls(text) {
        if is_external(&u) {
            out.push(format!("url({u})"));
        }
    }
    for q in ['"', '\'', '`'] {
        for pat in ["http://", "https://", "//"] {
            let needle = format!("{q}{pat}");
            let mut rest = text;
            while let Some(i) = rest.find(&needle) {
                let after = &rest[i + 1..];
                let end = after.find(q).unwrap_or(after.len()).min(120);
                let s = format!("{q}{}{q}", &after[..end]);
                if !out.iter().any(|o| o.contains(&after[..end])) {
                    out.push(s);
                }
                rest = after;
            }
        }
    }
    out
}

fn measure_weight(web: &Web) -> Result<Weight> {
    let page = web.get_ok("/")?;
    let html = page.text();
    let csp = web
        .http
        .get(&web.url("/"))
        .set("Cookie", &web.cookie)
        .call()
        .ok()
        .and_then(|r| r.header("content-security-policy").map(String::from));
    let mut compressed = usize::from(page.content_encoding.is_some());
    let mut external: Vec<(String, String)> = external_refs(&html)
        .into_iter()
        .map(|r| ("/".to_string(), r))
        .collect();
    // What a browser loads: scripts, stylesheets, icons and other <link>s, images.
    let mut wanted: Vec<String> = tag_attributes(&html, "script", "src");
    wanted.extend(tag_attributes(&html, "link", "href"));
    wanted.extend(tag_attributes(&html, "img", "src"));
    let mut assets = Vec::new();
    let mut seen = Vec::new();
    while let Some(url) = wanted.pop() {
        if url.starts_with("data:") || seen.contains(&url) {
            continue;
        }
        seen.push(url.clone());
        if is_external(&url) {
            // Counted above; a browser would go out for it.
            continue;
        }
        let a = web.get_ok(&url)?;
        compressed += usize::from(a.content_encoding.is_some());
        let text = a.text();
        external.extend(external_refs(&text).into_iter().map(|r| (url.clone(), r)));
        if a.content_type.contains("css") {
            wanted.extend(
                css_urls(&text)
                    .into_iter()
                    .filter(|u| !u.starts_with("data:")),
            );
        }
        assets.push((url, a.body.len(), a.content_type.clone()));
    }
    assets.sort();
    let total_bytes = page.body.len() + assets.iter().map(|(_, b, _)| b).sum::<usize>();
    Ok(Weight {
        html_bytes: page.body.len(),
        assets,
        total_bytes,
        external,
        compressed,
        csp,
    })
}

// ---------------------------------------------------------------------------------------
// 2. Page times
// ---------------------------------------------------------------------------------------

struct PageTime {
    path: String,
    what: &'static str,
    /// p99 target in ms, if the issue sets one.
    target: Option<f64>,
    ms: Ms,
    /// The daemon's CPU time per request (clock ticks: coarse for light pages).
    cpu_ms: f64,
    bytes: usize,
    /// Rows of the page's table (calls or tasks), where it has one.
    rows: Option<usize>,
}

/// The pages timed: path, what, p99 target.
fn pages(customer: &str) -> Vec<(String, &'static str, Option<f64>)> {
    vec![
        ("/".into(), "status", Some(TARGET_PAGE_P99_MS)),
        ("/calls".into(), "call log", Some(TARGET_PAGE_P99_MS)),
        (
            "/calls?number=139".into(),
            "search by number",
            Some(TARGET_PAGE_P99_MS),
        ),
        ("/tasks".into(), "open tasks", Some(TARGET_PAGE_P99_MS)),
        (
            "/tasks?state=all".into(),
            "all tasks",
            Some(TARGET_PAGE_P99_MS),
        ),
        (
            "/ui/status.json".into(),
            "live refresh",
            Some(TARGET_PAGE_P99_MS),
        ),
        ("/reports?kind=daily".into(), "daily report", None),
        (format!("/calls?number={customer}"), "one customer", None),
    ]
}

fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

fn time_pages(web: &Web, requests: usize, customer: &str, pid: u32) -> Result<Vec<PageTime>> {
    let mut out = Vec::new();
    for (path, what, target) in pages(customer) {
        eprintln!("webbench: GET {path}: {WARMUP} + {requests}");
        let mut last = None;
        for _ in 0..WARMUP {
            last = Some(web.get_ok(&path)?);
        }
        let mut ms = Vec::with_capacity(requests);
        let cpu0 = cpu_secs(pid)?;
        for _ in 0..requests {
            let a = web.get_ok(&path)?;
            ms.push(a.ms);
            last = Some(a);
        }
        let cpu_ms = (cpu_secs(pid)? - cpu0) * 1000.0 / requests as f64;
        let last = last.ok_or_else(|| anyhow!("no answer"))?;
        let text = last.text();
        let rows = if path.starts_with("/calls") {
            Some(count(&text, "data-call-id="))
        } else if path.starts_with("/tasks") {
            Some(count(&text, "data-task-id="))
        } else {
            None
        };
        out.push(PageTime {
            path,
            what,
            target,
            ms: Ms(ms),
            cpu_ms,
            bytes: last.body.len(),
            rows,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// 3. Browsers on the live stream
// ---------------------------------------------------------------------------------------

/// One event as a client received it.
struct Received {
    seq: u64,
    kind: String,
    data: String,
    at: Instant,
}

#[derive(Default)]
struct ClientLog {
    connected: bool,
    events: Vec<Received>,
    /// Why the stream ended, when it did.
    ended: Option<String>,
    /// `--refresh`: the status.json fetches, and failures.
    refreshes: Vec<Refresh>,
    refresh_errors: Vec<String>,
}

/// One `--refresh` fetch of `/ui/status.json`.
struct Refresh {
    ms: f64,
    /// The seq of the last agent event the client had when the fetch started.
    seen_seq: u64,
    /// The answer showed that agent in another state than that event said: the snapshot was older than an
    /// event the page had already received.
    stale: bool,
}

impl ClientLog {
    fn last_seq(&self) -> u64 {
        self.events.last().map(|e| e.seq).unwrap_or(0)
    }
    fn at(&self, seq: u64) -> Option<Instant> {
        self.events
            .iter()
            .rev()
            .find(|e| e.seq == seq)
            .map(|e| e.at)
    }
}

struct Shared {
    clients: Mutex<Vec<ClientLog>>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<ClientLog>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, i: usize, f: impl FnOnce(&mut ClientLog)) {
        f(&mut self.lock()[i]);
        self.changed.notify_all();
    }

    /// Waits until `done` holds for the logs, or `deadline`; the last result of `done`.
    fn wait<T>(
        &self,
        deadline: Instant,
        mut done: impl FnMut(&[ClientLog]) -> Option<T>,
    ) -> Option<T> {
        let mut g = self.lock();
        loop {
            if let Some(t) = done(&g) {
                return Some(t);
            }
            let now = Instant::now();
            if now >= deadline || bench::interrupted() {
                return None;
            }
            g = self
                .changed
                .wait_timeout(g, (deadline - now).min(Duration::from_millis(100)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// A stream client: its connection (to close it from outside) and its threads.
struct Client {
    socket: TcpStream,
    reader: JoinHandle<()>,
    refresher: Option<JoinHandle<()>>,
}

/// Reads one `\r\n`-terminated line.
fn read_line(r: &mut impl BufRead) -> Result<String> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        bail!("the connection closed");
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// The SSE parser's state: the fields of the event being read.
#[derive(Default)]
struct SseState {
    pending: String,
    id: Option<u64>,
    kind: String,
    data: String,
}

impl SseState {
    /// Feeds text; the events completed by it (seq, kind, data).
    fn feed(&mut self, text: &str) -> Vec<(u64, String, String)> {
        self.pending.push_str(text);
        let mut out = Vec::new();
        while let Some(nl) = self.pending.find('\n') {
            let line: String = self.pending[..nl].trim_end_matches('\r').to_string();
            self.pending.drain(..=nl);
            if line.is_empty() {
                if let Some(id) = self.id.take() {
                    out.push((
                        id,
                        std::mem::take(&mut self.kind),
                        std::mem::take(&mut self.data),
                    ));
                }
                self.kind.clear();
                self.data.clear();
                continue;
            }
            if line.starts_with(':') {
                continue; // a comment: keep-alive
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line.as_str(), ""),
            };
            match field {
                "id" => self.id = value.trim().parse().ok(),
                "event" => self.kind = value.to_string(),
                "data" => {
                    if !self.data.is_empty() {
                        self.data.push('\n');
                    }
                    self.data.push_str(value);
                }
                _ => {}
            }
        }
        out
    }
}

/// Reads the event stream of `socket` into client `i`'s log until the stream ends.
fn read_stream(
    i: usize,
    socket: TcpStream,
    port: u16,
    cookie: &str,
    shared: &Shared,
    refresh: Option<SyncSender<()>>,
) -> Result<()> {
    let mut w = socket.try_clone()?;
    write!(
        w,
        "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {cookie}\r\n\
         Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
    )?;
    w.flush()?;
    let mut r = BufReader::with_capacity(64 * 1024, socket);
    let status = read_line(&mut r)?;
    if !status.starts_with("HTTP/1.1 200") {
        bail!("GET /api/events answered `{status}`");
    }
    let mut chunked = false;
    loop {
        let h = read_line(&mut r)?;
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("transfer-encoding")
                && v.to_ascii_lowercase().contains("chunked")
            {
                chunked = true;
            }
        }
    }
    shared.update(i, |c| c.connected = true);
    if let Some(tx) = &refresh {
        // The page's script refreshes once when the stream opens.
        let _ = tx.try_send(());
    }
    let mut sse = SseState::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes: Vec<u8> = Vec::new();
    loop {
        // One chunk (or, without chunked encoding, whatever arrived).
        let data: Vec<u8> = if chunked {
            let size_line = read_line(&mut r)?;
            let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                .with_context(|| format!("bad chunk size line `{size_line}`"))?;
            if size == 0 {
                bail!("the stream ended (last chunk)");
            }
            let mut chunk = vec![0u8; size];
            r.read_exact(&mut chunk)?;
            let crlf = read_line(&mut r)?;
            if !crlf.is_empty() {
                bail!("chunk of {size} bytes not followed by CRLF");
            }
            chunk
        } else {
            let n = r.read(&mut buf)?;
            if n == 0 {
                bail!("the connection closed");
            }
            buf[..n].to_vec()
        };
        let at = Instant::now();
        bytes.extend_from_slice(&data);
        // Keep an incomplete UTF-8 sequence for the next chunk.
        let valid = match std::str::from_utf8(&bytes) {
            Ok(_) => bytes.len(),
            Err(e) => e.valid_up_to(),
        };
        let text = String::from_utf8_lossy(&bytes[..valid]).into_owned();
        bytes.drain(..valid);
        let events = sse.feed(&text);
        if !events.is_empty() {
            shared.update(i, |c| {
                for (seq, kind, data) in events {
                    c.events.push(Received {
                        seq,
                        kind,
                        data,
                        at,
                    });
                }
            });
            if let Some(tx) = &refresh {
                // Full: a refresh is running, and the script drops this one.
                if let Err(TrySendError::Disconnected(())) = tx.try_send(()) {
                    bail!("the refresher stopped");
                }
            }
        }
    }
}

/// The last agent event of a log: its seq, the agent, and the agent's state and `since` it announced.
fn last_agent_event(c: &ClientLog) -> Option<(u64, String, String, Option<DateTime<Utc>>)> {
    c.events.iter().rev().find_map(|e| {
        let state = e.kind.strip_prefix("agent.")?;
        let v: Value = serde_json::from_str(&e.data).ok()?;
        let agent = v["agent"]["agent"].as_str()?.to_string();
        Some((
            e.seq,
            agent,
            state.to_string(),
            time_of(&v["agent"]["since"]),
        ))
    })
}

fn time_of(v: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Whether a status.json answer shows `agent` older than the event `(state, since)` the page already had: its
/// `since` is earlier, or the same with another state.
fn older_than_event(st: &Value, agent: &str, state: &str, since: Option<DateTime<Utc>>) -> bool {
    let Some(shown) = st["agents"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["agent"] == agent))
    else {
        return true;
    };
    let shown_since = time_of(&shown["since"]);
    match (shown_since, since) {
        (Some(a), Some(b)) if a != b => a < b,
        _ => shown["state"].as_str() != Some(state),
    }
}

/// `--refresh`: what the page's script does on each event, `GET /ui/status.json`; an event that comes while a
/// fetch runs makes none (the script's `pending` flag), hence the rendezvous channel.
fn refresher(i: usize, port: u16, cookie: String, shared: Arc<Shared>, rx: Receiver<()>) {
    let http = agent();
    let url = format!("http://127.0.0.1:{port}/ui/status.json");
    while rx.recv().is_ok() {
        let seen = last_agent_event(&shared.lock()[i]);
        let t0 = Instant::now();
        let result = http
            .get(&url)
            .set("Cookie", &cookie)
            .call()
            .map_err(|e| e.to_string())
            .and_then(|r| r.into_json::<Value>().map_err(|e| e.to_string()));
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        shared.update(i, |c| match result {
            Ok(st) => {
                let stale = seen.as_ref().is_some_and(|(_, agent, state, since)| {
                    older_than_event(&st, agent, state, *since)
                });
                c.refreshes.push(Refresh {
                    ms,
                    seen_seq: seen.as_ref().map_or(0, |s| s.0),
                    stale,
                });
            }
            Err(e) => c.refresh_errors.push(e),
        });
    }
}

fn start_client(i: usize, web: &Web, shared: &Arc<Shared>, refresh: bool) -> Result<Client> {
    let socket = TcpStream::connect(("127.0.0.1", web.port))
        .with_context(|| format!("client {i}: connecting"))?;
    socket.set_nodelay(true)?;
    // Axum's keep-alive comment comes every 15 s: a longer silence means the stream is stuck.
    socket.set_read_timeout(Some(Duration::from_secs(60)))?;
    let handle = socket.try_clone()?;
    let (tx, refresher_thread) = if refresh {
        let (tx, rx) = sync_channel::<()>(0);
        let (port, cookie, shared) = (web.port, web.cookie.clone(), shared.clone());
        let t = std::thread::Builder::new()
            .name(format!("refresh-{i}"))
            .spawn(move || refresher(i, port, cookie, shared, rx))?;
        (Some(tx), Some(t))
    } else {
        (None, None)
    };
    let (port, cookie, sh) = (web.port, web.cookie.clone(), shared.clone());
    let reader = std::thread::Builder::new()
        .name(format!("sse-{i}"))
        .spawn(move || {
            let why = match read_stream(i, socket, port, &cookie, &sh, tx) {
                Ok(()) => "ended".to_string(),
                Err(e) => format!("{e:#}"),
            };
            sh.update(i, |c| c.ended = Some(why));
        })?;
    Ok(Client {
        socket: handle,
        reader,
        refresher: refresher_thread,
    })
}

fn close_clients(clients: Vec<Client>) {
    for c in &clients {
        let _ = c.socket.shutdown(Shutdown::Both);
    }
    for c in clients {
        let _ = c.reader.join();
        if let Some(r) = c.refresher {
            let _ = r.join();
        }
    }
}

struct Live {
    clients: usize,
    events: usize,
    first_seq: u64,
    last_seq: u64,
    /// POST round trips.
    post: Ms,
    /// From the POST's answer to the last client's receipt of its event (0 when it came before the answer).
    after_answer: Ms,
    /// From the POST's sending to the last client's receipt.
    after_send: Ms,
    /// From the first client's receipt to the last one's.
    spread: Ms,
    /// Events every client had before the POST answered.
    before_answer: usize,
    /// Events each client received in all (including ones the bench did not make).
    received: Vec<usize>,
    cpu_s: f64,
    secs: f64,
    refreshes: Ms,
    refresh_errors: usize,
    refresh_error_sample: Option<String>,
    /// Refreshes whose answer was older than an event the client already had.
    stale_refreshes: usize,
    /// Clients whose last refresh did not show the last agent event they received: a page left stale.
    left_stale: usize,
}

/// The action of the `k`th event: agents a2 and a3 go away and come back in turn (a1 stays available, so no
/// staffing alert comes between). Each changes the agent's state, so each makes exactly one event.
fn live_action(k: usize) -> (&'static str, &'static str, &'static str) {
    let agent = if (k / 2).is_multiple_of(2) {
        "a2"
    } else {
        "a3"
    };
    if k.is_multiple_of(2) {
        (agent, "away", "agent.away")
    } else {
        (agent, "available", "agent.available")
    }
}

fn live_phase(web: &Web, daemon: &Daemon, opts: &Options) -> Result<Live> {
    let pid = daemon.pid()?;
    // Every agent signed in before the clients connect.
    for a in ["a1", "a2", "a3"] {
        let r = web.post_api(&format!("/api/agents/{a}/sign_in"), &json!({}))?;
        if r.status != 200 {
            bail!(
                "POST /api/agents/{a}/sign_in answered {}: {}",
                r.status,
                r.text()
            );
        }
    }
    let shared = Arc::new(Shared {
        clients: Mutex::new((0..opts.clients).map(|_| ClientLog::default()).collect()),
        changed: Condvar::new(),
    });
    let cpu0 = cpu_secs(pid)?;
    let t0 = Instant::now();
    let mut clients = Vec::new();
    for i in 0..opts.clients {
        match start_client(i, web, &shared, opts.refresh) {
            Ok(c) => clients.push(c),
            Err(e) => {
                close_clients(clients);
                return Err(e);
            }
        }
    }
    let result = drive_events(web, daemon, opts, &shared, pid, cpu0, t0);
    if opts.refresh && result.is_ok() {
        // Time for the last refreshes to finish, as a browser would have.
        std::thread::sleep(Duration::from_millis(500));
    }
    close_clients(clients);
    let mut live = result?;
    let g = shared.lock();
    let mut refreshes = Vec::new();
    for c in g.iter() {
        refreshes.extend(c.refreshes.iter().map(|r| r.ms));
        live.stale_refreshes += c.refreshes.iter().filter(|r| r.stale).count();
        live.refresh_errors += c.refresh_errors.len();
        if live.refresh_error_sample.is_none() {
            live.refresh_error_sample = c.refresh_errors.first().cloned();
        }
        if opts.refresh {
            let last = last_agent_event(c).map_or(0, |e| e.0);
            let fresh = c
                .refreshes
                .last()
                .is_some_and(|r| r.seen_seq >= last && !r.stale);
            live.left_stale += usize::from(!fresh);
        }
    }
    live.refreshes = Ms(refreshes);
    Ok(live)
}

/// Whether every client is connected; `Err` names a client whose stream ended.
fn all_connected(logs: &[ClientLog]) -> Option<std::result::Result<(), String>> {
    if let Some((i, why)) = logs
        .iter()
        .enumerate()
        .find_map(|(i, c)| c.ended.as_ref().map(|w| (i, w)))
    {
        return Some(Err(format!("client {i}'s stream ended: {why}")));
    }
    logs.iter().all(|c| c.connected).then_some(Ok(()))
}

fn drive_events(
    web: &Web,
    daemon: &Daemon,
    opts: &Options,
    shared: &Shared,
    pid: u32,
    cpu0: f64,
    t0: Instant,
) -> Result<Live> {
    match shared.wait(Instant::now() + CONNECT_WAIT, all_connected) {
        Some(Ok(())) => {}
        Some(Err(e)) => bail!("{e}\n{}", daemon.log_tail()),
        None => bail!(
            "{}not every client connected to /api/events within {CONNECT_WAIT:?}\n{}",
            if bench::interrupted() {
                "interrupted: "
            } else {
                ""
            },
            daemon.log_tail()
        ),
    }
    eprintln!(
        "webbench: live: {} clients connected; {} events",
        opts.clients, opts.events
    );
    let mut live = Live {
        clients: opts.clients,
        events: opts.events,
        first_seq: 0,
        last_seq: 0,
        post: Ms::default(),
        after_answer: Ms::default(),
        after_send: Ms::default(),
        spread: Ms::default(),
        before_answer: 0,
        received: Vec::new(),
        cpu_s: 0.0,
        secs: 0.0,
        refreshes: Ms::default(),
        refresh_errors: 0,
        refresh_error_sample: None,
        stale_refreshes: 0,
        left_stale: 0,
    };
    // Client 0's log position after the last event found.
    let mut cursor = 0usize;
    for k in 0..opts.events {
        check_interrupted()?;
        let (agent, action, kind) = live_action(k);
        let path = format!("/api/agents/{agent}/{action}");
        let sent = Instant::now();
        let r = web.post_api(&path, &json!({}))?;
        let answered = Instant::now();
        if r.status != 200 {
            bail!("POST {path} answered {}: {}", r.status, r.text());
        }
        live.post.0.push(r.ms);
        let quoted = format!("\"agent\":\"{agent}\"");
        let deadline = answered + EVENT_WAIT;
        // The event's seq: the first of its kind about this agent after the previous one, in client 0's log.
        let found = shared.wait(deadline, |logs| {
            let c = &logs[0];
            c.events[cursor.min(c.events.len())..]
                .iter()
                .position(|e| e.kind == kind && e.data.contains(&quoted))
                .map(|p| (cursor + p, c.events[cursor + p].seq))
        });
        let Some((pos, seq)) = found else {
            check_interrupted()?;
            let g = shared.lock();
            bail!(
                "event {k} ({kind} of {agent}) did not reach client 0 within {EVENT_WAIT:?} of the POST's \
                 answer (client 0 has {} events, last seq {}; stream: {})\n{}",
                g[0].events.len(),
                g[0].last_seq(),
                g[0].ended.as_deref().unwrap_or("open"),
                daemon.log_tail()
            );
        };
        cursor = pos + 1;
        let all = shared.wait(deadline, |logs| {
            logs.iter()
                .all(|c| c.last_seq() >= seq)
                .then(|| logs.iter().map(|c| c.at(seq)).collect::<Vec<_>>())
        });
        let Some(times) = all else {
            check_interrupted()?;
            let g = shared.lock();
            let behind: Vec<String> = g
                .iter()
                .enumerate()
                .filter(|(_, c)| c.last_seq() < seq)
                .map(|(i, c)| {
                    format!(
                        "client {i} at seq {} ({})",
                        c.last_seq(),
                        c.ended.as_deref().unwrap_or("open")
                    )
                })
                .collect();
            bail!(
                "event seq {seq} ({kind} of {agent}) did not reach every client within {EVENT_WAIT:?}: {}",
                behind.join(", ")
            );
        };
        let mut got = Vec::with_capacity(times.len());
        for (i, t) in times.iter().enumerate() {
            match t {
                Some(t) => got.push(*t),
                None => bail!("client {i} MISSED seq {seq} ({kind} of {agent}): it went past it"),
            }
        }
        let last = got.iter().copied().max().unwrap_or(answered);
        let first = got.iter().copied().min().unwrap_or(answered);
        if last <= answered {
            live.before_answer += 1;
        }
        live.after_answer.0.push(ms_between(answered, last));
        live.after_send.0.push(ms_between(sent, last));
        live.spread.0.push(ms_between(first, last));
        if k == 0 {
            live.first_seq = seq;
        }
        live.last_seq = seq;
    }
    // Whatever else the daemon published meanwhile must reach every client too.
    let health: Value = web
        .http
        .get(&web.url("/healthz"))
        .call()
        .map_err(|e| anyhow!("GET /healthz: {e}"))?
        .into_json()?;
    let final_seq = health["last_seq"].as_u64().unwrap_or(live.last_seq);
    if shared
        .wait(Instant::now() + EVENT_WAIT, |logs| {
            logs.iter().all(|c| c.last_seq() >= final_seq).then_some(())
        })
        .is_none()
    {
        bail!("not every client reached the daemon's last seq {final_seq} within {EVENT_WAIT:?}");
    }
    live.cpu_s = cpu_secs(pid)? - cpu0;
    live.secs = t0.elapsed().as_secs_f64();
    // The sanity check: each client's seqs contiguous, in order, covering every event made.
    let g = shared.lock();
    for (i, c) in g.iter().enumerate() {
        if let Some(e) = c.events.iter().find(|e| {
            serde_json::from_str::<Value>(&e.data)
                .ok()
                .and_then(|v| v["seq"].as_u64())
                != Some(e.seq)
        }) {
            bail!(
                "client {i}: the event with id {} carries another seq: {}",
                e.seq,
                clip(&e.data, 300)
            );
        }
        let seqs: Vec<u64> = c.events.iter().map(|e| e.seq).collect();
        if let Some(w) = seqs.windows(2).find(|w| w[1] != w[0] + 1) {
            bail!(
                "client {i}: seq {} followed by {} (missed or out of order)",
                w[0],
                w[1]
            );
        }
        let first = seqs.first().copied().unwrap_or(u64::MAX);
        if first > live.first_seq || c.last_seq() < final_seq {
            bail!(
                "client {i} received seqs {first}..={} but the bench made {}..={} (last {final_seq})",
                c.last_seq(),
                live.first_seq,
                live.last_seq
            );
        }
        live.received.push(seqs.len());
    }
    drop(g);
    Ok(live)
}

// ---------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------

struct Results {
    machine: Machine,
    opts: Options,
    seeded: Seeded,
    startup_s: f64,
    sign_in: SignIn,
    weight: Weight,
    pages: Vec<PageTime>,
    pages_cpu_s: f64,
    live: Live,
    cpu_total_s: f64,
    rss_mb: f64,
    hwm_mb: f64,
    threads: u64,
    stop_s: f64,
}

fn run(opts: Options) -> Result<Results> {
    let machine = machine();
    let dir = bench::work_dir("webbench", None, opts.keep)?;
    run_in(opts, machine, dir.path())
}

fn run_in(opts: Options, machine: Machine, dir: &Path) -> Result<Results> {
    let mut daemon = new_daemon(dir)?;
    eprintln!(
        "webbench: working in {}; seeding {} calls",
        dir.display(),
        opts.calls
    );
    let seeded = seed_store(&daemon.store, opts.calls)?;
    eprintln!(
        "webbench: seeded {} calls and {} tasks ({} open) in {:.1} s, {:.1} MB",
        seeded.calls, seeded.tasks, seeded.open_tasks, seeded.secs, seeded.store_mb
    );
    daemon
        .cli(&["check-config"])
        .context("the generated config")?;
    let password = daemon.cli_secret(&["passwd", "admin"])?;
    let token = daemon.cli_secret(&["token", "create", "webbench", "--role", "admin"])?;

    let t = Instant::now();
    daemon.spawn("daemon.log", "daemon.log")?;
    let mut web = Web {
        http: agent(),
        port: daemon.web_port,
        cookie: String::new(),
        token,
    };
    daemon.wait_healthy()?;
    let startup_s = t.elapsed().as_secs_f64();
    eprintln!("webbench: daemon up in {startup_s:.2} s; signing in");
    let sign_in = sign_in(&mut web, &password)?;

    eprintln!("webbench: status page weight");
    let weight = measure_weight(&web)?;

    let pid = daemon.pid()?;
    let cpu_before_pages = cpu_secs(pid)?;
    let pages = time_pages(&web, opts.requests, &seeded.customer, pid)?;
    let pages_cpu_s = cpu_secs(pid)? - cpu_before_pages;
    // The pages must show what the store holds, or their times mean nothing.
    let want_rows = [
        ("/calls".to_string(), seeded.calls.min(50)),
        (
            format!("/calls?number={}", seeded.customer),
            seeded.customer_calls.min(50),
        ),
        // Task lists show 50 a page.
        ("/tasks".to_string(), seeded.open_tasks.min(50)),
        ("/tasks?state=all".to_string(), seeded.tasks.min(50)),
    ];
    for (path, want) in want_rows {
        if let Some(p) = pages.iter().find(|p| p.path == path) {
            if p.rows != Some(want) {
                bail!(
                    "GET {path} shows {:?} rows; the store holds {} calls, {} of them from {}, and {} tasks, \
                     {} of them open: it should show {want}",
                    p.rows,
                    seeded.calls,
                    seeded.customer_calls,
                    seeded.customer,
                    seeded.tasks,
                    seeded.open_tasks
                );
            }
        }
    }

    let live = live_phase(&web, &daemon, &opts)?;
    let cpu_total_s = cpu_secs(pid)?;
    let rss_mb = status_mb(pid, "VmRSS")?;
    let hwm_mb = status_mb(pid, "VmHWM")?;
    let threads = status_value(pid, "Threads")?;
    let stop_s = daemon.stop().as_secs_f64();
    Ok(Results {
        machine,
        opts,
        seeded,
        startup_s,
        sign_in,
        weight,
        pages,
        pages_cpu_s,
        live,
        cpu_total_s,
        rss_mb,
        hwm_mb,
        threads,
        stop_s,
    })
}

// ---------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------

fn verdict(ok: bool) -> &'static str {
    if ok {
        "meets"
    } else {
        "MISSES"
    }
}

fn report(r: &Results) -> String {
    let mut table = Table::new(52, 22);
    let mut row = |metric: &str, value: String, target: String| table.row(metric, value, target);
    let none = String::new;
    let pct = |m: &Ms| format!("{:.2} / {:.2} / {:.2}", m.p(50.0), m.p(99.0), m.max());
    row("metric", "value".into(), "target".into());
    row(&"-".repeat(52), "-".repeat(22), "------".into());
    row(
        &format!(
            "0. store: {} calls, {} tasks ({} open)",
            r.seeded.calls, r.seeded.tasks, r.seeded.open_tasks
        ),
        none(),
        none(),
    );
    row(
        "  seeding s (library) / store MB",
        format!("{:.1} / {:.1}", r.seeded.secs, r.seeded.store_mb),
        none(),
    );
    row(
        "  the customer searched: number / calls",
        format!("{} / {}", r.seeded.customer, r.seeded.customer_calls),
        none(),
    );
    row(
        "  daemon start to /healthz 200 s",
        format!("{:.2}", r.startup_s),
        none(),
    );
    row(
        "  POST /login / POST /password ms (argon2id)",
        format!("{:.0} / {:.0}", r.sign_in.login_ms, r.sign_in.password_ms),
        none(),
    );

    let w = &r.weight;
    let weight_ok = kb(w.total_bytes) < TARGET_WEIGHT_KB;
    row("1. status page weight (uncompressed)", none(), none());
    row("  GET / KB", format!("{:.1}", kb(w.html_bytes)), none());
    for (path, bytes, _) in &w.assets {
        row(
            &format!("  {path} KB"),
            format!("{:.1}", kb(*bytes)),
            none(),
        );
    }
    row(
        &format!("  total KB ({} requests)", 1 + w.assets.len()),
        format!("{:.1}", kb(w.total_bytes)),
        format!("< {TARGET_WEIGHT_KB:.0}: {}", verdict(weight_ok)),
    );
    row(
        "  external references",
        w.external.len().to_string(),
        format!("0: {}", verdict(w.external.is_empty())),
    );
    for (at, what) in &w.external {
        row(&format!("    in {at}"), clip(what, 60), none());
    }

    row(
        &format!(
            "2. page times, {} GETs each, ms (p50 / p90 / p99 / max)",
            r.opts.requests
        ),
        none(),
        none(),
    );
    for p in &r.pages {
        let ok = p.target.map(|t| p.ms.p(99.0) < t);
        row(
            &format!("  {} ({})", p.path, p.what),
            format!(
                "{:.1} / {:.1} / {:.1} / {:.1}",
                p.ms.p(50.0),
                p.ms.p(90.0),
                p.ms.p(99.0),
                p.ms.max()
            ),
            match (p.target, ok) {
                (Some(t), Some(ok)) => format!("p99 < {t:.0}: {}", verdict(ok)),
                _ => "(printed only)".into(),
            },
        );
        row(
            "      KB / rows / daemon CPU ms per GET",
            format!(
                "{:.1} / {} / {:.2}",
                kb(p.bytes),
                p.rows.map_or("-".to_string(), |n| n.to_string()),
                p.cpu_ms
            ),
            none(),
        );
    }
    row(
        "  daemon CPU s during the page phase",
        format!("{:.2}", r.pages_cpu_s),
        none(),
    );

    let l = &r.live;
    row(
        &format!(
            "3. {} clients on /api/events, {} events{}",
            l.clients,
            l.events,
            if r.opts.refresh { " (+ refresh)" } else { "" }
        ),
        none(),
        none(),
    );
    row(
        "  every client got every seq, in order",
        format!("yes ({}..={})", l.first_seq, l.last_seq),
        "must".into(),
    );
    row(
        "  events received per client (min / max)",
        format!(
            "{} / {}",
            l.received.iter().min().copied().unwrap_or(0),
            l.received.iter().max().copied().unwrap_or(0)
        ),
        none(),
    );
    row(
        "  POST round trip ms (p50 / p99 / max)",
        pct(&l.post),
        none(),
    );
    row(
        "  answer -> last client ms (p50 / p99 / max)",
        pct(&l.after_answer),
        none(),
    );
    row(
        "  POST sent -> last client ms (p50 / p99 / max)",
        pct(&l.after_send),
        none(),
    );
    row(
        "  first -> last client ms (p50 / p99 / max)",
        pct(&l.spread),
        none(),
    );
    row(
        "  events at every client before the POST answered",
        l.before_answer.to_string(),
        none(),
    );
    if r.opts.refresh {
        row(
            "  status.json refreshes / failed",
            format!("{} / {}", l.refreshes.0.len(), l.refresh_errors),
            none(),
        );
        row(
            "  status.json refresh ms (p50 / p99 / max)",
            pct(&l.refreshes),
            none(),
        );
        row(
            "  refreshes older than an event already shown",
            l.stale_refreshes.to_string(),
            "0".into(),
        );
        row(
            "  pages left stale after the last event",
            l.left_stale.to_string(),
            "0".into(),
        );
        if let Some(e) = &l.refresh_error_sample {
            row("    a failed refresh", clip(e, 60), none());
        }
    }
    row(
        &format!("  daemon CPU s during the phase ({:.1} s)", l.secs),
        format!("{:.2}", l.cpu_s),
        none(),
    );
    row(
        "  daemon CPU ms per event",
        format!("{:.2}", 1000.0 * l.cpu_s / l.events as f64),
        none(),
    );
    row("daemon at the end", none(), none());
    row(
        "  CPU s since start (user+sys)",
        format!("{:.2}", r.cpu_total_s),
        none(),
    );
    row(
        "  VmRSS / VmHWM MB",
        format!("{:.1} / {:.1}", r.rss_mb, r.hwm_mb),
        none(),
    );
    row("  threads", r.threads.to_string(), none());
    row(
        &format!("  SIGTERM to exit s ({} clients connected)", l.clients),
        format!("{:.2}", r.stop_s),
        none(),
    );
    table.into_string()
}

fn json_line(r: &Results) -> Value {
    let w = &r.weight;
    let l = &r.live;
    json_report(
        "webbench",
        &r.machine,
        Value::Null,
        json!({
            "params": {
                "calls": r.opts.calls,
                "tasks": r.seeded.tasks,
                "customer": r.seeded.customer,
                "customer_calls": r.seeded.customer_calls,
                "open_tasks": r.seeded.open_tasks,
                "requests": r.opts.requests,
                "warmup": WARMUP,
                "clients": r.opts.clients,
                "events": r.opts.events,
                "refresh": r.opts.refresh,
                "quick": r.opts.quick,
            },
            "seed": { "secs": round(r.seeded.secs, 2), "store_mb": round(r.seeded.store_mb, 1) },
            "startup_secs": round(r.startup_s, 3),
            "login_ms": round(r.sign_in.login_ms, 1),
            "password_change_ms": round(r.sign_in.password_ms, 1),
            "weight": {
                "html_bytes": w.html_bytes,
                "assets": w.assets.iter()
                    .map(|(p, b, _)| (p.clone(), json!(b)))
                    .collect::<serde_json::Map<String, Value>>(),
                "total_bytes": w.total_bytes,
                "total_kb": round(kb(w.total_bytes), 1),
                "requests": 1 + w.assets.len(),
                "external_refs": w.external.len(),
                "external": w.external.iter().map(|(at, what)| json!({"in": at, "ref": what})).collect::<Vec<_>>(),
                "compressed_responses": w.compressed,
                "csp": w.csp,
            },
            "pages": r.pages.iter()
                .map(|p| {
                    let mut v = p.ms.json();
                    v["bytes"] = json!(p.bytes);
                    v["rows"] = json!(p.rows);
                    v["cpu_ms_per_get"] = json!(round(p.cpu_ms, 3));
                    (p.path.clone(), v)
                })
                .collect::<serde_json::Map<String, Value>>(),
            "pages_cpu_secs": round(r.pages_cpu_s, 3),
            "live": {
                "clients": l.clients,
                "events": l.events,
                "first_seq": l.first_seq,
                "last_seq": l.last_seq,
                "missed": 0,
                "received_min": l.received.iter().min(),
                "post_ms": l.post.json(),
                "answer_to_last_client_ms": l.after_answer.json(),
                "sent_to_last_client_ms": l.after_send.json(),
                "first_to_last_client_ms": l.spread.json(),
                "before_answer": l.before_answer,
                "refreshes": r.opts.refresh.then(|| json!({
                    "count": l.refreshes.0.len(),
                    "failed": l.refresh_errors,
                    "ms": l.refreshes.json(),
                    "stale": l.stale_refreshes,
                    "pages_left_stale": l.left_stale,
                })),
                "secs": round(l.secs, 2),
                "cpu_secs": round(l.cpu_s, 3),
                "cpu_ms_per_event": round(1000.0 * l.cpu_s / l.events as f64, 3),
            },
            "daemon": {
                "cpu_secs": round(r.cpu_total_s, 2),
                "rss_mb": round(r.rss_mb, 1),
                "hwm_mb": round(r.hwm_mb, 1),
                "threads": r.threads,
                "stop_secs": round(r.stop_s, 2),
            },
            "targets": {
                "weight_kb": TARGET_WEIGHT_KB,
                "external_refs": 0,
                "page_p99_ms": TARGET_PAGE_P99_MS,
            },
        }),
    )
}

fn main() -> ExitCode {
    bench::catch_signals();
    let hint = "--keep keeps the work dir with the store, config and daemon log";
    bench::main("webbench", Options::parse, run, Some(hint), |r| {
        let head = [
            r.machine.headline("webbench"),
            format!(
                "params: {} calls, {} GETs a page, {} clients, {} events{}{}",
                r.opts.calls,
                r.opts.requests,
                r.opts.clients,
                r.opts.events,
                if r.opts.refresh { ", --refresh" } else { "" },
                if r.opts.quick { " (--quick)" } else { "" }
            ),
        ];
        bench::print_report("webbench", &head, &report(&r), &json_line(&r));
        ExitCode::SUCCESS
    })
}
