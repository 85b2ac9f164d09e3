use super::*;

const MIN: &str = r#"
[site]
id = "hq"
[[line]]
id = "line1"
kind = "modem"
device = "/dev/ttyACM0"
"#;

#[test]
fn minimal_config_gets_defaults() {
    let c = Config::parse(MIN).unwrap();
    assert_eq!(c.lines[0].ring_timeout.0, Duration::from_secs(7));
    assert_eq!(c.lines[0].init, default_init());
    assert_eq!(c.policy.callback_due.0, Duration::from_secs(86400));
    assert_eq!(c.policy.unknown_outcome, UnknownOutcome::Review);
    assert!(c.mqtt.is_none());
    assert_eq!(c.topic_prefix(), "linekeeper/hq");
}

#[test]
fn durations_as_people_write_them() {
    let c = Config::parse(&format!(
        "{MIN}ring_timeout = \"90s\"\n[policy]\ncallback_due = \"1h 30m\"\n"
    ))
    .unwrap();
    assert_eq!(c.lines[0].ring_timeout.0, Duration::from_secs(90));
    assert_eq!(c.policy.callback_due.0, Duration::from_secs(5400));
}

#[test]
fn every_problem_is_listed_with_its_key() {
    let text = r#"
[site]
id = "HQ!"
timezone = "Mars/Base"
colour = "red"
[[line]]
id = "line1"
kind = "modem"
device = "/dev/x"
speed = 9600
[[line]]
id = "line1"
kind = "sip"
[policy]
callback_due = "soon"
"#;
    let problems = Config::parse(text).unwrap_err();
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    for want in ["site.colour", "line[0].speed", "policy.callback_due"] {
        assert!(keys.contains(&want), "{want} missing in {problems:?}");
    }
    assert!(problems
        .iter()
        .any(|p| p.key == "policy.callback_due" && p.message.contains("soon")));
}

#[test]
fn semantic_problems_are_all_reported() {
    let text = r#"
[site]
id = "HQ!"
timezone = "Mars/Base"
[[line]]
id = "line1"
kind = "modem"
device = ""
[[line]]
id = "line1"
kind = "sip"
[web]
listen = "nowhere"
"#;
    let problems = Config::parse(text).unwrap_err();
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        vec![
            "site.id",
            "site.timezone",
            "line[0].device",
            "line[1].id",
            "line[1].kind",
            "web.listen"
        ]
    );
}

#[test]
fn broken_toml_is_one_clear_problem_with_its_place() {
    let problems = Config::parse("[site]\nid = \"hq\nname = 1\n").unwrap_err();
    assert_eq!(problems.len(), 1);
    let m = &problems[0].message;
    assert!(m.starts_with("not valid TOML: line 2, column"), "{m}");
    assert!(!m.contains('\n'), "one problem, one line: {m}");
}

#[test]
fn a_bare_number_for_a_duration_says_how_to_write_it() {
    let problems = Config::parse(&format!("{MIN}ring_timeout = 7\n")).unwrap_err();
    assert_eq!(problems[0].key, "line[0].ring_timeout");
    assert!(
        problems[0].message.contains("\"7s\""),
        "{}",
        problems[0].message
    );
}

#[test]
fn unknown_keys_list_what_is_expected_once() {
    let problems = Config::parse(&format!("{MIN}speed = 1\n")).unwrap_err();
    let m = &problems[0].message;
    assert!(m.starts_with("unknown key (expected one of `id`"), "{m}");
    assert!(!m.contains("one of one of"), "{m}");
}

#[test]
fn example_config_is_valid() {
    let text = include_str!("../../../config/linekeeper.example.toml");
    let c = Config::parse(text).unwrap_or_else(|p| panic!("example config invalid: {p:?}"));
    assert!(!c.lines.is_empty());
    assert!(c.mqtt.is_some());
}
