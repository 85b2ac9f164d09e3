//! The modem line adapter: owns the serial port, initialises the modem, turns what it says into `LineInput`s for
//! the engine, and reopens the port with capped exponential backoff whenever the link is lost (EOF, `Ok(0)` on a
//! closed pty, an I/O error). It knows nothing of calls, tasks or MQTT.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::parser::{parse_line, CallerNumber as ModemNumber, CidField, LineSplitter, ModemLine};
use crate::config::Line;
use crate::metrics::{inc, Metrics};
use crate::runtime::engine::EngineHandle;
use crate::tracker::{CallerNumber, LineInput};

/// Longest line kept; anything longer is garbage and is dropped up to its end.
pub const MAX_LINE: usize = 256;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// A link that stayed up this long starts the next backoff from the beginning.
const HEALTHY_AFTER: Duration = Duration::from_secs(10);

pub trait Port: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Port for T {}

pub type BoxPort = Box<dyn Port>;
pub type OpenFuture = Pin<Box<dyn Future<Output = io::Result<BoxPort>> + Send>>;
/// Opens the line's device; called again for every reconnect.
pub type Opener = Box<dyn FnMut() -> OpenFuture + Send>;
/// An opener shared by the runs of one line (the supervisor starts a new link with it after a failure).
pub type SharedOpener = Arc<std::sync::Mutex<Opener>>;

pub fn shared(open: Opener) -> SharedOpener {
    Arc::new(std::sync::Mutex::new(open))
}

/// Opens a serial device (a `/dev/tty*` path, a `/dev/serial/by-id/...` link or a pty) with tokio-serial.
pub fn serial_opener(device: String, baud: u32) -> Opener {
    Box::new(move || {
        let device = device.clone();
        Box::pin(async move {
            let mut port = tokio_serial::SerialStream::open(&tokio_serial::new(&device, baud))
                .map_err(io::Error::from)?;
            if let Err(e) = port.set_exclusive(true) {
                debug!(device = %device, error = %e, "cannot make the port exclusive");
            }
            Ok(Box::new(port) as BoxPort)
        })
    })
}

pub struct ModemLink {
    line: Line,
    open: SharedOpener,
    engine: EngineHandle,
    metrics: Arc<Metrics>,
}

/// How one connection ended.
enum Ended {
    Lost(String),
    EngineGone,
}

impl ModemLink {
    pub fn new(
        line: Line,
        open: SharedOpener,
        engine: EngineHandle,
        metrics: Arc<Metrics>,
    ) -> Self {
        ModemLink {
            line,
            open,
            engine,
            metrics,
        }
    }

    pub async fn run(mut self) {
        let id = self.line.id.clone();
        let mut backoff = FIRST_BACKOFF;
        loop {
            inc(&self.metrics.serial_reopens);
            let opening = (self.open.lock().unwrap_or_else(|p| p.into_inner()))();
            let reason = match opening.await {
                Err(e) => format!("cannot open {}: {e}", self.line.device),
                Ok(port) => {
                    info!(line = %id, device = %self.line.device, "serial device opened");
                    let opened = Instant::now();
                    match self.session(port).await {
                        Ended::EngineGone => return,
                        Ended::Lost(reason) => {
                            if opened.elapsed() >= HEALTHY_AFTER {
                                backoff = FIRST_BACKOFF;
                            }
                            reason
                        }
                    }
                }
            };
            warn!(line = %id, device = %self.line.device, retry_in = ?backoff, "line down: {reason}");
            if !self
                .engine
                .line_input(&id, LineInput::LinkDown { reason })
                .await
            {
                return;
            }
            tokio::time::sleep(jitter(backoff)).await;
            backoff = (backoff * 2).min(self.line.reconnect_max.0);
        }
    }

