//! A simulated bridge board (feature `std`), for daemon tests.
//!
//! [`SimBoard`] is I/O-free: script it (`ring()`, `caller_id(..)`, `off_hook()`, ...), take the bytes
//! it would put on the serial line with [`SimBoard::take_output`], and hand it the host's bytes with
//! [`SimBoard::receive`]. A test can wrap it over a pty, or connect it directly to a
//! [`crate::Decoder`] + [`crate::HostSession`].
//!
//! It runs the firmware's protocol code ([`BoardCore`]): Hello on boot and on every link-up, every
//! event numbered and kept in an [`crate::EventRing`] until acknowledged, everything unacknowledged re-sent on
//! link-up, on [`HostMsg::StatusRequest`], on [`HostMsg::Replay`] and after `retransmit_ms` of
//! [`SimBoard::tick`] without ack progress. While disconnected its output is discarded (as a real
//! board's would be) but events are still numbered and kept.

use std::string::String as StdString;
use std::vec::Vec as StdVec;

use heapless::{String, Vec};

use crate::board::{BoardCore, HostCommand, LineState};
use crate::frame::{encode_versioned, Decoder, FrameError, MAX_FRAME};
use crate::msg::{
    BoardMsg, Cadence, CallerId, Capabilities, CidFormat, CidStandard, CidStart, Configure,
    Counters, Event, FwVersion, Heartbeat, Hello, HostMsg, Leds, Log, LogLevel, Presentation,
    Region, MAX_CID_RAW,
};
use crate::PROTO_VERSION;

/// Default ring capacity of the simulator.
pub const SIM_RING: usize = 16;

/// How the simulated board presents itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    pub board_id: u64,
    pub boot_id: u32,
    pub firmware_version: FwVersion,
    pub capabilities: Capabilities,
    pub region: Region,
    /// Version byte written in every frame and in Hello (set it to test version mismatches).
    pub proto_version: u8,
    /// Heartbeat period in [`SimBoard::tick`] time, ms (0 = none).
    pub heartbeat_ms: u32,
    /// Re-send everything unacknowledged after this long without ack progress, ms (0 = never).
    pub retransmit_ms: u32,
    /// Cadence reported for ring bursts after the first.
    pub cadence: Cadence,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            board_id: 0x4C4B_0000_0000_0001,
            boot_id: 1,
            firmware_version: FwVersion {
                major: 0,
                minor: 1,
                patch: 0,
            },
            capabilities: Capabilities(Capabilities::ALL),
            region: Region {
                country: *b"CN",
                cid_standard: CidStandard::Bell202,
                cid_start: CidStart::Ring,
            },
            proto_version: PROTO_VERSION,
            heartbeat_ms: 10_000,
            retransmit_ms: 2_000,
            cadence: Cadence {
                on_ms: 1000,
                off_ms: 4000,
            },
        }
    }
}

/// The simulated board: [`BoardCore`] (the same code the firmware runs) plus line state, LEDs and a
/// byte buffer standing in for the USB port.
#[derive(Debug, Clone)]
pub struct SimBoard<const N: usize = SIM_RING> {
    cfg: SimConfig,
    core: BoardCore<N>,
    decoder: Decoder<MAX_FRAME>,
    out: StdVec<u8>,
    connected: bool,
    uptime_ms: u64,
    since_heartbeat_ms: u64,
    line: LineState,
    leds: Leds,
    config: Option<Configure>,
    received: StdVec<HostMsg>,
}

/// The `send` callback for [`BoardCore`]: encode into `out` if connected.
fn sender<'a>(out: &'a mut StdVec<u8>, connected: bool, version: u8) -> impl FnMut(&BoardMsg) + 'a {
    move |msg: &BoardMsg| {
        if !connected {
            return;
        }
        let mut buf = [0u8; MAX_FRAME];
        // Every BoardMsg fits MAX_FRAME (tests/sizes.rs), so this cannot fail.
        if let Ok(n) = encode_versioned(version, msg, &mut buf) {
            out.extend_from_slice(buf.get(..n).unwrap_or_default());
        }
    }
}

