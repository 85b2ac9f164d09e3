//! The local web page: server-rendered HTML (maud) with a little plain JavaScript, every asset compiled into
//! the binary. Sessions in HttpOnly SameSite=Strict cookies; every state change is a POST with a CSRF token
//! and a matching Origin (or Referer); roles `agent` < `supervisor` < `admin`.
//!
//! Long because the layout, login, password and session handling that every page shares live here.

pub mod admin;
#[cfg(test)]
mod door_tests;
pub mod i18n;
pub mod pages;
pub mod status;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{html, Markup, DOCTYPE};
use serde::Deserialize;

use crate::accounts::{self, Lockout, Role, Session, Sessions};
use crate::outputs::http::AppState;
use crate::runtime::action::{ActionKind, Actor, Door};
use i18n::{Lang, Msg};

pub const COOKIE: &str = "lk_session";

/// The web page's own state beside the API's.
#[derive(Default)]
pub struct UiState {
    pub sessions: Sessions,
    pub lockout: Lockout,
    /// The configuration file the configuration pages write; `None`: read-only.
    pub config_path: Option<PathBuf>,
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(status::page))
        .route("/ui/status.json", get(status::json))
        .route("/assets/app.css", get(css))
        .route("/assets/app.js", get(js))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/password", get(password_page).post(password))
        .route("/lang", post(set_lang))
        .merge(pages::routes())
        .merge(admin::routes())
}

// ---- assets ----

const CSS: &str = include_str!("app.css");
const JS: &str = include_str!("app.js");

fn asset(ct: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, ct),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

// ---- the signed-in page context ----

/// A request from a signed-in user: who, their role, language, the CSRF token of the session.
pub struct Page {
    pub sid: String,
    pub session: Session,
    pub lang: Lang,
    pub tz: chrono_tz::Tz,
    pub site: String,
    pub path: String,
    /// Where the language switch returns to: this page when it was a GET, else the page whose form was sent
    /// (the Referer), since a POST's address may not answer a GET.
    pub back: String,
    pub from: Option<String>,
    /// The store cannot write (since this time, formatted in the site's zone): every page says so.
    pub store_failing: Option<String>,
}

pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn site_lang(s: &AppState) -> Lang {
    Lang::parse(&s.cfg.borrow().site.language).unwrap_or(Lang::Zh)
}

fn client_addr(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

/// The session a request's cookie names, if it is live.
pub fn session_of(headers: &HeaderMap, s: &AppState) -> Option<(String, Session)> {
    let sid = cookie_value(headers, COOKIE)?;
    s.ui.sessions
        .get(&s.store, sid, Instant::now())
        .map(|sess| (sid.to_string(), sess))
}

impl FromRequestParts<AppState> for Page {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        let path = parts.uri.path().to_string();
        let Some((sid, session)) = session_of(&parts.headers, s) else {
            let next = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let to = if next == "/" {
                "/login".to_string()
            } else {
                format!("/login?next={}", urlencode(next))
            };
            return Err(Redirect::to(&to).into_response());
        };
        if session.must_change && path != "/password" && path != "/logout" {
            return Err(Redirect::to("/password").into_response());
        }
        let cfg = s.cfg.borrow();
        let lang = session
            .language
            .as_deref()
            .and_then(Lang::parse)
            .or_else(|| Lang::parse(&cfg.site.language))
            .unwrap_or(Lang::Zh);
        let tz = cfg.timezone();
        let store_failing = s.engine.snapshot.borrow().store_error.as_ref().map(|f| {
            f.since
                .with_timezone(&tz)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        });
        Ok(Page {
            store_failing,
            sid,
            session,
            lang,
            tz: cfg.timezone(),
            site: if cfg.site.name.is_empty() {
                cfg.site.id.clone()
            } else {
                cfg.site.name.clone()
            },
            back: if parts.method == axum::http::Method::GET {
                parts
                    .uri
                    .path_and_query()
                    .map_or_else(|| path.clone(), |p| p.as_str().to_string())
            } else {
                referer_path(&parts.headers)
            },
            path,
            from: client_addr(parts),
        })
    }
}

