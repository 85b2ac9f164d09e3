//! The staff pages: call log, tasks (with every action), customer directory, reports with inline SVG charts.
//!
//! Long because it holds one template and handler per staff page (calls, tasks, directory, reports); each is short.

use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use serde::Deserialize;

use super::i18n::{self, Msg};
use super::{field, fill, see_other, urlencode, Flash, FormMap, Page, PostForm};
use crate::directory::{self, Customer, CustomerLevel};
use crate::model::{id_floor, Call, Outcome, Task, TaskKind, TaskState};
use crate::outputs::http::AppState;
use crate::query::{parse_bound, Bound};
use crate::report::{Report, ReportKind};
use crate::runtime::action::{Action, ActionKind, Done, Failure};
use crate::tasks::{ComplaintRequest, TaskAction};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/calls", get(calls))
        .route("/calls/{id}", get(call_detail))
        .route("/calls/{id}/complaint", post(call_complaint))
        .route("/tasks", get(tasks))
        .route("/tasks/{id}", get(task_detail))
        .route("/tasks/{id}/{action}", post(task_action))
        .route("/directory", get(directory_page).post(directory_save))
        .route("/directory/delete", post(directory_delete))
        .route("/directory/import", post(directory_import))
        .route("/directory/export.csv", get(directory_export))
        .route("/reports", get(reports))
        .route("/reports/{file}", get(report_csv))
}

pub const PAGE: usize = 50;

fn opt_s(v: Option<&str>) -> &str {
    v.unwrap_or("")
}

fn num(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.1}")).unwrap_or_default()
}

// ---- calls ----

#[derive(Deserialize, Default)]
pub struct CallsQuery {
    #[serde(default)]
    number: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    agent: String,
    #[serde(default)]
    before: String,
}

fn outcome_msg(o: Option<Outcome>) -> Msg {
    match o {
        Some(Outcome::Answered) => i18n::ANSWERED,
        Some(Outcome::Missed) => i18n::MISSED,
        Some(Outcome::Interrupted) => i18n::CANCELLED,
        Some(Outcome::Unknown) => i18n::UNKNOWN,
        None => i18n::RINGING,
    }
}

