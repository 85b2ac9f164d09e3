//! Counters for `/metrics` (Prometheus text format), updated with relaxed atomics on the hot paths.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub struct Metrics {
    pub calls_answered: AtomicU64,
    pub calls_missed: AtomicU64,
    pub calls_unknown: AtomicU64,
    pub calls_interrupted: AtomicU64,
    pub events_committed: AtomicU64,
    pub commits: AtomicU64,
    pub commit_micros: AtomicU64,
    pub commit_errors: AtomicU64,
    pub mqtt_published: AtomicU64,
    pub mqtt_acked_seq: AtomicU64,
    pub mqtt_connected: AtomicU64,
    pub mqtt_connects: AtomicU64,
    pub mqtt_refused: AtomicU64,
    pub mqtt_commands_shed: AtomicU64,
    pub serial_bytes: AtomicU64,
    pub serial_lines: AtomicU64,
    pub serial_overlong: AtomicU64,
    pub serial_reopens: AtomicU64,
    pub http_unauthorized: AtomicU64,
}

pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Relaxed);
}

impl Metrics {
    /// Renders the counters plus the gauges the caller passes (`name`, help, value).
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut s = String::with_capacity(2048);
        let mut counter = |name: &str, help: &str, labels: &str, v: u64| {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name}{labels} {v}"
            );
        };
        counter(
            "linekeeper_calls_total",
            "Calls ended, by outcome.",
            "{outcome=\"answered\"}",
            self.calls_answered.load(Relaxed),
        );
        for (o, c) in [
            ("missed", &self.calls_missed),
            ("unknown", &self.calls_unknown),
            ("interrupted", &self.calls_interrupted),
        ] {
            let _ = writeln!(
                s,
                "linekeeper_calls_total{{outcome=\"{o}\"}} {}",
                c.load(Relaxed)
            );
        }
        let mut counter = |name: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Relaxed)
            );
        };
        counter(
            "linekeeper_events_committed_total",
            "Events written to the outbox.",
            &self.events_committed,
        );
        counter(
            "linekeeper_store_commits_total",
            "Flushed store commits.",
            &self.commits,
        );
        counter(
            "linekeeper_store_commit_microseconds_total",
            "Time spent in flushed commits, in microseconds.",
            &self.commit_micros,
        );
        counter(
            "linekeeper_store_commit_errors_total",
            "Failed store commits.",
            &self.commit_errors,
        );
        counter(
            "linekeeper_mqtt_published_total",
            "Events published to the broker.",
            &self.mqtt_published,
        );
        counter(
            "linekeeper_mqtt_connects_total",
            "Successful broker connections.",
            &self.mqtt_connects,
        );
        counter(
            "linekeeper_mqtt_refused_total",
            "Publishes the broker refused (its ACL).",
            &self.mqtt_refused,
        );
        counter(
            "linekeeper_mqtt_commands_shed_total",
            "MQTT commands dropped because the command queue was full.",
            &self.mqtt_commands_shed,
        );
        counter(
            "linekeeper_serial_bytes_total",
            "Bytes read from serial lines.",
            &self.serial_bytes,
        );
        counter(
            "linekeeper_serial_lines_total",
            "Text lines read from serial lines.",
            &self.serial_lines,
        );
        counter(
            "linekeeper_serial_overlong_lines_total",
            "Overlong serial lines discarded.",
            &self.serial_overlong,
        );
        counter(
            "linekeeper_serial_reopens_total",
            "Serial device (re)open attempts.",
            &self.serial_reopens,
        );
        counter(
            "linekeeper_http_unauthorized_total",
            "HTTP requests refused for missing or bad auth.",
            &self.http_unauthorized,
        );
        let _ = writeln!(
            s,
            "# TYPE linekeeper_mqtt_connected gauge\nlinekeeper_mqtt_connected {}",
            self.mqtt_connected.load(Relaxed)
        );
        let _ = writeln!(
            s,
            "# TYPE linekeeper_mqtt_acked_seq gauge\nlinekeeper_mqtt_acked_seq {}",
            self.mqtt_acked_seq.load(Relaxed)
        );
        for (name, help, v) in gauges {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        s
    }
}