impl Page {
    pub fn t(&self, m: Msg) -> &'static str {
        self.lang.t(m)
    }

    pub fn role(&self) -> Role {
        self.session.role
    }

    /// The signed-in user as the one door sees them.
    pub fn actor(&self) -> Actor {
        Actor {
            door: Door::Page,
            who: self.session.user.clone(),
            role: self.session.role,
            from: self.from.clone(),
        }
    }

    /// Whether the user's role allows `kind` (to show or hide a control; the action itself checks again).
    pub fn may(&self, kind: ActionKind) -> bool {
        self.session.role >= kind.required()
    }

    /// Refuses (403, with an audit entry) unless the user's role allows `kind`.
    // The error is the page the handler returns as is; boxing it would only add noise at every call.
    #[allow(clippy::result_large_err)]
    pub fn need(&self, s: &AppState, kind: ActionKind) -> Result<(), Response> {
        crate::runtime::action::authorize(&s.store, &self.actor(), kind)
            .map_err(|_| self.message(StatusCode::FORBIDDEN, i18n::FORBIDDEN))
    }

    /// Carries out a change through the one door; a refusal is the 403 page, other failures the caller shows.
    pub async fn perform(
        &self,
        s: &AppState,
        a: crate::runtime::action::Action,
    ) -> Result<crate::runtime::action::Done, crate::runtime::action::Failure> {
        crate::runtime::action::perform(&s.ctx(), &self.actor(), a).await
    }

    /// Checks a state-changing request: the form's CSRF token and the Origin (or Referer) against Host.
    #[allow(clippy::result_large_err)]
    pub fn check_post(&self, headers: &HeaderMap, csrf: Option<&str>) -> Result<(), Response> {
        if csrf != Some(self.session.csrf.as_str()) || !same_origin(headers) {
            return Err(self.message(StatusCode::FORBIDDEN, i18n::BAD_REQUEST_CSRF));
        }
        Ok(())
    }

    pub fn audit(&self, s: &AppState, action: &str, detail: impl Into<String>) {
        accounts::audit(
            &s.store,
            &self.session.user,
            action,
            detail,
            self.from.as_deref(),
        );
    }

    pub fn time(&self, t: crate::model::Time) -> String {
        t.with_timezone(&self.tz)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    }

    pub fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.session.csrf); }
    }

    /// A page with just a message (errors).
    pub fn message(&self, status: StatusCode, m: Msg) -> Response {
        let body = html! { p.flash-err { (self.t(m)) } };
        (status, self.layout(self.t(m), None, body)).into_response()
    }

    pub fn layout(&self, title: &str, flash: Option<Flash>, body: Markup) -> Response {
        use ActionKind as K;
        let nav: &[(&str, &str, Msg, ActionKind)] = &[
            ("nav-status", "/", i18n::NAV_STATUS, K::Read),
            ("nav-calls", "/calls", i18n::NAV_CALLS, K::Read),
            ("nav-tasks", "/tasks", i18n::NAV_TASKS, K::Read),
            (
                "nav-directory",
                "/directory",
                i18n::NAV_DIRECTORY,
                K::LookupCustomer,
            ),
            ("nav-reports", "/reports", i18n::NAV_REPORTS, K::ReadReports),
            ("nav-config", "/config", i18n::NAV_CONFIG, K::Configure),
            (
                "nav-diagnostics",
                "/diagnostics",
                i18n::NAV_DIAG,
                K::Administer,
            ),
            ("nav-users", "/users", i18n::NAV_USERS, K::Administer),
            ("nav-audit", "/audit", i18n::NAV_AUDIT, K::Administer),
        ];
        let current = |href: &str| {
            if href == "/" {
                self.path == "/"
            } else {
                self.path.starts_with(href)
            }
        };
        let markup = html! {
            (DOCTYPE)
            html lang=(self.lang.code()) {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) " · " (self.site) }
                    link rel="icon" href="data:,";
                    link rel="stylesheet" href="/assets/app.css";
                    script src="/assets/app.js" defer {}
                }
                body data-csrf=(self.session.csrf) data-lang=(self.lang.code()) {
                    header.top {
                        span.brand { "linekeeper" }
                        span.site { (self.site) }
                        nav {
                            @for (id, href, m, kind) in nav {
                                @if self.may(*kind) {
                                    a id=(id) href=(href) aria-current=[current(href).then_some("page")] { (self.t(*m)) }
                                }
                            }
                        }
                        div.me {
                            form #lang-form method="post" action="/lang" {
                                (self.csrf_field())
                                input type="hidden" name="back" value=(self.back);
                                label for="lang-select" .sr { (self.t(i18n::LANGUAGE)) }
                                select #lang-select name="lang" {
                                    option value="zh-CN" selected[self.lang == Lang::Zh] { "中文" }
                                    option value="en" selected[self.lang == Lang::En] { "English" }
                                }
                                noscript { button type="submit" { (self.t(i18n::SWITCH)) } }
                            }
                            span.user { (self.session.user) " (" (self.session.role.as_str()) ")" }
                            form method="post" action="/logout" {
                                (self.csrf_field())
                                button #logout type="submit" .link { (self.t(i18n::LOGOUT)) }
                            }
                        }
                    }
                    main {
                        h1 { (title) }
                        @if let Some(since) = &self.store_failing {
                            p #store-failing .flash-err role="alert" { (self.t(i18n::STORE_FAILING)) " " (since) }
                        }
                        @if let Some(f) = &flash {
                            p class=(if f.ok { "flash-ok" } else { "flash-err" }) role="status" { (f.text) }
                        }
                        (body)
                    }
                    footer { "linekeeper " (env!("CARGO_PKG_VERSION")) }
                }
            }
        };
        html_response(markup)
    }
}

