use super::*;
use crate::clock::Clock;
use crate::runtime::engine::Engine;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;

struct Rig {
    app: Router,
    token: String,
    _engine: crate::runtime::supervisor::Supervised,
    _dir: tempfile::TempDir,
}

fn rig() -> Rig {
    rig_with(true)
}

/// With `engine_runs` false the engine task panics at once (as a bug in it would).
fn rig_with(engine_runs: bool) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let cfg = Arc::new(
            Config::parse("[site]\nid = \"hq\"\n[[line]]\nid = \"line1\"\nkind = \"modem\"\ndevice = \"/dev/null\"\n")
                .unwrap(),
        );
    let metrics = Arc::new(Metrics::default());
    let (engine, handle) =
        Engine::new(cfg.clone(), store.clone(), Clock::System, metrics.clone()).unwrap();
    // The engine under a supervisor, as in the daemon: a failed one is rebuilt on the same handle.
    let tasks = crate::runtime::supervisor::Supervisor::new();
    let wiring = engine.wiring();
    let mut first = Some(engine);
    let (c, st, m) = (cfg.clone(), store.clone(), metrics.clone());
    let engine_task = tasks.spawn(crate::runtime::supervisor::ENGINE, move || {
        let e = first.take().unwrap_or_else(|| {
            Engine::restart(
                c.clone(),
                st.clone(),
                Clock::System,
                m.clone(),
                wiring.clone(),
            )
            .unwrap()
        });
        e.run()
    });
    if !engine_runs {
        tasks.faults().inject(crate::runtime::supervisor::ENGINE);
    }
    let token = auth::create_token(
        &store,
        "test",
        crate::model::Role::Admin,
        chrono::Utc::now(),
    )
    .unwrap();
    let (_tx, mqtt) = watch::channel(LinkState::Disabled);
    let (never, _) = tokio::sync::mpsc::channel(1);
    let app = router(AppState {
        cfg: watch::channel(cfg).1,
        reloader: crate::runtime::daemon::Reloader(never),
        store,
        engine: handle,
        metrics,
        mqtt,
        ui: Arc::new(crate::outputs::http::ui::UiState::default()),
        tasks,
    });
    Rig {
        app,
        token,
        _engine: engine_task,
        _dir: dir,
    }
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, serde_json::Value) {
    let r = app.clone().oneshot(req).await.unwrap();
    let status = r.status();
    let body = r.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    )
}

fn get(uri: &str, token: Option<&str>) -> Request<Body> {
    let mut b = Request::get(uri);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn api_needs_a_valid_token() {
    let r = rig();
    for uri in ["/api/calls", "/api/tasks", "/api/events"] {
        let (s, body) = send(&r.app, get(uri, None)).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{uri}");
        assert!(body["error"].as_str().unwrap().contains("token"));
        let (s, _) = send(&r.app, get(uri, Some("lk_wrong"))).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{uri}");
    }
    let post = Request::post("/api/tasks/x/done")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&r.app, post).await.0, StatusCode::UNAUTHORIZED);
    let (s, body) = send(&r.app, get("/api/calls", Some(&r.token))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, serde_json::json!([]));
}

