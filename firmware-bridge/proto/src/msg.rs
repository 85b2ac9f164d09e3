//! The messages. Board -> host is [`BoardMsg`], host -> board is [`HostMsg`].
//!
//! Compatibility rule (see README): postcard encodes an enum variant as a varint of its index and a
//! struct as its fields in order, with no names and no lengths. So within one [`crate::PROTO_VERSION`]
//! you may only **append** variants at the end of an enum. Never reorder, remove, or change a field.
//! Anything else bumps the protocol version.

use heapless::{String, Vec};
use serde::{Deserialize, Serialize};

/// Longest calling number carried in [`CallerId`] (UK SIN227 allows 18 digits; 32 leaves room).
pub const MAX_NUMBER: usize = 32;
/// Longest caller name in bytes (UTF-8). GR-30 / SIN227 names are at most 15 / 20 characters.
pub const MAX_NAME: usize = 32;
/// Most raw caller-ID bytes carried (the decoded FSK message or DTMF string, for the daemon's raw log).
pub const MAX_CID_RAW: usize = 96;
/// Longest [`Log`] text in bytes.
pub const MAX_LOG: usize = 64;

/// Board -> host. Variant indexes are wire format: only append.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BoardMsg {
    /// 0: sent on boot, on every link-up and in answer to [`HostMsg::StatusRequest`].
    Hello(Hello),
    /// 1: a line event with its sequence number; kept by the board until acknowledged.
    Event(SeqEvent),
    /// 2: periodic status, and the answer to [`HostMsg::StatusRequest`]. Not sequenced.
    Heartbeat(Heartbeat),
    /// 3: a diagnostic line. Not sequenced, not replayed (may be lost).
    Log(Log),
}

/// The envelope of every board event. Field order is frozen: the host reads `boot_id`, `seq` and
/// `oldest` even when it cannot decode `event` (a newer board's appended variant), so it can still
/// acknowledge it (see `FrameError::UnknownEvent`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqEvent {
    /// The board's boot id (changes on every boot; see [`Hello::boot_id`]).
    pub boot_id: u32,
    /// Sequence number: 1 for the first event after boot, +1 for every event. Never 0.
    pub seq: u32,
    /// The oldest seq the board still holds unacknowledged when it sent this frame (`<= seq`).
    /// If it is above the host's next expected seq, the events in between were dropped from the
    /// board's full ring and will never come.
    pub oldest: u32,
    /// What happened.
    pub event: Event,
}

/// Line events (board -> host, sequenced). Variant indexes are wire format: only append.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// 0: a ring burst began. `cadence` is the previous burst's on/off time (0/0 on the first burst).
    RingStart { cadence: Cadence },
    /// 1: ringing ended: no burst within the board's ring timeout, or the line went off hook.
    RingStop,
    /// 2: a hook change of the local extension: `off_hook = true` is picked up, `false` hung up.
    Hook { off_hook: bool },
    /// 3: a significant line-voltage change in millivolts (negative after a polarity reversal).
    /// The board sends it on change (hysteresis), not periodically.
    LineVoltage { mv: i32 },
    /// 4: line voltage gone (cable pulled, exchange down).
    LineLost,
    /// 5: line voltage back after [`Event::LineLost`].
    LineRestored,
    /// 6: decoded caller ID.
    CallerId(CallerId),
    /// 7: a digit dialled on the line by the local phone (ASCII `0-9 * # A-D`).
    Digit { digit: u8 },
    /// 8: a desk key on the board.
    Key { key: u8, long_press: bool },
}

/// Ring cadence in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Cadence {
    pub on_ms: u16,
    pub off_ms: u16,
}

/// A caller-ID record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerId {
    /// Calling number as sent by the exchange (digits, maybe `+`); empty if absent.
    pub number: String<MAX_NUMBER>,
    /// Caller name; empty if absent.
    pub name: String<MAX_NAME>,
    pub presentation: Presentation,
    /// `MMDDHHMM` from the exchange, if it sent one (ASCII digits).
    pub datetime: Option<[u8; 8]>,
    pub format: CidFormat,
    /// The raw decoded message bytes (FSK: type, length, parameters, checksum; DTMF: the digit string),
    /// truncated to [`MAX_CID_RAW`].
    pub raw: Vec<u8, MAX_CID_RAW>,
}

/// Whether the number is shown. Only append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Presentation {
    Available,
    /// Withheld by the caller (GR-30 / ETSI reason `P`, DTMF "restricted").
    Private,
    /// Not available (reason `O`, out of area).
    Unavailable,
}

/// How the caller ID was signalled. Only append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CidFormat {
    Bell202,
    V23,
    Dtmf,
}

/// Which caller-ID standard the board listens for. Only append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CidStandard {
    /// Try FSK (Bell 202 and V.23) and DTMF.
    Auto,
    /// Bellcore GR-30, Bell 202 FSK after the first ring (North America, China, ...).
    Bell202,
    /// ETSI EN 300 659, V.23 FSK (UK, most of Europe).
    EtsiV23,
    /// ETSI DTMF caller ID (Nordics, Netherlands, India, ...).
    Dtmf,
    /// NTT J-CLIP (Japan), V.23 off-hook.
    NttJclip,
}

