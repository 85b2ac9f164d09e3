//! Home Assistant MQTT device discovery (device-based: one retained `<prefix>/device/<id>/config` message with
//! `dev`, `o` and `cmps`). Pure: builds the payload from the site, the lines and what was announced before, so a
//! removed line's entities are removed (announced once more with only their platform, as Home Assistant asks).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// One entity of the device: its platform and configuration (abbreviated keys).
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    pub id: String,
    pub platform: &'static str,
    pub config: Value,
}

/// The device's discovery topic.
pub fn topic(discovery_prefix: &str, site: &str) -> String {
    format!("{discovery_prefix}/device/linekeeper_{site}/config")
}

fn sensor(prefix: &str, uid: &str, name: &str, field: &str, extra: Value) -> Value {
    let mut v = json!({
        "p": "sensor",
        "name": name,
        "uniq_id": uid,
        "stat_t": format!("{prefix}/queue"),
        "val_tpl": format!("{{{{ value_json.{field} }}}}"),
        "stat_cla": "measurement",
    });
    if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
        m.extend(e);
    }
    v
}

/// Every entity of a site's device: per line a ringing binary sensor and a state sensor; queue sensors; event
/// entities for calls, tasks and alerts.
pub fn components(prefix: &str, site: &str, lines: &[String]) -> Vec<Component> {
    let uid = |s: &str| format!("linekeeper_{site}_{s}");
    let mut out = Vec::new();
    for line in lines {
        let state_t = format!("{prefix}/line/{line}/state");
        out.push(Component {
            id: uid(&format!("{line}_ringing")),
            platform: "binary_sensor",
            config: json!({
                "p": "binary_sensor",
                "name": format!("{line} ringing"),
                "uniq_id": uid(&format!("{line}_ringing")),
                "stat_t": state_t,
                "val_tpl": "{{ 'ON' if value_json.state == 'ringing' else 'OFF' }}",
                "ic": "mdi:phone-ring",
            }),
        });
        out.push(Component {
            id: uid(&format!("{line}_state")),
            platform: "sensor",
            config: json!({
                "p": "sensor",
                "name": format!("{line} state"),
                "uniq_id": uid(&format!("{line}_state")),
                "stat_t": state_t,
                "val_tpl": "{{ value_json.state }}",
                "json_attr_t": state_t,
                "dev_cla": "enum",
                "ops": ["idle", "ringing", "offhook", "down"],
                "ic": "mdi:phone-classic",
            }),
        });
    }
    let queue: [(&str, &str, &str, Value); 6] = [
        (
            "ringing",
            "Lines ringing",
            "ringing",
            json!({"ic": "mdi:phone-ring"}),
        ),
        (
            "open_tasks",
            "Open tasks",
            "open_tasks",
            json!({"ic": "mdi:clipboard-list"}),
        ),
        (
            "overdue_tasks",
            "Overdue tasks",
            "overdue_tasks",
            json!({"ic": "mdi:clipboard-alert"}),
        ),
        (
            "service_level",
            "Service level today",
            "service_level_pct",
            json!({"unit_of_meas": "%"}),
        ),
        (
            "asa",
            "Average speed of answer today",
            "asa_s",
            json!({"unit_of_meas": "s", "dev_cla": "duration"}),
        ),
        (
            "agents_available",
            "Agents available",
            "agents_available",
            json!({"ic": "mdi:account-check"}),
        ),
    ];
    for (id, name, field, extra) in queue {
        out.push(Component {
            id: uid(id),
            platform: "sensor",
            config: sensor(prefix, &uid(id), name, field, extra),
        });
    }
    out.push(Component {
        id: uid("ack_all"),
        platform: "button",
        config: json!({
            "p": "button",
            "name": "Acknowledge all escalations",
            "uniq_id": uid("ack_all"),
            "cmd_t": format!("{prefix}/cmd/button"),
            "pl_prs": "ack_all",
            "ic": "mdi:bell-check",
        }),
    });
    let events: [(&str, &str, &str, &[&str]); 3] = [
        (
            "calls",
            "Calls",
            "events/call",
            &["call.ringing", "call.answered", "call.ended"],
        ),
        (
            "tasks",
            "Tasks",
            "events/task",
            &[
                "task.created",
                "task.updated",
                "task.overdue",
                "task.escalated",
                "task.done",
                "task.cancelled",
            ],
        ),
        (
            "alerts",
            "Alerts",
            "alert",
            &[
                "alert.line_down",
                "alert.line_up",
                "alert.long_ringing",
                "alert.vip_ringing",
                "alert.no_agent",
                "alert.deadline_soon",
                "alert.task_overdue",
                "alert.escalation",
                "alert.major_complaint",
                "alert.complaint_reopened",
            ],
        ),
    ];
    for (id, name, suffix, types) in events {
        out.push(Component {
            id: uid(id),
            platform: "event",
            config: json!({
                "p": "event",
                "name": name,
                "uniq_id": uid(id),
                "stat_t": format!("{prefix}/{suffix}"),
                "evt_typ": types,
                // Home Assistant wants `event_type`; ours is `type`. The rest become attributes.
                "val_tpl": "{{ dict(value_json, event_type=value_json.type) | tojson }}",
            }),
        });
    }
    out
}

