//! A simulated caller-ID modem, used by `linekeeper demo` and by end-to-end tests over a pty.
//!
//! [`SimModem::spawn`] starts a task that owns the byte stream (the "serial line"). The task
//! answers AT commands the way a Hayes-compatible modem with caller ID does, and writes what the
//! [`SimModem`] handles ask for (RING, a caller-ID block, the bridge board's OFFHOOK/ONHOOK
//! lines, raw garbage).
//!
//! Supported commands (case-insensitive, spaces ignored, several per line as in
//! `AT Z S0=0 E1 V1 Q0` or `AT+FCLASS=8;+VCID=1`):
//! `Z`, `E0/E1`, `V0/V1`, `Q0/Q1`, `I[n]`, `H`, `L`, `M`, `X`, `Sn=v`, `Sn?`, `&F`, `&C`, `&D`,
//! `&K`, `+VCID=0|1|2` / `+VCID?` (ERROR when `vcid_supported` is false), `#CID=0|1|2` / `#CID?`
//! (always accepted), `+FCLASS=0|1|8` / `+FCLASS?` / `+FCLASS=?`, `+GCI=xx` / `+GCI?`.
//! Anything else answers ERROR. Lines not starting with "AT" are echoed (when echo is on) and
//! otherwise ignored, as a modem does.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, trace};

use super::parser::{decode_text, format_cid_block, LineSplitter};

/// Longest command line accepted; a longer one answers ERROR (real modems buffer ~40-256 bytes).
const MAX_COMMAND_LEN: usize = 256;
/// How many received command lines [`SimModem::commands`] remembers (oldest dropped first), so a
/// long demo run with a daemon that re-initialises the modem does not grow without bound.
const MAX_KEPT_COMMANDS: usize = 1000;
/// Pending write requests from the handles.
const REQUEST_QUEUE: usize = 32;

/// How the simulated modem behaves.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Echo received command lines (the power-on `E1` state). Default true.
    pub echo: bool,
    /// Whether `AT+VCID=...` is supported. When false it answers ERROR and the daemon must fall
    /// back to `AT#CID=1` (which is always accepted). Default true.
    pub vcid_supported: bool,
    /// The answer to `ATI`.
    pub ident: String,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            echo: true,
            vcid_supported: true,
            ident: "LINEKEEPER SIMULATED MODEM".to_owned(),
        }
    }
}

/// Bytes to write on the line; `done` is signalled once they are written and flushed.
struct WriteRequest {
    bytes: Vec<u8>,
    done: oneshot::Sender<()>,
}

/// Handle to a running simulated modem. Cheap to clone; the modem task stops when the stream
/// hits EOF or an error, or when every handle has been dropped (which closes the stream, so
/// the other side sees EOF).
#[derive(Clone)]
pub struct SimModem {
    tx: mpsc::Sender<WriteRequest>,
    initialized: watch::Receiver<bool>,
    commands: Arc<Mutex<VecDeque<String>>>,
}