/// A signed-in form POST whose CSRF token and origin were checked: every state change of the page comes as one.
pub struct PostForm {
    pub page: Page,
    pub form: FormMap,
}

impl axum::extract::FromRequest<AppState> for PostForm {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, s: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let page = Page::from_request_parts(&mut parts, s).await?;
        let headers = parts.headers.clone();
        let Form(form) =
            Form::<FormMap>::from_request(axum::extract::Request::from_parts(parts, body), s)
                .await
                .map_err(IntoResponse::into_response)?;
        page.check_post(&headers, form.get("csrf").map(String::as_str))?;
        Ok(PostForm { page, form })
    }
}

pub struct Flash {
    pub ok: bool,
    pub text: String,
}

impl Flash {
    pub fn ok(text: impl Into<String>) -> Option<Flash> {
        Some(Flash {
            ok: true,
            text: text.into(),
        })
    }
    pub fn err(text: impl Into<String>) -> Option<Flash> {
        Some(Flash {
            ok: false,
            text: text.into(),
        })
    }
}

pub fn html_response(m: Markup) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        [(
            header::HeaderName::from_static("content-security-policy"),
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
        )],
        m.into_string(),
    )
        .into_response()
}

/// The request came from a page of this server: Origin (or, without one, Referer) names the Host it was
/// sent to.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let matches = |url: &str| {
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        rest.is_some_and(|r| {
            let authority = r.split(['/', '?', '#']).next().unwrap_or("");
            authority.eq_ignore_ascii_case(host)
        })
    };
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(origin) => matches(origin),
        None => headers
            .get(header::REFERER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(matches),
    }
}

/// The path (and query) of a same-origin Referer, else `/`.
fn referer_path(headers: &HeaderMap) -> String {
    let referer = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .filter(|_| same_origin(headers));
    let path = referer
        .and_then(|r| r.split_once("://"))
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]));
    local_path(path)
}

pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `%s` in a message replaced by `arg`.
pub fn fill(m: &str, arg: impl std::fmt::Display) -> String {
    m.replacen("%s", &arg.to_string(), 1)
}

pub type FormMap = HashMap<String, String>;

pub fn field<'a>(f: &'a FormMap, k: &str) -> &'a str {
    f.get(k).map(|s| s.trim()).unwrap_or("")
}

/// A local redirect target from a form (`back`, `next`): only paths of this server.
pub fn local_path(p: Option<&str>) -> String {
    match p {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_string(),
        _ => "/".to_string(),
    }
}

pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

// ---- login, logout, password, language ----

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