/// The device's discovery payload. `before` maps the component ids announced last time to their platforms; those
/// gone now are announced with only their platform, which removes them.
pub fn payload(
    prefix: &str,
    site: &str,
    site_name: &str,
    lines: &[String],
    before: &BTreeMap<String, String>,
) -> Value {
    let version = env!("CARGO_PKG_VERSION");
    let mut cmps = Map::new();
    let now = components(prefix, site, lines);
    for c in &now {
        let mut config = c.config.clone();
        // A predictable entity id (`sensor.linekeeper_hq_line1_state`), which the example dashboard relies on.
        // (`default_entity_id` replaced `object_id` in Home Assistant 2025.10.)
        config["default_entity_id"] = Value::String(format!("{}.{}", c.platform, c.id));
        cmps.insert(c.id.clone(), config);
    }
    for (id, platform) in before {
        if !cmps.contains_key(id) {
            cmps.insert(id.clone(), json!({ "p": platform }));
        }
    }
    let name = if site_name.is_empty() {
        format!("linekeeper {site}")
    } else {
        format!("linekeeper {site_name}")
    };
    json!({
        "dev": {
            "ids": [format!("linekeeper_{site}")],
            "name": name,
            "mf": "linekeeper",
            "mdl": "caller-ID line monitor",
            "sw": version,
        },
        "o": { "name": "linekeeper", "sw": version },
        "avty_t": format!("{prefix}/status"),
        "pl_avail": "online",
        "pl_not_avail": "offline",
        "qos": 1,
        "cmps": Value::Object(cmps),
    })
}