impl<const N: usize> SimBoard<N> {
    /// Boot the board (connected): its output starts with a Hello.
    pub fn new(cfg: SimConfig) -> Self {
        let hello = Hello {
            proto_version: cfg.proto_version,
            board_id: cfg.board_id,
            boot_id: cfg.boot_id,
            firmware_version: cfg.firmware_version,
            capabilities: cfg.capabilities,
            region: cfg.region,
            ring_capacity: 0,
        };
        let mut b = SimBoard {
            core: BoardCore::new(hello, cfg.retransmit_ms),
            cfg,
            decoder: Decoder::new(),
            out: StdVec::new(),
            connected: true,
            uptime_ms: 0,
            since_heartbeat_ms: 0,
            line: LineState {
                off_hook: false,
                ringing: false,
                line_ok: true,
            },
            leds: Leds::default(),
            config: None,
            received: StdVec::new(),
        };
        b.connect();
        b
    }

    // ----- script API: line events -----

    /// One ring burst ([`Event::RingStart`]). Call it once per burst.
    pub fn ring(&mut self) -> u32 {
        let cadence = if self.line.ringing {
            self.cfg.cadence
        } else {
            Cadence::default()
        };
        self.line.ringing = true;
        let c = self.core.counters_mut();
        c.rings = c.rings.wrapping_add(1);
        self.event(Event::RingStart { cadence })
    }

    /// Ringing ended unanswered ([`Event::RingStop`]); no-op if not ringing.
    pub fn ring_stop(&mut self) -> Option<u32> {
        if !self.line.ringing {
            return None;
        }
        self.line.ringing = false;
        Some(self.event(Event::RingStop))
    }

    /// Caller ID with the number shown, in the region's format (raw bytes: an MDMF message for FSK,
    /// `A<number>C` for DTMF). `number` and `name` are truncated to their field sizes.
    pub fn caller_id(&mut self, number: &str, name: &str) -> u32 {
        let cid = self.make_cid(number, name, Presentation::Available);
        self.caller_id_record(cid)
    }

    /// Caller ID of a withheld number.
    pub fn caller_id_private(&mut self) -> u32 {
        let cid = self.make_cid("", "", Presentation::Private);
        self.caller_id_record(cid)
    }

    /// Any caller-ID record.
    pub fn caller_id_record(&mut self, cid: CallerId) -> u32 {
        let c = self.core.counters_mut();
        c.cids = c.cids.wrapping_add(1);
        self.event(Event::CallerId(cid))
    }

    /// The extension is picked up (ends ringing first, as the board does).
    pub fn off_hook(&mut self) -> u32 {
        self.ring_stop();
        self.line.off_hook = true;
        self.event(Event::Hook { off_hook: true })
    }

    /// The extension hangs up.
    pub fn on_hook(&mut self) -> u32 {
        self.line.off_hook = false;
        self.event(Event::Hook { off_hook: false })
    }

    /// A dialled digit (`0-9 * # A-D`; other chars are sent as `?`).
    pub fn digit(&mut self, digit: char) -> u32 {
        let digit = if digit.is_ascii() { digit as u8 } else { b'?' };
        self.event(Event::Digit { digit })
    }

    /// A desk key.
    pub fn key(&mut self, key: u8, long_press: bool) -> u32 {
        self.event(Event::Key { key, long_press })
    }

    pub fn line_voltage(&mut self, mv: i32) -> u32 {
        self.event(Event::LineVoltage { mv })
    }

    pub fn line_lost(&mut self) -> u32 {
        self.line.line_ok = false;
        self.event(Event::LineLost)
    }

    pub fn line_restored(&mut self) -> u32 {
        self.line.line_ok = true;
        self.event(Event::LineRestored)
    }

