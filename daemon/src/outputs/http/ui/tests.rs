//! Router tests of the web page: every route needs a login, roles are enforced, CSRF and Origin are checked,
//! validation errors are shown beside their fields, nothing changes on GET.
//!
//! Long on purpose: one router test per behaviour of the page, all sharing one rig.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use tokio::sync::{mpsc, watch};
use tower::ServiceExt;

use crate::accounts::{self, Role, User};
use crate::clock::Clock;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::outputs::http::{router, AppState};
use crate::outputs::mqtt::LinkState;
use crate::runtime::daemon::{ReloadRequest, Reloader};
use crate::runtime::engine::Engine;
use crate::store::Store;
use crate::tasks::ComplaintRequest;

const HOST: &str = "box.local:8080";
pub(super) const ORIGIN: &str = "http://box.local:8080";
pub(super) const PASSWORD: &str = "a good long password";

const CONFIG: &str = "# the office's config\n[site]\nid = \"hq\"\nlanguage = \"zh-CN\"\n\
[[line]]\nid = \"line1\"\nkind = \"modem\"\ndevice = \"/dev/null\"\n\
[hours]\nmon = \"09:00-18:00\"\n";

pub(super) struct Rig {
    pub(super) app: Router,
    pub(super) state: AppState,
    cfg_path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

pub(super) fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let cfg_path = dir.path().join("linekeeper.toml");
    std::fs::write(&cfg_path, CONFIG).unwrap();
    let cfg = Arc::new(Config::parse(CONFIG).unwrap());
    let metrics = Arc::new(Metrics::default());
    let (engine, handle) =
        Engine::new(cfg.clone(), store.clone(), Clock::System, metrics.clone()).unwrap();
    tokio::spawn(engine.run());
    // A reloader that validates the file as the daemon would and reports it applied.
    let (reload_tx, mut reload_rx) = mpsc::channel::<ReloadRequest>(4);
    let path = cfg_path.clone();
    tokio::spawn(async move {
        while let Some(req) = reload_rx.recv().await {
            let r = match Config::load(&path) {
                Ok(_) => Ok(vec!["reloaded".to_string()]),
                Err(e) => Err(vec![e.to_string()]),
            };
            if let Some(reply) = req.reply {
                let _ = reply.send(r);
            }
        }
    });
    for (name, role) in [
        ("ann", Role::Agent),
        ("sue", Role::Supervisor),
        ("root", Role::Admin),
    ] {
        accounts::put_user(
            &store,
            &User {
                name: name.into(),
                role,
                hash: accounts::hash_password(PASSWORD).unwrap(),
                must_change: false,
                language: None,
                created_at: chrono::Utc::now(),
            },
        )
        .unwrap();
    }
    let (_tx, mqtt) = watch::channel(LinkState::Disabled);
    let state = AppState {
        cfg: watch::channel(cfg).1,
        reloader: Reloader(reload_tx),
        store,
        engine: handle,
        metrics,
        mqtt,
        ui: Arc::new(super::UiState {
            config_path: Some(cfg_path.clone()),
            ..Default::default()
        }),
        tasks: Default::default(),
    };
    Rig {
        app: router(state.clone()),
        state,
        cfg_path,
        _dir: dir,
    }
}

pub(super) struct Resp {
    pub(super) status: StatusCode,
    location: String,
    cookie: String,
    pub(super) body: String,
}