async fn calls(State(s): State<AppState>, page: Page, Query(q): Query<CallsQuery>) -> Response {
    let tz = page.tz;
    let mut problems = Vec::new();
    let from = match q.from.trim() {
        "" => None,
        v => parse_bound(v, tz, Bound::Start)
            .map_err(|e| problems.push(format!("{}: {e}", page.t(i18n::FROM))))
            .ok(),
    };
    let to = match q.to.trim() {
        "" => None,
        v => parse_bound(v, tz, Bound::End)
            .map_err(|e| problems.push(format!("{}: {e}", page.t(i18n::TO))))
            .ok(),
    };
    let lo = from.map(id_floor).unwrap_or_default();
    let mut hi = to.map(id_floor).unwrap_or_else(|| "~".into());
    if !q.before.is_empty() && q.before < hi {
        hi = q.before.clone();
    }
    let (number, name, agent) = (q.number.trim(), q.name.trim(), q.agent.trim());
    let outcome = q.outcome.trim();
    let rows = if problems.is_empty() {
        s.store
            .calls_newest_first(&lo, &hi, PAGE + 1, |c| {
                (number.is_empty() || c.number.as_deref().is_some_and(|n| n.contains(number)))
                    && (name.is_empty() || c.name.as_deref().is_some_and(|n| n.contains(name)))
                    && (agent.is_empty() || c.agent.as_deref() == Some(agent))
                    && (outcome.is_empty() || c.outcome.map(Outcome::as_str) == Some(outcome))
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let more = rows.len() > PAGE;
    let rows = &rows[..rows.len().min(PAGE)];
    let query_without_before = format!(
        "number={}&name={}&from={}&to={}&outcome={}&agent={}",
        urlencode(number),
        urlencode(name),
        urlencode(q.from.trim()),
        urlencode(q.to.trim()),
        urlencode(outcome),
        urlencode(agent)
    );
    let body = html! {
        form.filters method="get" action="/calls" {
            label { (page.t(i18n::NUMBER)) input name="number" value=(number) inputmode="tel"; }
            label { (page.t(i18n::NAME)) input name="name" value=(name); }
            label { (page.t(i18n::FROM)) input name="from" type="date" value=(q.from.trim()); }
            label { (page.t(i18n::TO)) input name="to" type="date" value=(q.to.trim()); }
            label { (page.t(i18n::OUTCOME))
                select name="outcome" {
                    option value="" { (page.t(i18n::ANY)) }
                    @for o in [Outcome::Answered, Outcome::Missed, Outcome::Unknown, Outcome::Interrupted] {
                        option value=(o.as_str()) selected[outcome == o.as_str()] { (page.t(outcome_msg(Some(o)))) }
                    }
                }
            }
            label { (page.t(i18n::AGENT)) input name="agent" value=(agent); }
            button type="submit" { (page.t(i18n::SEARCH)) }
        }
        @for p in &problems { p.flash-err { (p) } }
        (calls_table(&page, rows))
        nav.pager {
            @if !q.before.is_empty() { a href={ "/calls?" (query_without_before) } { (page.t(i18n::NEWER)) } }
            @if more { @if let Some(last) = rows.last() {
                a #older href={ "/calls?" (query_without_before) "&before=" (last.id) } { (page.t(i18n::OLDER)) }
            } }
        }
    };
    page.layout(page.t(i18n::NAV_CALLS), None, body)
}

fn calls_table(page: &Page, rows: &[Call]) -> Markup {
    html! {
        @if rows.is_empty() { p.empty { (page.t(i18n::NO_ROWS)) } } @else {
            div.scroll { table #calls {
                thead { tr {
                    th { (page.t(i18n::STARTED)) } th { (page.t(i18n::LINE)) } th { (page.t(i18n::NUMBER)) }
                    th { (page.t(i18n::NAME)) } th { (page.t(i18n::OUTCOME)) } th.num { (page.t(i18n::WAIT)) }
                    th.num { (page.t(i18n::TALK)) } th { (page.t(i18n::AGENT)) }
                } }
                tbody { @for c in rows {
                    tr data-call-id=(c.id) data-outcome=(c.outcome.map(Outcome::as_str).unwrap_or("")) {
                        td { a href={ "/calls/" (c.id) } { (page.time(c.started_at)) } }
                        td { (c.line) }
                        td { (opt_s(c.number.as_deref())) @if c.vip { " " span.badge { "VIP" } } }
                        td { (opt_s(c.name.as_deref())) }
                        td { (page.t(outcome_msg(c.outcome))) }
                        td.num { (num(c.wait_s)) } td.num { (num(c.talk_s)) }
                        td { (opt_s(c.agent.as_deref())) }
                    }
                } }
            } }
        }
    }
}

async fn call_detail(State(s): State<AppState>, page: Page, Path(id): Path<String>) -> Response {
    let Ok(Some(c)) = s.store.call(&id) else {
        return page.message(StatusCode::NOT_FOUND, i18n::NOT_FOUND);
    };
    let tasks = s
        .store
        .tasks_newest_first(100, |t| t.call_ids.iter().any(|x| x == &id))
        .unwrap_or_default();
    let row = |m: Msg, v: String| html! { tr { th { (page.t(m)) } td { (v) } } };
    let body = html! {
        table.kv #call {
            (row(i18n::STARTED, page.time(c.started_at)))
            (row(i18n::LINE, c.line.clone()))
            (row(i18n::NUMBER, c.number.clone().unwrap_or_default()))
            (row(i18n::NAME, c.name.clone().unwrap_or_default()))
            (row(i18n::RINGS, c.rings.to_string()))
            (row(i18n::OUTCOME, page.t(outcome_msg(c.outcome)).into()))
            (row(i18n::WAIT, num(c.wait_s)))
            (row(i18n::TALK, num(c.talk_s)))
            (row(i18n::AGENT, c.agent.clone().unwrap_or_default()))
        }
        h2 { (page.t(i18n::TASKS_OF_CALL)) }
        (tasks_table(&page, &tasks))
        h2 { (page.t(i18n::ACT_COMPLAINT)) }
        form.card method="post" action={ "/calls/" (c.id) "/complaint" } data-action="complaint" {
            (page.csrf_field())
            label for="complaint-note" { (page.t(i18n::NOTE)) }
            textarea #complaint-note name="note" rows="3" required {}
            label for="complaint-severity" { (page.t(i18n::SEVERITY)) }
            select #complaint-severity name="severity" { option value="normal" { (page.t(i18n::SEV_NORMAL)) } option value="major" { (page.t(i18n::SEV_MAJOR)) } }
            button type="submit" { (page.t(i18n::ACT_COMPLAINT)) }
        }
    };
    page.layout(&format!("{} {}", page.t(i18n::CALL), c.id), None, body)
}

async fn call_complaint(
    State(s): State<AppState>,
    Path(id): Path<String>,
    PostForm { page, form: f }: PostForm,
) -> Response {
    let req = ComplaintRequest {
        call_id: Some(id.clone()),
        number: None,
        name: None,
        note: Some(field(&f, "note").to_string()).filter(|n| !n.is_empty()),
        severity: if field(&f, "severity") == "major" {
            crate::model::Severity::Major
        } else {
            crate::model::Severity::Normal
        },
        category: None,
        by: Some(page.session.user.clone()),
    };
    match page.perform(&s, Action::OpenComplaint(req)).await {
        Ok(Done::Task(t)) => see_other(&format!("/tasks/{}?ok=1", t.id)),
        Ok(_) => page.message(StatusCode::INTERNAL_SERVER_ERROR, i18n::NOT_FOUND),
        Err(Failure::Forbidden(_)) => page.message(StatusCode::FORBIDDEN, i18n::FORBIDDEN),
        Err(e) => (
            match &e {
                Failure::Failed(e) => crate::outputs::http::action_error_status(e),
                _ => StatusCode::BAD_REQUEST,
            },
            page.layout(
                page.t(i18n::ACT_COMPLAINT),
                Flash::err(e.to_string()),
                html! {},
            ),
        )
            .into_response(),
    }
}

// ---- tasks ----

#[derive(Deserialize, Default)]
pub struct TasksQuery {
    #[serde(default)]
    state: String,
    #[serde(default)]
    kind: String,
    /// Paging of open tasks (sorted by deadline): the first row's offset.
    #[serde(default)]
    from: usize,
    /// Paging of other lists (newest first): ids below this one.
    #[serde(default)]
    before: String,
}

fn state_msg(s: TaskState) -> Msg {
    match s {
        TaskState::Open => i18n::OPEN,
        TaskState::Done => i18n::DONE,
        TaskState::Cancelled => i18n::CANCELLED,
    }
}

fn state_code(s: TaskState) -> &'static str {
    match s {
        TaskState::Open => "open",
        TaskState::Done => "done",
        TaskState::Cancelled => "cancelled",
    }
}

