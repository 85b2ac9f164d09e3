//! HTTP: `/healthz`, `/metrics`, the JSON API with bearer tokens (or a web session), server-sent events; the web
//! page itself is in [`crate::outputs::http::ui`].
//!
//! Long because it has one handler per route of the API contract (README, HTTP reference), with auth and health.

pub mod ui;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::{header, request::Parts, HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{broadcast, watch};

use crate::auth;
use crate::config::Config;
use crate::directory::{self, Customer};
use crate::metrics::{inc, Metrics};
use crate::model::{id_floor, Event, Task, TaskState};
use crate::outputs::mqtt::LinkState;
use crate::query::{parse_bound, Bound};
use crate::report::ReportKind;
use crate::runtime::action::{self, Action, ActionKind, Actor, Done, Door, Failure};
use crate::runtime::daemon::Reloader;
use crate::runtime::engine::{AgentAction, EngineHandle};
use crate::runtime::reporting;
use crate::store::Store;
use crate::tasks::{ActionError, ComplaintRequest, TaskAction};

#[derive(Clone)]
pub struct AppState {
    /// The running configuration (replaced by reloads).
    pub cfg: watch::Receiver<Arc<Config>>,
    pub store: Store,
    pub engine: EngineHandle,
    pub metrics: Arc<Metrics>,
    pub mqtt: watch::Receiver<LinkState>,
    pub reloader: Reloader,
    /// Web page sessions, login lockout, the configuration file it edits.
    pub ui: Arc<crate::outputs::http::ui::UiState>,
    /// The daemon's tasks and their health.
    pub tasks: crate::runtime::supervisor::Supervisor,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(crate::outputs::http::ui::routes())
        .route("/healthz", get(healthz))
        .route("/api/status", get(status))
        .route("/metrics", get(metrics))
        .route("/api/calls", get(calls))
        .route("/api/tasks", get(tasks))
        .route("/api/tasks/{id}", get(task))
        .route("/api/tasks/{id}/{action}", post(task_action))
        .route("/api/complaints", post(complaint))
        .route("/api/reload", post(reload))
        .route("/api/agents", get(agents))
        .route("/api/reports/{kind}", get(report_get))
        .route("/api/customers", get(customers))
        .route("/api/customers/export", get(customers_export))
        .route("/api/customers/import", post(customers_import))
        .route(
            "/api/customers/{number}",
            get(customer).put(customer_put).delete(customer_delete),
        )
        .route("/api/agents/{id}/{action}", post(agent_action))
        .route("/api/events", get(events))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "no such route; see the README for the API",
            )
        })
        .with_state(state)
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({ "error": msg.into() }))).into_response()
}

/// A request that carried a valid API token (or a signed-in browser's session): who is asking, with their role.
pub struct Authorized(pub Actor);

impl Authorized {
    /// Checks the role for a read (`authorize`); the refusal is the 403 answer.
    #[allow(clippy::result_large_err)]
    pub fn may(&self, s: &AppState, kind: ActionKind) -> Result<(), Response> {
        action::authorize(&s.store, &self.0, kind).map_err(|e| failure(e.into()))
    }

    /// Carries out a change through the one door.
    pub async fn perform(&self, s: &AppState, a: Action) -> Result<Done, Response> {
        action::perform(&s.ctx(), &self.0, a).await.map_err(failure)
    }
}

impl AppState {
    /// What the one door needs.
    pub fn ctx(&self) -> action::Ctx {
        action::Ctx {
            engine: self.engine.clone(),
            store: self.store.clone(),
            reloader: Some(self.reloader.clone()),
        }
    }
}

/// The HTTP answer to a failed action: 403 for a role too low, 400 with every problem for a configuration that was
/// not applied, the engine's error otherwise.
pub fn failure(e: Failure) -> Response {
    match e {
        Failure::Forbidden(f) => error(StatusCode::FORBIDDEN, f.to_string()),
        Failure::Failed(e) => error(action_error_status(&e), e.to_string()),
        Failure::Config(problems) => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "the configuration was not applied; the running one stays", "problems": problems })),
        )
            .into_response(),
    }
}

/// The answer to a request without valid auth: 401 and no data; or, with the store's error, 503: the token could
/// not be checked because the store cannot be read (a failing disk), which is not the client's fault.
pub struct Unauthorized(Option<String>);

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        if let Some(e) = self.0 {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot check the API token: {e}; see /healthz, and try again once the store works"),
            );
        }
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "a valid API token is required: send `Authorization: Bearer TOKEN` (make one with `linekeeper token create NAME`)",
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        r
    }
}