/// The component ids and platforms of a payload, to remember for the next one.
pub fn announced(payload: &Value) -> BTreeMap<String, String> {
    payload["cmps"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, v)| v.get("uniq_id").is_some())
                .map(|(k, v)| (k.clone(), v["p"].as_str().unwrap_or("sensor").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys Home Assistant's device discovery requires (homeassistant/components/mqtt/discovery.py and the
    /// abbreviations table): `dev` with `ids`, `o` with `name`, `cmps` whose entries each have the platform `p`
    /// and a unique id, state topics under our prefix, availability tied to `P/status`.
    #[test]
    fn payload_follows_home_assistants_rules() {
        let p = payload(
            "linekeeper/hq",
            "hq",
            "Head office",
            &["line1".into(), "line2".into()],
            &BTreeMap::new(),
        );
        assert_eq!(p["dev"]["ids"][0], "linekeeper_hq");
        assert_eq!(p["o"]["name"], "linekeeper");
        assert_eq!(p["avty_t"], "linekeeper/hq/status");
        let cmps = p["cmps"].as_object().unwrap();
        assert_eq!(cmps.len(), 2 * 2 + 6 + 1 + 3);
        let platforms = ["sensor", "binary_sensor", "event", "button"];
        for (id, c) in cmps {
            assert!(platforms.contains(&c["p"].as_str().unwrap()), "{id}");
            assert_eq!(
                c["uniq_id"].as_str(),
                Some(id.as_str()),
                "unique ids are the component ids"
            );
            assert!(
                id.starts_with("linekeeper_hq_"),
                "ids carry the site, so boxes on one broker never collide"
            );
            let topic = c
                .get("stat_t")
                .or(c.get("cmd_t"))
                .and_then(Value::as_str)
                .unwrap();
            assert!(topic.starts_with("linekeeper/hq/"), "{id}");
            assert!(c["name"].is_string(), "{id}");
        }
        assert_eq!(cmps["linekeeper_hq_line2_state"]["ops"][1], "ringing");
        assert_eq!(
            cmps["linekeeper_hq_line1_ringing"]["default_entity_id"],
            "binary_sensor.linekeeper_hq_line1_ringing"
        );
        assert_eq!(
            cmps["linekeeper_hq_service_level"]["default_entity_id"],
            "sensor.linekeeper_hq_service_level"
        );
        assert!(cmps["linekeeper_hq_calls"]["evt_typ"]
            .as_array()
            .unwrap()
            .contains(&json!("call.ended")));
    }

    #[test]
    fn a_removed_line_is_announced_with_only_its_platform() {
        let first = payload(
            "lk/hq",
            "hq",
            "",
            &["line1".into(), "line2".into()],
            &BTreeMap::new(),
        );
        let before = announced(&first);
        assert_eq!(before["linekeeper_hq_line2_ringing"], "binary_sensor");
        let second = payload("lk/hq", "hq", "", &["line1".into()], &before);
        assert_eq!(
            second["cmps"]["linekeeper_hq_line2_ringing"],
            json!({"p": "binary_sensor"})
        );
        assert_eq!(
            second["cmps"]["linekeeper_hq_line2_state"],
            json!({"p": "sensor"})
        );
        assert!(second["cmps"]["linekeeper_hq_line1_state"]["uniq_id"].is_string());
        let third = payload("lk/hq", "hq", "", &["line1".into()], &announced(&second));
        assert!(
            third["cmps"].get("linekeeper_hq_line2_state").is_none(),
            "removed once, then forgotten"
        );
    }

    /// Every entity the example Home Assistant dashboard shows is one the discovery creates, and every topic of the
    /// example Node-RED flow is one the box publishes or takes commands on.
    #[test]
    fn the_example_dashboards_match_what_the_box_announces() {
        let yaml = include_str!("../../../../config/home-assistant-dashboard.yaml");
        let p = payload(
            "linekeeper/hq",
            "hq",
            "",
            &["line1".into()],
            &BTreeMap::new(),
        );
        let ids: Vec<String> = p["cmps"]
            .as_object()
            .unwrap()
            .values()
            .map(|c| c["default_entity_id"].as_str().unwrap().to_string())
            .collect();
        let used: Vec<&str> = yaml
            .split(|c: char| c.is_whitespace() || c == ',')
            .map(|w| w.trim_end_matches([':', '.']))
            .filter(|w| w.contains(".linekeeper_hq_"))
            .collect();
        assert!(used.len() >= 10, "{used:?}");
        for e in used {
            assert!(
                ids.iter().any(|i| i == e),
                "the dashboard shows {e}, which discovery does not create"
            );
        }
        let flow: Value =
            serde_json::from_str(include_str!("../../../../config/node-red-flow.json")).unwrap();
        let known = [
            "linekeeper/hq/line/+/state",
            "linekeeper/hq/queue",
            "linekeeper/hq/alert",
            "linekeeper/hq/cmd/result",
        ];
        for node in flow.as_array().unwrap() {
            if let Some(t) = node["topic"].as_str().filter(|t| !t.is_empty()) {
                assert!(known.contains(&t), "the flow listens to {t}");
            }
            if let Some(f) = node["func"].as_str().filter(|f| f.contains("msg.topic =")) {
                assert!(f.contains("'linekeeper/hq/cmd/task'"), "{f}");
            }
        }
    }

    #[test]
    fn two_sites_never_share_an_id() {
        let a = components("lk/a", "a", &["line1".into()]);
        let b = components("lk/b", "b", &["line1".into()]);
        for x in &a {
            assert!(b.iter().all(|y| y.id != x.id));
        }
        assert_ne!(topic("homeassistant", "a"), topic("homeassistant", "b"));
    }
}
