//! What technicians see on the diagnostics page: per line, the modem's identification (its answer to `ATI`
//! during the init sequence) and the last raw lines it sent, with a live feed of new ones. Bounded: the last
//! [`KEEP`] lines per line, at most [`MAX_LINES`] lines tracked, each line cut at [`MAX_TEXT`] characters.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, OnceLock};

use serde::Serialize;
use tokio::sync::broadcast;

use crate::model::Time;

pub const KEEP: usize = 100;
const MAX_LINES: usize = 64;
const MAX_TEXT: usize = 200;

#[derive(Debug, Clone, Default, Serialize)]
pub struct LineDiag {
    pub ident: Option<String>,
    pub raw: VecDeque<RawLine>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RawLine {
    pub line: String,
    pub at: Time,
    pub text: String,
}

struct Registry {
    lines: Mutex<BTreeMap<String, LineDiag>>,
    live: broadcast::Sender<RawLine>,
}

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| Registry {
        lines: Mutex::new(BTreeMap::new()),
        live: broadcast::channel(256).0,
    })
}

fn with_line(line: &str, f: impl FnOnce(&mut LineDiag)) {
    let mut t = registry().lines.lock().unwrap_or_else(|e| e.into_inner());
    if !t.contains_key(line) && t.len() >= MAX_LINES {
        return;
    }
    f(t.entry(line.to_string()).or_default());
}

/// Records a raw line as received (not UTF-8 bytes shown as U+FFFD; control characters escaped).
pub fn raw(line: &str, bytes: &[u8], at: Time) {
    let text: String = String::from_utf8_lossy(bytes)
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .take(MAX_TEXT)
        .collect();
    let r = RawLine {
        line: line.to_string(),
        at,
        text,
    };
    with_line(line, |d| {
        if d.raw.len() >= KEEP {
            d.raw.pop_front();
        }
        d.raw.push_back(r.clone());
    });
    let _ = registry().live.send(r);
}

pub fn set_ident(line: &str, ident: String) {
    with_line(line, |d| {
        d.ident = Some(ident.chars().take(MAX_TEXT).collect())
    });
}

pub fn line(line: &str) -> LineDiag {
    registry()
        .lines
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(line)
        .cloned()
        .unwrap_or_default()
}

pub fn subscribe() -> broadcast::Receiver<RawLine> {
    registry().live.subscribe()
}

/// Free and total bytes of the file system holding `path`.
pub fn disk_space(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a zeroed statvfs for the kernel to fill.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frsize = st.f_frsize as u64;
    Some((st.f_bavail as u64 * frsize, st.f_blocks as u64 * frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_lines_are_kept_bounded_and_escaped() {
        let now = chrono::Utc::now();
        let mut rx = subscribe();
        for i in 0..(KEEP + 5) {
            raw("diag-test", format!("RING {i}").as_bytes(), now);
        }
        raw("diag-test", b"NAME=\xff\x07x", now);
        let d = line("diag-test");
        assert_eq!(d.raw.len(), KEEP);
        assert_eq!(d.raw.back().unwrap().text, "NAME=\u{fffd}\\u{7}x");
        assert_eq!(rx.try_recv().unwrap().text, "RING 0");
        set_ident("diag-test", "MODEM 1.0".into());
        assert_eq!(line("diag-test").ident.as_deref(), Some("MODEM 1.0"));
        assert!(line("nothing-here").raw.is_empty());
        let (free, total) = disk_space(std::path::Path::new("/")).unwrap();
        assert!(total > 0 && free <= total);
    }
}