impl SimModem {
    /// Spawns a tokio task that owns `io` (a `tokio::io::DuplexStream`, a pty master opened as
    /// a tokio `File`, a `tokio_serial::SerialStream`, ...) and plays the modem on it.
    ///
    /// # Panics
    /// When called outside a tokio runtime (like `tokio::spawn`).
    pub fn spawn<S>(io: S, opts: SimOptions) -> SimModem
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (tx, rx) = mpsc::channel(REQUEST_QUEUE);
        let (init_tx, initialized) = watch::channel(false);
        let commands = Arc::new(Mutex::new(VecDeque::new()));
        let task = ModemTask {
            state: ModemState::new(opts),
            requests: rx,
            initialized: init_tx,
            commands: Arc::clone(&commands),
        };
        tokio::spawn(task.run(io));
        SimModem {
            tx,
            initialized,
            commands,
        }
    }

    /// Writes "\r\nRING\r\n".
    pub async fn ring(&self) {
        self.write(b"\r\nRING\r\n".to_vec()).await;
    }

    /// Writes a caller-ID block dated now (local time): DATE, TIME, NMBR (`P` when `number` is
    /// `None`) and NAME (omitted when `name` is `None`).
    pub async fn caller_id(&self, number: Option<&str>, name: Option<&str>) {
        let now = chrono::Local::now();
        let date = now.format("%m%d").to_string();
        let time = now.format("%H%M").to_string();
        let block = format_cid_block(&date, &time, number, name);
        self.write(format!("\r\n{block}").into_bytes()).await;
    }

    /// Writes an "OFFHOOK" line (the bridge board saw an extension go off-hook).
    pub async fn offhook(&self) {
        self.write(b"\r\nOFFHOOK\r\n".to_vec()).await;
    }

    /// Writes an "ONHOOK" line.
    pub async fn onhook(&self) {
        self.write(b"\r\nONHOOK\r\n".to_vec()).await;
    }

    /// Writes arbitrary bytes, for garbage tests.
    pub async fn raw(&self, bytes: Vec<u8>) {
        self.write(bytes).await;
    }

    /// Resolves when the modem has received at least one command containing "VCID" or "#CID"
    /// and answered OK to it (so tests can wait for the daemon's init).
    ///
    /// Also returns if the modem task has stopped (stream closed) before that; check
    /// [`is_running`](Self::is_running) to tell the two apart.
    pub async fn wait_initialized(&self) {
        let mut initialized = self.initialized.clone();
        if initialized.wait_for(|done| *done).await.is_err() {
            debug!("simulated modem stopped before it was initialized");
        }
    }

    /// Every command line received so far (the newest [`MAX_KEPT_COMMANDS`]), trimmed, in
    /// order of arrival.
    pub async fn commands(&self) -> Vec<String> {
        lock(&self.commands).iter().cloned().collect()
    }

    /// False once the modem task has stopped (EOF or error on the stream).
    pub fn is_running(&self) -> bool {
        !self.tx.is_closed()
    }

    /// Asks the task to write `bytes` and waits until they are flushed. Does nothing if the
    /// task has stopped: a test then notices the missing output on the other side.
    async fn write(&self, bytes: Vec<u8>) {
        let (done, written) = oneshot::channel();
        if self.tx.send(WriteRequest { bytes, done }).await.is_err() {
            debug!("simulated modem stopped; write dropped");
            return;
        }
        let _ = written.await;
    }
}

impl std::fmt::Debug for SimModem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimModem")
            .field("running", &self.is_running())
            .field("initialized", &*self.initialized.borrow())
            .finish_non_exhaustive()
    }
}

/// Locks the command list; a panic elsewhere while holding the lock cannot corrupt a VecDeque
/// of strings, so a poisoned lock is simply taken over.
fn lock(commands: &Mutex<VecDeque<String>>) -> MutexGuard<'_, VecDeque<String>> {
    commands
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct ModemTask {
    state: ModemState,
    requests: mpsc::Receiver<WriteRequest>,
    initialized: watch::Sender<bool>,
    commands: Arc<Mutex<VecDeque<String>>>,
}

impl ModemTask {
    async fn run<S>(mut self, io: S)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (mut reader, mut writer) = tokio::io::split(io);
        let mut splitter = LineSplitter::new(MAX_COMMAND_LEN);
        let mut buf = [0u8; 1024];
        loop {
            // Both branches are cancel-safe: `read` into a local buffer, and `recv`.
            tokio::select! {
                read = reader.read(&mut buf) => {
                    let n = match read {
                        Ok(0) => {
                            debug!("simulated modem: stream closed");
                            break;
                        }
                        Ok(n) => n,
                        Err(err) => {
                            debug!(%err, "simulated modem: read failed");
                            break;
                        }
                    };
                    let output = self.handle_input(&mut splitter, &buf[..n]);
                    if let Err(err) = write_flush(&mut writer, &output).await {
                        debug!(%err, "simulated modem: write failed");
                        break;
                    }
                    // Only now has the OK actually been sent.
                    if self.state.initialized {
                        self.initialized.send_if_modified(|done| !std::mem::replace(done, true));
                    }
                }
                request = self.requests.recv() => {
                    let Some(WriteRequest { bytes, done }) = request else {
                        debug!("simulated modem: all handles dropped");
                        break;
                    };
                    let result = write_flush(&mut writer, &bytes).await;
                    let _ = done.send(());
                    if let Err(err) = result {
                        debug!(%err, "simulated modem: write failed");
                        break;
                    }
                }
            }
        }
    }

    /// Consumes received bytes; returns what the modem answers.
    fn handle_input(&mut self, splitter: &mut LineSplitter, bytes: &[u8]) -> Vec<u8> {
        let mut lines = Vec::new();
        let overlong_before = splitter.overlong();
        splitter.push(bytes, &mut |line| lines.push(line.to_vec()));
        let mut output = Vec::new();
        for _ in overlong_before..splitter.overlong() {
            debug!("simulated modem: command line too long");
            self.state.result(&mut output, false);
        }
        for line in lines {
            let text = decode_text(&line).trim().to_owned();
            trace!(command = %text, "simulated modem: received");
            {
                let mut commands = lock(&self.commands);
                if commands.len() >= MAX_KEPT_COMMANDS {
                    commands.pop_front();
                }
                commands.push_back(text);
            }
            self.state.handle_line(&line, &mut output);
        }
        output
    }
}