    /// Number and send any event; returns its seq.
    pub fn event(&mut self, event: Event) -> u32 {
        let mut send = sender(&mut self.out, self.connected, self.cfg.proto_version);
        self.core.event(event, &mut send)
    }

    /// A diagnostic line (not sequenced; lost if disconnected).
    pub fn log(&mut self, level: LogLevel, text: &str) {
        self.send(&BoardMsg::Log(Log {
            level,
            text: fit(text),
        }));
    }

    /// Send a heartbeat now.
    pub fn heartbeat(&mut self) {
        self.since_heartbeat_ms = 0;
        let hb = self.status();
        self.send(&BoardMsg::Heartbeat(hb));
    }

    // ----- script API: time, link, power -----

    /// Let `ms` pass: heartbeats and retransmission as configured.
    pub fn tick(&mut self, ms: u32) {
        self.uptime_ms += u64::from(ms);
        self.since_heartbeat_ms += u64::from(ms);
        if self.cfg.heartbeat_ms > 0 && self.since_heartbeat_ms >= u64::from(self.cfg.heartbeat_ms)
        {
            self.heartbeat();
        }
        let mut send = sender(&mut self.out, self.connected, self.cfg.proto_version);
        self.core.tick(ms, &mut send);
    }

    /// Cable pulled / host port closed: output is discarded from now on; a partial host frame is
    /// forgotten.
    pub fn disconnect(&mut self) {
        self.connected = false;
        self.decoder.reset();
    }

    /// Link up again: Hello, then everything unacknowledged.
    pub fn connect(&mut self) {
        self.connected = true;
        let mut send = sender(&mut self.out, self.connected, self.cfg.proto_version);
        self.core.link_up(&mut send);
    }

    /// Power cycle with a new boot id: RAM (ring, counters, line state) is lost; Hello follows if
    /// connected. Bytes already output and not yet taken stay in the output.
    pub fn reboot(&mut self, new_boot_id: u32) {
        let cfg = SimConfig {
            boot_id: new_boot_id,
            ..self.cfg.clone()
        };
        let connected = self.connected;
        let mut out = core::mem::take(&mut self.out);
        *self = SimBoard::new(cfg);
        if connected {
            out.append(&mut self.out);
            self.out = out;
        } else {
            self.out.clear();
            self.connected = false;
        }
    }

    // ----- bytes -----

    /// Bytes written to the serial line since the last call.
    pub fn take_output(&mut self) -> StdVec<u8> {
        core::mem::take(&mut self.out)
    }

    /// Bytes from the host.
    pub fn receive(&mut self, bytes: &[u8]) {
        let mut frames = StdVec::new();
        self.decoder
            .feed::<HostMsg>(bytes, |r: Result<HostMsg, FrameError>| frames.push(r));
        let uptime_s = u32::try_from(self.uptime_ms / 1000).unwrap_or(u32::MAX);
        for r in frames {
            if let Ok(m) = &r {
                self.received.push(m.clone());
            }
            let mut send = sender(&mut self.out, self.connected, self.cfg.proto_version);
            match self.core.on_host(r, uptime_s, self.line, &mut send) {
                Some(HostCommand::Configure(c)) => {
                    self.cfg.region = c.region;
                    self.config = Some(c);
                }
                Some(HostCommand::Leds(l)) => self.leds = l,
                None => {}
            }
        }
    }

    // ----- inspection -----

    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// The last [`HostMsg::Configure`] applied.
    pub fn configured(&self) -> Option<&Configure> {
        self.config.as_ref()
    }

    pub fn leds(&self) -> Leds {
        self.leds
    }

    pub fn counters(&self) -> Counters {
        self.core.counters()
    }

    /// Events held unacknowledged.
    pub fn unacked(&self) -> usize {
        self.core.ring().len()
    }