impl FromRequestParts<AppState> for Authorized {
    type Rejection = Unauthorized;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match token_of(&parts.headers, state) {
            Ok(Some(t)) => {
                return Ok(Authorized(Actor::new(
                    Door::Api,
                    format!("token {}", t.name),
                    t.role(),
                )))
            }
            Ok(None) => {}
            Err(e) => return Err(Unauthorized(Some(e))),
        }
        // A signed-in browser: reads need only the session; changes also the session's CSRF token in
        // `X-CSRF-Token` and a same-origin request.
        if let Some((_, session)) = crate::outputs::http::ui::session_of(&parts.headers, state) {
            let safe = matches!(
                parts.method,
                axum::http::Method::GET | axum::http::Method::HEAD
            );
            let csrf_ok = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                == Some(session.csrf.as_str());
            if !session.must_change
                && (safe || (csrf_ok && crate::outputs::http::ui::same_origin(&parts.headers)))
            {
                return Ok(Authorized(Actor::new(
                    Door::Api,
                    format!("user {}", session.user),
                    session.role,
                )));
            }
        }
        inc(&state.metrics.http_unauthorized);
        Err(Unauthorized(None))
    }
}

fn check_token(headers: &HeaderMap, state: &AppState) -> Result<Authorized, Unauthorized> {
    match token_of(headers, state) {
        Ok(Some(t)) => Ok(Authorized(Actor::new(
            Door::Api,
            format!("token {}", t.name),
            t.role(),
        ))),
        Ok(None) => {
            inc(&state.metrics.http_unauthorized);
            Err(Unauthorized(None))
        }
        Err(e) => Err(Unauthorized(Some(e))),
    }
}

/// The valid API token the request carries; an error when the store cannot say.
fn token_of(
    headers: &HeaderMap,
    state: &AppState,
) -> Result<Option<crate::store::TokenRecord>, String> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t)
        .map(str::trim);
    match token {
        Some(t) if !t.is_empty() => state
            .store
            .token(&auth::hash_token(t))
            .map_err(|e| e.to_string()),
        _ => Ok(None),
    }
}

async fn healthz(State(s): State<AppState>) -> Response {
    let (code, body) = health(&s).await;
    (code, Json(body)).into_response()
}

/// `GET /api/status`: what `/healthz` says, for a token or a signed-in user.
async fn status(who: Authorized, State(s): State<AppState>) -> Response {
    if let Err(r) = who.may(&s, ActionKind::Read) {
        return r;
    }
    let (_, body) = health(&s).await;
    Json(body).into_response()
}

/// The box's health: 503 while the store cannot make changes durable or the engine is not running; "degraded"
/// also while a supervised task restarts or failed in the last minutes.
async fn health(s: &AppState) -> (StatusCode, serde_json::Value) {
    let snap = s.engine.snapshot.borrow().clone();
    let read = {
        let store = s.store.clone();
        tokio::task::spawn_blocking(move || store.check())
            .await
            .unwrap_or_else(|e| Err(crate::store::StoreError::Read(e.to_string())))
    };
    let store_ok = snap.store_ok() && read.is_ok();
    // The engine is restarting after a failure, or its task ended: no call is recorded meanwhile.
    let engine_ok = s.engine.is_running() && s.tasks.engine_running();
    let now = chrono::Utc::now();
    let tasks = s.tasks.health();
    let tasks_ok = tasks.values().all(|h| !h.degraded(now));
    let engine = match tasks.get(crate::runtime::supervisor::ENGINE) {
        _ if !s.engine.is_running() => "error: the engine stopped; calls are not being recorded: restart linekeeper and report its log".to_string(),
        Some(h) if !engine_ok => format!(
            "error: the engine failed ({}) and is being restarted; calls are not recorded until it runs; report the log",
            h.last_failure.as_deref().unwrap_or("?")
        ),
        _ => "ok".to_string(),
    };
    let lines: Vec<_> = snap
        .lines
        .iter()
        .map(|l| {
            json!({
                "id": l.line,
                "link": if l.state == crate::model::LineStatus::Down { "down" } else { "up" },
                "state": l.state,
                "since": l.since,
                "reason": l.reason,
            })
        })
        .collect();
    // The store is the product's promise: while it cannot make a change durable nothing is acknowledged, so the box
    // is degraded (503), and says why and since when.
    let store = match (&snap.store_error, &read) {
        _ if store_ok => json!("ok"),
        (Some(f), _) => json!(format!(
            "error: writes are failing since {}: {}; nothing is published or acknowledged until the store accepts \
             them (check free disk space and the disk's health)",
            f.since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            f.error
        )),
        (None, Err(e)) => json!(format!(
            "error: the store cannot be read: {e}; check free disk space and the disk's health"
        )),
        (None, Ok(())) => json!("error: writes are failing; check free disk space"),
    };
    let body = json!({
        "status": if store_ok && engine_ok && tasks_ok { "ok" } else { "degraded" },
        "engine": engine,
        "tasks": tasks,
        "site": s.cfg.borrow().site.id.clone(),
        "version": env!("CARGO_PKG_VERSION"),
        "lines": lines,
        "mqtt": s.mqtt.borrow().label(),
        "store": store,
        "last_seq": snap.last_seq,
    });
    let code = if store_ok && engine_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, body)
}

