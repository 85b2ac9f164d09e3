//! The technician's pages: configuration (validated, written back atomically, applied live), users and API
//! tokens, the audit log, diagnostics.
//!
//! Long because the configuration form describes every setting with its own field, hint and check.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::{Path as FsPath, PathBuf};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::stream::{self, Stream};
use maud::{html, Markup};
use serde::Deserialize;
use toml_edit::{value, Array, DocumentMut, Item, Table};

use super::i18n::{self, Msg};
use super::{field, fill, see_other, status, Flash, FormMap, Page, PostForm};
use crate::accounts::{self, Role, User};
use crate::config::Config;
use crate::outputs::http::AppState;
use crate::runtime::action::ActionKind;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/config", get(config_index))
        .route("/config/{section}", get(config_page).post(config_save))
        .route("/users", get(users_page).post(user_add))
        .route("/users/{name}/{action}", post(user_action))
        .route("/tokens", post(token_create))
        .route("/tokens/revoke", post(token_revoke))
        .route("/audit", get(audit_page))
        .route("/diagnostics", get(diagnostics))
        .route("/diagnostics/stream", get(diagnostics_stream))
}

// ---- configuration ----

#[derive(Clone, Copy)]
enum Kind {
    Text,
    Int,
    Bool,
    /// An array of strings, one per line of a textarea.
    List,
    Select(&'static [&'static str]),
}

struct FieldSpec {
    key: &'static str,
    kind: Kind,
    /// A short hint shown under the field (the example value).
    hint: &'static str,
}

const fn f(key: &'static str, kind: Kind, hint: &'static str) -> FieldSpec {
    FieldSpec { key, kind, hint }
}

enum Shape {
    /// A `[table]` of scalar fields.
    Fields(&'static [FieldSpec]),
    /// An `[[array]]` of tables, edited as TOML text.
    Blocks,
}

struct Section {
    id: &'static str,
    /// The TOML table (or array of tables) it edits.
    table: &'static str,
    title: Msg,
    shape: Shape,
}

const DURATION: &str = "e.g. 90s, 24h, 1h 30m";

const SECTIONS: &[Section] = &[
    Section {
        id: "site",
        table: "site",
        title: i18n::SEC_SITE,
        shape: Shape::Fields(&[
            f("id", Kind::Text, "[a-z0-9-]+, used in MQTT topics"),
            f("name", Kind::Text, ""),
            f("timezone", Kind::Text, "IANA name, e.g. Asia/Shanghai"),
            f("language", Kind::Select(&["zh-CN", "en"]), ""),
        ]),
    },
    Section {
        id: "lines",
        table: "line",
        title: i18n::SEC_LINES,
        shape: Shape::Blocks,
    },
    Section {
        id: "mqtt",
        table: "mqtt",
        title: i18n::SEC_MQTT,
        shape: Shape::Fields(&[
            f("host", Kind::Text, "empty: no MQTT"),
            f("port", Kind::Int, "1883; 8883 with TLS"),
            f("topic_prefix", Kind::Text, "linekeeper"),
            f("mask_numbers", Kind::Bool, ""),
            f("client_id", Kind::Text, "default linekeeper-{site.id}"),
            f("keep_alive", Kind::Text, DURATION),
            f("username", Kind::Text, ""),
            f("password_file", Kind::Text, "/etc/linekeeper/mqtt-password"),
            f("reconnect_max", Kind::Text, DURATION),
            f("ca_file", Kind::Text, "turns TLS on"),
            f("client_cert_file", Kind::Text, ""),
            f("client_key_file", Kind::Text, ""),
            f("discovery", Kind::Bool, "Home Assistant discovery"),
            f("discovery_prefix", Kind::Text, "homeassistant"),
        ]),
    },
    Section {
        id: "web",
        table: "web",
        title: i18n::SEC_WEB,
        shape: Shape::Fields(&[
            f(
                "listen",
                Kind::Text,
                "0.0.0.0:8080 (applied at the next start)",
            ),
            f("metrics_auth", Kind::Bool, "/metrics needs an API token"),
        ]),
    },
    Section {
        id: "policy",
        table: "policy",
        title: i18n::SEC_POLICY,
        shape: Shape::Fields(&[
            f("callback_due", Kind::Text, DURATION),
            f(
                "unknown_outcome",
                Kind::Select(&["", "review", "callback", "ignore"]),
                "",
            ),
            f("answer_target", Kind::Text, DURATION),
            f("short_abandon", Kind::Text, DURATION),
            f("ring_alert_after", Kind::Text, "15s or off"),
            f("repeat_window", Kind::Text, DURATION),
            f(
                "deadline_clock",
                Kind::Select(&["", "wall", "business"]),
                "",
            ),
            f("complaint_response_due", Kind::Text, DURATION),
            f("supervisor_decision_due", Kind::Text, DURATION),
            f("referral_due", Kind::Text, DURATION),
            f("followup_due", Kind::Text, DURATION),
            f("followup_issue_due", Kind::Text, DURATION),
            f("reopen_below", Kind::Int, "1-5"),
            f("warn_before", Kind::Text, "2h or off"),
            f("escalate_every", Kind::Text, DURATION),
            f("weekly_on", Kind::Text, "mon"),
            f("monthly_on", Kind::Int, "1-28"),
        ]),
    },
    Section {
        id: "hours",
        table: "hours",
        title: i18n::SEC_HOURS,
        shape: Shape::Fields(&[
            f("mon", Kind::Text, "09:00-18:00"),
            f("tue", Kind::Text, "09:00-18:00"),
            f("wed", Kind::Text, "09:00-18:00"),
            f("thu", Kind::Text, "09:00-18:00"),
            f("fri", Kind::Text, "09:00-18:00"),
            f("sat", Kind::Text, "closed"),
            f("sun", Kind::Text, "closed"),
            f("holidays", Kind::List, "2026-10-01"),
            f("workdays", Kind::List, "2026-09-27"),
            f("workday_hours", Kind::Text, "09:00-18:00"),
        ]),
    },
    Section {
        id: "shifts",
        table: "shift",
        title: i18n::SEC_SHIFTS,
        shape: Shape::Blocks,
    },
    Section {
        id: "agents",
        table: "agent",
        title: i18n::SEC_AGENTS,
        shape: Shape::Blocks,
    },
];

fn section(id: &str) -> Option<&'static Section> {
    SECTIONS.iter().find(|s| s.id == id)
}

