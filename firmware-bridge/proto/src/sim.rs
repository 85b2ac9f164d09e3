//! A simulated bridge board (feature `std`), for daemon tests.
//!
//! [`SimBoard`] is I/O-free: script it (`ring()`, `caller_id(..)`, `off_hook()`, ...), take the bytes
//! it would put on the serial line with [`SimBoard::take_output`], and hand it the host's bytes with
//! [`SimBoard::receive`]. A test can wrap it over a pty, or connect it directly to a
//! [`crate::Decoder`] + [`crate::HostSession`].
//!
//! It behaves like the firmware is specified to: Hello on boot and on every link-up, every event
//! numbered and kept in an [`EventRing`] until acknowledged, everything unacknowledged re-sent on
//! link-up, on [`HostMsg::StatusRequest`], on [`HostMsg::Replay`] and after `retransmit_ms` of
//! [`SimBoard::tick`] without ack progress. While disconnected its output is discarded (as a real
//! board's would be) but events are still numbered and kept.

use std::string::String as StdString;
use std::vec::Vec as StdVec;

use heapless::{String, Vec};

use crate::frame::{encode_versioned, Decoder, FrameError, MAX_FRAME};
use crate::msg::{
    BoardMsg, Cadence, CallerId, Capabilities, CidFormat, CidStandard, CidStart, Configure,
    Counters, Event, FwVersion, Heartbeat, Hello, HostMsg, Leds, Log, LogLevel, Presentation,
    Region, MAX_CID_RAW,
};
use crate::ring::EventRing;
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

/// The simulated board.
#[derive(Debug, Clone)]
pub struct SimBoard<const N: usize = SIM_RING> {
    cfg: SimConfig,
    ring: EventRing<N>,
    decoder: Decoder<MAX_FRAME>,
    out: StdVec<u8>,
    connected: bool,
    uptime_ms: u64,
    since_heartbeat_ms: u64,
    since_progress_ms: u64,
    off_hook: bool,
    ringing: bool,
    bursts: u32,
    line_ok: bool,
    leds: Leds,
    config: Option<Configure>,
    counters: Counters,
    received: StdVec<HostMsg>,
}

impl<const N: usize> SimBoard<N> {
    /// Boot the board (connected): its output starts with a Hello.
    pub fn new(cfg: SimConfig) -> Self {
        let mut b = SimBoard {
            ring: EventRing::new(cfg.boot_id),
            cfg,
            decoder: Decoder::new(),
            out: StdVec::new(),
            connected: true,
            uptime_ms: 0,
            since_heartbeat_ms: 0,
            since_progress_ms: 0,
            off_hook: false,
            ringing: false,
            bursts: 0,
            line_ok: true,
            leds: Leds::default(),
            config: None,
            counters: Counters::default(),
            received: StdVec::new(),
        };
        b.send(&BoardMsg::Hello(b.hello()));
        b
    }

    // ----- script API: line events -----

    /// One ring burst ([`Event::RingStart`]). Call it once per burst.
    pub fn ring(&mut self) -> u32 {
        let cadence = if self.ringing {
            self.cfg.cadence
        } else {
            Cadence::default()
        };
        self.ringing = true;
        self.bursts += 1;
        self.counters.rings = self.counters.rings.wrapping_add(1);
        self.event(Event::RingStart { cadence })
    }

    /// Ringing ended unanswered ([`Event::RingStop`]); no-op if not ringing.
    pub fn ring_stop(&mut self) -> Option<u32> {
        if !self.ringing {
            return None;
        }
        self.ringing = false;
        self.bursts = 0;
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
        self.counters.cids = self.counters.cids.wrapping_add(1);
        self.event(Event::CallerId(cid))
    }

    /// The extension is picked up (ends ringing first, as the board does).
    pub fn off_hook(&mut self) -> u32 {
        self.ring_stop();
        self.off_hook = true;
        self.event(Event::Hook { off_hook: true })
    }

    /// The extension hangs up.
    pub fn on_hook(&mut self) -> u32 {
        self.off_hook = false;
        self.event(Event::Hook { off_hook: false })
    }

    /// A dialled digit (`0-9 * # A-D`).
    pub fn digit(&mut self, digit: char) -> u32 {
        self.event(Event::Digit {
            digit: u8::try_from(digit).unwrap_or(b'?'),
        })
    }

    /// A desk key.
    pub fn key(&mut self, key: u8, long_press: bool) -> u32 {
        self.event(Event::Key { key, long_press })
    }

    pub fn line_voltage(&mut self, mv: i32) -> u32 {
        self.event(Event::LineVoltage { mv })
    }

    pub fn line_lost(&mut self) -> u32 {
        self.line_ok = false;
        self.event(Event::LineLost)
    }