async fn metrics(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if s.cfg.borrow().web.metrics_auth {
        if let Err(r) = check_token(&headers, &s) {
            return r.into_response();
        }
    }
    let snap = s.engine.snapshot.borrow().clone();
    let up = snap
        .lines
        .iter()
        .filter(|l| l.state != crate::model::LineStatus::Down)
        .count();
    let gauges = [
        ("linekeeper_lines_up", "Lines whose link is up.", up as f64),
        (
            "linekeeper_lines",
            "Configured lines.",
            snap.lines.len() as f64,
        ),
        (
            "linekeeper_calls_ringing",
            "Lines ringing now.",
            snap.queue.ringing as f64,
        ),
        (
            "linekeeper_tasks_open",
            "Open tasks.",
            snap.queue.open_tasks as f64,
        ),
        (
            "linekeeper_tasks_overdue",
            "Open tasks past their deadline.",
            snap.queue.overdue_tasks as f64,
        ),
        (
            "linekeeper_event_seq",
            "Last committed event sequence number.",
            snap.last_seq as f64,
        ),
        (
            "linekeeper_outbox_events",
            "Events held in the outbox.",
            s.store.outbox_len() as f64,
        ),
        (
            "linekeeper_store_bytes",
            "Store size on disk.",
            s.store.size_on_disk() as f64,
        ),
    ];
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(&gauges),
    )
        .into_response()
}

#[derive(Deserialize)]
struct CallsQuery {
    from: Option<String>,
    to: Option<String>,
    number: Option<String>,
    limit: Option<usize>,
}

async fn calls(_: Authorized, State(s): State<AppState>, Query(q): Query<CallsQuery>) -> Response {
    let tz = s.cfg.borrow().timezone();
    let from = match q
        .from
        .as_deref()
        .map(|v| parse_bound(v, tz, Bound::Start))
        .transpose()
    {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("from: {e}")),
    };
    let to = match q
        .to
        .as_deref()
        .map(|v| parse_bound(v, tz, Bound::End))
        .transpose()
    {
        Ok(t) => t,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("to: {e}")),
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let lo = from.map(id_floor).unwrap_or_default();
    let hi = to.map(id_floor).unwrap_or_else(|| "~".into());
    let number = q.number.filter(|n| !n.is_empty());
    let r = blocking(&s, move |st| {
        st.calls_newest_first(&lo, &hi, limit, |c| match &number {
            Some(n) => c
                .number
                .as_deref()
                .is_some_and(|cn| cn.contains(n.as_str())),
            None => true,
        })
    })
    .await;
    match r {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct TasksQuery {
    state: Option<String>,
    limit: Option<usize>,
}

async fn tasks(_: Authorized, State(s): State<AppState>, Query(q): Query<TasksQuery>) -> Response {
    let want: Option<TaskState> = match q.state.as_deref().unwrap_or("open") {
        "open" => Some(TaskState::Open),
        "done" => Some(TaskState::Done),
        "cancelled" => Some(TaskState::Cancelled),
        "all" => None,
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("state `{other}` must be open, done, cancelled or all"),
            )
        }
    };
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    match blocking(&s, move |st| {
        st.tasks_newest_first(limit, |t| want.is_none_or(|w| t.state == w))
    })
    .await
    {
        Ok(v) => Json::<Vec<Task>>(v).into_response(),
        Err(r) => r,
    }
}