const KINDS: [TaskKind; 5] = [
    TaskKind::Callback,
    TaskKind::Review,
    TaskKind::Complaint,
    TaskKind::Followup,
    TaskKind::Referral,
];

fn tasks_table(page: &Page, rows: &[Task]) -> Markup {
    html! {
        @if rows.is_empty() { p.empty { (page.t(i18n::NO_ROWS)) } } @else {
            div.scroll { table #tasks {
                thead { tr {
                    th { (page.t(i18n::KIND)) } th { (page.t(i18n::STATE)) } th { (page.t(i18n::NUMBER)) }
                    th { (page.t(i18n::NAME)) } th { (page.t(i18n::DUE)) } th { (page.t(i18n::PRIORITY)) }
                    th.num { (page.t(i18n::ATTEMPTS)) } th { (page.t(i18n::ASSIGNEE)) }
                } }
                tbody { @for t in rows {
                    tr data-task-id=(t.id) data-kind=(t.kind.as_str()) data-state=(state_code(t.state))
                        data-number=(opt_s(t.number.as_deref())) class=[t.overdue.then_some("overdue")] {
                        td { a.task-link href={ "/tasks/" (t.id) } { (page.t(i18n::task_kind(t.kind))) } }
                        td { (page.t(state_msg(t.state))) @if t.overdue && t.state == TaskState::Open { " " span.badge.warn { (page.t(i18n::OVERDUE)) } } }
                        td { (opt_s(t.number.as_deref())) }
                        td { (opt_s(t.name.as_deref())) }
                        td { (page.time(t.due_at)) }
                        td { (page.t(i18n::priority(t.priority))) }
                        td.num { (t.attempts) }
                        td { (opt_s(t.assignee.as_deref())) }
                    }
                } }
            } }
        }
    }
}