fn login_markup(lang: Lang, next: &str, error: Option<String>, user: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (lang.t(i18n::LOGIN)) " · linekeeper" }
                link rel="icon" href="data:,";
                link rel="stylesheet" href="/assets/app.css";
            }
            body.login {
                main {
                    h1 { "linekeeper" }
                    form method="post" action="/login" .card {
                        input type="hidden" name="next" value=(next);
                        @if let Some(e) = error { p.form-error.flash-err role="alert" { (e) } }
                        label for="user" { (lang.t(i18n::USER)) }
                        input #user name="user" autocomplete="username" required value=(user) autofocus;
                        label for="password" { (lang.t(i18n::PASSWORD)) }
                        input #password name="password" type="password" autocomplete="current-password" required;
                        button #login-submit type="submit" { (lang.t(i18n::LOGIN)) }
                    }
                }
            }
        }
    }
}

async fn login_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Response {
    if session_of(&headers, &s).is_some() {
        return see_other(&local_path(q.next.as_deref()));
    }
    html_response(login_markup(
        site_lang(&s),
        &local_path(q.next.as_deref()),
        None,
        "",
    ))
}

fn session_cookie(sid: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{COOKIE}={sid}; Path=/; HttpOnly; SameSite=Strict"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("lk_session=; Path=/"))
}

fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("lk_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

pub struct ClientAddr(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(client_addr(parts)))
    }
}

async fn login(
    State(s): State<AppState>,
    ClientAddr(from): ClientAddr,
    headers: HeaderMap,
    Form(f): Form<FormMap>,
) -> Response {
    let lang = site_lang(&s);
    let user = field(&f, "user").to_string();
    let next = local_path(f.get("next").map(String::as_str));
    let now = Instant::now();
    let addr_key = from.as_deref().map(|a| format!("addr:{a}"));
    let user_key = format!("user:{user}");
    let audit = |action: &str, detail: String| {
        accounts::audit(&s.store, &user, action, detail, from.as_deref())
    };
    if !same_origin(&headers) {
        return (
            StatusCode::FORBIDDEN,
            html_response(login_markup(
                lang,
                &next,
                Some(lang.t(i18n::BAD_REQUEST_CSRF).into()),
                &user,
            )),
        )
            .into_response();
    }
    let locked = s.ui.lockout.locked(&user_key, now).or_else(|| {
        addr_key
            .as_deref()
            .and_then(|k| s.ui.lockout.locked(k, now))
    });
    if let Some(left) = locked {
        audit("login_refused", "locked out".into());
        let minutes = left.as_secs().div_ceil(60);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            html_response(login_markup(
                lang,
                &next,
                Some(fill(lang.t(i18n::LOCKED), minutes)),
                &user,
            )),
        )
            .into_response();
    }
    let password = f.get("password").map(String::as_str).unwrap_or("");
    let found = accounts::user(&s.store, &user).ok().flatten();
    // Verify against a dummy hash when the user is unknown, so timing does not tell which names exist.
    let ok = match &found {
        Some(u) => accounts::verify_password(&u.hash, password),
        None => {
            static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            let h = DUMMY.get_or_init(|| accounts::hash_password("-").unwrap_or_default());
            let _ = accounts::verify_password(h, password);
            false
        }
    };
    let Some(u) = found.filter(|_| ok) else {
        let locked_now = s.ui.lockout.fail(&user_key, accounts::LOCK_AFTER, now)
            | addr_key
                .as_deref()
                .is_some_and(|k| s.ui.lockout.fail(k, accounts::LOCK_ADDR_AFTER, now));
        audit(
            "login_failed",
            if locked_now {
                "wrong password; locked out".into()
            } else {
                "wrong password or unknown user".into()
            },
        );
        tracing::warn!(user = %user, from = ?from, "web login failed");
        return (
            StatusCode::UNAUTHORIZED,
            html_response(login_markup(
                lang,
                &next,
                Some(lang.t(i18n::LOGIN_FAILED).into()),
                &user,
            )),
        )
            .into_response();
    };
    s.ui.lockout.clear(&user_key);
    // Rotate: whatever session the browser had is dropped, a new id is issued.
    if let Some(old) = cookie_value(&headers, COOKIE) {
        s.ui.sessions.remove(old);
    }
    let sid = s.ui.sessions.create(&u, now);
    audit("login", format!("role {}", u.role.as_str()));
    tracing::info!(user = %u.name, from = ?from, "web login");
    let to = if u.must_change {
        "/password".to_string()
    } else {
        next
    };
    let mut r = see_other(&to);
    r.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&sid));
    r
}