async fn write_flush<W: AsyncWrite + Unpin>(writer: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    writer.write_all(bytes).await?;
    writer.flush().await
}

/// The modem's settings, changed by AT commands.
struct ModemState {
    opts: SimOptions,
    echo: bool,
    /// V1: verbose results ("\r\nOK\r\n"); V0: numeric ("0\r").
    verbose: bool,
    /// Q1: no result codes at all.
    quiet: bool,
    /// Caller-ID reporting mode set by +VCID / #CID (0 = off).
    cid_mode: u8,
    fclass: u8,
    /// S-registers that were written (S0 auto-answer, S7, S24 ...).
    registers: Vec<(u32, u32)>,
    /// Set once a VCID / #CID command was answered OK.
    initialized: bool,
}

impl ModemState {
    fn new(opts: SimOptions) -> Self {
        Self {
            echo: opts.echo,
            verbose: true,
            quiet: false,
            cid_mode: 0,
            fclass: 0,
            registers: Vec::new(),
            initialized: false,
            opts,
        }
    }

    /// ATZ / AT&F: back to the power-on settings.
    fn reset(&mut self) {
        let initialized = self.initialized;
        *self = Self::new(self.opts.clone());
        // "Initialized" means "the daemon did its init once"; a later ATZ does not undo that.
        self.initialized = initialized;
    }

