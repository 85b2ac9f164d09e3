//! Commands that work whether or not the daemon runs (`token create`, `export`). One process at a time opens the
//! store (redb locks its file), so when the daemon holds it the command goes to the daemon over a Unix socket in the
//! store directory (`control.sock`, mode 0600); otherwise the command opens the store itself. Both paths run the same
//! code.
//!
//! Protocol: the client sends one JSON line (a [`Request`]); the daemon answers `ok\n` followed by the output, or
//! `error: MESSAGE\n`, and closes.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tracing::{info, warn};

use crate::config::Config;
use crate::model::{id_floor, Call, Task};
use crate::query::{parse_bound, Bound};
use crate::store::{Store, StoreError};

pub const SOCKET: &str = "control.sock";
/// Who the audit log names for a command run from the shell.
const SHELL: &str = "(shell)";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum What {
    Calls,
    Tasks,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    TokenCreate {
        name: String,
        /// None (an older CLI): the least powerful role, viewer.
        #[serde(default)]
        role: Option<crate::model::Role>,
    },
    Export {
        what: What,
        from: Option<String>,
        to: Option<String>,
        format: Format,
    },
    Report {
        kind: crate::report::ReportKind,
        date: Option<String>,
        format: Format,
    },
    /// Sets a new random web password for a user, to be changed at the next login.
    Passwd { user: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Report(#[from] crate::runtime::reporting::ReportError),
    #[error("{0}")]
    Usage(String),
    #[error("output failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the daemon holds the store but its control socket {path} does not answer ({source}); stop the daemon or check the socket")]
    Socket {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the daemon refused: {0}")]
    Remote(String),
}

/// Runs a request against an open store, writing the output to `out`.
pub fn execute(
    store: &Store,
    cfg: &Config,
    req: &Request,
    out: &mut dyn Write,
) -> Result<(), ControlError> {
    let tz = cfg.timezone();
    match req {
        Request::TokenCreate { name, role } => {
            if name.trim().is_empty() {
                return Err(ControlError::Usage("the token needs a name".into()));
            }
            let role = role.unwrap_or(crate::model::Role::Viewer);
            let token = crate::auth::create_token(store, name, role, chrono::Utc::now())?;
            crate::accounts::audit(
                store,
                "control",
                "token",
                format!("control socket: created `{name}` as {}", role.as_str()),
                None,
            );
            writeln!(out, "{token}")?;
        }
        Request::Passwd { user } => {
            let users = crate::accounts::users(store)?;
            if !users.is_empty() && !users.iter().any(|u| &u.name == user) {
                let names: Vec<_> = users.iter().map(|u| u.name.as_str()).collect();
                return Err(ControlError::Usage(format!(
                    "no web user `{user}`; the users are: {}",
                    names.join(", ")
                )));
            }
            // With no users at all, this makes the first one, an admin.
            let password = crate::accounts::reset_password(store, user, chrono::Utc::now())?;
            let detail = format!("`linekeeper passwd {user}` set a new password");
            crate::accounts::audit(store, SHELL, "user", detail, None);
            writeln!(out, "{password}")?;
        }
        Request::Export {
            what,
            from,
            to,
            format,
        } => {
            let detail = format!("`linekeeper export` of {what:?} from {from:?} to {to:?}");
            crate::accounts::audit(store, SHELL, "export", detail, None);
            let from = from
                .as_deref()
                .map(|v| parse_bound(v, tz, Bound::Start))
                .transpose()
                .map_err(|e| ControlError::Usage(format!("--from: {e}")))?;
            let to = to
                .as_deref()
                .map(|v| parse_bound(v, tz, Bound::End))
                .transpose()
                .map_err(|e| ControlError::Usage(format!("--to: {e}")))?;
            export(store, *what, from, to, *format, out)?;
        }
        Request::Report { kind, date, format } => {
            let date = date
                .as_deref()
                .map(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d"))
                .transpose()
                .map_err(|e| {
                    ControlError::Usage(format!("--date is not a valid date YYYY-MM-DD: {e}"))
                })?;
            let (r, _) = crate::runtime::reporting::find_or_build(
                store,
                cfg,
                *kind,
                date,
                chrono::Utc::now(),
            )?;
            match format {
                Format::Csv => out.write_all(crate::report::to_csv(&r).as_bytes())?,
                Format::Json => {
                    serde_json::to_writer_pretty(&mut *out, &r).map_err(std::io::Error::from)?;
                    writeln!(out)?;
                }
            }
        }
    }
    Ok(())
}

fn export(
    store: &Store,
    what: What,
    from: Option<crate::model::Time>,
    to: Option<crate::model::Time>,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), ControlError> {
    let mut w = Exporter::new(format, out, what)?;
    match what {
        What::Calls => {
            let lo = from.map(id_floor).unwrap_or_default();
            let hi = to.map(id_floor).unwrap_or_else(|| "~".into());
            let mut err = None;
            store.for_each_call(&lo, &hi, |c| {
                if err.is_none() {
                    err = w.call(&c).err();
                }
            })?;
            if let Some(e) = err {
                return Err(e.into());
            }
        }
        What::Tasks => {
            let mut tasks = store.tasks_newest_first(usize::MAX, |t| {
                from.is_none_or(|f| t.created_at >= f) && to.is_none_or(|e| t.created_at < e)
            })?;
            tasks.reverse();
            for t in &tasks {
                w.task(t)?;
            }
        }
    }
    w.finish()?;
    Ok(())
}

/// Writes records as a JSON array or as CSV (UTF-8 with a byte-order mark, so Excel shows Chinese names).
struct Exporter<'a> {
    format: Format,
    out: &'a mut dyn Write,
    first: bool,
}

const CALL_COLUMNS: &str = "id,line,direction,number,name,started_at,answered_at,ended_at,rings,wait_s,talk_s,outcome,agent";
const TASK_COLUMNS: &str =
    "id,kind,state,number,name,attempts,priority,created_at,due_at,overdue,closed_at,closed_by,assignee,note,call_ids";

impl<'a> Exporter<'a> {
    fn new(format: Format, out: &'a mut dyn Write, what: What) -> std::io::Result<Self> {
        match format {
            Format::Json => out.write_all(b"[")?,
            Format::Csv => {
                let cols = if what == What::Calls {
                    CALL_COLUMNS
                } else {
                    TASK_COLUMNS
                };
                write!(out, "{}{cols}\r\n", crate::csv::BOM)?;
            }
        }
        Ok(Exporter {
            format,
            out,
            first: true,
        })
    }

    fn json(&mut self, v: &impl Serialize) -> std::io::Result<()> {
        if !self.first {
            self.out.write_all(b",")?;
        }
        self.first = false;
        self.out.write_all(b"\n")?;
        serde_json::to_writer(&mut *self.out, v)?;
        Ok(())
    }

    fn row(&mut self, fields: &[String]) -> std::io::Result<()> {
        let mut line = String::new();
        crate::csv::push_row(&mut line, fields);
        self.out.write_all(line.as_bytes())
    }

    fn call(&mut self, c: &Call) -> std::io::Result<()> {
        if self.format == Format::Json {
            return self.json(c);
        }
        self.row(&[
            c.id.clone(),
            c.line.clone(),
            enum_str(&c.direction),
            c.number.clone().unwrap_or_default(),
            c.name.clone().unwrap_or_default(),
            c.started_at.to_rfc3339(),
            opt_time(c.answered_at),
            opt_time(c.ended_at),
            c.rings.to_string(),
            c.wait_s.map(|v| v.to_string()).unwrap_or_default(),
            c.talk_s.map(|v| v.to_string()).unwrap_or_default(),
            c.outcome.as_ref().map(enum_str).unwrap_or_default(),
            c.agent.clone().unwrap_or_default(),
        ])
    }

    fn task(&mut self, t: &Task) -> std::io::Result<()> {
        if self.format == Format::Json {
            return self.json(t);
        }
        self.row(&[
            t.id.clone(),
            enum_str(&t.kind),
            enum_str(&t.state),
            t.number.clone().unwrap_or_default(),
            t.name.clone().unwrap_or_default(),
            t.attempts.to_string(),
            enum_str(&t.priority),
            t.created_at.to_rfc3339(),
            t.due_at.to_rfc3339(),
            t.overdue.to_string(),
            opt_time(t.closed_at),
            t.closed_by.clone().unwrap_or_default(),
            t.assignee.clone().unwrap_or_default(),
            t.note.clone().unwrap_or_default(),
            t.call_ids.join(" "),
        ])
    }

    fn finish(self) -> std::io::Result<()> {
        if self.format == Format::Json {
            self.out.write_all(b"\n]\n")?;
        }
        self.out.flush()
    }
}

fn enum_str(v: &impl Serialize) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn opt_time(t: Option<crate::model::Time>) -> String {
    t.map(|t| t.to_rfc3339()).unwrap_or_default()
}

/// Runs a request: on the store directly when no daemon holds it, else through the daemon's socket.
pub fn run_request(cfg: &Config, req: &Request, out: &mut dyn Write) -> Result<(), ControlError> {
    let store_path = cfg.store.path.as_path();
    match Store::open(store_path) {
        Ok(store) => execute(&store, cfg, req, out),
        Err(StoreError::Locked { .. }) => remote(store_path, req, out),
        Err(e) => Err(e.into()),
    }
}

fn remote(store_path: &Path, req: &Request, out: &mut dyn Write) -> Result<(), ControlError> {
    let path = store_path.join(SOCKET);
    let sock_err = |source| ControlError::Socket {
        path: path.clone(),
        source,
    };
    let mut s = std::os::unix::net::UnixStream::connect(&path).map_err(sock_err)?;
    let mut line = serde_json::to_string(req).unwrap_or_default();
    line.push('\n');
    s.write_all(line.as_bytes()).map_err(sock_err)?;
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status).map_err(sock_err)?;
    match status.trim_end().strip_prefix("error: ") {
        Some(msg) => Err(match msg.strip_prefix("usage: ") {
            Some(usage) => ControlError::Usage(usage.to_string()),
            None => ControlError::Remote(msg.to_string()),
        }),
        None if status.trim_end() == "ok" => {
            std::io::copy(&mut r.take(u64::MAX), out)?;
            Ok(())
        }
        None => Err(ControlError::Remote(format!(
            "unexpected answer `{}`",
            status.trim_end()
        ))),
    }
}

/// Serves the control socket until the task is dropped.
pub async fn serve(
    store: Store,
    cfg: tokio::sync::watch::Receiver<std::sync::Arc<Config>>,
) -> std::io::Result<()> {
    let path = store.path().join(SOCKET);
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    info!(socket = %path.display(), "control socket ready");
    loop {
        let (conn, _) = listener.accept().await?;
        let store = store.clone();
        let cfg = cfg.borrow().clone();
        tokio::spawn(async move {
            let (rd, mut wr) = conn.into_split();
            let mut line = String::new();
            // One request line, bounded.
            let mut rd = tokio::io::BufReader::new(rd.take(64 * 1024));
            if rd.read_line(&mut line).await.is_err() {
                return;
            }
            let answer = match serde_json::from_str::<Request>(&line) {
                Err(e) => format!("error: bad request: {e}\n").into_bytes(),
                Ok(req) => tokio::task::spawn_blocking(move || {
                    let mut body = b"ok\n".to_vec();
                    match execute(&store, &cfg, &req, &mut body) {
                        Ok(()) => body,
                        Err(e @ ControlError::Usage(_)) => {
                            format!("error: usage: {e}\n").into_bytes()
                        }
                        Err(e) => format!("error: {e}\n").into_bytes(),
                    }
                })
                .await
                .unwrap_or_else(|e| format!("error: {e}\n").into_bytes()),
            };
            if let Err(e) = wr.write_all(&answer).await {
                warn!(error = %e, "control socket client went away");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_resets_a_web_user_or_makes_the_first_admin() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::parse(&format!(
            "[site]\nid = \"hq\"\n[store]\npath = \"{}\"\n",
            dir.path().display()
        ))
        .unwrap();
        let run = |user: &str| {
            let mut out = Vec::new();
            run_request(&cfg, &Request::Passwd { user: user.into() }, &mut out)
                .map(|_| String::from_utf8(out).unwrap().trim().to_string())
        };
        let first = run("tech").unwrap();
        let again = run("tech").unwrap();
        assert_ne!(first, again);
        let err = run("nobody").unwrap_err().to_string();
        assert!(
            err.contains("no web user `nobody`") && err.contains("tech"),
            "{err}"
        );
        let store = Store::open(dir.path()).unwrap();
        let u = crate::accounts::user(&store, "tech").unwrap().unwrap();
        assert_eq!(u.role, crate::accounts::Role::Admin);
        assert!(u.must_change && crate::accounts::verify_password(&u.hash, &again));
        let log = crate::accounts::audit_log(&store, None, 10).unwrap();
        assert!(log.iter().any(|(_, e)| e.detail.contains("passwd tech")));
    }

    #[test]
    fn token_and_export_without_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::parse(&format!(
            "[site]\nid = \"hq\"\n[store]\npath = \"{}\"\n",
            dir.path().display()
        ))
        .unwrap();
        let mut out = Vec::new();
        run_request(
            &cfg,
            &Request::TokenCreate {
                name: "ha".into(),
                role: None,
            },
            &mut out,
        )
        .unwrap();
        let token = String::from_utf8(out).unwrap();
        assert!(
            token.starts_with("lk_") && token.trim().len() == 51,
            "{token}"
        );
        let store = Store::open(dir.path()).unwrap();
        let rec = store
            .token(&crate::auth::hash_token(token.trim()))
            .unwrap()
            .expect("the token is stored");
        assert_eq!(
            rec.role(),
            crate::model::Role::Viewer,
            "a new token without --role is a viewer"
        );
        let mut out = Vec::new();
        let req = Request::Export {
            what: What::Calls,
            from: None,
            to: None,
            format: Format::Json,
        };
        execute(&store, &cfg, &req, &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v, serde_json::json!([]));
        let mut out = Vec::new();
        let req = Request::Export {
            what: What::Tasks,
            from: Some("nonsense".into()),
            to: None,
            format: Format::Csv,
        };
        let e = execute(&store, &cfg, &req, &mut out).unwrap_err();
        assert!(e.to_string().starts_with("--from:"), "{e}");
    }
}
