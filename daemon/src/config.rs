//! Configuration: the TOML file of PRODUCT.md, parsed strictly (unknown keys are errors) and then validated as a
//! whole so that `check-config` can list every problem at once, each with its key.
//!
//! Long because it holds every setting of PRODUCT.md with its default and its validation message.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration written as people write it: `24h`, `90s`, `1h 30m`, `300ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

/// Reads a duration string, and explains that a bare number needs quotes and a unit.
fn duration_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration in quotes, like \"7s\" or \"24h\"")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<String, E> {
            Err(E::custom(format!(
                "`{v}` needs quotes and a unit, e.g. \"{v}s\" (or \"0\" / \"off\" where allowed)"
            )))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<String, E> {
            self.visit_i64(v as i64)
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<String, E> {
            Err(E::custom(format!(
                "`{v}` needs quotes and a unit, e.g. \"{v}s\""
            )))
        }
    }
    d.deserialize_any(V)
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = duration_text(d)?;
        humantime::parse_duration(s.trim())
            .map(HumanDuration)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "`{s}` is not a duration ({e}); write it like \"24h\", \"90s\" or \"300ms\""
                ))
            })
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

fn dur(s: u64) -> HumanDuration {
    HumanDuration(Duration::from_secs(s))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub site: Site,
    #[serde(default)]
    pub store: Store,
    #[serde(default, rename = "line")]
    pub lines: Vec<Line>,
    pub mqtt: Option<Mqtt>,
    #[serde(default)]
    pub web: Web,
    #[serde(default)]
    pub policy: Policy,
    /// Opening hours; absent = open 24x7.
    pub hours: Option<crate::calendar::HoursConfig>,
    #[serde(default, rename = "shift")]
    pub shifts: Vec<crate::calendar::ShiftConfig>,
    #[serde(default, rename = "agent")]
    pub agents: Vec<Agent>,
}

/// An agent who signs in to answer the lines.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// The lines the agent answers; empty = all.
    #[serde(default)]
    pub lines: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default = "default_timezone")]
    pub timezone: String,
    #[serde(default = "default_language")]
    pub language: String,
}