async fn tasks(State(s): State<AppState>, page: Page, Query(q): Query<TasksQuery>) -> Response {
    let want = match q.state.as_str() {
        "" | "open" => Some(TaskState::Open),
        "done" => Some(TaskState::Done),
        "cancelled" => Some(TaskState::Cancelled),
        _ => None,
    };
    let kind = KINDS.iter().copied().find(|k| k.as_str() == q.kind);
    let keep = |t: &Task| want.is_none_or(|w| t.state == w) && kind.is_none_or(|k| t.kind == k);
    // Open tasks come from the open-task index, soonest deadline first; the rest newest first, by id.
    let (rows, next) = if want == Some(TaskState::Open) {
        let mut open: Vec<Task> = s
            .store
            .open_tasks()
            .unwrap_or_default()
            .into_iter()
            .filter(keep)
            .collect();
        open.sort_by(|a, b| a.due_at.cmp(&b.due_at).then(a.id.cmp(&b.id)));
        let total = open.len();
        let page_rows: Vec<Task> = open.into_iter().skip(q.from).take(PAGE).collect();
        let next = (q.from + PAGE < total).then(|| format!("from={}", q.from + PAGE));
        (page_rows, next)
    } else {
        let before = if q.before.is_empty() {
            "~"
        } else {
            q.before.as_str()
        };
        let mut rows = s
            .store
            .tasks_newest_before(before, PAGE + 1, keep)
            .unwrap_or_default();
        let more = rows.len() > PAGE;
        rows.truncate(PAGE);
        let next = more
            .then(|| rows.last().map(|t| format!("before={}", t.id)))
            .flatten();
        (rows, next)
    };
    let base = format!(
        "/tasks?state={}&kind={}",
        urlencode(&q.state),
        urlencode(&q.kind)
    );
    let paged = q.from > 0 || !q.before.is_empty();
    let state_sel = if q.state.is_empty() {
        "open"
    } else {
        q.state.as_str()
    };
    let body = html! {
        form.filters method="get" action="/tasks" {
            label { (page.t(i18n::STATE))
                select name="state" {
                    @for (v, m) in [("open", i18n::OPEN), ("done", i18n::DONE), ("cancelled", i18n::CANCELLED), ("all", i18n::ALL_STATES)] {
                        option value=(v) selected[state_sel == v] { (page.t(m)) }
                    }
                }
            }
            label { (page.t(i18n::KIND))
                select name="kind" {
                    option value="" { (page.t(i18n::ANY)) }
                    @for k in KINDS { option value=(k.as_str()) selected[q.kind == k.as_str()] { (page.t(i18n::task_kind(k))) } }
                }
            }
            button type="submit" { (page.t(i18n::SHOW)) }
        }
        (tasks_table(&page, &rows))
        nav.pager {
            @if paged { a href=(base) { (page.t(i18n::NEWER)) } }
            @if let Some(n) = &next { a #older href={ (base) "&" (n) } { (page.t(i18n::OLDER)) } }
        }
    };
    page.layout(page.t(i18n::NAV_TASKS), None, body)
}

/// The actions the policy allows on a task in its present state, with the fields each takes.
fn allowed_actions(t: &Task, page: &Page) -> Vec<(&'static str, Msg, &'static [&'static str])> {
    if t.state != TaskState::Open || !page.may(ActionKind::WorkTask) {
        return vec![];
    }
    let manage = page.may(ActionKind::ManageTask);
    let mut v: Vec<(&'static str, Msg, &'static [&'static str])> = Vec::new();
    match t.kind {
        TaskKind::Complaint => {
            v.push(("respond", i18n::ACT_RESPOND, &["promised_fix", "note"]));
            v.push(("resolve", i18n::ACT_RESOLVE, &["note"]));
            v.push(("refer", i18n::ACT_REFER, &["department", "note"]));
            if manage {
                v.push(("supervisor_decision", i18n::ACT_DECISION, &["note"]));
            }
        }
        TaskKind::Followup => {
            v.push(("followup_result", i18n::ACT_FOLLOWUP, &["score", "note"]));
            v.push(("done", i18n::ACT_DONE, &["note"]));
        }
        _ => v.push(("done", i18n::ACT_DONE, &["note"])),
    }
    if manage {
        v.push(("assign", i18n::ACT_ASSIGN, &["to"]));
    }
    if t.escalated_at.is_some() || t.overdue {
        v.push(("ack", i18n::ACT_ACK, &["note"]));
    }
    if manage {
        v.push(("cancel", i18n::ACT_CANCEL, &["note"]));
    }
    v
}

#[derive(Deserialize, Default)]
pub struct OkQuery {
    #[serde(default)]
    ok: String,
}

fn task_page(page: &Page, s: &AppState, t: &Task, flash: Option<Flash>) -> Response {
    let agents: Vec<(String, String)> = s
        .cfg
        .borrow()
        .agents
        .iter()
        .map(|a| (a.id.clone(), a.name.clone()))
        .collect();
    let row = |m: Msg, v: String| html! { tr { th { (page.t(m)) } td { (v) } } };
    let label = |f: &str| match f {
        "note" => i18n::NOTE,
        "promised_fix" => i18n::PROMISED_FIX,
        "department" => i18n::DEPARTMENT,
        "score" => i18n::SCORE,
        _ => i18n::ASSIGNEE,
    };
    let body = html! {
        table.kv #task {
            tr { th { (page.t(i18n::STATE)) } td #task-state data-state=(state_code(t.state)) { (page.t(state_msg(t.state)))
                @if t.overdue && t.state == TaskState::Open { " " span.badge.warn { (page.t(i18n::OVERDUE)) } } } }
            (row(i18n::KIND, page.t(i18n::task_kind(t.kind)).into()))
            (row(i18n::NUMBER, t.number.clone().unwrap_or_default()))
            (row(i18n::NAME, t.name.clone().unwrap_or_default()))
            (row(i18n::DUE, page.time(t.due_at)))
            (row(i18n::PRIORITY, page.t(i18n::priority(t.priority)).into()))
            (row(i18n::ATTEMPTS, t.attempts.to_string()))
            (row(i18n::ASSIGNEE, t.assignee.clone().unwrap_or_default()))
            (row(i18n::NOTE, t.note.clone().unwrap_or_default()))
            @for id in &t.call_ids { tr { th { (page.t(i18n::CALL)) } td { a href={ "/calls/" (id) } { (id) } } } }
        }
        @let actions = allowed_actions(t, page);
        @if !actions.is_empty() {
            h2 { (page.t(i18n::ACTIONS)) }
            div.actions {
                @for (name, m, fields) in &actions {
                    form.card method="post" action={ "/tasks/" (t.id) "/" (name) } data-action=(name) {
                        (page.csrf_field())
                        @for f in fields.iter() {
                            @let id = format!("{name}-{f}");
                            label for=(id) { (page.t(label(f))) }
                            @match *f {
                                "note" => textarea id=(id) name="note" rows="2" {},
                                "score" => input id=(id) name="score" type="number" min="1" max="5" required;,
                                "to" => input id=(id) name="to" required list="agent-ids";,
                                _ => input id=(id) name=(f) required;,
                            }
                        }
                        button type="submit" { (page.t(*m)) }
                    }
                }
            }
        }
        datalist #agent-ids { @for (id, name) in &agents { option value=(id) { (name) } } }
        h2 { (page.t(i18n::HISTORY)) }
        table #history {
            thead { tr { th { (page.t(i18n::WHEN)) } th { (page.t(i18n::WHAT)) } th { (page.t(i18n::WHO)) } th { (page.t(i18n::NOTE)) } } }
            tbody { @for h in &t.history {
                tr { td { (page.time(h.at)) } td { (h.action) } td { (opt_s(h.by.as_deref())) } td { (opt_s(h.note.as_deref())) } }
            } }
        }
    };
    page.layout(
        &format!(
            "{} · {}",
            page.t(i18n::NAV_TASKS),
            page.t(i18n::task_kind(t.kind))
        ),
        flash,
        body,
    )
}

async fn task_detail(
    State(s): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    Query(q): Query<OkQuery>,
) -> Response {
    match s.store.task(&id) {
        Ok(Some(t)) => task_page(
            &page,
            &s,
            &t,
            (!q.ok.is_empty())
                .then(|| Flash::ok(page.t(i18n::ACTION_DONE)))
                .flatten(),
        ),
        _ => page.message(StatusCode::NOT_FOUND, i18n::NOT_FOUND),
    }
}

async fn task_action(
    State(s): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    PostForm { page, form: f }: PostForm,
) -> Response {
    let Ok(Some(t)) = s.store.task(&id) else {
        return page.message(StatusCode::NOT_FOUND, i18n::NOT_FOUND);
    };
    if let Err(r) = page.need(&s, ActionKind::of_task_action(&action)) {
        return r;
    }
    if !allowed_actions(&t, &page)
        .iter()
        .any(|(n, _, _)| *n == action)
    {
        return page.message(StatusCode::FORBIDDEN, i18n::FORBIDDEN);
    }
    let by = Some(page.session.user.clone());
    let note = Some(field(&f, "note").to_string()).filter(|n| !n.is_empty());
    let act = match action.as_str() {
        "done" => TaskAction::Done { by, note },
        "cancel" => TaskAction::Cancel { by, note },
        "ack" => TaskAction::Ack { by, note },
        "resolve" => TaskAction::Resolve { by, note },
        "supervisor_decision" => TaskAction::SupervisorDecision { by, note },
        "assign" => TaskAction::Assign {
            to: field(&f, "to").to_string(),
            by,
        },
        "respond" => TaskAction::Respond {
            by,
            note,
            promised_fix: field(&f, "promised_fix").to_string(),
        },
        "refer" => TaskAction::Refer {
            department: field(&f, "department").to_string(),
            by,
            note,
        },
        "followup_result" => match field(&f, "score").parse::<u8>() {
            Ok(score) => TaskAction::FollowupResult { by, score, note },
            Err(_) => {
                let mut r = task_page(&page, &s, &t, Flash::err(page.t(i18n::SCORE)));
                *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
                return r;
            }
        },
        _ => return page.message(StatusCode::NOT_FOUND, i18n::NOT_FOUND),
    };
    match page
        .perform(
            &s,
            Action::Task {
                id: id.clone(),
                action: act,
            },
        )
        .await
    {
        Ok(_) => see_other(&format!("/tasks/{id}?ok=1")),
        Err(Failure::Forbidden(_)) => page.message(StatusCode::FORBIDDEN, i18n::FORBIDDEN),
        Err(e) => {
            let mut r = task_page(&page, &s, &t, Flash::err(e.to_string()));
            *r.status_mut() = match &e {
                Failure::Failed(e) => crate::outputs::http::action_error_status(e),
                _ => StatusCode::BAD_REQUEST,
            };
            r
        }
    }
}

// ---- directory ----

#[derive(Deserialize, Default)]
pub struct DirQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    edit: String,
}