async fn task(_: Authorized, State(s): State<AppState>, Path(id): Path<String>) -> Response {
    match s.store.task(&id) {
        Ok(Some(t)) => Json(t).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no task with id {id}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

pub fn action_error_status(e: &ActionError) -> StatusCode {
    match e {
        ActionError::NotFound(_) | ActionError::UnknownAgent(_) => StatusCode::NOT_FOUND,
        ActionError::NotOpen { .. } => StatusCode::CONFLICT,
        ActionError::WrongKind { .. } | ActionError::Invalid(_) => StatusCode::BAD_REQUEST,
        ActionError::Store(_) | ActionError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// `POST /api/tasks/{id}/{action}`: the body holds the action's fields (`by`, `note`, `to`, `promised_fix`,
/// `score`, `department`); an empty body is `{}`.
async fn task_action(
    who: Authorized,
    State(s): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let mut fields: serde_json::Map<String, serde_json::Value> =
        if body.iter().all(u8::is_ascii_whitespace) {
            Default::default()
        } else {
            match serde_json::from_slice(&body) {
                Ok(serde_json::Value::Object(m)) => m,
                Ok(_) => return error(StatusCode::BAD_REQUEST, "the body must be a JSON object"),
                Err(e) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        format!("the body is not JSON: {e}"),
                    )
                }
            }
        };
    fields.insert("action".into(), serde_json::Value::String(action.clone()));
    let action: TaskAction = match serde_json::from_value(serde_json::Value::Object(fields)) {
        Ok(a) => a,
        Err(e) => {
            return error(StatusCode::BAD_REQUEST, {
                let e = e.to_string();
                if e.contains("expected one of") {
                    format!("`{action}`: {e}")
                } else {
                    format!("`{action}`: {e} (actions: done, cancel, assign, ack, respond, resolve, followup_result, refer, supervisor_decision)")
                }
            })
        }
    };
    task_done(who.perform(&s, Action::Task { id, action }).await)
}

/// The answer to an action that yields a task.
fn task_done(r: Result<Done, Response>) -> Response {
    match r {
        Ok(Done::Task(t)) => Json(t).into_response(),
        Ok(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "unexpected answer"),
        Err(r) => r,
    }
}

/// `POST /api/complaints`: opens a complaint from a call (`call_id`) or by hand (`number`, `name`, `note`).
async fn complaint(
    who: Authorized,
    State(s): State<AppState>,
    body: axum::body::Bytes,
) -> Response {
    match serde_json::from_slice::<ComplaintRequest>(&body) {
        Ok(req) => task_done(who.perform(&s, Action::OpenComplaint(req)).await),
        Err(e) => error(StatusCode::BAD_REQUEST, format!("bad complaint: {e}")),
    }
}

/// Re-reads the configuration file: 200 with what changed, or 400 with every problem (the old one stays).
async fn reload(who: Authorized, State(s): State<AppState>) -> Response {
    match who.perform(&s, Action::ReloadConfig).await {
        Ok(Done::Changed(changed)) => {
            Json(json!({ "status": "applied", "changed": changed })).into_response()
        }
        Ok(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "unexpected answer"),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct CustomersQuery {
    q: Option<String>,
    limit: Option<usize>,
}

pub(crate) fn all_customers_in(store: &Store) -> Result<Vec<Customer>, crate::store::StoreError> {
    store
        .records_with_prefix::<Customer>("customer/")
        .map(|v| v.into_iter().map(|(_, c)| c).collect())
}

/// Runs a store read on the blocking threads, so a long scan never holds up the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    s: &AppState,
    f: impl FnOnce(&Store) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, Response> {
    let store = s.store.clone();
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
        Err(e) => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the store read failed: {e}"),
        )),
    }
}

/// `GET /api/customers?q=&limit=`: the directory (or the matches of `q`) is an export of customer data.
async fn customers(
    who: Authorized,
    State(s): State<AppState>,
    Query(q): Query<CustomersQuery>,
) -> Response {
    if let Err(r) = who.may(&s, ActionKind::ExportData) {
        return r;
    }
    let all = match blocking(&s, all_customers_in).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let needle = q.q.unwrap_or_default();
    let limit = q.limit.unwrap_or(1000).clamp(1, 100_000);
    let found: Vec<Customer> = all
        .into_iter()
        .filter(|c| needle.is_empty() || c.number.contains(&needle) || c.name.contains(&needle))
        .take(limit)
        .collect();
    Json(found).into_response()
}

/// The customer a path names: 400 when it is not a phone number, 404 when it is not in the directory.
fn stored_customer(s: &AppState, number: &str) -> Result<Customer, (StatusCode, String)> {
    let Some(n) = directory::normalize_number(number) else {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("`{number}` is not a phone number"),
        ));
    };
    match s.store.record::<Customer>(&format!("customer/{n}")) {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err((
            StatusCode::NOT_FOUND,
            format!("{n} is not in the directory"),
        )),
        Err(e) => Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

async fn customer(
    who: Authorized,
    State(s): State<AppState>,
    Path(number): Path<String>,
) -> Response {
    if let Err(r) = who.may(&s, ActionKind::LookupCustomer) {
        return r;
    }
    match stored_customer(&s, &number) {
        Ok(c) => Json(c).into_response(),
        Err((status, msg)) => error(status, msg),
    }
}

/// `PUT /api/customers/{number}`: adds or replaces one customer (`name`, `vip`, `level`, `best_time`, `notes`).
async fn customer_put(
    who: Authorized,
    State(s): State<AppState>,
    Path(number): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let mut v: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "the body must be a JSON object with at least `name`",
            )
        }
    };
    v["number"] = serde_json::Value::String(number);
    let c: Customer = match serde_json::from_value(v) {
        Ok(c) => c,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad customer: {e}")),
    };
    let c = match directory::validate(&c) {
        Ok(c) => c,
        Err(problems) => return error(StatusCode::BAD_REQUEST, problems.join("; ")),
    };
    match who.perform(&s, Action::SaveCustomer(c.clone())).await {
        Ok(_) => Json(c).into_response(),
        Err(r) => r,
    }
}