pub(super) async fn send(app: &Router, req: Request<Body>) -> Resp {
    let r = app.clone().oneshot(req).await.unwrap();
    let header = |h: header::HeaderName| {
        r.headers()
            .get(h)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let (location, cookie) = (header(header::LOCATION), header(header::SET_COOKIE));
    let status = r.status();
    let body = r.into_body().collect().await.unwrap().to_bytes();
    Resp {
        status,
        location,
        cookie,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

pub(super) fn get(uri: &str, cookie: Option<&str>) -> Request<Body> {
    let mut b = Request::get(uri).header(header::HOST, HOST);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::empty()).unwrap()
}

fn form_body(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", super::urlencode(k), super::urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub(super) fn post(
    uri: &str,
    cookie: Option<&str>,
    origin: Option<&str>,
    fields: &[(&str, &str)],
) -> Request<Body> {
    let mut b = Request::post(uri)
        .header(header::HOST, HOST)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    if let Some(o) = origin {
        b = b.header(header::ORIGIN, o);
    }
    b.body(Body::from(form_body(fields))).unwrap()
}

/// Logs in; returns the cookie (`lk_session=...`) and the session's CSRF token.
pub(super) async fn login(app: &Router, user: &str) -> (String, String) {
    let r = send(
        app,
        post(
            "/login",
            None,
            Some(ORIGIN),
            &[("user", user), ("password", PASSWORD)],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let cookie = r.cookie.split(';').next().unwrap().to_string();
    let page = send(app, get("/", Some(&cookie))).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    (cookie, csrf_of(&page.body))
}

fn csrf_of(html: &str) -> String {
    let i = html.find("data-csrf=\"").expect("a data-csrf attribute") + 11;
    html[i..i + 32].to_string()
}

const PAGES: &[&str] = &[
    "/",
    "/ui/status.json",
    "/password",
    "/calls",
    "/calls/01ABC",
    "/tasks",
    "/tasks/01ABC",
    "/directory",
    "/directory/export.csv",
    "/reports",
    "/reports/daily.csv",
    "/config",
    "/config/hours",
    "/users",
    "/audit",
    "/diagnostics",
    "/diagnostics/stream",
];

const POSTS: &[&str] = &[
    "/logout",
    "/password",
    "/lang",
    "/calls/01ABC/complaint",
    "/tasks/01ABC/done",
    "/directory",
    "/directory/delete",
    "/directory/import",
    "/config/hours",
    "/users",
    "/users/ann/reset",
    "/tokens",
    "/tokens/revoke",
];

#[tokio::test]
async fn every_page_and_action_needs_a_login() {
    let r = rig();
    for uri in PAGES {
        let resp = send(&r.app, get(uri, None)).await;
        assert_eq!(resp.status, StatusCode::SEE_OTHER, "GET {uri}");
        assert!(
            resp.location.starts_with("/login"),
            "GET {uri}: {}",
            resp.location
        );
    }
    for uri in POSTS {
        let resp = send(&r.app, post(uri, None, Some(ORIGIN), &[])).await;
        assert_eq!(resp.status, StatusCode::SEE_OTHER, "POST {uri}");
        assert!(resp.location.starts_with("/login"), "POST {uri}");
    }
    // A made-up session id is no session.
    let resp = send(&r.app, get("/", Some("lk_session=00ff"))).await;
    assert_eq!(resp.location, "/login");
    // The deep link survives the login.
    let resp = send(&r.app, get("/tasks?state=all", None)).await;
    assert_eq!(resp.location, "/login?next=/tasks%3Fstate%3Dall");
    let page = send(&r.app, get("/login", None)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"login-submit\"") && page.body.contains("lang=\"zh-CN\""));
}

#[tokio::test]
async fn login_sets_a_strict_httponly_cookie_rotates_it_and_logs_out() {
    let r = rig();
    let first = send(
        &r.app,
        post(
            "/login?x",
            None,
            Some(ORIGIN),
            &[("user", "ann"), ("password", PASSWORD), ("next", "/tasks")],
        ),
    )
    .await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    assert_eq!(first.location, "/tasks");
    assert!(
        first.cookie.contains("HttpOnly") && first.cookie.contains("SameSite=Strict"),
        "{}",
        first.cookie
    );
    let c1 = first.cookie.split(';').next().unwrap().to_string();
    // Logging in again from the same browser issues a new id and ends the old one.
    let second = send(
        &r.app,
        post(
            "/login",
            Some(&c1),
            Some(ORIGIN),
            &[("user", "ann"), ("password", PASSWORD)],
        ),
    )
    .await;
    let c2 = second.cookie.split(';').next().unwrap().to_string();
    assert_ne!(c1, c2);
    assert_eq!(
        send(&r.app, get("/", Some(&c1))).await.status,
        StatusCode::SEE_OTHER
    );
    let page = send(&r.app, get("/", Some(&c2))).await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = csrf_of(&page.body);
    // An open redirect is not possible through `next`.
    let evil = send(
        &r.app,
        post(
            "/login",
            None,
            Some(ORIGIN),
            &[
                ("user", "ann"),
                ("password", PASSWORD),
                ("next", "//evil.example/"),
            ],
        ),
    )
    .await;
    assert_eq!(evil.location, "/");
    let out = send(
        &r.app,
        post("/logout", Some(&c2), Some(ORIGIN), &[("csrf", &csrf)]),
    )
    .await;
    assert_eq!(out.location, "/login");
    assert!(out.cookie.contains("Max-Age=0"));
    assert_eq!(
        send(&r.app, get("/", Some(&c2))).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn failed_logins_lock_the_account_and_are_audited() {
    let r = rig();
    let wrong = send(
        &r.app,
        post(
            "/login",
            None,
            Some(ORIGIN),
            &[("user", "sue"), ("password", "nope")],
        ),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("form-error") && wrong.cookie.is_empty());
    for _ in 1..accounts::LOCK_AFTER {
        send(
            &r.app,
            post(
                "/login",
                None,
                Some(ORIGIN),
                &[("user", "sue"), ("password", "nope")],
            ),
        )
        .await;
    }
    // Locked: even the right password is refused now.
    let locked = send(
        &r.app,
        post(
            "/login",
            None,
            Some(ORIGIN),
            &[("user", "sue"), ("password", PASSWORD)],
        ),
    )
    .await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.body.contains("15"), "{}", locked.body);
    let (admin, _) = login(&r.app, "root").await;
    let audit = send(&r.app, get("/audit", Some(&admin))).await;
    assert_eq!(audit.status, StatusCode::OK);
    assert!(audit.body.contains("data-action=\"login_failed\""));
    assert!(audit.body.contains("data-action=\"login_refused\""));
    assert!(audit.body.contains("data-action=\"login\""));
    // A login from another site's page is refused before the password is even checked.
    let cross = send(
        &r.app,
        post(
            "/login",
            None,
            Some("http://evil.example"),
            &[("user", "root"), ("password", PASSWORD)],
        ),
    )
    .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_first_password_must_be_changed_before_anything_else() {
    let r = rig();
    let pw = accounts::reset_password(&r.state.store, "ann", chrono::Utc::now()).unwrap();
    let resp = send(
        &r.app,
        post(
            "/login",
            None,
            Some(ORIGIN),
            &[("user", "ann"), ("password", &pw)],
        ),
    )
    .await;
    assert_eq!(resp.location, "/password");
    let cookie = resp.cookie.split(';').next().unwrap().to_string();
    for uri in ["/", "/tasks", "/calls"] {
        assert_eq!(
            send(&r.app, get(uri, Some(&cookie))).await.location,
            "/password",
            "{uri}"
        );
    }
    // Nor does the API take a session that must change its password.
    assert_eq!(
        send(&r.app, get("/api/calls", Some(&cookie))).await.status,
        StatusCode::UNAUTHORIZED
    );
    let page = send(&r.app, get("/password", Some(&cookie))).await;
    let csrf = csrf_of(&page.body);
    let bad = send(
        &r.app,
        post(
            "/password",
            Some(&cookie),
            Some(ORIGIN),
            &[
                ("csrf", &csrf),
                ("current", "wrong"),
                ("new", "short"),
                ("confirm", "short"),
            ],
        ),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.body.contains("data-field=\"current\"") && bad.body.contains("data-field=\"new\""),
        "{}",
        bad.body
    );
    let mismatch = send(
        &r.app,
        post(
            "/password",
            Some(&cookie),
            Some(ORIGIN),
            &[
                ("csrf", &csrf),
                ("current", &pw),
                ("new", "0123456789ab"),
                ("confirm", "0123456789ac"),
            ],
        ),
    )
    .await;
    assert!(mismatch.body.contains("data-field=\"confirm\""));
    let ok = send(
        &r.app,
        post(
            "/password",
            Some(&cookie),
            Some(ORIGIN),
            &[
                ("csrf", &csrf),
                ("current", &pw),
                ("new", "0123456789ab"),
                ("confirm", "0123456789ab"),
            ],
        ),
    )
    .await;
    assert_eq!(ok.location, "/");
    assert_eq!(
        send(&r.app, get("/tasks", Some(&cookie))).await.status,
        StatusCode::OK
    );
    let u = accounts::user(&r.state.store, "ann").unwrap().unwrap();
    assert!(!u.must_change && accounts::verify_password(&u.hash, "0123456789ab"));
}

#[tokio::test]
async fn roles_are_enforced_on_pages_and_in_the_nav() {
    let r = rig();
    let (agent, agent_csrf) = login(&r.app, "ann").await;
    let (sup, sup_csrf) = login(&r.app, "sue").await;
    let (admin, _) = login(&r.app, "root").await;
    let pages = [
        ("/", Role::Agent),
        ("/calls", Role::Agent),
        ("/tasks", Role::Agent),
        ("/directory", Role::Agent),
        ("/ui/status.json", Role::Agent),
        ("/reports", Role::Supervisor),
        ("/reports/daily.csv", Role::Supervisor),
        ("/config", Role::Admin),
        ("/config/hours", Role::Admin),
        ("/users", Role::Admin),
        ("/audit", Role::Admin),
        ("/diagnostics", Role::Admin),
    ];
    for (uri, least) in pages {
        for (cookie, role) in [
            (&agent, Role::Agent),
            (&sup, Role::Supervisor),
            (&admin, Role::Admin),
        ] {
            let want = if role >= least {
                StatusCode::OK
            } else {
                StatusCode::FORBIDDEN
            };
            let got = send(&r.app, get(uri, Some(cookie))).await.status;
            assert_eq!(got, want, "{uri} as {}", role.as_str());
        }
    }
    let home = send(&r.app, get("/", Some(&agent))).await.body;
    assert!(home.contains("id=\"nav-tasks\"") && !home.contains("id=\"nav-config\""));
    let home = send(&r.app, get("/", Some(&admin))).await.body;
    assert!(home.contains("id=\"nav-config\"") && home.contains("id=\"nav-diagnostics\""));
    // An agent may not edit the directory (with a valid CSRF token: the role refuses it), a supervisor may.
    let customer = |csrf: &str| -> Vec<(&'static str, String)> {
        vec![
            ("csrf", csrf.to_string()),
            ("number", "13800138000".into()),
            ("name", "X".into()),
        ]
    };
    let form = customer(&agent_csrf);
    let refs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let resp = send(
        &r.app,
        post("/directory", Some(&agent), Some(ORIGIN), &refs),
    )
    .await;
    assert_eq!(resp.status, StatusCode::FORBIDDEN);
    assert!(
        resp.body.contains(super::i18n::FORBIDDEN.zh),
        "{}",
        resp.body
    );
    let form = customer(&sup_csrf);
    let refs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let resp = send(&r.app, post("/directory", Some(&sup), Some(ORIGIN), &refs)).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.body);
}

#[tokio::test]
async fn state_changes_need_the_csrf_token_and_a_same_origin_request() {
    let r = rig();
    let t = r
        .state
        .engine
        .open_complaint(ComplaintRequest {
            call_id: None,
            number: Some("13800138000".into()),
            name: Some("Wang".into()),
            note: Some("late delivery".into()),
            severity: Default::default(),
            category: None,
            by: None,
        })
        .await
        .unwrap();
    let (cookie, csrf) = login(&r.app, "sue").await;
    let uri = format!("/tasks/{}/respond", t.id);
    let fields = |token: &str| {
        vec![
            ("csrf", token.to_string()),
            ("promised_fix", "48h".into()),
            ("note", "on it".into()),
        ]
    };
    let as_pairs = |v: &Vec<(&'static str, String)>| {
        v.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>()
    };
    let send_with = |token: &str, origin: Option<&str>| {
        let f = as_pairs(&fields(token));
        let refs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        post(&uri, Some(&cookie), origin, &refs)
    };
    assert_eq!(
        send(&r.app, send_with("0000", Some(ORIGIN))).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&r.app, send_with(&csrf, Some("http://evil.example")))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&r.app, send_with(&csrf, None)).await.status,
        StatusCode::FORBIDDEN
    );
    // A Referer from this host stands in for a missing Origin.
    let mut req = send_with(&csrf, None);
    req.headers_mut().insert(
        header::REFERER,
        format!("{ORIGIN}/tasks/{}", t.id).parse().unwrap(),
    );
    let ok = send(&r.app, req).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert_eq!(ok.location, format!("/tasks/{}?ok=1", t.id));
    let task = r.state.store.task(&t.id).unwrap().unwrap();
    assert!(task.first_response_at.is_some());
    // No state change on GET.
    let g = send(&r.app, get(&uri, Some(&cookie))).await;
    assert_eq!(g.status, StatusCode::METHOD_NOT_ALLOWED);
    // An action the task's kind does not allow is refused (a complaint is resolved, not "done").
    let f = [("csrf", csrf.as_str())];
    let done = send(
        &r.app,
        post(
            &format!("/tasks/{}/done", t.id),
            Some(&cookie),
            Some(ORIGIN),
            &f,
        ),
    )
    .await;
    assert_eq!(done.status, StatusCode::FORBIDDEN);
    // The API takes the session too, with the token in a header for changes.
    assert_eq!(
        send(&r.app, get("/api/tasks", Some(&cookie))).await.status,
        StatusCode::OK
    );
    let api = |csrf: Option<&str>| {
        let mut b = Request::post(format!("/api/tasks/{}/ack", t.id))
            .header(header::HOST, HOST)
            .header(header::ORIGIN, ORIGIN)
            .header(header::COOKIE, cookie.as_str());
        if let Some(c) = csrf {
            b = b.header("x-csrf-token", c);
        }
        b.body(Body::empty()).unwrap()
    };
    assert_eq!(
        send(&r.app, api(None)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_ne!(
        send(&r.app, api(Some(&csrf))).await.status,
        StatusCode::UNAUTHORIZED
    );
    // The detail page shows the history and the audit log has the action.
    let page = send(&r.app, get(&format!("/tasks/{}", t.id), Some(&cookie))).await;
    assert!(
        page.body.contains("on it") && page.body.contains("data-action=\"resolve\""),
        "{}",
        page.body
    );
    let (admin, _) = login(&r.app, "root").await;
    let audit = send(&r.app, get("/audit", Some(&admin))).await.body;
    assert!(audit.contains(&format!("respond {}", t.id)), "{audit}");
}

#[tokio::test]
async fn configuration_errors_are_shown_beside_their_fields_and_nothing_is_written() {
    let r = rig();
    let (cookie, csrf) = login(&r.app, "root").await;
    let page = send(&r.app, get("/config/hours", Some(&cookie))).await;
    assert!(page.body.contains("id=\"form-hours\"") && page.body.contains("value=\"09:00-18:00\""));
    let bad = send(
        &r.app,
        post(
            "/config/hours",
            Some(&cookie),
            Some(ORIGIN),
            &[
                ("csrf", &csrf),
                ("mon", "25:00-18:00"),
                ("holidays", "2026-12-25"),
            ],
        ),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.body
            .contains("class=\"field-error\" data-field=\"mon\""),
        "{}",
        bad.body
    );
    assert!(
        bad.body.contains("25:00-18:00") && bad.body.contains("2026-12-25"),
        "the typed values stay"
    );
    assert_eq!(std::fs::read_to_string(&r.cfg_path).unwrap(), CONFIG);
    let bad_holiday = send(
        &r.app,
        post(
            "/config/hours",
            Some(&cookie),
            Some(ORIGIN),
            &[
                ("csrf", &csrf),
                ("mon", "09:00-17:00"),
                ("holidays", "2026-13-45"),
            ],
        ),
    )
    .await;
    assert!(
        bad_holiday.body.contains("data-field=\"holidays\""),
        "{}",
        bad_holiday.body
    );
    let good = send(
        &r.app,
        post(
            "/config/hours",
            Some(&cookie),
            Some(ORIGIN),
            &[
                ("csrf", &csrf),
                ("mon", "08:30-12:00, 13:30-18:00"),
                ("holidays", "2026-12-25\n2027-01-01"),
            ],
        ),
    )
    .await;
    assert_eq!(good.status, StatusCode::SEE_OTHER, "{}", good.body);
    let text = std::fs::read_to_string(&r.cfg_path).unwrap();
    assert!(
        text.contains("# the office's config"),
        "comments are kept: {text}"
    );
    assert!(
        text.contains("\"2026-12-25\"") && text.contains("08:30-12:00, 13:30-18:00"),
        "{text}"
    );
    let prev = std::fs::read_to_string(r.cfg_path.with_extension("toml.prev")).unwrap();
    assert_eq!(prev, CONFIG);
    let after = send(&r.app, get(&good.location, Some(&cookie))).await;
    assert!(after.body.contains("flash-ok") && after.body.contains("2027-01-01"));
    // A bad [[line]] block: the error names the key.
    let lines = send(
        &r.app,
        post(
            "/config/lines",
            Some(&cookie),
            Some(ORIGIN),
            &[
                ("csrf", &csrf),
                ("toml", "[[line]]\nid = \"line1\"\nkind = \"fax\"\n"),
            ],
        ),
    )
    .await;
    assert_eq!(lines.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        lines.body.contains("data-field=\"toml\"") && lines.body.contains("line[0]"),
        "{}",
        lines.body
    );
    let audit = send(&r.app, get("/audit", Some(&cookie))).await.body;
    assert!(audit.contains("data-action=\"config\""));
}

#[tokio::test]
async fn language_follows_the_site_and_then_the_user() {
    let r = rig();
    let (cookie, csrf) = login(&r.app, "ann").await;
    let zh = send(&r.app, get("/tasks", Some(&cookie))).await.body;
    assert!(
        zh.contains("<html lang=\"zh-CN\">") && zh.contains(">任务<"),
        "{zh}"
    );
    let switched = send(
        &r.app,
        post(
            "/lang",
            Some(&cookie),
            Some(ORIGIN),
            &[("csrf", &csrf), ("lang", "en"), ("back", "/tasks")],
        ),
    )
    .await;
    assert_eq!(switched.location, "/tasks");
    let en = send(&r.app, get("/tasks", Some(&cookie))).await.body;
    assert!(en.contains("<html lang=\"en\">") && en.contains(">Tasks<"));
    // Kept with the user: a new session starts in English.
    let (again, _) = login(&r.app, "ann").await;
    assert!(send(&r.app, get("/", Some(&again)))
        .await
        .body
        .contains("<html lang=\"en\">"));
    // Another user still sees the site's language.
    let (other, _) = login(&r.app, "sue").await;
    assert!(send(&r.app, get("/", Some(&other)))
        .await
        .body
        .contains("<html lang=\"zh-CN\">"));
}

/// Creates a token on the users page: the page and the token it shows once.
async fn token_from_page(app: &Router, cookie: &str, fields: &[(&str, &str)]) -> (String, String) {
    let made = send(app, post("/tokens", Some(cookie), Some(ORIGIN), fields)).await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let i = made.body.find("id=\"secret\">").unwrap() + 12;
    let token = made.body[i..].split('<').next().unwrap().to_string();
    (made.body, token)
}

#[tokio::test]
async fn directory_users_and_tokens_from_the_page() {
    let r = rig();
    let (cookie, csrf) = login(&r.app, "root").await;
    let bad = send(
        &r.app,
        post(
            "/directory",
            Some(&cookie),
            Some(ORIGIN),
            &[("csrf", &csrf), ("number", "call me"), ("name", "X")],
        ),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("data-field=\"customer\""));
    let good = send(
        &r.app,
        post(
            "/directory",
            Some(&cookie),
            Some(ORIGIN),
            &[
                ("csrf", &csrf),
                ("number", "138-0013-8000"),
                ("name", "王先生"),
                ("vip", "true"),
            ],
        ),
    )
    .await;
    assert_eq!(good.status, StatusCode::OK, "{}", good.body);
    assert!(good.body.contains("data-number=\"13800138000\"") && good.body.contains("王先生"));
    let csv = send(&r.app, get("/directory/export.csv", Some(&cookie))).await;
    assert!(csv.body.contains("13800138000"));
    // The exported file imports again through the page's file upload, with a bad row reported by its line.
    let file = format!(
        "{}13900001111,Li,false,,,\r\nnot a number,X,false,,,\r\n",
        csv.body
    );
    let boundary = "lkboundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"c.csv\"\r\n\
         Content-Type: text/csv\r\n\r\n{file}\r\n--{boundary}--\r\n"
    );
    let upload = |body: String| {
        Request::post("/directory/import")
            .header(header::HOST, HOST)
            .header(header::ORIGIN, ORIGIN)
            .header(header::COOKIE, cookie.as_str())
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(Body::from(body))
            .unwrap()
    };
    let imported = send(&r.app, upload(body.clone())).await;
    assert_eq!(imported.status, StatusCode::OK);
    assert!(
        imported.body.contains("data-number=\"13900001111\""),
        "{}",
        imported.body
    );
    assert!(
        imported.body.contains("line 4: bad number"),
        "the bad row is named: {}",
        imported.body
    );
    // The language switch on a page answering a POST goes back to the page the form was on (no Referer: home).
    assert!(imported.body.contains("name=\"back\" value=\"/\""));
    let forged = send(&r.app, upload(body.replace(csrf.as_str(), "0000"))).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    // A user made by the admin gets a one-time password and must change it.
    let made = send(
        &r.app,
        post(
            "/users",
            Some(&cookie),
            Some(ORIGIN),
            &[("csrf", &csrf), ("name", "dan"), ("role", "agent")],
        ),
    )
    .await;
    assert_eq!(made.status, StatusCode::OK);
    let i = made.body.find("id=\"secret\">").unwrap() + 12;
    let pw = &made.body[i..i + 16];
    assert!(accounts::verify_password(
        &accounts::user(&r.state.store, "dan").unwrap().unwrap().hash,
        pw
    ));
    // A token made on the page works on the API and can be revoked.
    let (made, token) = token_from_page(
        &r.app,
        &cookie,
        &[
            ("csrf", &csrf),
            ("name", "wallboard"),
            ("role", "supervisor"),
        ],
    )
    .await;
    assert!(
        made.contains("<td class=\"token-role\">supervisor"),
        "{made}"
    );
    let api = || {
        Request::get("/api/tasks")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(send(&r.app, api()).await.status, StatusCode::OK);
    let put = Request::put("/api/customers/13900001111")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::from(r#"{"name":"Li"}"#))
        .unwrap();
    assert_eq!(send(&r.app, put).await.status, StatusCode::OK);
    // A token made without a role reads but may not change anything.
    let (_, viewer) = token_from_page(&r.app, &cookie, &[("csrf", &csrf), ("name", "tv")]).await;
    let put = Request::put("/api/customers/13900002222")
        .header("authorization", format!("Bearer {viewer}"))
        .body(Body::from(r#"{"name":"Wu"}"#))
        .unwrap();
    let refused = send(&r.app, put).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(
        refused.body.contains("supervisor") && refused.body.contains("viewer"),
        "{}",
        refused.body
    );
    let audit = send(&r.app, get("/audit", Some(&cookie))).await.body;
    assert!(
        audit.contains("token tv") && audit.contains("change the customer directory refused"),
        "{audit}"
    );
    assert!(
        audit.contains("token wallboard") && audit.contains("API: saved 13900001111"),
        "{audit}"
    );
    // A token made before tokens had roles keeps working as admin, and the diagnostics page asks to review it.
    let diag = send(&r.app, get("/diagnostics", Some(&cookie))).await.body;
    assert!(!diag.contains("legacy-tokens"), "{diag}");
    r.state.store.put_raw(
        "tokens",
        crate::auth::hash_token("lk_old").as_bytes(),
        br#"{"name":"old-wallboard","created_at":"2026-11-01T00:00:00Z"}"#,
    );
    let reload = Request::post("/api/reload")
        .header("authorization", "Bearer lk_old")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&r.app, reload).await.status, StatusCode::OK);
    let diag = send(&r.app, get("/diagnostics", Some(&cookie))).await.body;
    assert!(
        diag.contains("id=\"legacy-tokens\"") && diag.contains("old-wallboard"),
        "{diag}"
    );
    let hash = crate::auth::hash_token(&token);
    let revoked = send(
        &r.app,
        post(
            "/tokens/revoke",
            Some(&cookie),
            Some(ORIGIN),
            &[("csrf", &csrf), ("id", &hash[..12])],
        ),
    )
    .await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert_eq!(send(&r.app, api()).await.status, StatusCode::UNAUTHORIZED);
    // The last admin cannot lose the role.
    let demote = send(
        &r.app,
        post(
            "/users/root/role",
            Some(&cookie),
            Some(ORIGIN),
            &[("csrf", &csrf), ("role", "agent")],
        ),
    )
    .await;
    assert!(demote.body.contains("最后一位管理员"), "{}", demote.body);
}

#[tokio::test]
async fn pages_use_only_assets_of_the_box() {
    let r = rig();
    let (cookie, _) = login(&r.app, "root").await;
    for uri in [
        "/",
        "/calls",
        "/tasks",
        "/directory",
        "/reports",
        "/config",
        "/diagnostics",
        "/users",
    ] {
        let page = send(&r.app, get(uri, Some(&cookie))).await;
        assert_eq!(page.status, StatusCode::OK, "{uri}");
        for attr in [
            "src=\"http",
            "href=\"http",
            "src=\"//",
            "href=\"//",
            "url(http",
        ] {
            assert!(
                !page.body.contains(attr),
                "{uri} has an external reference: {attr}"
            );
        }
    }
    assert!(!super::CSS.contains("url(") && !super::JS.contains("http"));
    let css = send(&r.app, get("/assets/app.css", None)).await;
    assert_eq!(css.status, StatusCode::OK);
    let report = send(&r.app, get("/reports?kind=daily", Some(&cookie)))
        .await
        .body;
    assert!(report.contains("<svg class=\"chart\"") && report.contains("id=\"report-csv\""));
    let csv = r
        .app
        .clone()
        .oneshot(get("/reports/daily.csv", Some(&cookie)))
        .await
        .unwrap();
    let bytes = csv.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        &bytes[..3],
        b"\xEF\xBB\xBF",
        "Excel needs the byte-order mark"
    );
}

#[tokio::test]
async fn task_lists_page_by_deadline_and_by_age() {
    let r = rig();
    for i in 0..(super::pages::PAGE + 10) {
        r.state
            .engine
            .open_complaint(ComplaintRequest {
                call_id: None,
                number: Some(format!("1380000{i:04}")),
                name: None,
                note: Some("x".into()),
                severity: Default::default(),
                category: None,
                by: None,
            })
            .await
            .unwrap();
    }
    let (cookie, _) = login(&r.app, "ann").await;
    let rows = |html: &str| html.matches("data-task-id=").count();
    for list in ["/tasks", "/tasks?state=all"] {
        let first = send(&r.app, get(list, Some(&cookie))).await.body;
        assert_eq!(rows(&first), super::pages::PAGE, "{list}");
        let i = first.find("id=\"older\" href=\"").unwrap() + 17;
        let next = first[i..].split('"').next().unwrap().replace("&amp;", "&");
        let second = send(&r.app, get(&next, Some(&cookie))).await.body;
        assert_eq!(rows(&second), 10, "{next}");
        assert!(!second.contains("id=\"older\""));
        // No task shows on both pages.
        let ids = |html: &str| -> Vec<String> {
            html.match_indices("data-task-id=\"")
                .map(|(i, _)| html[i + 14..i + 40].to_string())
                .collect()
        };
        let (a, b) = (ids(&first), ids(&second));
        assert!(b.iter().all(|id| !a.contains(id)));
    }
}

/// While the store cannot write, every page says so (with the time it began, in the site's zone) and `/healthz`
/// is 503 `degraded` with the error; the banner goes when the store works again.
#[tokio::test]
async fn a_failing_store_shows_on_every_page_and_on_healthz() {
    let r = rig();
    let since = chrono::DateTime::parse_from_rfc3339("2026-12-03T02:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let failing = crate::runtime::engine::Snapshot {
        store_error: Some(crate::runtime::engine::StoreFailure {
            error: "store write failed: No space left on device".into(),
            since,
        }),
        ..Default::default()
    };
    let (snap_tx, snap_rx) = watch::channel(failing);
    let mut state = r.state.clone();
    state.engine.snapshot = snap_rx;
    let app = router(state);
    let (cookie, _) = login(&app, "ann").await;
    for path in ["/", "/calls", "/tasks"] {
        let page = send(&app, get(path, Some(&cookie))).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(
            page.body.contains(r#"id="store-failing""#)
                && page.body.contains("存储无法写入")
                && page.body.contains("2026-12-03 10:00:00"),
            "{path}: no banner with the Shanghai time: {}",
            page.body
        );
    }
    let h = send(&app, get("/healthz", None)).await;
    assert_eq!(h.status, StatusCode::SERVICE_UNAVAILABLE);
    let v: serde_json::Value = serde_json::from_str(&h.body).unwrap();
    assert_eq!(v["status"], "degraded");
    let store = v["store"].as_str().unwrap();
    assert!(
        store.contains("since 2026-12-03T02:00:00Z") && store.contains("No space left on device"),
        "{store}"
    );
    snap_tx.send_replace(crate::runtime::engine::Snapshot::default());
    let page = send(&app, get("/", Some(&cookie))).await;
    assert!(!page.body.contains("store-failing"), "{}", page.body);
    assert_eq!(
        send(&app, get("/healthz", None)).await.status,
        StatusCode::OK
    );
}

mod hostile_input {
    use super::super::{cookie_value, local_path, referer_path, same_origin};
    use axum::http::{header, HeaderMap, HeaderValue};
    use proptest::prelude::*;

    fn headers(host: &str, origin: Option<&str>, referer: Option<&str>, cookie: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let mut put = |k: header::HeaderName, v: &str| {
            if let Ok(v) = HeaderValue::from_str(v) {
                h.insert(k, v);
            }
        };
        put(header::HOST, host);
        if let Some(o) = origin {
            put(header::ORIGIN, o);
        }
        if let Some(r) = referer {
            put(header::REFERER, r);
        }
        put(header::COOKIE, cookie);
        h
    }

    proptest! {
        #[test]
        fn header_parsing_never_panics_and_only_trusts_the_own_host(
            host in "[a-z0-9.:-]{0,30}",
            origin in proptest::option::of(".{0,60}"),
            referer in proptest::option::of(".{0,60}"),
            cookie in ".{0,80}",
        ) {
            let h = headers(&host, origin.as_deref(), referer.as_deref(), &cookie);
            let ok = same_origin(&h);
            if ok {
                // Whatever matched names exactly this host.
                let url = h.get(header::ORIGIN).or_else(|| h.get(header::REFERER)).unwrap().to_str().unwrap();
                let rest = url.split_once("://").unwrap().1;
                let authority = rest.split(['/', '?', '#']).next().unwrap();
                prop_assert!(authority.eq_ignore_ascii_case(&host));
            }
            let _ = cookie_value(&h, "lk_session");
        }

        #[test]
        fn redirect_targets_stay_on_this_box(p in ".{0,40}") {
            let to = local_path(Some(&p));
            prop_assert!(to.starts_with('/') && !to.starts_with("//") && !to.contains('\\'));
        }
    }

    #[test]
    fn examples() {
        let h = headers(
            "box:8080",
            Some("http://box:8080"),
            None,
            "a=1; lk_session=abc; b=2",
        );
        assert!(same_origin(&h));
        assert_eq!(cookie_value(&h, "lk_session"), Some("abc"));
        assert!(!same_origin(&headers(
            "box:8080",
            Some("http://box:8080.evil.example"),
            None,
            ""
        )));
        assert!(!same_origin(&headers(
            "box:8080",
            Some("null"),
            Some("http://box:8080/x"),
            ""
        )));
        assert!(same_origin(&headers(
            "box:8080",
            None,
            Some("https://BOX:8080/tasks"),
            ""
        )));
        assert!(!same_origin(&headers("box:8080", None, None, "")));
        assert_eq!(
            referer_path(&headers(
                "box:8080",
                None,
                Some("http://box:8080/tasks?state=all"),
                ""
            )),
            "/tasks?state=all"
        );
        assert_eq!(
            referer_path(&headers("box:8080", None, Some("http://evil/tasks"), "")),
            "/"
        );
        assert_eq!(local_path(Some("/\\evil")), "/");
        assert_eq!(local_path(Some("https://evil")), "/");
    }
}