fn all_customers(s: &AppState) -> Vec<Customer> {
    crate::outputs::http::all_customers_in(&s.store).unwrap_or_default()
}

fn directory_view(
    s: &AppState,
    page: &Page,
    q: &DirQuery,
    form: Option<(&FormMap, Vec<String>)>,
    flash: Option<Flash>,
) -> Response {
    let needle = q.q.trim();
    // Who may not export the directory sees only the matches of a search, a page at most.
    let whole = page.may(ActionKind::ExportData);
    let rows: Vec<Customer> = if whole || !needle.is_empty() {
        all_customers(s)
            .into_iter()
            .filter(|c| needle.is_empty() || c.number.contains(needle) || c.name.contains(needle))
            .take(if whole { 500 } else { 20 })
            .collect()
    } else {
        Vec::new()
    };
    let editing = rows.iter().find(|c| c.number == q.edit).cloned();
    let can_edit = page.may(ActionKind::EditDirectory);
    let value = |k: &str, from_customer: String| -> String {
        match &form {
            Some((f, _)) => field(f, k).to_string(),
            None => from_customer,
        }
    };
    let e = editing.as_ref();
    let body = html! {
        form.filters method="get" action="/directory" {
            label { (page.t(i18n::SEARCH)) input name="q" value=(needle); }
            button type="submit" { (page.t(i18n::SEARCH)) }
            @if whole { a.button href="/directory/export.csv" #directory-export { (page.t(i18n::EXPORT_CSV)) } }
        }
        @if rows.is_empty() { p.empty { (page.t(i18n::NO_ROWS)) } } @else {
            div.scroll { table #customers {
                thead { tr { th { (page.t(i18n::NUMBER)) } th { (page.t(i18n::NAME)) } th { (page.t(i18n::VIP)) }
                    th { (page.t(i18n::LEVEL)) } th { (page.t(i18n::BEST_TIME)) } th { (page.t(i18n::NOTE)) } th {} } }
                tbody { @for c in &rows {
                    tr data-number=(c.number) {
                        td { (c.number) } td { (c.name) } td { @if c.vip { span.badge { "VIP" } } }
                        td { (c.level.map(|l| format!("{l:?}")).unwrap_or_default()) }
                        td { (opt_s(c.best_time.as_deref())) } td { (opt_s(c.notes.as_deref())) }
                        td { @if can_edit {
                            a href={ "/directory?edit=" (urlencode(&c.number)) } { (page.t(i18n::EDIT)) }
                            form.inline method="post" action="/directory/delete" {
                                (page.csrf_field())
                                input type="hidden" name="number" value=(c.number);
                                button.link type="submit" { (page.t(i18n::DELETE)) }
                            }
                        } }
                    }
                } }
            } }
        }
        @if can_edit {
            h2 { (page.t(i18n::ADD_CUSTOMER)) }
            @if let Some((_, problems)) = &form { @for p in problems { p.field-error data-field="customer" role="alert" { (p) } } }
            form.card #customer-form method="post" action="/directory" {
                (page.csrf_field())
                label for="c-number" { (page.t(i18n::NUMBER)) }
                input #c-number name="number" required inputmode="tel" value=(value("number", e.map(|c| c.number.clone()).unwrap_or_default()));
                label for="c-name" { (page.t(i18n::NAME)) }
                input #c-name name="name" required value=(value("name", e.map(|c| c.name.clone()).unwrap_or_default()));
                label.check { input #c-vip name="vip" type="checkbox" value="true"
                    checked[match &form { Some((f, _)) => field(f, "vip") == "true", None => e.is_some_and(|c| c.vip) }];
                    " " (page.t(i18n::VIP)) }
                label for="c-level" { (page.t(i18n::LEVEL)) }
                @let lvl = value("level", e.and_then(|c| c.level).map(|l| format!("{l:?}")).unwrap_or_default());
                select #c-level name="level" {
                    option value="" { "–" }
                    @for l in ["A", "B", "C"] { option value=(l) selected[lvl == l] { (l) } }
                }
                label for="c-best" { (page.t(i18n::BEST_TIME)) }
                input #c-best name="best_time" value=(value("best_time", e.and_then(|c| c.best_time.clone()).unwrap_or_default()));
                label for="c-notes" { (page.t(i18n::NOTE)) }
                textarea #c-notes name="notes" rows="2" { (value("notes", e.and_then(|c| c.notes.clone()).unwrap_or_default())) }
                button #customer-save type="submit" { (page.t(i18n::SAVE)) }
            }
            h2 { (page.t(i18n::IMPORT_CSV)) }
            form.card method="post" action="/directory/import" enctype="multipart/form-data" {
                (page.csrf_field())
                label for="csv-file" { (page.t(i18n::CSV_FILE)) }
                input #csv-file name="file" type="file" accept=".csv,text/csv" required;
                button #csv-import type="submit" { (page.t(i18n::IMPORT_CSV)) }
            }
        }
    };
    page.layout(page.t(i18n::DIRECTORY), flash, body)
}

