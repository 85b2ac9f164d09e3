//! The one door, as a table: every action that a door offers, tried by every role through that door (the page, the
//! JSON API, MQTT commands). Allowed means the request got past the role check (it may still fail for another
//! reason, such as a task that does not exist: 404, not 403); refused means 403 (or the MQTT error answer
//! `forbidden: ...`) and one more `forbidden` entry in the audit log. The control socket has no table: it is the
//! box's own administrator (only who may open the socket file can use it), so it always acts as admin.

use axum::body::Body;
use axum::http::{Request, StatusCode};

use super::tests::{get, login, post, rig, send, Rig, ORIGIN};
use crate::accounts::{self, Role, User};
use crate::runtime::action::{ActionKind, Actor, Door};
use crate::tasks::ComplaintRequest;

/// How to try an action through a door.
enum Try {
    /// A JSON API request: method, path, body.
    Api(&'static str, &'static str, &'static str),
    /// A page GET.
    PageGet(&'static str),
    /// A page form POST to a path; `{task}` is replaced by a fresh open complaint's id.
    PagePost(&'static str, &'static [(&'static str, &'static str)]),
    /// An MQTT command: verb and JSON payload; `{task}` as above.
    Mqtt(&'static str, &'static str),
}

const TABLE: &[(ActionKind, Try)] = {
    use ActionKind as K;
    use Try::*;
    &[
        (K::Read, Api("GET", "/api/tasks", "")),
        (K::Read, Api("GET", "/api/calls", "")),
        (K::Read, Api("GET", "/api/agents", "")),
        (K::Read, PageGet("/tasks")),
        (K::Read, PageGet("/calls")),
        (
            K::LookupCustomer,
            Api("GET", "/api/customers/13900001111", ""),
        ),
        (K::LookupCustomer, PageGet("/directory")),
        (K::ExportData, Api("GET", "/api/customers", "")),
        (K::ExportData, Api("GET", "/api/customers/export", "")),
        (K::ExportData, PageGet("/directory/export.csv")),
        (K::ReadReports, Api("GET", "/api/reports/daily", "")),
        (K::ReadReports, PageGet("/reports")),
        (K::ReadReports, PageGet("/reports/daily.csv")),
        (K::WorkTask, Api("POST", "/api/tasks/{task}/resolve", "{}")),
        (
            K::WorkTask,
            PagePost("/tasks/{task}/resolve", &[("note", "ok")]),
        ),
        (
            K::WorkTask,
            Mqtt("task", r#"{"task_id":"{task}","action":"resolve"}"#),
        ),
        (K::ManageTask, Api("POST", "/api/tasks/{task}/cancel", "{}")),
        (
            K::ManageTask,
            PagePost("/tasks/{task}/cancel", &[("note", "x")]),
        ),
        (
            K::ManageTask,
            PagePost("/tasks/{task}/assign", &[("to", "sue")]),
        ),
        (
            K::ManageTask,
            Mqtt("task", r#"{"task_id":"{task}","action":"cancel"}"#),
        ),
        (
            K::OpenComplaint,
            Api(
                "POST",
                "/api/complaints",
                r#"{"number":"13900001111","note":"x"}"#,
            ),
        ),
        (
            K::OpenComplaint,
            PagePost("/calls/01NOCALL/complaint", &[("note", "x")]),
        ),
        (
            K::OpenComplaint,
            Mqtt("complaint", r#"{"number":"13900001111","note":"x"}"#),
        ),
        (
            K::AgentStatus,
            Api("POST", "/api/agents/nobody/sign_in", ""),
        ),
        (
            K::AgentStatus,
            Mqtt("agent", r#"{"agent":"nobody","action":"sign_in"}"#),
        ),
        (K::AckAll, Mqtt("button", "ack_all")),
        (
            K::EditDirectory,
            Api("PUT", "/api/customers/13900001111", r#"{"name":"Li"}"#),
        ),
        (
            K::EditDirectory,
            Api("DELETE", "/api/customers/13900001111", ""),
        ),
        (
            K::EditDirectory,
            Api(
                "POST",
                "/api/customers/import",
                "number,name\n13900002222,Wu\n",
            ),
        ),
        (
            K::EditDirectory,
            PagePost("/directory", &[("number", "13900003333"), ("name", "Zhao")]),
        ),
        (
            K::EditDirectory,
            PagePost("/directory/delete", &[("number", "13900003333")]),
        ),
        (K::Configure, Api("POST", "/api/reload", "")),
        (K::Configure, PageGet("/config")),
        (K::Configure, PageGet("/config/hours")),
        (K::Administer, PageGet("/users")),
        (K::Administer, PageGet("/audit")),
        (K::Administer, PageGet("/diagnostics")),
        (K::Administer, PagePost("/tokens", &[("name", "x")])),
    ]
};

async fn fresh_task(r: &Rig) -> String {
    r.state
        .engine
        .open_complaint(ComplaintRequest {
            call_id: None,
            number: Some("13800138000".into()),
            name: None,
            note: Some("late".into()),
            severity: Default::default(),
            category: None,
            by: None,
        })
        .await
        .unwrap()
        .id
}

fn forbidden_entries(r: &Rig) -> usize {
    accounts::audit_log(&r.state.store, None, 100_000)
        .unwrap()
        .iter()
        .filter(|(_, e)| e.action == "forbidden")
        .count()
}

#[tokio::test]
async fn every_action_by_every_role_through_every_door() {
    let r = rig();
    // A viewer beside the rig's agent, supervisor and admin; and a token of each role.
    accounts::put_user(
        &r.state.store,
        &User {
            name: "vic".into(),
            role: Role::Viewer,
            hash: accounts::hash_password(super::tests::PASSWORD).unwrap(),
            must_change: false,
            language: None,
            created_at: chrono::Utc::now(),
        },
    )
    .unwrap();
    let users = [
        (Role::Viewer, "vic"),
        (Role::Agent, "ann"),
        (Role::Supervisor, "sue"),
        (Role::Admin, "root"),
    ];
    let mut sessions = Vec::new();
    let mut tokens = Vec::new();
    for (role, name) in users {
        sessions.push((role, login(&r.app, name).await));
        let t = crate::auth::create_token(&r.state.store, name, role, chrono::Utc::now()).unwrap();
        tokens.push((role, t));
    }
    let kinds_tried: std::collections::HashSet<_> = TABLE.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        kinds_tried.len(),
        ActionKind::ALL.len(),
        "every kind of action is in the table"
    );
    let mut checked = 0;
    for (kind, how) in TABLE {
        for role in Role::ALL {
            let allowed = role >= kind.required();
            let before = forbidden_entries(&r);
            let task = fresh_task(&r).await;
            let (what, refused) = match how {
                Try::Api(method, path, body) => {
                    let token = &tokens.iter().find(|(r, _)| *r == role).unwrap().1;
                    let path = path.replace("{task}", &task);
                    let req = Request::builder()
                        .method(*method)
                        .uri(&path)
                        .header("authorization", format!("Bearer {token}"))
                        .body(Body::from(*body))
                        .unwrap();
                    let resp = send(&r.app, req).await;
                    assert_ne!(resp.status, StatusCode::UNAUTHORIZED, "{method} {path}");
                    (
                        format!("API {method} {path} -> {} {}", resp.status, resp.body),
                        resp.status == StatusCode::FORBIDDEN,
                    )
                }
                Try::PageGet(path) => {
                    let (cookie, _) = &sessions.iter().find(|(r, _)| *r == role).unwrap().1;
                    let resp = send(&r.app, get(path, Some(cookie))).await;
                    (
                        format!("page GET {path} -> {}", resp.status),
                        resp.status == StatusCode::FORBIDDEN,
                    )
                }
                Try::PagePost(path, fields) => {
                    let (cookie, csrf) = &sessions.iter().find(|(r, _)| *r == role).unwrap().1;
                    let path = path.replace("{task}", &task);
                    let mut f: Vec<(&str, &str)> = vec![("csrf", csrf)];
                    f.extend_from_slice(fields);
                    let resp = send(&r.app, post(&path, Some(cookie), Some(ORIGIN), &f)).await;
                    (
                        format!("page POST {path} -> {}", resp.status),
                        resp.status == StatusCode::FORBIDDEN,
                    )
                }
                Try::Mqtt(verb, payload) => {
                    let actor = Actor::new(Door::Mqtt, "mqtt", role);
                    let mut ctx = r.state.ctx();
                    ctx.reloader = None;
                    let payload = if *verb == "button" {
                        payload.to_string()
                    } else {
                        payload.replacen('{', &format!(r#"{{"request_id":"{checked}","#), 1)
                    }
                    .replace("{task}", &task);
                    let answer = crate::outputs::mqtt::command::run(
                        &ctx,
                        &actor,
                        verb,
                        payload.as_bytes(),
                        true,
                        false,
                    )
                    .await;
                    let answer = String::from_utf8(answer).unwrap();
                    (
                        format!("MQTT cmd/{verb} {payload} -> {answer}"),
                        answer.contains(r#""error":"forbidden"#),
                    )
                }
            };
            assert_eq!(
                refused,
                !allowed,
                "{kind:?} by a {role:?}: {what}",
                role = role.as_str()
            );
            let logged = forbidden_entries(&r) - before;
            assert_eq!(
                logged,
                usize::from(!allowed),
                "{kind:?} by a {}: a refusal, and only a refusal, is audited once: {what}",
                role.as_str()
            );
            checked += 1;
        }
    }
    assert_eq!(checked, TABLE.len() * Role::ALL.len());
}