    /// One connection: initialise the modem, then forward everything it says until the link is lost.
    async fn session(&mut self, mut port: BoxPort) -> Ended {
        let id = self.line.id.clone();
        let mut splitter = LineSplitter::new(MAX_LINE);
        let mut init = InitSequence::new(&self.line.init);
        let timeout = self.line.init_timeout.0;
        let mut deadline = match init.current() {
            Some(cmd) => {
                if let Err(e) = send(&mut port, cmd).await {
                    return Ended::Lost(format!("write failed: {e}"));
                }
                Some(Instant::now() + timeout)
            }
            None => None,
        };
        if deadline.is_none()
            && !self
                .engine
                .line_input(&id, LineInput::LinkUp { detail: None })
                .await
        {
            return Ended::EngineGone;
        }
        let mut buf = [0u8; 512];
        let mut lines: Vec<Vec<u8>> = Vec::new();
        let mut budget = LogBudget::new();
        // The modem's answer to an identification command (ATI...) of the init sequence.
        let mut ident: Vec<String> = Vec::new();
        loop {
            let n = match deadline {
                Some(d) => tokio::select! {
                    r = port.read(&mut buf) => Some(r),
                    _ = tokio::time::sleep_until(d) => None,
                },
                None => Some(port.read(&mut buf).await),
            };
            let mut init_reply = None;
            match n {
                None => init_reply = Some(false),
                Some(Ok(0)) => {
                    return Ended::Lost("end of file: the device was closed or unplugged".into())
                }
                Some(Err(e)) => return Ended::Lost(format!("read failed: {e}")),
                Some(Ok(n)) => {
                    self.metrics.serial_bytes.fetch_add(n as u64, Relaxed);
                    let before = splitter.overlong();
                    splitter.push(&buf[..n], &mut |l| lines.push(l.to_vec()));
                    let overlong = splitter.overlong() - before;
                    if overlong > 0 {
                        self.metrics.serial_overlong.fetch_add(overlong, Relaxed);
                        if budget.allow(&id) {
                            warn!(line = %id, count = overlong, max = MAX_LINE, "discarded overlong serial line(s)");
                        }
                    }
                }
            }
            for raw in lines.drain(..) {
                inc(&self.metrics.serial_lines);
                crate::diag::raw(&id, &raw, chrono::Utc::now());
                let parsed = parse_line(&raw);
                match &parsed {
                    ModemLine::Ok if deadline.is_some() => init_reply = Some(true),
                    ModemLine::Error if deadline.is_some() => init_reply = Some(false),
                    _ => {}
                }
                if let ModemLine::Other(text) = &parsed {
                    let identifying = deadline.is_some()
                        && init
                            .current()
                            .is_some_and(|c| c.to_ascii_uppercase().starts_with("ATI"));
                    if identifying && ident.len() < 8 {
                        ident.push(text.trim().to_string());
                    }
                    if budget.allow(&id) {
                        info!(line = %id, text = %text, "modem says");
                    }
                }
                if let Some(input) = to_input(&id, parsed) {
                    if !self.engine.line_input(&id, input).await {
                        return Ended::EngineGone;
                    }
                }
            }
            if let Some(ok) = init_reply {
                let cmd = init.current().unwrap_or_default().to_string();
                if ok && cmd.to_ascii_uppercase().starts_with("ATI") && !ident.is_empty() {
                    crate::diag::set_ident(&id, ident.join(" / "));
                    ident.clear();
                }
                if ok {
                    info!(line = %id, command = %cmd, "modem answered OK");
                } else {
                    warn!(line = %id, command = %cmd, "modem answered ERROR or nothing");
                }
                match init.advance(ok) {
                    Some(next) => {
                        if let Err(e) = send(&mut port, next).await {
                            return Ended::Lost(format!("write failed: {e}"));
                        }
                        deadline = Some(Instant::now() + timeout);
                    }
                    None => {
                        deadline = None;
                        let detail = if init.failed.is_empty() {
                            "initialised".to_string()
                        } else {
                            format!("no OK for {}; listening anyway", init.failed.join(", "))
                        };
                        if !init.failed.is_empty() {
                            warn!(line = %id, "modem init incomplete: {detail}");
                        }
                        let up = LineInput::LinkUp {
                            detail: Some(detail),
                        };
                        if !self.engine.line_input(&id, up).await {
                            return Ended::EngineGone;
                        }
                    }
                }
            }
        }
    }
}

async fn send(port: &mut BoxPort, cmd: &str) -> io::Result<()> {
    debug!(command = cmd, "to modem");
    port.write_all(format!("{cmd}\r").as_bytes()).await?;
    port.flush().await
}