fn directory_flash(s: &AppState, page: &Page, flash: Option<Flash>) -> Response {
    directory_view(s, page, &DirQuery::default(), None, flash)
}

async fn directory_page(
    State(s): State<AppState>,
    page: Page,
    Query(q): Query<DirQuery>,
) -> Response {
    if let Err(r) = page.need(&s, ActionKind::LookupCustomer) {
        return r;
    }
    directory_view(&s, &page, &q, None, None)
}

async fn directory_save(
    State(s): State<AppState>,
    PostForm { page, form: f }: PostForm,
) -> Response {
    if let Err(r) = page.need(&s, ActionKind::EditDirectory) {
        return r;
    }
    let opt = |k: &str| Some(field(&f, k).to_string()).filter(|v| !v.is_empty());
    let level = match field(&f, "level") {
        "A" => Some(CustomerLevel::A),
        "B" => Some(CustomerLevel::B),
        "C" => Some(CustomerLevel::C),
        _ => None,
    };
    let c = Customer {
        number: field(&f, "number").to_string(),
        name: field(&f, "name").to_string(),
        vip: field(&f, "vip") == "true",
        level,
        best_time: opt("best_time"),
        notes: opt("notes"),
    };
    let c = match directory::validate(&c) {
        Ok(c) => c,
        Err(problems) => {
            let mut r = directory_view(&s, &page, &DirQuery::default(), Some((&f, problems)), None);
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            return r;
        }
    };
    match page.perform(&s, Action::SaveCustomer(c)).await {
        Ok(_) => directory_flash(&s, &page, Flash::ok(page.t(i18n::SAVED))),
        Err(e) => failed(&s, &page, e),
    }
}

async fn directory_delete(
    State(s): State<AppState>,
    PostForm { page, form: f }: PostForm,
) -> Response {
    let number = field(&f, "number").to_string();
    match page.perform(&s, Action::DeleteCustomer(number)).await {
        Ok(_) => see_other("/directory"),
        Err(e) => failed(&s, &page, e),
    }
}