fn field_label(page: &Page, key: &str) -> String {
    match key {
        "holidays" => page.t(i18n::HOLIDAYS).into(),
        "workdays" => page.t(i18n::WORKDAYS).into(),
        "workday_hours" => page.t(i18n::WORKDAY_HOURS).into(),
        other => other.to_string(),
    }
}

async fn config_index(State(s): State<AppState>, page: Page) -> Response {
    if let Err(r) = page.need(&s, ActionKind::Configure) {
        return r;
    }
    let body = html! {
        (file_note(&page, s.ui.config_path.as_deref()))
        ul.sections {
            @for sec in SECTIONS { li { a id={ "config-" (sec.id) } href={ "/config/" (sec.id) } { (page.t(sec.title)) } } }
            li { a href="/users" { (page.t(i18n::USERS)) " · " (page.t(i18n::TOKENS)) } }
        }
    };
    page.layout(page.t(i18n::CONFIG), None, body)
}

fn file_note(page: &Page, path: Option<&FsPath>) -> Markup {
    html! {
        @match path {
            Some(p) => p.hint { (fill(&fill(page.t(i18n::CONFIG_FILE), p.display()), prev_path(p).display())) },
            None => p.flash-err { (page.t(i18n::CONFIG_READONLY)) },
        }
    }
}

fn prev_path(p: &FsPath) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".prev");
    PathBuf::from(s)
}

/// The values the form shows: from the file (first view) or as the user typed them (after an error).
fn current_values(doc: &DocumentMut, sec: &Section) -> HashMap<String, String> {
    let mut out = HashMap::new();
    match &sec.shape {
        Shape::Fields(fields) => {
            let table = doc.get(sec.table).and_then(Item::as_table_like);
            for fs in fields.iter() {
                let v = table.and_then(|t| t.get(fs.key));
                let text = match (fs.kind, v) {
                    (_, None) => String::new(),
                    (Kind::List, Some(v)) => v
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(str::to_string))
                                .collect::<Vec<_>>()
                                .join("\n")
                        })
                        .unwrap_or_default(),
                    (_, Some(v)) => match v.as_value() {
                        Some(toml_edit::Value::String(s)) => s.value().clone(),
                        Some(other) => other.to_string().trim().to_string(),
                        None => String::new(),
                    },
                };
                out.insert(fs.key.to_string(), text);
            }
        }
        Shape::Blocks => {
            let mut d = DocumentMut::new();
            if let Some(item) = doc.get(sec.table) {
                d.insert(sec.table, item.clone());
            }
            out.insert("toml".into(), d.to_string().trim().to_string());
        }
    }
    out
}