async fn logout(State(s): State<AppState>, PostForm { page, .. }: PostForm) -> Response {
    s.ui.sessions.remove(&page.sid);
    page.audit(&s, "logout", "");
    let mut r = see_other("/login");
    r.headers_mut().insert(header::SET_COOKIE, clear_cookie());
    r
}

fn password_form(page: &Page, errors: &HashMap<&str, &str>, flash: Option<Flash>) -> Response {
    let err = |k: &str| {
        html! { @if let Some(e) = errors.get(k) { span.field-error data-field=(k) role="alert" { (e) } } }
    };
    let body = html! {
        @if page.session.must_change { p.flash-err { (page.t(i18n::MUST_CHANGE)) } }
        form method="post" action="/password" .card.narrow {
            (page.csrf_field())
            label for="current-password" { (page.t(i18n::CURRENT_PASSWORD)) }
            input #current-password name="current" type="password" autocomplete="current-password" required;
            (err("current"))
            label for="new-password" { (page.t(i18n::NEW_PASSWORD)) }
            input #new-password name="new" type="password" autocomplete="new-password" required minlength="10";
            (err("new"))
            label for="confirm-password" { (page.t(i18n::CONFIRM_PASSWORD)) }
            input #confirm-password name="confirm" type="password" autocomplete="new-password" required;
            (err("confirm"))
            button #password-submit type="submit" { (page.t(i18n::CHANGE_PASSWORD)) }
        }
    };
    page.layout(page.t(i18n::CHANGE_PASSWORD), flash, body)
}

async fn password_page(page: Page) -> Response {
    password_form(&page, &HashMap::new(), None)
}

async fn password(State(s): State<AppState>, PostForm { page, form: f }: PostForm) -> Response {
    let Ok(Some(mut u)) = accounts::user(&s.store, &page.session.user) else {
        return page.message(StatusCode::NOT_FOUND, i18n::NOT_FOUND);
    };
    let mut errors = HashMap::new();
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    if !accounts::verify_password(&u.hash, get("current")) {
        errors.insert("current", page.t(i18n::PW_WRONG_CURRENT));
    }
    if let Err(p) = accounts::check_new_password(&u.name, get("new"), get("confirm")) {
        let (k, m) = match p {
            accounts::PasswordProblem::TooShort => ("new", i18n::PW_TOO_SHORT),
            accounts::PasswordProblem::SameAsName => ("new", i18n::PW_SAME_AS_NAME),
            accounts::PasswordProblem::Mismatch => ("confirm", i18n::PW_MISMATCH),
        };
        errors.insert(k, page.t(m));
    }
    if !errors.is_empty() {
        let mut r = password_form(&page, &errors, None);
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return r;
    }
    u.hash = match accounts::hash_password(get("new")) {
        Ok(h) => h,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    u.must_change = false;
    if let Err(e) = accounts::put_user(&s.store, &u) {
        return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response();
    }
    s.ui.sessions.password_changed(&u);
    page.audit(&s, "password", "changed own password");
    see_other("/")
}

async fn set_lang(State(s): State<AppState>, PostForm { page, form: f }: PostForm) -> Response {
    let Some(lang) = Lang::parse(field(&f, "lang")) else {
        return page.message(StatusCode::BAD_REQUEST, i18n::NOT_FOUND);
    };
    if let Ok(Some(mut u)) = accounts::user(&s.store, &page.session.user) {
        u.language = Some(lang.code().to_string());
        if let Err(e) = accounts::put_user(&s.store, &u) {
            tracing::error!(error = %e, "could not save the language choice");
        }
    }
    see_other(&local_path(f.get("back").map(String::as_str)))
}