async fn directory_import(
    State(s): State<AppState>,
    headers: HeaderMap,
    page: Page,
    mut mp: Multipart,
) -> Response {
    let mut csrf = None;
    let mut file = None;
    while let Ok(Some(part)) = mp.next_field().await {
        match part.name() {
            Some("csrf") => csrf = part.text().await.ok(),
            Some("file") => file = part.bytes().await.ok(),
            _ => {}
        }
    }
    if let Err(r) = page.check_post(&headers, csrf.as_deref()) {
        return r;
    }
    if let Err(r) = page.need(&s, ActionKind::EditDirectory) {
        return r;
    }
    let bytes = file.unwrap_or_default();
    let (good, errors) = directory::parse_csv(&bytes);
    let n = good.len();
    let refused = errors.len();
    let flash = match page
        .perform(&s, Action::ImportCustomers { good, refused })
        .await
    {
        Ok(_) => {
            let mut text = fill(page.t(i18n::IMPORTED), n);
            for e in errors.iter().take(20) {
                text.push_str(&format!(" · {e}"));
            }
            if errors.is_empty() {
                Flash::ok(text)
            } else {
                Flash::err(text)
            }
        }
        Err(e) => return failed(&s, &page, e),
    };
    directory_flash(&s, &page, flash)
}

/// The page for a failed directory change: 403 for a role too low, else the directory with the error.
fn failed(s: &AppState, page: &Page, e: Failure) -> Response {
    match e {
        Failure::Forbidden(_) => page.message(StatusCode::FORBIDDEN, i18n::FORBIDDEN),
        e => directory_flash(s, page, Flash::err(e.to_string())),
    }
}

async fn directory_export(State(s): State<AppState>, page: Page) -> Response {
    if let Err(r) = page.need(&s, ActionKind::ExportData) {
        return r;
    }
    page.audit(&s, "export", "customer directory CSV");
    crate::outputs::http::csv_download("customers.csv", directory::to_csv(&all_customers(&s)))
}

// ---- reports ----

#[derive(Deserialize, Default)]
pub struct ReportQuery {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    date: String,
}

const REPORT_KINDS: [(ReportKind, Msg); 5] = [
    (ReportKind::Shift, i18n::K_SHIFT),
    (ReportKind::Daily, i18n::K_DAILY),
    (ReportKind::Weekly, i18n::K_WEEKLY),
    (ReportKind::Monthly, i18n::K_MONTHLY),
    (ReportKind::Quarterly, i18n::K_QUARTERLY),
];

fn parse_kind_date(q: &ReportQuery) -> (ReportKind, Option<chrono::NaiveDate>) {
    let kind = REPORT_KINDS
        .iter()
        .map(|(k, _)| *k)
        .find(|k| k.as_str() == q.kind)
        .unwrap_or(ReportKind::Daily);
    let date = chrono::NaiveDate::parse_from_str(q.date.trim(), "%Y-%m-%d").ok();
    (kind, date)
}

async fn reports(State(s): State<AppState>, page: Page, Query(q): Query<ReportQuery>) -> Response {
    if let Err(r) = page.need(&s, ActionKind::ReadReports) {
        return r;
    }
    let (kind, date) = parse_kind_date(&q);
    let date = date.or_else(|| Some(chrono::Utc::now().with_timezone(&page.tz).date_naive()));
    let date_s = date.map(|d| d.to_string()).unwrap_or_default();
    let loaded = crate::outputs::http::load_report(&s, kind, date)
        .await
        .map_err(|(_, e)| e);
    let body = html! {
        form.filters method="get" action="/reports" {
            label { (page.t(i18n::REPORT_KIND))
                select #report-kind name="kind" {
                    @for (k, m) in REPORT_KINDS { option value=(k.as_str()) selected[k == kind] { (page.t(m)) } }
                }
            }
            label { (page.t(i18n::DATE)) input #report-date name="date" type="date" value=(date_s); }
            button type="submit" { (page.t(i18n::SHOW)) }
        }
        @match &loaded {
            Err(e) => p.flash-err { (e) },
            Ok((r, partial)) => {
                p { strong { (r.label) } " · " (page.time(r.from)) " – " (page.time(r.to)) @if *partial { " (…)" } }
                p { a #report-csv.button href={ "/reports/" (kind.as_str()) ".csv?date=" (date_s) } download { (page.t(i18n::DOWNLOAD_CSV)) } }
                div.charts {
                    figure { figcaption { (page.t(i18n::CHART_CALLS_BY_HOUR)) } (bar_chart(&r.calls_by_hour.iter().enumerate().map(|(h, n)| (format!("{h}"), *n as f64)).collect::<Vec<_>>(), None)) }
                    @if r.per_day.len() > 1 {
                        figure { figcaption { (page.t(i18n::CHART_SL_BY_DAY)) }
                            (bar_chart(&r.per_day.iter().map(|(d, f)| (d[5..].to_string(), f.service_level_pct.unwrap_or(0.0))).collect::<Vec<_>>(), Some(100.0))) }
                    }
                    figure { figcaption { (page.t(i18n::CHART_TASKS_BY_DAY)) " (" span.k1 { (page.t(i18n::OPENED)) } " / " span.k2 { (page.t(i18n::CLOSED)) } ")" }
                        (pair_chart(&r.per_day.iter().map(|(d, f)| (d[5..].to_string(), f.tasks_opened as f64, f.tasks_closed as f64)).collect::<Vec<_>>())) }
                }
                (kpi_table(&page, r))
            }
        }
    };
    page.layout(page.t(i18n::REPORTS), None, body)
}

fn kpi_table(page: &Page, r: &Report) -> Markup {
    let site = serde_json::to_value(&r.site_kpis).unwrap_or_default();
    let lines: Vec<(String, serde_json::Value)> = r
        .per_line
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or_default()))
        .collect();
    let agents: Vec<(String, serde_json::Value)> = r
        .per_agent
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or_default()))
        .collect();
    let keys: Vec<String> = site
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let cell = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "–".to_string(),
        other => other.to_string(),
    };
    html! {
        div.scroll { table #kpis {
            thead { tr { th { (page.t(i18n::KPI)) } th.num { (page.t(i18n::SITE)) }
                @for (l, _) in &lines { th.num { (page.t(i18n::LINE)) " " (l) } }
                @for (a, _) in &agents { th.num { (page.t(i18n::AGENT)) " " (a) } } } }
            tbody { @for k in &keys {
                tr data-kpi=(k) { td { (i18n::kpi(k).map(|m| page.t(m)).unwrap_or(k)) } td.num { (cell(&site[k])) }
                    @for (_, v) in &lines { td.num { (cell(&v[k])) } }
                    @for (_, v) in &agents { td.num { (cell(&v[k])) } } }
            } }
        } }
    }
}