/// While the engine is down, no call is recorded: /healthz must not stay green; the supervisor brings it back.
#[tokio::test]
async fn healthz_is_503_while_the_engine_restarts_after_a_panic() {
    let r = rig_with(false);
    let mut tries = 0;
    let (s, body) = loop {
        let (s, body) = send(&r.app, get("/healthz", None)).await;
        if s != StatusCode::OK || tries > 100 {
            break (s, body);
        }
        tries += 1;
        // the injected fault has not fired yet
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "degraded");
    assert!(
        body["engine"]
            .as_str()
            .unwrap()
            .contains("fault injected into engine"),
        "{body}"
    );
    assert_eq!(body["tasks"]["engine"]["state"], "restarting", "{body}");
    // The supervisor starts a new engine after a second; the box works again and says what happened.
    let mut waited = 0;
    let (s, body) = loop {
        let (s, body) = send(&r.app, get("/healthz", None)).await;
        if s == StatusCode::OK || waited > 30_000 {
            break (s, body);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        waited += 50;
    };
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["engine"], "ok");
    assert_eq!(body["status"], "degraded", "a recent failure shows: {body}");
    assert_eq!(body["tasks"]["engine"]["restarts"], 1, "{body}");
    let (s, t) = send(
        &r.app,
        post("/api/complaints", &r.token, r#"{"number":"13900001111"}"#),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "the new engine takes actions: {t}");
    let (s, status) = send(&r.app, get("/api/status", Some(&r.token))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(status["tasks"], body["tasks"]);
    let r = rig();
    let (s, body) = send(&r.app, get("/healthz", None)).await;
    assert_eq!(
        (s, &body["engine"], &body["status"]),
        (
            StatusCode::OK,
            &serde_json::json!("ok"),
            &serde_json::json!("ok")
        )
    );
}

#[tokio::test]
async fn health_metrics_and_status_page_are_open() {
    let r = rig();
    let (s, body) = send(&r.app, get("/healthz", None)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["lines"][0]["id"], "line1");
    assert_eq!(
        body["lines"][0]["link"], "down",
        "the line was never opened"
    );
    assert_eq!(body["mqtt"], "disabled");
    let m = r.app.clone().oneshot(get("/metrics", None)).await.unwrap();
    assert_eq!(m.status(), StatusCode::OK);
    let text =
        String::from_utf8(m.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(text.contains("linekeeper_lines 1"), "{text}");
    // The web page itself needs a login: `/` sends the browser to it.
    let page = r.app.clone().oneshot(get("/", None)).await.unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(page.headers()["location"], "/login");
}

fn post(uri: &str, token: &str, body: &str) -> Request<Body> {
    Request::post(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn a_complaint_lives_its_whole_life_through_the_api() {
    let r = rig();
    let t = r.token.as_str();
    let (s, c) = send(
        &r.app,
        post(
            "/api/complaints",
            t,
            r#"{"number":"13912345678","note":"broken parcel","by":"alice"}"#,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(
        (c["kind"].as_str(), c["stage"].as_str()),
        (Some("complaint"), Some("awaiting_response"))
    );
    let id = c["id"].as_str().unwrap().to_string();
    let (s, body) = send(&r.app, post(&format!("/api/tasks/{id}/done"), t, "{}")).await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "complaints are resolved, not done: {body}"
    );
    let (s, c) = send(
        &r.app,
        post(
            &format!("/api/tasks/{id}/respond"),
            t,
            r#"{"promised_fix":"48h","by":"bob"}"#,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["stage"], "in_progress");
    let (s, c) = send(
        &r.app,
        post(
            &format!("/api/tasks/{id}/resolve"),
            t,
            r#"{"by":"bob","note":"replaced"}"#,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["state"], "done");
    let (_, open) = send(&r.app, get("/api/tasks?state=open", Some(t))).await;
    let followup = open
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == "followup")
        .expect("a follow-up opened")
        .clone();
    assert_eq!(followup["parent_id"].as_str(), Some(id.as_str()));
    let fid = followup["id"].as_str().unwrap();
    let (s, _) = send(
        &r.app,
        post(
            &format!("/api/tasks/{fid}/followup_result"),
            t,
            r#"{"score":7}"#,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, f) = send(
        &r.app,
        post(
            &format!("/api/tasks/{fid}/followup_result"),
            t,
            r#"{"score":2,"by":"carol"}"#,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{f}");
    let (_, c) = send(&r.app, get(&format!("/api/tasks/{id}"), Some(t))).await;
    assert_eq!(
        (c["state"].as_str(), c["reopened"].as_u64()),
        (Some("open"), Some(1)),
        "{c}"
    );
    let actions: Vec<&str> = c["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.len(), 4, "{actions:?}");
    assert!(actions[3].starts_with("reopened"));
    let (s, body) = send(&r.app, post(&format!("/api/tasks/{id}/explode"), t, "{}")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("expected one of"),
        "{body}"
    );
    let (s, _) = send(&r.app, post("/api/complaints", t, "{}")).await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "an empty complaint says nothing"
    );
}

#[tokio::test]
async fn customer_directory_put_import_export_delete() {
    let r = rig();
    let t = r.token.as_str();
    let put = |n: &str, body: &str| {
        Request::put(format!("/api/customers/{n}"))
            .header("authorization", format!("Bearer {t}"))
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let (s, c) = send(
        &r.app,
        put(
            "138-0013-8000",
            r#"{"name":"Wang Fang","vip":true,"level":"A"}"#,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["number"], "13800138000", "numbers are normalised");
    let (s, e) = send(&r.app, put("12345", r#"{"name":"  "}"#)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(e["error"].as_str().unwrap().contains("empty name"), "{e}");
    let csv = "number,name,vip\n13912345678,Li Na,no\nnot-a-number,X,no\n075583001234,\"Huaqiang, Ltd\",yes\n";
    let (s, res) = send(&r.app, post("/api/customers/import", t, csv)).await;
    assert_eq!(s, StatusCode::OK, "{res}");
    assert_eq!(res["imported"], 2);
    assert_eq!(res["errors"][0]["line"], 3, "{res}");
    let (_, all) = send(&r.app, get("/api/customers", Some(t))).await;
    assert_eq!(all.as_array().unwrap().len(), 3);
    let (_, some) = send(&r.app, get("/api/customers?q=Li", Some(t))).await;
    assert_eq!(some[0]["name"], "Li Na");
    let resp = r
        .app
        .clone()
        .oneshot(get("/api/customers/export", Some(t)))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let (back, errors) = directory::parse_csv(&body);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(back.len(), 3);
    assert!(body.starts_with("\u{feff}".as_bytes()), "a BOM for Excel");
    let del = Request::delete("/api/customers/13912345678")
        .header("authorization", format!("Bearer {t}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        r.app.clone().oneshot(del).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    let (s, _) = send(&r.app, get("/api/customers/13912345678", Some(t))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let r = rig();
    let t = Some(r.token.as_str());
    let (s, body) = send(&r.app, get("/api/tasks?state=maybe", t)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("maybe"));
    let (s, body) = send(&r.app, get("/api/calls?from=last-week", t)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().starts_with("from:"));
    let post = Request::post("/api/tasks/NOPE/done")
        .header("authorization", format!("Bearer {}", r.token))
        .header("content-type", "application/json")
        .body(Body::from(r#"{"by":"alice"}"#))
        .unwrap();
    let (s, body) = send(&r.app, post).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "no task with id NOPE");
    let (s, _) = send(&r.app, get("/nowhere", None)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