fn config_form(
    page: &Page,
    s: &AppState,
    sec: &Section,
    values: &HashMap<String, String>,
    errors: &HashMap<String, Vec<String>>,
    general: &[String],
    flash: Option<Flash>,
) -> Response {
    let readonly = s.ui.config_path.is_none();
    let err = |k: &str| {
        html! { @for e in errors.get(k).into_iter().flatten() { span.field-error data-field=(k) role="alert" { (e) } } }
    };
    let body = html! {
        p { a href="/config" { "‹ " (page.t(i18n::CONFIG)) } }
        (file_note(page, s.ui.config_path.as_deref()))
        @if !errors.is_empty() || !general.is_empty() { p.flash-err role="alert" { (page.t(i18n::FIX_ERRORS)) } }
        @for g in general { p.field-error data-field="(file)" role="alert" { (g) } }
        form.card.config id={ "form-" (sec.id) } method="post" action={ "/config/" (sec.id) } {
            (page.csrf_field())
            @match &sec.shape {
                Shape::Fields(fields) => {
                    @if sec.id == "hours" { p.hint { (page.t(i18n::HOURS_HELP)) } }
                    @for fs in fields.iter() {
                        @let id = format!("cfg-{}", fs.key);
                        @let v = values.get(fs.key).map(String::as_str).unwrap_or("");
                        div.field class=[errors.contains_key(fs.key).then_some("has-error")] {
                            @match fs.kind {
                                Kind::Bool => label.check for=(id) {
                                    input type="hidden" name=(fs.key) value="false";
                                    input id=(id) type="checkbox" name=(fs.key) value="true" checked[v == "true"];
                                    " " (field_label(page, fs.key))
                                },
                                Kind::List => {
                                    label for=(id) { (field_label(page, fs.key)) }
                                    textarea id=(id) name=(fs.key) rows="4" { (v) }
                                },
                                Kind::Select(opts) => {
                                    label for=(id) { (field_label(page, fs.key)) }
                                    select id=(id) name=(fs.key) {
                                        @for o in opts.iter() { option value=(o) selected[v == *o] { @if o.is_empty() { (page.t(i18n::DEFAULT)) } @else { (o) } } }
                                    }
                                },
                                Kind::Int => {
                                    label for=(id) { (field_label(page, fs.key)) }
                                    input id=(id) name=(fs.key) value=(v) inputmode="numeric";
                                },
                                Kind::Text => {
                                    label for=(id) { (field_label(page, fs.key)) }
                                    input id=(id) name=(fs.key) value=(v);
                                },
                            }
                            @if !fs.hint.is_empty() { small.hint { (fs.hint) } }
                            (err(fs.key))
                        }
                    }
                }
                Shape::Blocks => {
                    label for="cfg-toml" { (page.t(i18n::TOML_SECTION)) " — [[" (sec.table) "]]" }
                    textarea #cfg-toml name="toml" rows="16" spellcheck="false" { (values.get("toml").map(String::as_str).unwrap_or("")) }
                    (err("toml"))
                }
            }
            button id={ "save-" (sec.id) } type="submit" disabled[readonly] { (page.t(i18n::SAVE)) }
        }
    };
    let mut r = page.layout(
        &format!("{} · {}", page.t(i18n::CONFIG), page.t(sec.title)),
        flash,
        body,
    );
    if !errors.is_empty() || !general.is_empty() {
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    r
}

fn read_doc(s: &AppState) -> Result<DocumentMut, String> {
    let text = match &s.ui.config_path {
        Some(p) => std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?,
        None => String::new(),
    };
    text.parse::<DocumentMut>()
        .map_err(|e| format!("the configuration file is not valid TOML: {e}"))
}

#[derive(Deserialize, Default)]
struct SavedQuery {
    #[serde(default)]
    saved: String,
}

async fn config_page(
    State(s): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    Query(q): Query<SavedQuery>,
) -> Response {
    if let Err(r) = page.need(&s, ActionKind::Configure) {
        return r;
    }
    let Some(sec) = section(&id) else {
        return page.message(StatusCode::NOT_FOUND, i18n::NOT_FOUND);
    };
    let (values, general) = match read_doc(&s) {
        Ok(doc) => (current_values(&doc, sec), vec![]),
        Err(e) => (HashMap::new(), vec![e]),
    };
    let flash = if q.saved.is_empty() {
        None
    } else {
        Flash::ok(format!("{} {}", page.t(i18n::SAVED), q.saved))
    };
    config_form(&page, &s, sec, &values, &HashMap::new(), &general, flash)
}

/// Applies a section's form to the document; errors found on the way (not a number, bad TOML) by field.
fn apply_form(
    doc: &mut DocumentMut,
    sec: &Section,
    form: &FormMap,
    lang: super::i18n::Lang,
) -> HashMap<String, Vec<String>> {
    let mut errors: HashMap<String, Vec<String>> = HashMap::new();
    match &sec.shape {
        Shape::Fields(fields) => {
            let mut table = doc
                .get(sec.table)
                .and_then(Item::as_table)
                .cloned()
                .unwrap_or_else(Table::new);
            for fs in fields.iter() {
                let v = field(form, fs.key);
                match fs.kind {
                    Kind::Bool => {
                        table.insert(fs.key, value(v == "true"));
                    }
                    _ if v.is_empty() => {
                        table.remove(fs.key);
                    }
                    Kind::Int => match v.parse::<i64>() {
                        Ok(n) => {
                            table.insert(fs.key, value(n));
                        }
                        Err(_) => errors
                            .entry(fs.key.to_string())
                            .or_default()
                            .push(format!("`{v}`: {}", lang.t(i18n::NOT_A_NUMBER))),
                    },
                    Kind::List => {
                        let mut a = Array::new();
                        for item in v
                            .split(['\n', ','])
                            .map(str::trim)
                            .filter(|x| !x.is_empty())
                        {
                            a.push(item);
                        }
                        table.insert(fs.key, value(a));
                    }
                    Kind::Text | Kind::Select(_) => {
                        table.insert(fs.key, value(v));
                    }
                }
            }
            // An [hours] or [mqtt] section with nothing in it means "none": 24x7, no broker.
            let empty = fields
                .iter()
                .all(|fs| matches!(fs.kind, Kind::Bool) || field(form, fs.key).is_empty());
            if empty && matches!(sec.table, "hours" | "mqtt") {
                doc.remove(sec.table);
            } else {
                doc.insert(sec.table, Item::Table(table));
            }
        }
        Shape::Blocks => {
            let text = form.get("toml").map(String::as_str).unwrap_or("");
            match text.parse::<DocumentMut>() {
                Err(e) => errors
                    .entry("toml".into())
                    .or_default()
                    .push(format!("not valid TOML: {e}")),
                Ok(part) => {
                    let others: Vec<_> = part
                        .iter()
                        .map(|(k, _)| k.to_string())
                        .filter(|k| k != sec.table)
                        .collect();
                    if !others.is_empty() {
                        errors.entry("toml".into()).or_default().push(format!(
                            "only [[{}]] blocks belong here, not {}",
                            sec.table,
                            others.join(", ")
                        ));
                    } else {
                        match part.get(sec.table) {
                            Some(item) => {
                                doc.insert(sec.table, item.clone());
                            }
                            None => {
                                doc.remove(sec.table);
                            }
                        }
                    }
                }
            }
        }
    }
    errors
}

/// Writes the file atomically: the previous version to `PATH.prev`, the new text to a temporary file that is
/// synced and renamed over `PATH`, then the directory synced.
pub fn write_atomically(path: &FsPath, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(FsPath::new("."));
    let write_tmp = |content: &[u8], suffix: &str| -> std::io::Result<PathBuf> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".{suffix}.{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        Ok(tmp)
    };
    if let Ok(old) = std::fs::read(path) {
        let tmp = write_tmp(&old, "prev-tmp")?;
        std::fs::rename(&tmp, prev_path(path))?;
    }
    let tmp = write_tmp(text.as_bytes(), "tmp")?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

static CONFIG_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn config_save(
    State(s): State<AppState>,
    Path(id): Path<String>,
    PostForm { page, form }: PostForm,
) -> Response {
    if let Err(r) = page.need(&s, ActionKind::Configure) {
        return r;
    }
    let Some(sec) = section(&id) else {
        return page.message(StatusCode::NOT_FOUND, i18n::NOT_FOUND);
    };
    let Some(path) = s.ui.config_path.clone() else {
        return page.message(StatusCode::CONFLICT, i18n::CONFIG_READONLY);
    };
    let typed: HashMap<String, String> = form
        .iter()
        .filter(|(k, _)| k.as_str() != "csrf")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let _guard = CONFIG_LOCK.lock().await;
    let mut doc = match read_doc(&s) {
        Ok(d) => d,
        Err(e) => return config_form(&page, &s, sec, &typed, &HashMap::new(), &[e], None),
    };
    let mut errors = apply_form(&mut doc, sec, &form, page.lang);
    let text = doc.to_string();
    let mut general = Vec::new();
    if let Err(problems) = Config::parse(&text) {
        for p in problems {
            let field_key = match &sec.shape {
                Shape::Fields(fields) => p
                    .key
                    .strip_prefix(sec.table)
                    .and_then(|k| k.strip_prefix('.'))
                    .filter(|k| fields.iter().any(|fs| fs.key == *k))
                    .map(str::to_string),
                Shape::Blocks => p.key.starts_with(sec.table).then(|| "toml".to_string()),
            };
            match field_key {
                Some(k) => errors.entry(k).or_default().push(match &sec.shape {
                    Shape::Blocks => p.to_string(),
                    Shape::Fields(_) => p.message.clone(),
                }),
                None => general.push(p.to_string()),
            }
        }
    }
    if !errors.is_empty() || !general.is_empty() {
        return config_form(&page, &s, sec, &typed, &errors, &general, None);
    }
    if let Err(e) = write_atomically(&path, &text) {
        let msg = format!("could not write {}: {e}", path.display());
        return config_form(&page, &s, sec, &typed, &HashMap::new(), &[msg], None);
    }
    match s.reloader.reload().await {
        Ok(changes) => {
            page.audit(
                &s,
                "config",
                format!("[{}] saved: {}", sec.table, changes.join("; ")),
            );
            see_other(&format!(
                "/config/{}?saved={}",
                sec.id,
                super::urlencode(&changes.join("; "))
            ))
        }
        Err(problems) => {
            // The daemon refused it: put the previous file back so file and running config agree.
            if let Ok(prev) = std::fs::read_to_string(prev_path(&path)) {
                let _ = write_atomically(&path, &prev);
            }
            config_form(&page, &s, sec, &typed, &HashMap::new(), &problems, None)
        }
    }
}

// ---- users and tokens ----

async fn users_page(State(s): State<AppState>, page: Page) -> Response {
    users_view(&s, &page, None, None)
}

fn users_view(
    s: &AppState,
    page: &Page,
    flash: Option<Flash>,
    secret: Option<(String, String)>,
) -> Response {
    if let Err(r) = page.need(s, ActionKind::Administer) {
        return r;
    }
    let users = accounts::users(&s.store).unwrap_or_default();
    let tokens = s.store.tokens().unwrap_or_default();
    let roles = Role::ALL;
    let body = html! {
        @if let Some((label, value)) = &secret { div.secret role="status" { p { (label) } code #secret { (value) } } }
        table #users {
            thead { tr { th { (page.t(i18n::USER)) } th { (page.t(i18n::ROLE)) } th { (page.t(i18n::CREATED)) } th {} } }
            tbody { @for u in &users {
                tr data-user=(u.name) {
                    td { (u.name) @if u.must_change { " " span.badge.warn { "!" } } }
                    td {
                        form.inline method="post" action={ "/users/" (u.name) "/role" } {
                            (page.csrf_field())
                            label.sr for={ "role-" (u.name) } { (page.t(i18n::ROLE)) }
                            select id={ "role-" (u.name) } name="role" {
                                @for r in roles { option value=(r.as_str()) selected[r == u.role] { (r.as_str()) } }
                            }
                            button type="submit" { (page.t(i18n::SAVE)) }
                        }
                    }
                    td { (page.time(u.created_at)) }
                    td {
                        form.inline method="post" action={ "/users/" (u.name) "/reset" } {
                            (page.csrf_field()) button type="submit" { (page.t(i18n::RESET_PASSWORD)) }
                        }
                        @if u.name != page.session.user {
                            form.inline method="post" action={ "/users/" (u.name) "/delete" } {
                                (page.csrf_field()) button.danger type="submit" { (page.t(i18n::DELETE)) }
                            }
                        }
                    }
                }
            } }
        }
        h2 { (page.t(i18n::ADD_USER)) }
        form.card.narrow #user-add method="post" action="/users" {
            (page.csrf_field())
            label for="new-user" { (page.t(i18n::USER)) }
            input #new-user name="name" required pattern="[A-Za-z0-9._-]{1,32}";
            label for="new-role" { (page.t(i18n::ROLE)) }
            select #new-role name="role" { @for r in roles { option value=(r.as_str()) { (r.as_str()) } } }
            button type="submit" { (page.t(i18n::ADD_USER)) }
        }
        h2 #tokens { (page.t(i18n::TOKENS)) }
        table {
            thead { tr { th { (page.t(i18n::TOKEN_NAME)) } th { "id" } th { (page.t(i18n::ROLE)) } th { (page.t(i18n::CREATED)) } th {} } }
            tbody { @for (hash, t) in &tokens {
                tr data-token=(t.name) { td { (t.name) } td { code { (&hash[..12.min(hash.len())]) } }
                    td.token-role { (t.role().as_str()) @if t.role.is_none() { " " span.badge.warn title=(page.t(i18n::TOKEN_LEGACY)) { (page.t(i18n::REVIEW)) } } }
                    td { (page.time(t.created_at)) }
                    td { form.inline method="post" action="/tokens/revoke" {
                        (page.csrf_field()) input type="hidden" name="id" value=(&hash[..12.min(hash.len())]);
                        button.danger type="submit" { (page.t(i18n::REVOKE)) } } } }
            } }
        }
        form.card.narrow method="post" action="/tokens" {
            (page.csrf_field())
            label for="token-name" { (page.t(i18n::TOKEN_NAME)) }
            input #token-name name="name" required;
            label for="token-role" { (page.t(i18n::ROLE)) }
            select #token-role name="role" { @for r in roles { option value=(r.as_str()) { (r.as_str()) } } }
            button type="submit" { (page.t(i18n::CREATE_TOKEN)) }
        }
    };
    page.layout(page.t(i18n::USERS), flash, body)
}

async fn user_add(State(s): State<AppState>, PostForm { page, form: f }: PostForm) -> Response {
    if let Err(r) = page.need(&s, ActionKind::Administer) {
        return r;
    }
    let name = field(&f, "name").to_string();
    let Some(role) = Role::parse(field(&f, "role")) else {
        return users_view(&s, &page, Flash::err(page.t(i18n::BAD_ROLE)), None);
    };
    if !accounts::valid_user_name(&name) {
        return users_view(&s, &page, Flash::err(page.t(i18n::BAD_USER_NAME)), None);
    }
    if matches!(accounts::user(&s.store, &name), Ok(Some(_))) {
        return users_view(&s, &page, Flash::err(page.t(i18n::USER_EXISTS)), None);
    }
    let password = accounts::random_password();
    let u = User {
        name: name.clone(),
        role,
        hash: match accounts::hash_password(&password) {
            Ok(h) => h,
            Err(e) => return users_view(&s, &page, Flash::err(e.to_string()), None),
        },
        must_change: true,
        language: None,
        created_at: chrono::Utc::now(),
    };
    if let Err(e) = accounts::put_user(&s.store, &u) {
        return users_view(&s, &page, Flash::err(e.to_string()), None);
    }
    page.audit(&s, "user", format!("added {name} as {}", role.as_str()));
    users_view(
        &s,
        &page,
        None,
        Some((fill(page.t(i18n::NEW_PASSWORD_IS), &name), password)),
    )
}

async fn user_action(
    State(s): State<AppState>,
    Path((name, action)): Path<(String, String)>,
    PostForm { page, form: f }: PostForm,
) -> Response {
    if let Err(r) = page.need(&s, ActionKind::Administer) {
        return r;
    }
    let Ok(Some(mut u)) = accounts::user(&s.store, &name) else {
        return page.message(StatusCode::NOT_FOUND, i18n::NOT_FOUND);
    };
    let admins = accounts::users(&s.store)
        .unwrap_or_default()
        .iter()
        .filter(|u| u.role == Role::Admin)
        .count();
    match action.as_str() {
        "role" => {
            let Some(role) = Role::parse(field(&f, "role")) else {
                return users_view(&s, &page, Flash::err(page.t(i18n::BAD_ROLE)), None);
            };
            if u.role == Role::Admin && role != Role::Admin && admins <= 1 {
                return users_view(&s, &page, Flash::err(page.t(i18n::LAST_ADMIN)), None);
            }
            u.role = role;
            if let Err(e) = accounts::put_user(&s.store, &u) {
                return users_view(&s, &page, Flash::err(e.to_string()), None);
            }
            page.audit(&s, "user", format!("{name} is now {}", role.as_str()));
            users_view(&s, &page, Flash::ok(page.t(i18n::SAVED)), None)
        }
        "reset" => match accounts::reset_password(&s.store, &name, chrono::Utc::now()) {
            Ok(pw) => {
                page.audit(&s, "user", format!("reset the password of {name}"));
                users_view(
                    &s,
                    &page,
                    None,
                    Some((fill(page.t(i18n::NEW_PASSWORD_IS), &name), pw)),
                )
            }
            Err(e) => users_view(&s, &page, Flash::err(e.to_string()), None),
        },
        "delete" if name != page.session.user => {
            if u.role == Role::Admin && admins <= 1 {
                return users_view(&s, &page, Flash::err(page.t(i18n::LAST_ADMIN)), None);
            }
            if let Err(e) = accounts::delete_user(&s.store, &name) {
                return users_view(&s, &page, Flash::err(e.to_string()), None);
            }
            page.audit(&s, "user", format!("deleted {name}"));
            users_view(&s, &page, Flash::ok(page.t(i18n::SAVED)), None)
        }
        _ => page.message(StatusCode::BAD_REQUEST, i18n::FORBIDDEN),
    }
}

async fn token_create(State(s): State<AppState>, PostForm { page, form: f }: PostForm) -> Response {
    if let Err(r) = page.need(&s, ActionKind::Administer) {
        return r;
    }
    let name = field(&f, "name").to_string();
    if name.is_empty() {
        return users_view(&s, &page, Flash::err(page.t(i18n::TOKEN_NAME)), None);
    }
    // A form without a role (an older page) makes the least powerful token.
    let role = match field(&f, "role") {
        "" => Role::Viewer,
        r => match Role::parse(r) {
            Some(r) => r,
            None => return users_view(&s, &page, Flash::err(page.t(i18n::BAD_ROLE)), None),
        },
    };
    match crate::auth::create_token(&s.store, &name, role, chrono::Utc::now()) {
        Ok(t) => {
            page.audit(
                &s,
                "token",
                format!("created `{name}` as {}", role.as_str()),
            );
            users_view(&s, &page, None, Some((page.t(i18n::TOKEN_IS).into(), t)))
        }
        Err(e) => users_view(&s, &page, Flash::err(e.to_string()), None),
    }
}

async fn token_revoke(State(s): State<AppState>, PostForm { page, form: f }: PostForm) -> Response {
    if let Err(r) = page.need(&s, ActionKind::Administer) {
        return r;
    }
    let id = field(&f, "id");
    let found: Vec<_> = s
        .store
        .tokens()
        .unwrap_or_default()
        .into_iter()
        .filter(|(h, _)| id.len() >= 8 && h.starts_with(id))
        .collect();
    match found.as_slice() {
        [(hash, t)] => {
            let _ = s.store.delete_token(hash);
            page.audit(&s, "token", format!("revoked `{}`", t.name));
            users_view(&s, &page, Flash::ok(page.t(i18n::SAVED)), None)
        }
        _ => page.message(StatusCode::NOT_FOUND, i18n::NOT_FOUND),
    }
}

// ---- audit log ----

#[derive(Deserialize, Default)]
struct AuditQuery {
    #[serde(default)]
    before: String,
}

async fn audit_page(
    State(s): State<AppState>,
    page: Page,
    Query(q): Query<AuditQuery>,
) -> Response {
    if let Err(r) = page.need(&s, ActionKind::Administer) {
        return r;
    }
    let before = Some(q.before.as_str()).filter(|b| !b.is_empty());
    let rows = accounts::audit_log(&s.store, before, 101).unwrap_or_default();
    let more = rows.len() > 100;
    let rows = &rows[..rows.len().min(100)];
    let body = html! {
        div.scroll { table #audit {
            thead { tr { th { (page.t(i18n::WHEN)) } th { (page.t(i18n::WHO)) } th { (page.t(i18n::WHAT)) } th { (page.t(i18n::NOTE)) } th { (page.t(i18n::ADDRESS)) } } }
            tbody { @for (_, e) in rows {
                tr data-action=(e.action) { td { (page.time(e.at)) } td { (e.user) } td { (e.action) } td { (e.detail) } td { (e.from.as_deref().unwrap_or("")) } }
            } }
        } }
        nav.pager {
            @if before.is_some() { a href="/audit" { (page.t(i18n::NEWER)) } }
            @if more { @if let Some((id, _)) = rows.last() { a href={ "/audit?before=" (id) } { (page.t(i18n::OLDER)) } } }
        }
    };
    page.layout(page.t(i18n::AUDIT), None, body)
}