    /// Handles one received line, appending the answer to `out`.
    fn handle_line(&mut self, line: &[u8], out: &mut Vec<u8>) {
        // The echo reflects the state before the command (ATE0 is itself echoed).
        if self.echo {
            out.extend_from_slice(line);
            out.push(b'\r');
        }
        let trimmed = line.trim_ascii();
        if trimmed.len() < 2 || !trimmed[..2].eq_ignore_ascii_case(b"AT") {
            return; // a modem ignores anything that is not a command
        }
        let body: Vec<u8> = trimmed[2..]
            .iter()
            .filter(|b| !b.is_ascii_whitespace())
            .map(u8::to_ascii_uppercase)
            .collect();
        let mut info = Vec::new();
        let ok = self.execute(&body, &mut info).is_ok();
        for text in &info {
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        self.result(out, ok);
        let upper = String::from_utf8_lossy(&body);
        if ok && (upper.contains("VCID") || upper.contains("#CID")) {
            self.initialized = true;
        }
    }

    fn result(&self, out: &mut Vec<u8>, ok: bool) {
        if self.quiet {
            return;
        }
        let text: &[u8] = match (self.verbose, ok) {
            (true, true) => b"\r\nOK\r\n",
            (true, false) => b"\r\nERROR\r\n",
            (false, true) => b"0\r",
            (false, false) => b"4\r",
        };
        out.extend_from_slice(text);
    }

    /// Runs the commands after "AT" (upper case, no spaces). Like a modem, commands before a
    /// failing one stay executed.
    fn execute(&mut self, body: &[u8], info: &mut Vec<String>) -> Result<(), ()> {
        let mut i = 0;
        while i < body.len() {
            let c = body[i];
            i += 1;
            match c {
                // Extended commands run to the next ';'.
                b'+' | b'#' => {
                    let end = body[i..]
                        .iter()
                        .position(|&b| b == b';')
                        .map_or(body.len(), |p| i + p);
                    let cmd = std::str::from_utf8(&body[i - 1..end]).map_err(|_| ())?;
                    self.extended(cmd, info)?;
                    i = end + 1;
                }
                b';' => {}
                b'Z' => {
                    number(body, &mut i);
                    self.reset();
                }
                b'E' => self.echo = flag(body, &mut i)?,
                b'V' => self.verbose = flag(body, &mut i)?,
                b'Q' => self.quiet = flag(body, &mut i)?,
                b'I' => {
                    number(body, &mut i);
                    info.push(self.opts.ident.clone());
                }
                // Hang up, speaker loudness/mode, result-code set: accepted, nothing to simulate.
                b'H' | b'L' | b'M' | b'X' => {
                    number(body, &mut i);
                }
                b'S' => {
                    let register = number(body, &mut i).ok_or(())?;
                    match body.get(i) {
                        Some(b'=') => {
                            i += 1;
                            let value = number(body, &mut i).unwrap_or(0);
                            self.registers.retain(|&(r, _)| r != register);
                            self.registers.push((register, value));
                        }
                        Some(b'?') => {
                            i += 1;
                            let value = self
                                .registers
                                .iter()
                                .find(|&&(r, _)| r == register)
                                .map_or(0, |&(_, v)| v);
                            info.push(format!("{value:03}"));
                        }
                        _ => return Err(()),
                    }
                }
                b'&' => {
                    let sub = *body.get(i).ok_or(())?;
                    i += 1;
                    number(body, &mut i);
                    match sub {
                        b'F' => self.reset(),
                        b'C' | b'D' | b'K' => {}
                        _ => return Err(()),
                    }
                }
                _ => return Err(()),
            }
        }
        Ok(())
    }

    /// One extended command such as "+VCID=1" or "#CID?".
    fn extended(&mut self, cmd: &str, info: &mut Vec<String>) -> Result<(), ()> {
        let (name, arg) = match cmd.find(['=', '?']) {
            Some(pos) => cmd.split_at(pos),
            None => (cmd, ""),
        };
        match (name, arg) {
            ("+VCID", _) if !self.opts.vcid_supported => Err(()),
            ("+VCID" | "#CID", "=0" | "=1" | "=2") => {
                self.cid_mode = arg.as_bytes()[1] - b'0';
                Ok(())
            }
            ("+VCID" | "#CID", "?") => {
                info.push(self.cid_mode.to_string());
                Ok(())
            }
            ("+VCID" | "#CID", "=?") => {
                info.push("(0-2)".to_owned());
                Ok(())
            }
            ("+FCLASS", "=0" | "=1" | "=8") => {
                self.fclass = arg.as_bytes()[1] - b'0';
                Ok(())
            }
            ("+FCLASS", "?") => {
                info.push(self.fclass.to_string());
                Ok(())
            }
            ("+FCLASS", "=?") => {
                info.push("0,1,8".to_owned());
                Ok(())
            }
            ("+GCI", "?") => {
                info.push("+GCI: B5".to_owned());
                Ok(())
            }
            ("+GCI", _) if arg.len() > 1 && arg.starts_with('=') => Ok(()),
            _ => Err(()),
        }
    }
}

/// Reads an optional decimal number at `body[*i..]`, advancing `i`.
fn number(body: &[u8], i: &mut usize) -> Option<u32> {
    let start = *i;
    let mut value: u32 = 0;
    while let Some(&b) = body.get(*i) {
        if !b.is_ascii_digit() {
            break;
        }
        value = value.saturating_mul(10).saturating_add(u32::from(b - b'0'));
        *i += 1;
    }
    (*i > start).then_some(value)
}

/// A 0/1 switch such as E0, E1; a missing digit means 0, as on a Hayes modem.
fn flag(body: &[u8], i: &mut usize) -> Result<bool, ()> {
    match number(body, i).unwrap_or(0) {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(()),
    }
}

#[cfg(test)]
mod tests;
