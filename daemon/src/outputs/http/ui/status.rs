//! The live status page: lines, queue, agents, tasks; refreshed over server-sent events without reloads.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use maud::{html, Markup};
use serde_json::json;

use super::i18n::{self, Lang};
use super::Page;
use crate::model::{LineStatus, QueueSummary};
use crate::outputs::http::AppState;

pub fn line_state_msg(s: LineStatus) -> i18n::Msg {
    match s {
        LineStatus::Idle => i18n::ST_IDLE,
        LineStatus::Ringing => i18n::ST_RINGING,
        LineStatus::Offhook => i18n::ST_OFFHOOK,
        LineStatus::Down => i18n::ST_DOWN,
    }
}

pub fn line_state_code(s: LineStatus) -> &'static str {
    match s {
        LineStatus::Idle => "idle",
        LineStatus::Ringing => "ringing",
        LineStatus::Offhook => "offhook",
        LineStatus::Down => "down",
    }
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x}")).unwrap_or_else(|| "–".into())
}

fn queue_cells(page: &Page, q: &QueueSummary) -> Markup {
    let cells: [(&str, i18n::Msg, String); 8] = [
        ("ringing", i18n::RINGING, q.ringing.to_string()),
        ("talking", i18n::TALKING, q.talking.to_string()),
        ("open_tasks", i18n::OPEN_TASKS, q.open_tasks.to_string()),
        (
            "overdue_tasks",
            i18n::OVERDUE_TASKS,
            q.overdue_tasks.to_string(),
        ),
        (
            "service_level_pct",
            i18n::SERVICE_LEVEL,
            opt(q.service_level_pct),
        ),
        ("asa_s", i18n::ASA, opt(q.asa_s)),
        (
            "agents_available",
            i18n::AGENTS_AVAILABLE,
            q.agents_available
                .map(|a| a.to_string())
                .unwrap_or_else(|| "–".into()),
        ),
        ("offered", i18n::OFFERED_TODAY, q.offered.to_string()),
    ];
    html! {
        @for (k, m, v) in cells {
            div.tile { span.label { (page.t(m)) } span.value data-k=(k) { (v) } }
        }
    }
}

pub async fn page(State(s): State<AppState>, page: Page) -> Response {
    let snap = s.engine.snapshot.borrow().clone();
    let labels = json!({
        "idle": page.t(i18n::ST_IDLE), "ringing": page.t(i18n::ST_RINGING),
        "offhook": page.t(i18n::ST_OFFHOOK), "down": page.t(i18n::ST_DOWN),
        "live": page.t(i18n::LIVE), "offline": page.t(i18n::OFFLINE),
    });
    let body = html! {
        p #live.live data-labels=(labels.to_string()) { (page.t(i18n::OFFLINE)) }
        section {
            h2 { (page.t(i18n::LINES)) }
            div #lines.lines {
                @for l in &snap.lines {
                    div.line data-line=(l.line) data-state=(line_state_code(l.state))
                        data-since=(l.since.to_rfc3339()) {
                        span.name { (l.line) }
                        span.state { (page.t(line_state_msg(l.state))) }
                        span.caller { (l.number.as_deref().unwrap_or("")) " " (l.name.as_deref().unwrap_or("")) }
                        span.elapsed {}
                        span.reason { (l.reason.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
        section {
            h2 { (page.t(i18n::QUEUE)) }
            div #queue.tiles { (queue_cells(&page, &snap.queue)) }
        }
        section {
            h2 { (page.t(i18n::AGENTS)) }
            @if snap.agents.is_empty() { p.empty { (page.t(i18n::NO_ROWS)) } }
            table #agents {
                thead { tr { th { (page.t(i18n::AGENT)) } th { (page.t(i18n::STATE)) } th { (page.t(i18n::SINCE)) } } }
                tbody {
                    @for a in &snap.agents {
                        tr data-agent=(a.agent) {
                            td { (a.name) } td.state { (page.t(i18n::agent_status(a.state))) } td { (page.time(a.since)) }
                        }
                    }
                }
            }
        }
        p { a href="/tasks" { (page.t(i18n::OPEN_TASKS)) ": " span #tasks-open { (snap.queue.open_tasks) } } }
    };
    page.layout(page.t(i18n::NAV_STATUS), None, body)
}

/// `GET /ui/status.json`: what the status page shows, for its live refresh.
pub async fn json(State(s): State<AppState>, page: Page) -> Response {
    let snap = s.engine.snapshot.borrow().clone();
    let lang: Lang = page.lang;
    let lines: Vec<_> = snap
        .lines
        .iter()
        .map(|l| {
            json!({
                "line": l.line, "state": line_state_code(l.state), "label": lang.t(line_state_msg(l.state)),
                "since": l.since, "number": l.number, "name": l.name, "rings": l.rings, "reason": l.reason,
            })
        })
        .collect();
    let agents: Vec<_> = snap
        .agents
        .iter()
        .map(|a| json!({ "agent": a.agent, "state": a.state, "label": lang.t(i18n::agent_status(a.state)) }))
        .collect();
    Json(json!({
        "now": chrono::Utc::now(),
        "lines": lines,
        "queue": snap.queue,
        "agents": agents,
    }))
    .into_response()
}