async fn customer_delete(
    who: Authorized,
    State(s): State<AppState>,
    Path(number): Path<String>,
) -> Response {
    if let Err(r) = who.may(&s, ActionKind::EditDirectory) {
        return r;
    }
    let c = match stored_customer(&s, &number) {
        Ok(c) => c,
        Err((status, msg)) => return error(status, msg),
    };
    match who.perform(&s, Action::DeleteCustomer(c.number)).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

/// `POST /api/customers/import`: a CSV file as the body (UTF-8 or GBK; see the README for the columns). Good rows
/// are imported; each bad row is reported with its line number.
async fn customers_import(
    who: Authorized,
    State(s): State<AppState>,
    body: axum::body::Bytes,
) -> Response {
    let (good, errors) = directory::parse_csv(&body);
    let rejected: Vec<_> = errors
        .iter()
        .map(|e| json!({ "line": e.line, "message": e.message }))
        .collect();
    let n = good.len();
    let refused = rejected.len();
    match who
        .perform(&s, Action::ImportCustomers { good, refused })
        .await
    {
        Ok(_) => Json(json!({ "imported": n, "errors": rejected })).into_response(),
        Err(r) => r,
    }
}

async fn customers_export(who: Authorized, State(s): State<AppState>) -> Response {
    if let Err(r) = who.may(&s, ActionKind::ExportData) {
        return r;
    }
    match blocking(&s, all_customers_in).await {
        Ok(all) => {
            who.0.audit(&s.store, "export", "customer directory CSV");
            csv_download("customers.csv", directory::to_csv(&all))
        }
        Err(r) => r,
    }
}

/// A CSV file to download (the page and the API send the same).
pub(crate) fn csv_download(filename: &str, body: String) -> Response {
    let disposition =
        header::HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
            .unwrap_or(header::HeaderValue::from_static("attachment"));
    (
        [
            (
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

/// The report's CSV file (`daily-2026-11-24.csv`).
pub(crate) fn report_csv_download(r: &crate::report::Report) -> Response {
    let name = format!("{}-{}.csv", r.kind.as_str(), r.label.replace(' ', "_"));
    csv_download(&name, crate::report::to_csv(r))
}

/// The stored report of `kind` for `date` (today when absent), or one built now, off the async threads; with
/// whether its period is still running. A shift report without shifts is 404.
pub(crate) async fn load_report(
    s: &AppState,
    kind: ReportKind,
    date: Option<chrono::NaiveDate>,
) -> Result<(crate::report::Report, bool), (StatusCode, String)> {
    let cfg = s.cfg.borrow().clone();
    let store = s.store.clone();
    let now = chrono::Utc::now();
    match tokio::task::spawn_blocking(move || {
        reporting::find_or_build(&store, &cfg, kind, date, now)
    })
    .await
    {
        Ok(Ok(x)) => Ok(x),
        Ok(Err(e @ reporting::ReportError::NoShift)) => Err((StatusCode::NOT_FOUND, e.to_string())),
        Ok(Err(e)) => Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
        Err(e) => Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

#[derive(Deserialize)]
struct ReportQuery {
    date: Option<String>,
    format: Option<String>,
}

/// `GET /api/reports/{kind}?date=YYYY-MM-DD&format=json|csv`: the stored report for that date (day, week, month or
/// quarter containing it), or one built now; `X-Report-Partial: true` when its period is not over.
async fn report_get(
    who: Authorized,
    State(s): State<AppState>,
    Path(kind): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Response {
    if let Err(r) = who.may(&s, ActionKind::ReadReports) {
        return r;
    }
    let Ok(kind) = serde_json::from_value::<ReportKind>(serde_json::Value::String(kind.clone()))
    else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no report kind `{kind}`: shift, daily, weekly, monthly or quarterly"),
        );
    };
    let date = match q
        .date
        .as_deref()
        .map(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d"))
    {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(_)) => return error(StatusCode::BAD_REQUEST, "date must be YYYY-MM-DD"),
    };
    let csv = match q.format.as_deref().unwrap_or("json") {
        "json" => false,
        "csv" => true,
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("format `{other}` must be json or csv"),
            )
        }
    };
    let (r, partial) = match load_report(&s, kind, date).await {
        Ok(x) => x,
        Err((status, msg)) => return error(status, msg),
    };
    let partial = [(
        header::HeaderName::from_static("x-report-partial"),
        if partial { "true" } else { "false" },
    )];
    if csv {
        who.0.audit(
            &s.store,
            "export",
            format!("report {} {} CSV", kind.as_str(), r.label),
        );
        (partial, report_csv_download(&r)).into_response()
    } else {
        (partial, Json(r)).into_response()
    }
}

async fn agents(_: Authorized, State(s): State<AppState>) -> Response {
    Json(s.engine.snapshot.borrow().agents.clone()).into_response()
}

/// `POST /api/agents/{id}/{sign_in|sign_out|available|away}`.
async fn agent_action(
    who: Authorized,
    State(s): State<AppState>,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    let Some(action) = AgentAction::parse(&action) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("`{action}` is not an agent action: sign_in, sign_out, available or away"),
        );
    };
    match who.perform(&s, Action::Agent { id, action }).await {
        Ok(Done::Agent(a)) => Json(a).into_response(),
        Ok(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "unexpected answer"),
        Err(r) => r,
    }
}

/// Server-sent events: the same events as MQTT (numbers unmasked: the reader holds a token). A client that
/// reconnects with `Last-Event-ID` gets what it missed while the outbox still holds it.
async fn events(_: Authorized, State(s): State<AppState>, headers: HeaderMap) -> Response {
    let rx = s.engine.events.subscribe();
    let last_seq = s.engine.snapshot.borrow().last_seq;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    // Subscribed first, then the outbox read: an event committed meanwhile is in the outbox, the broadcast or
    // both, and the stream drops the second copy by `seq`.
    let backlog: VecDeque<Event> = match resume {
        Some(after) => blocking(&s, move |st| st.events_from(after + 1, 10_000))
            .await
            .map(VecDeque::from)
            .unwrap_or_default(),
        None => VecDeque::new(),
    };
    let sent = backlog
        .back()
        .map(|e| e.seq)
        .unwrap_or(resume.unwrap_or(last_seq));
    Sse::new(event_stream(backlog, rx, sent, s.store.clone()))
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn sse_event(e: &Event) -> SseEvent {
    SseEvent::default()
        .id(e.seq.to_string())
        .event(e.kind.clone())
        .data(serde_json::to_string(e).unwrap_or_default())
}

fn event_stream(
    backlog: VecDeque<Event>,
    rx: broadcast::Receiver<Arc<Event>>,
    sent: u64,
    store: Store,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    stream::unfold(
        (backlog, rx, sent, store),
        |(mut backlog, mut rx, mut sent, store)| async move {
            loop {
                if let Some(e) = backlog.pop_front() {
                    sent = e.seq;
                    return Some((Ok(sse_event(&e)), (backlog, rx, sent, store)));
                }
                match rx.recv().await {
                    Ok(e) if e.seq > sent => {
                        sent = e.seq;
                        return Some((Ok(sse_event(&e)), (backlog, rx, sent, store)));
                    }
                    Ok(_) => continue,
                    // A slow reader fell behind the broadcast: fill the gap from the outbox.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        backlog = store
                            .events_from(sent + 1, 10_000)
                            .unwrap_or_default()
                            .into();
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    )
}

#[cfg(test)]
mod tests;