/// What starts caller-ID reception. Only append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CidStart {
    /// After the first ring (GR-30).
    Ring,
    /// On a line polarity reversal (ETSI).
    Polarity,
    /// After a short ring pulse (UK).
    RingPulse,
    /// No warning at all (DTMF variants).
    None,
}

/// Region settings the board runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    /// ISO 3166 alpha-2 country code, ASCII (e.g. `*b"CN"`).
    pub country: [u8; 2],
    pub cid_standard: CidStandard,
    pub cid_start: CidStart,
}

/// Board capability bits (in [`Hello::capabilities`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Capabilities(pub u32);

impl Capabilities {
    pub const RING: u32 = 1 << 0;
    pub const HOOK: u32 = 1 << 1;
    pub const FSK_CID: u32 = 1 << 2;
    pub const DTMF_CID: u32 = 1 << 3;
    pub const DTMF_DIGITS: u32 = 1 << 4;
    pub const KEYS: u32 = 1 << 5;
    pub const LEDS: u32 = 1 << 6;
    pub const LINE_VOLTAGE: u32 = 1 << 7;
    /// Every capability this version defines.
    pub const ALL: u32 = (1 << 8) - 1;

    /// Whether every bit of `bits` is set.
    pub const fn has(self, bits: u32) -> bool {
        self.0 & bits == bits
    }
}

/// Firmware version, semver-like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FwVersion {
    pub major: u8,
    pub minor: u8,
    pub patch: u8,
}

/// The board introduces itself. Frozen layout within a protocol version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The board's [`crate::PROTO_VERSION`] (the frame header carries it too).
    pub proto_version: u8,
    /// Stable id of this board (e.g. from the MCU's unique id).
    pub board_id: u64,
    /// Differs on every boot (boot counter in flash, or a random value). Sequence numbers restart
    /// at 1 with a new boot id.
    pub boot_id: u32,
    pub firmware_version: FwVersion,
    pub capabilities: Capabilities,
    pub region: Region,
    /// Capacity of the board's unacknowledged-event ring.
    pub ring_capacity: u16,
}

/// Board counters since boot (wrapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counters {
    /// Ring bursts seen.
    pub rings: u32,
    /// Caller IDs decoded.
    pub cids: u32,
    /// Caller-ID messages rejected (bad FSK checksum, malformed DTMF).
    pub cid_errors: u32,
    /// Host frames the board rejected for a bad CRC.
    pub crc_errors: u32,
    /// Host frames the board rejected for other reasons (COBS, oversize, unknown, version).
    pub frames_dropped: u32,
    /// Unacknowledged events evicted from the full ring (lost for the host).
    pub events_dropped: u32,
    /// Events re-sent (replays).
    pub replayed: u32,
}

/// Periodic status; also the answer to [`HostMsg::StatusRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub boot_id: u32,
    pub uptime_s: u32,
    /// The next seq the board will assign (so the host sees the last one was `next_seq - 1`).
    pub next_seq: u32,
    /// Events currently held unacknowledged.
    pub unacked: u16,
    pub off_hook: bool,
    pub ringing: bool,
    pub line_ok: bool,
    pub counters: Counters,
}

/// Log level. Only append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

/// A diagnostic line from the board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Log {
    pub level: LogLevel,
    pub text: String<MAX_LOG>,
}

/// Host -> board. Variant indexes are wire format: only append.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostMsg {
    /// 0: cumulative acknowledgement: every event of boot `boot_id` with `seq <= up_to_seq` is stored
    /// by the host and may be forgotten. An ack naming another boot id is ignored.
    Ack { boot_id: u32, up_to_seq: u32 },
    /// 1: please re-send the unacknowledged events of boot `boot_id` from `from_seq` on
    /// (the host saw a gap). Implies an ack of everything below `from_seq`.
    Replay { boot_id: u32, from_seq: u32 },
    /// 2: new settings.
    Configure(Configure),
    /// 3: LED state.
    Leds(Leds),
    /// 4: the board answers with [`BoardMsg::Hello`] and [`BoardMsg::Heartbeat`], then re-sends
    /// every unacknowledged event.
    StatusRequest,
}

/// Board settings. Zero thresholds mean "keep the board's default".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Configure {
    pub region: Region,
    /// Loop voltage below which the line counts as off hook, mV.
    pub off_hook_below_mv: u16,
    /// Loop voltage below which the line counts as lost, mV.
    pub line_lost_below_mv: u16,
    /// Silence after the last burst that ends ringing ([`Event::RingStop`]), ms.
    pub ring_timeout_ms: u16,
    /// Heartbeat period, s (0 = board default).
    pub heartbeat_s: u16,
    /// Smallest voltage change reported as [`Event::LineVoltage`], mV (0 = never report).
    pub voltage_step_mv: u16,
}

/// LED state: bit n is LED n.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Leds {
    /// LEDs lit steadily.
    pub on: u16,
    /// LEDs blinking (overrides `on`).
    pub blink: u16,
    /// Blink period, ms (0 = board default).
    pub blink_period_ms: u16,
}
