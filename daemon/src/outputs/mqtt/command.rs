//! Commands over MQTT: `P/cmd/task` and `P/cmd/complaint` carry a JSON request with a `request_id`; each is
//! answered on `P/cmd/result` with the same `request_id`, `ok`, and the task or an `error`. A malformed or unknown
//! command, an unknown task or a request id seen before gets an error answer and changes nothing.
//!
//! ```json
//! {"request_id":"r1","task_id":"01K...","action":"done","by":"alice","note":"called back"}
//! {"request_id":"r2","number":"13912345678","note":"broken parcel","severity":"major"}
//! {"request_id":"r3","agent":"alice","action":"sign_in"}
//! ```

use std::collections::{HashSet, VecDeque};

use serde_json::{json, Map, Value};

use crate::runtime::action::{self, Action, Actor, Ctx, Done};
use crate::tasks::{ComplaintRequest, TaskAction};

/// Request ids answered lately (the last 1,000), so a command delivered twice is not carried out twice.
#[derive(Debug, Default)]
pub struct RecentRequests {
    order: VecDeque<String>,
    seen: HashSet<String>,
}

const REMEMBER: usize = 1000;

impl RecentRequests {
    /// False when the payload's `request_id` was seen before; records it otherwise.
    pub fn fresh(&mut self, payload: &[u8]) -> bool {
        let Some(id) = serde_json::from_slice::<Value>(payload).ok().and_then(|v| {
            v.get("request_id")
                .and_then(Value::as_str)
                .map(str::to_string)
        }) else {
            return true;
        };
        if self.seen.contains(&id) {
            return false;
        }
        if self.order.len() >= REMEMBER {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        self.seen.insert(id.clone());
        self.order.push_back(id);
        true
    }
}

/// The answer: `{"request_id", "ok": true, KEY: value}` (KEY is `task` or `agent`) or `{"request_id", "ok": false,
/// "error"}`.
fn answer(request_id: &Value, result: Result<(&str, Value), String>) -> Vec<u8> {
    let v = match result {
        Ok((key, value)) => {
            let mut m = Map::new();
            m.insert("request_id".into(), request_id.clone());
            m.insert("ok".into(), Value::Bool(true));
            m.insert(key.into(), value);
            Value::Object(m)
        }
        Err(e) => json!({ "request_id": request_id, "ok": false, "error": e }),
    };
    serde_json::to_vec(&v).unwrap_or_default()
}

/// A dashboard button (`P/cmd/button`): the payload is the button's name, with no request id (a Home Assistant
/// button always sends the same payload). `ack_all` acknowledges every overdue task.
async fn button(ctx: &Ctx, actor: &Actor, payload: &[u8]) -> Vec<u8> {
    let name = String::from_utf8_lossy(payload).trim().to_string();
    let result = match name.as_str() {
        "ack_all" => match action::perform(
            ctx,
            actor,
            // The tasks say a dashboard acknowledged them (contract v1).
            Action::AckAll {
                by: Some("dashboard".into()),
            },
        )
        .await
        {
            Ok(Done::Count(n)) => Ok(("acknowledged", Value::from(n))),
            Ok(_) => Err("unexpected answer".to_string()),
            Err(e) => Err(e.to_string()),
        },
        other => Err(format!("unknown button `{other}`: ack_all")),
    };
    answer(&Value::String(format!("button:{name}")), result)
}

/// The answer of an action that yields a task.
fn task_of(r: Result<Done, action::Failure>) -> Result<crate::model::Task, String> {
    match r {
        Ok(Done::Task(t)) => Ok(*t),
        Ok(_) => Err("unexpected answer".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Carries out one command through the one door, as `actor`, and returns the answer's payload.
pub async fn run(
    ctx: &Ctx,
    actor: &Actor,
    verb: &str,
    payload: &[u8],
    fresh: bool,
    mask: bool,
) -> Vec<u8> {
    if verb == "button" {
        return button(ctx, actor, payload).await;
    }
    let mut fields: Map<String, Value> = match serde_json::from_slice(payload) {
        Ok(Value::Object(m)) => m,
        Ok(_) => {
            return answer(
                &Value::Null,
                Err("the command must be a JSON object".into()),
            )
        }
        Err(e) => return answer(&Value::Null, Err(format!("the command is not JSON: {e}"))),
    };
    let request_id = match fields.remove("request_id") {
        Some(Value::String(s)) if !s.is_empty() => Value::String(s),
        _ => {
            return answer(
                &Value::Null,
                Err("the command needs a `request_id` string".into()),
            )
        }
    };
    if !fresh {
        return answer(
            &request_id,
            Err("duplicate request_id: this command was already received".into()),
        );
    }
    let result = match verb {
        "task" => {
            let task_id = match fields.remove("task_id") {
                Some(Value::String(s)) => s,
                _ => return answer(&request_id, Err("a task command needs `task_id`".into())),
            };
            match serde_json::from_value::<TaskAction>(Value::Object(fields)) {
                Ok(action) => task_of(
                    action::perform(
                        ctx,
                        actor,
                        Action::Task {
                            id: task_id,
                            action,
                        },
                    )
                    .await,
                ),
                Err(e) => Err(format!("bad task command: {e}")),
            }
        }
        "complaint" => match serde_json::from_value::<ComplaintRequest>(Value::Object(fields)) {
            Ok(req) => task_of(action::perform(ctx, actor, Action::OpenComplaint(req)).await),
            Err(e) => Err(format!("bad complaint: {e}")),
        },
        "agent" => {
            let (Some(Value::String(agent)), Some(Value::String(action))) =
                (fields.get("agent"), fields.get("action"))
            else {
                return answer(
                    &request_id,
                    Err("an agent command needs `agent` and `action`".into()),
                );
            };
            let Some(action) = crate::runtime::engine::AgentAction::parse(action) else {
                let msg = format!(
                    "`{action}` is not an agent action: sign_in, sign_out, available or away"
                );
                return answer(&request_id, Err(msg));
            };
            let r = action::perform(
                ctx,
                actor,
                Action::Agent {
                    id: agent.clone(),
                    action,
                },
            )
            .await;
            return answer(
                &request_id,
                match r {
                    Ok(Done::Agent(a)) => {
                        Ok(("agent", serde_json::to_value(a).unwrap_or(Value::Null)))
                    }
                    Ok(_) => Err("unexpected answer".into()),
                    Err(e) => Err(e.to_string()),
                },
            );
        }
        other => Err(format!(
            "unknown command `{other}`: use cmd/task, cmd/complaint or cmd/agent"
        )),
    };
    let result = result.map(|mut t| {
        if mask {
            t.number = t.number.as_deref().map(crate::model::mask_number);
        }
        ("task", serde_json::to_value(t).unwrap_or(Value::Null))
    });
    answer(&request_id, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_remembered_but_bounded() {
        let mut r = RecentRequests::default();
        assert!(r.fresh(br#"{"request_id":"a"}"#));
        assert!(!r.fresh(br#"{"request_id":"a"}"#));
        assert!(
            r.fresh(b"not json"),
            "no id: answered with an error later, not a duplicate"
        );
        for i in 0..REMEMBER {
            r.fresh(format!(r#"{{"request_id":"x{i}"}}"#).as_bytes());
        }
        assert_eq!(r.order.len(), REMEMBER);
        assert!(
            r.fresh(br#"{"request_id":"a"}"#),
            "forgotten after 1000 newer ones"
        );
    }
}