    pub fn next_seq(&self) -> u32 {
        self.core.ring().next_seq()
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Every host message received (decoded) so far.
    pub fn received(&self) -> &[HostMsg] {
        &self.received
    }

    /// The Hello this board sends.
    pub fn hello(&self) -> Hello {
        self.core.hello().clone()
    }

    /// The heartbeat this board would send now.
    pub fn status(&self) -> Heartbeat {
        let uptime_s = u32::try_from(self.uptime_ms / 1000).unwrap_or(u32::MAX);
        self.core.heartbeat(uptime_s, self.line)
    }

    /// The protocol core (ring, counters).
    pub fn core(&self) -> &BoardCore<N> {
        &self.core
    }

    // ----- internals -----

    fn send(&mut self, msg: &BoardMsg) {
        sender(&mut self.out, self.connected, self.cfg.proto_version)(msg);
    }

    fn make_cid(&self, number: &str, name: &str, presentation: Presentation) -> CallerId {
        let format = match self.cfg.region.cid_standard {
            CidStandard::Dtmf => CidFormat::Dtmf,
            CidStandard::EtsiV23 | CidStandard::NttJclip => CidFormat::V23,
            CidStandard::Auto | CidStandard::Bell202 => CidFormat::Bell202,
        };
        let number: String<{ crate::msg::MAX_NUMBER }> = fit(number);
        let name: String<{ crate::msg::MAX_NAME }> = fit(name);
        let datetime = *b"12031415";
        let raw = match format {
            CidFormat::Dtmf => dtmf_raw(&number, presentation),
            _ => mdmf_raw(&datetime, &number, &name, presentation),
        };
        CallerId {
            number,
            name,
            presentation,
            datetime: (format != CidFormat::Dtmf).then_some(datetime),
            format,
            raw,
        }
    }
}

/// `s` truncated at a char boundary to fit `M` bytes.
pub fn fit<const M: usize>(s: &str) -> String<M> {
    let mut out = String::new();
    for c in s.chars() {
        if out.push(c).is_err() {
            break;
        }
    }
    out
}

/// A GR-30 / ETSI MDMF call set-up message: `0x80 len {param len data}* checksum`.
fn mdmf_raw(datetime: &[u8; 8], number: &str, name: &str, p: Presentation) -> Vec<u8, MAX_CID_RAW> {
    let mut body: StdVec<u8> = StdVec::new();
    let mut param = |code: u8, data: &[u8]| {
        body.push(code);
        body.push(u8::try_from(data.len()).unwrap_or(u8::MAX));
        body.extend_from_slice(data);
    };
    param(0x01, datetime);
    match p {
        Presentation::Available => {
            param(0x02, number.as_bytes());
            if !name.is_empty() {
                param(0x07, name.as_bytes());
            }
        }
        Presentation::Private => param(0x04, b"P"),
        Presentation::Unavailable => param(0x04, b"O"),
    }
    let mut msg = StdVec::with_capacity(body.len() + 3);
    msg.push(0x80);
    msg.push(u8::try_from(body.len()).unwrap_or(u8::MAX));
    msg.extend_from_slice(&body);
    let sum = msg.iter().fold(0u8, |a, b| a.wrapping_add(*b));
    msg.push(sum.wrapping_neg());
    bounded(&msg)
}

/// ETSI DTMF variant 1: `A<number>C`, or `B00C` / `B10C` when absent.
fn dtmf_raw(number: &str, p: Presentation) -> Vec<u8, MAX_CID_RAW> {
    let mut s = StdString::new();
    match p {
        Presentation::Available => {
            s.push('A');
            s.push_str(number);
        }
        Presentation::Private => s.push_str("B10"),
        Presentation::Unavailable => s.push_str("B00"),
    }
    s.push('C');
    bounded(s.as_bytes())
}

fn bounded(b: &[u8]) -> Vec<u8, MAX_CID_RAW> {
    b.iter().take(MAX_CID_RAW).copied().collect()
}

#[cfg(test)]
#[path = "sim_tests.rs"]
mod tests;