// ---- diagnostics ----

fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KB", "MB", "GB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

async fn diagnostics(State(s): State<AppState>, page: Page) -> Response {
    if let Err(r) = page.need(&s, ActionKind::Administer) {
        return r;
    }
    let snap = s.engine.snapshot.borrow().clone();
    let cfg = s.cfg.borrow().clone();
    let disk = crate::diag::disk_space(s.store.path());
    let synced = crate::clock::system_clock_synced();
    let mut raw: Vec<crate::diag::RawLine> = snap
        .lines
        .iter()
        .flat_map(|l| crate::diag::line(&l.line).raw)
        .collect();
    raw.sort_by_key(|r| r.at);
    let legacy: Vec<_> = s
        .store
        .tokens()
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, t)| t.role.is_none())
        .collect();
    let tasks = s.tasks.health();
    let now = chrono::Utc::now();
    let row = |m: Msg, v: String| html! { tr { th { (page.t(m)) } td { (v) } } };
    let body = html! {
        @if !legacy.is_empty() {
            div #legacy-tokens .flash-err role="alert" {
                p { (page.t(i18n::TOKEN_LEGACY)) }
                ul { @for (hash, t) in &legacy { li { (t.name) " " code { (&hash[..12.min(hash.len())]) } } } }
                a href="/users#tokens" { (page.t(i18n::TOKENS)) }
            }
        }
        h2 { (page.t(i18n::LINES)) }
        div.scroll { table #diag-lines {
            thead { tr { th { (page.t(i18n::LINE)) } th { (page.t(i18n::DEVICE)) } th { (page.t(i18n::LINK)) } th { (page.t(i18n::SINCE)) } th { (page.t(i18n::MODEM_ID)) } } }
            tbody { @for l in &snap.lines {
                @let c = cfg.lines.iter().find(|c| c.id == l.line);
                tr data-line=(l.line) data-state=(status::line_state_code(l.state)) {
                    td { (l.line) }
                    td { code { (c.map(|c| c.device.as_str()).unwrap_or("")) } }
                    td { (page.t(status::line_state_msg(l.state))) @if let Some(r) = &l.reason { " — " (r) } }
                    td { (page.time(l.since)) }
                    td.ident { (crate::diag::line(&l.line).ident.unwrap_or_else(|| page.t(i18n::UNKNOWN).into())) }
                }
            } }
        } }
        h2 { (page.t(i18n::TASKS_HEALTH)) }
        div.scroll { table #diag-tasks {
            thead { tr { th { (page.t(i18n::TASK_NAME)) } th { (page.t(i18n::STATE)) } th { (page.t(i18n::RESTARTS)) } th { (page.t(i18n::LAST_FAILURE)) } } }
            tbody { @for (name, h) in &tasks {
                tr data-task=(name) data-state=(if h.degraded(now) { "degraded" } else { "ok" }) {
                    td { code { (name) } }
                    td { (if h.state == crate::runtime::supervisor::RunState::Running { page.t(i18n::RUNNING) } else { page.t(i18n::RESTARTING) }) }
                    td { (h.restarts) }
                    td { @if let (Some(why), Some(at)) = (&h.last_failure, h.failed_at) { (page.time(at)) " — " (why) } }
                }
            } }
        } }
        h2 { (page.t(i18n::RAW_LINES)) }
        pre #raw.raw aria-live="polite" {
            @for r in &raw { (page.time(r.at)) "  " (r.line) "  " (r.text) "\n" }
        }
        h2 { (page.t(i18n::DIAG)) }
        table.kv #diag-box {
            (row(i18n::MQTT_STATE, s.mqtt.borrow().label()))
            (row(i18n::OUTBOX, s.store.outbox_len().to_string()))
            (row(i18n::DISK_FREE, disk.map(|(free, total)| format!("{} / {}", bytes(free), bytes(total))).unwrap_or_else(|| "?".into())))
            (row(i18n::STORE_SIZE, bytes(s.store.size_on_disk())))
            (row(i18n::CLOCK, format!("{} · {}", page.time(chrono::Utc::now()), page.t(if synced { i18n::CLOCK_SYNCED } else { i18n::CLOCK_UNSYNCED }))))
            (row(i18n::SESSIONS, s.ui.sessions.len().to_string()))
            (row(i18n::VERSION, env!("CARGO_PKG_VERSION").to_string()))
        }
    };
    page.layout(page.t(i18n::DIAG), None, body)
}

/// Live raw lines for the diagnostics page (admins only).
async fn diagnostics_stream(State(s): State<AppState>, page: Page) -> Response {
    if let Err(r) = page.need(&s, ActionKind::Administer) {
        return r;
    }
    let rx = crate::diag::subscribe();
    let tz = page.tz;
    let stream = raw_stream(rx, tz);
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn raw_stream(
    rx: tokio::sync::broadcast::Receiver<crate::diag::RawLine>,
    tz: chrono_tz::Tz,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    stream::unfold(rx, move |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(r) => {
                    let text = format!(
                        "{}  {}  {}",
                        r.at.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S"),
                        r.line,
                        r.text
                    );
                    return Some((Ok(SseEvent::default().event("raw").data(text)), rx));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

#[cfg(test)]
mod tests;