fn default_timezone() -> String {
    "Asia/Shanghai".into()
}
fn default_language() -> String {
    "zh-CN".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Store {
    #[serde(default = "default_store_path")]
    pub path: PathBuf,
}

fn default_store_path() -> PathBuf {
    PathBuf::from("/var/lib/linekeeper")
}

impl Default for Store {
    fn default() -> Self {
        Store {
            path: default_store_path(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineKind {
    Modem,
    Bridge,
    Sip,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    pub id: String,
    pub kind: LineKind,
    #[serde(default)]
    pub device: String,
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// Init commands sent in order; `A|B` tries `B` when `A` answers ERROR or nothing.
    #[serde(default = "default_init")]
    pub init: Vec<String>,
    #[serde(default = "default_init_timeout")]
    pub init_timeout: HumanDuration,
    #[serde(default = "default_ring_timeout")]
    pub ring_timeout: HumanDuration,
    /// The line reports OFFHOOK / ONHOOK, so answered and missed can be told apart.
    #[serde(default)]
    pub answer_detect: bool,
    #[serde(default = "default_reconnect_max")]
    pub reconnect_max: HumanDuration,
}

fn default_baud() -> u32 {
    115_200
}
pub fn default_init() -> Vec<String> {
    vec!["ATZ".into(), "AT+VCID=1|AT#CID=1".into(), "ATI".into()]
}
fn default_init_timeout() -> HumanDuration {
    dur(3)
}
fn default_ring_timeout() -> HumanDuration {
    dur(7)
}
fn default_reconnect_max() -> HumanDuration {
    dur(30)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mqtt {
    #[serde(default = "default_mqtt_host")]
    pub host: String,
    #[serde(default = "default_mqtt_port")]
    pub port: u16,
    #[serde(default = "default_topic_prefix")]
    pub topic_prefix: String,
    #[serde(default = "yes")]
    pub mask_numbers: bool,
    /// Defaults to `linekeeper-{site.id}`.
    pub client_id: Option<String>,
    #[serde(default = "default_keep_alive")]
    pub keep_alive: HumanDuration,
    pub username: Option<String>,
    /// File holding the password (first line), so the password stays out of the config.
    pub password_file: Option<PathBuf>,
    #[serde(default = "default_reconnect_max")]
    pub reconnect_max: HumanDuration,
    /// TLS: the CA certificate (PEM) that signed the broker's certificate; setting it turns TLS on.
    pub ca_file: Option<PathBuf>,
    /// TLS client authentication: this box's certificate and private key (PEM).
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    /// Home Assistant MQTT discovery of the box as a device.
    #[serde(default = "yes")]
    pub discovery: bool,
    #[serde(default = "default_discovery_prefix")]
    pub discovery_prefix: String,
    /// The role of commands on `P/cmd/...`: whoever may publish there (the broker's ACL decides) acts with it.
    /// `viewer` turns commands off.
    #[serde(default = "default_command_role")]
    pub command_role: crate::model::Role,
}

fn default_command_role() -> crate::model::Role {
    crate::model::Role::Supervisor
}

fn default_discovery_prefix() -> String {
    "homeassistant".into()
}

fn default_mqtt_host() -> String {
    "127.0.0.1".into()
}
fn default_mqtt_port() -> u16 {
    1883
}
fn default_topic_prefix() -> String {
    "linekeeper".into()
}
fn default_keep_alive() -> HumanDuration {
    dur(60)
}
fn yes() -> bool {
    true
}

impl Mqtt {
    pub fn local_default() -> Mqtt {
        Mqtt {
            host: default_mqtt_host(),
            port: default_mqtt_port(),
            topic_prefix: default_topic_prefix(),
            mask_numbers: true,
            client_id: None,
            keep_alive: default_keep_alive(),
            username: None,
            password_file: None,
            reconnect_max: default_reconnect_max(),
            discovery: true,
            discovery_prefix: default_discovery_prefix(),
            command_role: default_command_role(),
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Web {
    #[serde(default = "default_listen")]
    pub listen: String,
    /// When true, `/metrics` needs a token like the API.
    #[serde(default)]
    pub metrics_auth: bool,
}

fn default_listen() -> String {
    "0.0.0.0:8080".into()
}

impl Default for Web {
    fn default() -> Self {
        Web {
            listen: default_listen(),
            metrics_auth: false,
        }
    }
}

pub use linekeeper_core::tasks::UnknownOutcome;

/// A duration that can be switched off: `"off"` (or `"0s"`) is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptDuration(pub Option<Duration>);

impl<'de> Deserialize<'de> for OptDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = duration_text(d)?;
        let t = s.trim();
        if t.eq_ignore_ascii_case("off") || t == "0" {
            return Ok(OptDuration(None));
        }
        humantime::parse_duration(t)
            .map(|d| OptDuration((!d.is_zero()).then_some(d)))
            .map_err(|e| {
                serde::de::Error::custom(format!("`{s}` is not a duration ({e}) nor \"off\""))
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeadlineClockKind {
    /// Deadlines count on the wall clock.
    Wall,
    /// Deadlines count only open hours (`[hours]`).
    Business,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default = "default_callback_due")]
    pub callback_due: HumanDuration,
    #[serde(default = "default_unknown_outcome")]
    pub unknown_outcome: UnknownOutcome,
    #[serde(default = "default_answer_target")]
    pub answer_target: HumanDuration,
    #[serde(default = "default_deadline_clock")]
    pub deadline_clock: DeadlineClockKind,
    #[serde(default = "default_callback_due")]
    pub complaint_response_due: HumanDuration,
    #[serde(default = "one_hour")]
    pub supervisor_decision_due: HumanDuration,
    #[serde(default = "one_hour")]
    pub referral_due: HumanDuration,
    #[serde(default = "default_callback_due")]
    pub followup_due: HumanDuration,
    #[serde(default = "one_hour")]
    pub followup_issue_due: HumanDuration,
    #[serde(default = "default_reopen_below")]
    pub reopen_below: u8,
    #[serde(default = "default_warn_before")]
    pub warn_before: OptDuration,
    #[serde(default = "one_hour")]
    pub escalate_every: HumanDuration,
    /// Long ringing is a breach: alert while it still rings.
    #[serde(default = "default_ring_alert_after")]
    pub ring_alert_after: OptDuration,
    /// The same number again within this window is a repeat caller.
    #[serde(default = "default_repeat_window")]
    pub repeat_window: HumanDuration,
    /// Unanswered calls shorter than this are left out of the service level.
    #[serde(default = "default_short_abandon")]
    pub short_abandon: HumanDuration,
    /// The weekly report (of the week just ended) is made at the midnight that starts this day.
    #[serde(default = "default_weekly_on")]
    pub weekly_on: String,
    /// The monthly report (of the previous calendar month) is made on this day of the month.
    #[serde(default = "default_monthly_on")]
    pub monthly_on: u8,
}

fn default_weekly_on() -> String {
    "mon".into()
}
fn default_monthly_on() -> u8 {
    1
}

fn default_deadline_clock() -> DeadlineClockKind {
    DeadlineClockKind::Wall
}
fn one_hour() -> HumanDuration {
    dur(3600)
}
fn default_reopen_below() -> u8 {
    3
}
fn default_warn_before() -> OptDuration {
    OptDuration(Some(Duration::from_secs(7200)))
}
fn default_ring_alert_after() -> OptDuration {
    OptDuration(Some(Duration::from_secs(15)))
}
fn default_repeat_window() -> HumanDuration {
    dur(7 * 24 * 3600)
}
fn default_short_abandon() -> HumanDuration {
    dur(5)
}

fn default_callback_due() -> HumanDuration {
    dur(24 * 3600)
}
fn default_unknown_outcome() -> UnknownOutcome {
    UnknownOutcome::Review
}
fn default_answer_target() -> HumanDuration {
    dur(10)
}

impl Default for Policy {
    fn default() -> Self {
        // The defaults of every field, as serde fills them in.
        toml::from_str("").unwrap_or_else(|e| panic!("policy defaults: {e}"))
    }
}

impl Policy {
    pub fn task_policy(&self) -> crate::tasks::TaskPolicy {
        crate::tasks::TaskPolicy {
            callback_due: self.callback_due.0,
            unknown_outcome: self.unknown_outcome,
            complaint_response_due: self.complaint_response_due.0,
            supervisor_decision_due: self.supervisor_decision_due.0,
            referral_due: self.referral_due.0,
            followup_due: self.followup_due.0,
            followup_issue_due: self.followup_issue_due.0,
            reopen_below: self.reopen_below,
            warn_before: self.warn_before.0,
            escalate_every: self.escalate_every.0,
        }
    }
}

/// One problem in a configuration, with the key it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", .problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid { problems: Vec<Problem> },
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text).map_err(|problems| ConfigError::Invalid { problems })
    }

    /// Parses and validates; returns every problem found.
    pub fn parse(text: &str) -> Result<Config, Vec<Problem>> {
        let cfg: Config = match toml::from_str(text) {
            Ok(c) => c,
            Err(e) => return Err(toml_problems(text, e)),
        };
        let problems = cfg.validate();
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(problems)
        }
    }

    pub fn validate(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        let mut add = |key: &str, message: String| {
            p.push(Problem {
                key: key.to_string(),
                message,
            })
        };
        if !is_slug(&self.site.id) {
            add(
                "site.id",
                format!(
                    "`{}` must be lowercase letters, digits and '-' (it is used in MQTT topics)",
                    self.site.id
                ),
            );
        }
        if self.site.timezone.parse::<chrono_tz::Tz>().is_err() {
            add(
                "site.timezone",
                format!(
                    "`{}` is not an IANA time zone name, e.g. \"Asia/Shanghai\"",
                    self.site.timezone
                ),
            );
        }
        if !matches!(self.site.language.as_str(), "zh-CN" | "en") {
            add(
                "site.language",
                format!("`{}` must be \"zh-CN\" or \"en\"", self.site.language),
            );
        }
        let mut seen = std::collections::HashSet::new();
        for (i, line) in self.lines.iter().enumerate() {
            let k = |f: &str| format!("line[{i}].{f}");
            if !is_slug(&line.id) {
                add(
                    &k("id"),
                    format!("`{}` must be lowercase letters, digits and '-'", line.id),
                );
            }
            if !seen.insert(line.id.clone()) {
                add(&k("id"), format!("`{}` is used by two lines", line.id));
            }
            match line.kind {
                LineKind::Modem => {
                    if line.device.trim().is_empty() {
                        add(
                            &k("device"),
                            "a modem line needs the serial device path, e.g. \"/dev/serial/by-id/usb-...\"".into(),
                        );
                    }
                }
                LineKind::Bridge | LineKind::Sip => add(
                    &k("kind"),
                    format!(
                        "line kind `{}` is not available in this version yet; use \"modem\"",
                        if line.kind == LineKind::Bridge {
                            "bridge"
                        } else {
                            "sip"
                        }
                    ),
                ),
            }
            if line.baud == 0 {
                add(
                    &k("baud"),
                    "must be a positive baud rate such as 115200".into(),
                );
            }
            if line
                .init
                .iter()
                .any(|c| c.split('|').any(|a| a.trim().is_empty()))
            {
                add(
                    &k("init"),
                    "an init command (or one of its `|` alternatives) is empty".into(),
                );
            }
            if line.ring_timeout.0 < Duration::from_millis(100) {
                add(&k("ring_timeout"), "must be at least 100ms".into());
            }
            if line.init_timeout.0 < Duration::from_millis(50) {
                add(&k("init_timeout"), "must be at least 50ms".into());
            }
            if line.reconnect_max.0 < Duration::from_millis(100) {
                add(&k("reconnect_max"), "must be at least 100ms".into());
            }
        }
        if let Some(m) = &self.mqtt {
            if m.host.trim().is_empty() {
                add("mqtt.host", "must not be empty".into());
            }
            if m.port == 0 {
                add("mqtt.port", "must be 1-65535".into());
            }
            if m.topic_prefix.is_empty()
                || m.topic_prefix.contains(['#', '+'])
                || m.topic_prefix.ends_with('/')
            {
                add(
                    "mqtt.topic_prefix",
                    format!(
                        "`{}` must be a non-empty topic without '#', '+' or a trailing '/'",
                        m.topic_prefix
                    ),
                );
            }
            if m.keep_alive.0 != Duration::ZERO && m.keep_alive.0 < Duration::from_secs(5) {
                add("mqtt.keep_alive", "must be 0 (off) or at least 5s".into());
            }
            if m.password_file.is_some() && m.username.is_none() {
                add("mqtt.password_file", "needs mqtt.username as well".into());
            }
            if m.client_cert_file.is_some() != m.client_key_file.is_some() {
                add(
                    "mqtt.client_cert_file",
                    "client_cert_file and client_key_file go together".into(),
                );
            }
            if m.client_cert_file.is_some() && m.ca_file.is_none() {
                add(
                    "mqtt.ca_file",
                    "a client certificate needs TLS: set ca_file too".into(),
                );
            }
            for (key, f) in [
                ("mqtt.ca_file", &m.ca_file),
                ("mqtt.client_cert_file", &m.client_cert_file),
                ("mqtt.client_key_file", &m.client_key_file),
            ] {
                if let Some(f) = f.as_ref().filter(|f| !f.is_file()) {
                    add(
                        key,
                        format!("{} does not exist or is not a file", f.display()),
                    );
                }
            }
            if let Some(pf) = &m.password_file {
                if !pf.is_file() {
                    add(
                        "mqtt.password_file",
                        format!("{} does not exist or is not a file", pf.display()),
                    );
                }
            }
        }
        if self.web.listen.parse::<std::net::SocketAddr>().is_err() {
            add(
                "web.listen",
                format!(
                    "`{}` is not an address:port such as \"0.0.0.0:8080\"",
                    self.web.listen
                ),
            );
        }
        let pol = &self.policy;
        for (key, d) in [
            ("policy.callback_due", pol.callback_due),
            ("policy.complaint_response_due", pol.complaint_response_due),
            (
                "policy.supervisor_decision_due",
                pol.supervisor_decision_due,
            ),
            ("policy.referral_due", pol.referral_due),
            ("policy.followup_due", pol.followup_due),
            ("policy.followup_issue_due", pol.followup_issue_due),
            ("policy.escalate_every", pol.escalate_every),
        ] {
            if d.0 < Duration::from_secs(1) {
                add(key, "must be at least 1s".into());
            }
        }
        if !(1..=6).contains(&pol.reopen_below) {
            add(
                "policy.reopen_below",
                format!(
                    "{} must be 1 to 6 (scores are 1-5; 6 reopens on any score below 6)",
                    pol.reopen_below
                ),
            );
        }
        if crate::runtime::reporting::weekday(&pol.weekly_on).is_none() {
            add(
                "policy.weekly_on",
                format!(
                    "`{}` is not a day: mon, tue, wed, thu, fri, sat or sun",
                    pol.weekly_on
                ),
            );
        }
        if !(1..=28).contains(&pol.monthly_on) {
            add(
                "policy.monthly_on",
                format!("{} must be a day of the month from 1 to 28", pol.monthly_on),
            );
        }
        if pol.deadline_clock == DeadlineClockKind::Business && self.hours.is_none() {
            add(
                "policy.deadline_clock",
                "\"business\" needs an [hours] section to count open hours".into(),
            );
        }
        let mut agent_ids = std::collections::HashSet::new();
        for (i, a) in self.agents.iter().enumerate() {
            if !is_slug(&a.id) {
                add(
                    &format!("agent[{i}].id"),
                    format!("`{}` must be lowercase letters, digits and '-'", a.id),
                );
            }
            if !agent_ids.insert(a.id.clone()) {
                add(
                    &format!("agent[{i}].id"),
                    format!("`{}` is used by two agents", a.id),
                );
            }
            for l in &a.lines {
                if !self.lines.iter().any(|x| &x.id == l) {
                    add(
                        &format!("agent[{i}].lines"),
                        format!("no line `{l}` is configured"),
                    );
                }
            }
        }
        for (key, msg) in crate::calendar::validate(self.hours.as_ref(), &self.shifts) {
            add(&key, msg);
        }
        p
    }

    pub fn timezone(&self) -> chrono_tz::Tz {
        self.site
            .timezone
            .parse()
            .unwrap_or(chrono_tz::Asia::Shanghai)
    }

    pub fn topic_prefix(&self) -> String {
        let base = self
            .mqtt
            .as_ref()
            .map(|m| m.topic_prefix.clone())
            .unwrap_or_else(default_topic_prefix);
        format!("{base}/{}", self.site.id)
    }
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Turns a TOML/serde error into problems with a dotted key. toml reports only the first error, so we remove the
/// offending key and parse again until the rest parses, then add the semantic problems: one run lists them all.
fn toml_problems(text: &str, first: toml::de::Error) -> Vec<Problem> {
    let mut doc: toml::Value = match text.parse() {
        Ok(v) => v,
        Err(e) => {
            let at = e
                .span()
                .map(|sp| {
                    let before = &text[..sp.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
                    format!("line {line}, column {col}: ")
                })
                .unwrap_or_default();
            let msg = e.message().trim().replace('\n', " ");
            return vec![Problem {
                key: "(file)".into(),
                message: format!("not valid TOML: {at}{msg}"),
            }];
        }
    };
    let mut problems = Vec::new();
    let mut current = text.to_string();
    let mut err = first;
    for _ in 0..64 {
        let msg = err.message().trim().to_string();
        let key = err
            .span()
            .and_then(|sp| key_at(&current, sp.start))
            .unwrap_or_else(|| "(file)".into());
        let unknown = msg
            .strip_prefix("unknown field `")
            .and_then(|r| r.split('`').next())
            .map(str::to_string);
        let key = match &unknown {
            Some(u) if !key.ends_with(u.as_str()) => format!("{key}.{u}"),
            _ => key,
        };
        let message = match &unknown {
            Some(_) => {
                let expected = msg.split("expected").nth(1).map(str::trim).unwrap_or("");
                let expected = expected
                    .strip_prefix("one of")
                    .map(str::trim)
                    .unwrap_or(expected);
                format!("unknown key (expected one of {expected})")
            }
            None => msg,
        };
        let removed = remove_key(&mut doc, &key);
        problems.push(Problem { key, message });
        if !removed {
            return problems;
        }
        current = toml::to_string(&doc).unwrap_or_default();
        match toml::from_str::<Config>(&current) {
            Ok(cfg) => {
                problems.extend(cfg.validate());
                return problems;
            }
            Err(e) => err = e,
        }
    }
    problems
}

/// Removes a dotted key like `line[0].speed` from a TOML document; false when it isn't there.
fn remove_key(doc: &mut toml::Value, key: &str) -> bool {
    let parts: Vec<&str> = key.split('.').collect();
    let mut cur = doc;
    for (n, part) in parts.iter().enumerate() {
        let (name, index) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (*part, None),
        };
        let last = n + 1 == parts.len();
        let table = match cur.as_table_mut() {
            Some(t) => t,
            None => return false,
        };
        if last && index.is_none() {
            return table.remove(name).is_some();
        }
        let next = match table.get_mut(name) {
            Some(v) => v,
            None => return false,
        };
        cur = match index {
            Some(i) => match next.as_array_mut().and_then(|a| a.get_mut(i)) {
                Some(v) => v,
                None => return false,
            },
            None => next,
        };
        if last {
            // `line[2]` itself: remove the element
            return false;
        }
    }
    false
}

/// The dotted key (`line[1].ring_timeout`) of the TOML text at byte offset `pos`, found by walking the table headers
/// and key lines before it.
fn key_at(text: &str, pos: usize) -> Option<String> {
    let mut table = String::new();
    let mut counts: std::collections::HashMap<String, usize> = Default::default();
    let mut offset = 0;
    let mut key_here = None;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let t = line.trim();
        if let Some(h) = t.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let h = h.trim().to_string();
            let n = counts.entry(h.clone()).or_insert(0);
            table = format!("{h}[{n}]");
            *n += 1;
        } else if let Some(h) = t.strip_prefix('[').and_then(|r| r.split(']').next()) {
            table = h.trim().to_string();
        }
        if pos >= start && pos < offset.max(start + 1) {
            if !t.starts_with('[') {
                key_here = t
                    .split('=')
                    .next()
                    .map(|k| k.trim().trim_matches('"').to_string());
            }
            break;
        }
    }
    let table = if table.is_empty() { None } else { Some(table) };
    match (table, key_here) {
        (Some(t), Some(k)) if !k.is_empty() => Some(format!("{t}.{k}")),
        (Some(t), _) => Some(t),
        (None, Some(k)) if !k.is_empty() => Some(k),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