/// A bar chart as inline SVG: one bar per (label, value), scaled to `max` or the largest value.
pub fn bar_chart(data: &[(String, f64)], max: Option<f64>) -> Markup {
    let n = data.len().max(1) as f64;
    let (w, h, pad) = (600.0, 160.0, 20.0);
    let top = max
        .unwrap_or_else(|| data.iter().map(|(_, v)| *v).fold(0.0, f64::max))
        .max(1.0);
    let bw = (w - pad) / n;
    let label_every = (data.len() / 12).max(1);
    html! {
        svg.chart viewBox={ "0 0 " (w) " " (h + pad) } role="img" preserveAspectRatio="none" {
            line x1=(pad) y1=(h) x2=(w) y2=(h) class="axis" {}
            text x="0" y="10" class="tick" { (format!("{top:.0}")) }
            @for (i, (label, v)) in data.iter().enumerate() {
                @let bh = (v / top * (h - 10.0)).max(0.0);
                @let x = pad + i as f64 * bw;
                rect x=(format!("{:.1}", x + 1.0)) y=(format!("{:.1}", h - bh)) width=(format!("{:.1}", (bw - 2.0).max(1.0))) height=(format!("{bh:.1}")) class="bar" {
                    title { (label) ": " (format!("{v:.1}")) }
                }
                @if i % label_every == 0 {
                    text x=(format!("{:.1}", x + bw / 2.0)) y=(h + 14.0) class="tick" text-anchor="middle" { (label) }
                }
            }
        }
    }
}

/// Two bars per label (opened, closed).
pub fn pair_chart(data: &[(String, f64, f64)]) -> Markup {
    let n = data.len().max(1) as f64;
    let (w, h, pad) = (600.0, 160.0, 20.0);
    let top = data
        .iter()
        .map(|(_, a, b)| a.max(*b))
        .fold(0.0, f64::max)
        .max(1.0);
    let bw = (w - pad) / n;
    let label_every = (data.len() / 12).max(1);
    html! {
        svg.chart viewBox={ "0 0 " (w) " " (h + pad) } role="img" preserveAspectRatio="none" {
            line x1=(pad) y1=(h) x2=(w) y2=(h) class="axis" {}
            text x="0" y="10" class="tick" { (format!("{top:.0}")) }
            @for (i, (label, a, b)) in data.iter().enumerate() {
                @let x = pad + i as f64 * bw;
                @let ha = a / top * (h - 10.0);
                @let hb = b / top * (h - 10.0);
                rect x=(format!("{:.1}", x + 1.0)) y=(format!("{:.1}", h - ha)) width=(format!("{:.1}", (bw / 2.0 - 1.0).max(1.0))) height=(format!("{ha:.1}")) class="bar k1" { title { (label) ": " (a) } }
                rect x=(format!("{:.1}", x + bw / 2.0)) y=(format!("{:.1}", h - hb)) width=(format!("{:.1}", (bw / 2.0 - 1.0).max(1.0))) height=(format!("{hb:.1}")) class="bar k2" { title { (label) ": " (b) } }
                @if i % label_every == 0 {
                    text x=(format!("{:.1}", x + bw / 2.0)) y=(h + 14.0) class="tick" text-anchor="middle" { (label) }
                }
            }
        }
    }
}

async fn report_csv(
    State(s): State<AppState>,
    page: Page,
    Path(file): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Response {
    if let Err(r) = page.need(&s, ActionKind::ReadReports) {
        return r;
    }
    let Some(kind) = file.strip_suffix(".csv") else {
        return page.message(StatusCode::NOT_FOUND, i18n::NOT_FOUND);
    };
    let (kind, date) = parse_kind_date(&ReportQuery {
        kind: kind.to_string(),
        date: q.date,
    });
    match crate::outputs::http::load_report(&s, kind, date).await {
        Ok((r, _)) => {
            page.audit(
                &s,
                "export",
                format!("report {} {}", kind.as_str(), r.label),
            );
            crate::outputs::http::report_csv_download(&r)
        }
        Err((status, e)) => (
            status,
            page.layout(page.t(i18n::REPORTS), Flash::err(e), html! {}),
        )
            .into_response(),
    }
}