/// Maps what the modem said to a line input; logs the rest.
fn to_input(line: &str, m: ModemLine) -> Option<LineInput> {
    Some(match m {
        ModemLine::Ring { label } => LineInput::Ring { label },
        ModemLine::Field(CidField::Number(n)) => LineInput::Number(match n {
            ModemNumber::Known(s) => CallerNumber::Known(s),
            ModemNumber::Withheld => CallerNumber::Withheld,
            ModemNumber::Unavailable => CallerNumber::Unavailable,
        }),
        ModemLine::Field(CidField::Name(n)) => LineInput::Name(n),
        ModemLine::Field(CidField::Message(m)) => LineInput::Message(m),
        ModemLine::Field(f) => {
            // DATE and TIME: we stamp calls with our own (synchronised) clock.
            debug!(line, field = ?f, "caller-ID date/time field");
            return None;
        }
        ModemLine::OffHook => LineInput::OffHook,
        ModemLine::OnHook => LineInput::OnHook,
        // Results, echoes and other text (logged by the caller, within its budget) change nothing.
        ModemLine::Ok | ModemLine::Error | ModemLine::Echo(_) | ModemLine::Other(_) => return None,
    })
}

/// A log budget: at most `LOG_BUDGET` noisy lines (garbage, overlong lines) per minute, then a count of what was
/// left out, so line noise cannot flood the logs of a small board.
struct LogBudget {
    window: Instant,
    used: u32,
    suppressed: u64,
}

const LOG_BUDGET: u32 = 20;

impl LogBudget {
    fn new() -> Self {
        LogBudget {
            window: Instant::now(),
            used: 0,
            suppressed: 0,
        }
    }

    /// Whether to log now; when a new window opens, first reports how many were left out.
    fn allow(&mut self, line: &str) -> bool {
        let now = Instant::now();
        if now.duration_since(self.window) >= Duration::from_secs(60) {
            if self.suppressed > 0 {
                warn!(
                    line,
                    suppressed = self.suppressed,
                    "serial line noise: messages left out in the last minute"
                );
            }
            self.window = now;
            self.used = 0;
            self.suppressed = 0;
        }
        if self.used < LOG_BUDGET {
            self.used += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
}

/// The init commands, each with `|`-separated alternatives tried in order on ERROR or silence.
struct InitSequence {
    commands: Vec<Vec<String>>,
    cmd: usize,
    alt: usize,
    failed: Vec<String>,
}

impl InitSequence {
    fn new(init: &[String]) -> Self {
        InitSequence {
            commands: init
                .iter()
                .map(|c| c.split('|').map(|a| a.trim().to_string()).collect())
                .collect(),
            cmd: 0,
            alt: 0,
            failed: Vec::new(),
        }
    }

    fn current(&self) -> Option<&str> {
        self.commands
            .get(self.cmd)?
            .get(self.alt)
            .map(String::as_str)
    }

    /// Records the answer to the current command and returns the next one to send.
    fn advance(&mut self, ok: bool) -> Option<&str> {
        let alts = self.commands.get(self.cmd)?.len();
        if ok || self.alt + 1 >= alts {
            if !ok {
                self.failed.push(self.commands[self.cmd].join("|"));
            }
            self.cmd += 1;
            self.alt = 0;
        } else {
            self.alt += 1;
        }
        self.current()
    }
}

/// Up to 25% random extra, so many boxes don't retry in step.
pub fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    let frac = u16::from_le_bytes(b) as f64 / u16::MAX as f64;
    d + d.mul_f64(0.25 * frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_sequence_falls_back_and_records_failures() {
        let mut s = InitSequence::new(&["ATZ".into(), "AT+VCID=1|AT#CID=1".into(), "ATI".into()]);
        assert_eq!(s.current(), Some("ATZ"));
        assert_eq!(s.advance(true), Some("AT+VCID=1"));
        assert_eq!(s.advance(false), Some("AT#CID=1"));
        assert_eq!(s.advance(true), Some("ATI"));
        assert_eq!(s.advance(false), None);
        assert_eq!(s.failed, vec!["ATI".to_string()]);
    }

    #[tokio::test(start_paused = true)]
    async fn noisy_lines_are_logged_within_a_budget_per_minute() {
        let mut b = LogBudget::new();
        let allowed = (0..100).filter(|_| b.allow("line1")).count();
        assert_eq!(allowed, LOG_BUDGET as usize);
        assert_eq!(b.suppressed, 100 - LOG_BUDGET as u64);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(b.allow("line1"), "a new minute opens a new budget");
        assert_eq!(b.suppressed, 0);
    }

    #[test]
    fn jitter_stays_within_a_quarter() {
        for _ in 0..100 {
            let j = jitter(Duration::from_secs(4));
            assert!(j >= Duration::from_secs(4) && j <= Duration::from_secs(5));
        }
    }
}