    pub fn line_restored(&mut self) -> u32 {
        self.line_ok = true;
        self.event(Event::LineRestored)
    }

    /// Number and send any event; returns its seq.
    pub fn event(&mut self, event: Event) -> u32 {
        let before = self.ring.dropped();
        let env = self.ring.push(event);
        let dropped = self.ring.dropped().wrapping_sub(before);
        self.counters.events_dropped = self.counters.events_dropped.wrapping_add(dropped);
        let seq = env.seq;
        self.send(&BoardMsg::Event(env));
        seq
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
        self.since_progress_ms += u64::from(ms);
        if self.cfg.heartbeat_ms > 0 && self.since_heartbeat_ms >= u64::from(self.cfg.heartbeat_ms)
        {
            self.heartbeat();
        }
        if self.cfg.retransmit_ms > 0
            && !self.ring.is_empty()
            && self.since_progress_ms >= u64::from(self.cfg.retransmit_ms)
        {
            self.replay_from(0);
        }
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
        self.send(&BoardMsg::Hello(self.hello()));
        self.replay_from(0);
    }

    /// Power cycle with a new boot id: RAM (ring, counters, line state) is lost; Hello follows.
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
        let mut msgs = StdVec::new();
        self.decoder
            .feed::<HostMsg>(bytes, |r: Result<HostMsg, FrameError>| msgs.push(r));
        for r in msgs {
            match r {
                Ok(m) => self.apply(m),
                Err(FrameError::Crc) => {
                    self.counters.crc_errors = self.counters.crc_errors.wrapping_add(1)
                }
                Err(_) => {
                    self.counters.frames_dropped = self.counters.frames_dropped.wrapping_add(1)
                }
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
        self.counters
    }

    /// Events held unacknowledged.
    pub fn unacked(&self) -> usize {
        self.ring.len()
    }

    pub fn next_seq(&self) -> u32 {
        self.ring.next_seq()
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Every host message applied so far.
    pub fn received(&self) -> &[HostMsg] {
        &self.received
    }

    /// The Hello this board sends.
    pub fn hello(&self) -> Hello {
        Hello {
            proto_version: self.cfg.proto_version,
            board_id: self.cfg.board_id,
            boot_id: self.ring.boot_id(),
            firmware_version: self.cfg.firmware_version,
            capabilities: self.cfg.capabilities,
            region: self.cfg.region,
            ring_capacity: u16::try_from(N).unwrap_or(u16::MAX),
        }
    }

    /// The heartbeat this board would send now.
    pub fn status(&self) -> Heartbeat {
        Heartbeat {
            boot_id: self.ring.boot_id(),
            uptime_s: u32::try_from(self.uptime_ms / 1000).unwrap_or(u32::MAX),
            next_seq: self.ring.next_seq(),
            unacked: u16::try_from(self.ring.len()).unwrap_or(u16::MAX),
            off_hook: self.off_hook,
            ringing: self.ringing,
            line_ok: self.line_ok,
            counters: self.counters,
        }
    }

    // ----- internals -----

    fn apply(&mut self, m: HostMsg) {
        self.received.push(m.clone());
        match m {
            HostMsg::Ack { boot_id, up_to_seq } => {
                if self.ring.ack(boot_id, up_to_seq) > 0 {
                    self.since_progress_ms = 0;
                }
            }
            HostMsg::Replay { boot_id, from_seq } => {
                if boot_id == self.ring.boot_id() {
                    if self.ring.ack(boot_id, from_seq.saturating_sub(1)) > 0 {
                        self.since_progress_ms = 0;
                    }
                    self.replay_from(from_seq);
                }
            }
            HostMsg::Configure(c) => {
                self.cfg.region = c.region;
                self.config = Some(c);
            }
            HostMsg::Leds(l) => self.leds = l,
            HostMsg::StatusRequest => {
                self.send(&BoardMsg::Hello(self.hello()));
                self.heartbeat();
                self.replay_from(0);
            }
        }
    }

    fn replay_from(&mut self, from_seq: u32) {
        self.since_progress_ms = 0;
        let envs: StdVec<_> = self.ring.unacked_from(from_seq).collect();
        for e in envs {
            self.counters.replayed = self.counters.replayed.wrapping_add(1);
            self.send(&BoardMsg::Event(e));
        }
    }

    fn send(&mut self, msg: &BoardMsg) {
        if !self.connected {
            return;
        }
        let mut buf = [0u8; MAX_FRAME];
        // Every BoardMsg fits MAX_FRAME (tested in the size tests), so this cannot fail.
        if let Ok(n) = encode_versioned(self.cfg.proto_version, msg, &mut buf) {
            self.out.extend_from_slice(buf.get(..n).unwrap_or_default());
        }
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
