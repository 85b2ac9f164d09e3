//! `linekeeper-dsp`: the line signal processing of the linekeeper bridge board, `no_std`, no allocation, integer
//! and Q15 arithmetic only (the RP2040 has no FPU).
//!
//! Two input streams:
//!
//! * **audio**: ADC samples of the line's audio at 8 kHz ([`AUDIO_RATE`]), `i16` (full-scale sine = +3.14 dBm0,
//!   so 0 dBm0 is a sine of peak 22 706); the DC is removed here. From it come FSK caller ID (Bell 202 and V.23),
//!   DTMF caller ID, DTMF digits and the CAS alerting tone.
//! * **voltage**: the line's tip-ring voltage in mV (signed), at [`Config::ring`]`.rate_hz` (the same rate is used
//!   for the hook monitor). From it come ring start / stop / cadence and hook state / polarity.
//!
//! Feed blocks of samples of any length to [`LineProcessor::process_audio`] and
//! [`LineProcessor::process_voltage`]; each event comes to the callback as a [`Timed`] with its time in ms of the
//! stream it came from (audio events count audio samples, voltage events voltage samples).
//!
//! ```
//! use linekeeper_dsp::{Config, Event, LineProcessor};
//! let mut lp = LineProcessor::new(Config::default());
//! let silence = [0i16; 160];
//! lp.process_audio(&silence, |t| {
//!     if let Event::CallerId(c) = &t.event {
//!         let _ = (t.at_ms, c.format.as_str(), c.number.as_deref(), c.checksum_ok);
//!     }
//! });
//! // 100 ms of an idle line (48 V) at the default 8 kHz voltage rate settles the hook state.
//! let mut states = 0;
//! lp.process_voltage(&[48_000; 800], |t| {
//!     if t.event == Event::Hook(linekeeper_dsp::HookState::OnHook) {
//!         states += 1;
//!     }
//! });
//! assert_eq!(states, 1);
//! ```
//!
//! The detectors are also usable one by one: [`fsk::FskReceiver`], [`dtmf::DtmfDetector`], [`cas::CasDetector`],
//! [`dtmf_cid::DtmfCidParser`], [`ring::RingDetector`], [`hook::HookMonitor`], and [`cid::parse`] for messages
//! from another source (an HT9032 chip, say).
//!
//! Memory is fixed: a [`LineProcessor`] is about 1 KiB and holds no pointer.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cas;
pub mod cid;
pub mod dsp;
pub mod dtmf;
pub mod dtmf_cid;
pub mod fsk;
pub mod hook;
pub mod ring;
pub mod tables;

pub use cid::{CallerId, CidFormat, Presentation};
pub use fsk::FskMode;
pub use hook::{HookConfig, HookState, Polarity};
pub use ring::{Cadence, RingConfig};

/// The audio sample rate, Hz.
pub const AUDIO_RATE: u32 = 8000;

/// Settings of a [`LineProcessor`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// FSK standard(s) to receive.
    pub fsk_mode: FskMode,
    /// Decode DTMF caller ID (variants 1-3) while the line is not off-hook.
    pub dtmf_cid: bool,
    /// Also accept variant 4, `<number>#` without a start marker.
    pub dtmf_cid_bare: bool,
    /// Ring detector settings (its `rate_hz` is the voltage stream's rate).
    pub ring: RingConfig,
    /// Hook monitor settings (`rate_hz` is overridden by `ring.rate_hz`).
    pub hook: HookConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            fsk_mode: FskMode::Auto,
            dtmf_cid: true,
            dtmf_cid_bare: false,
            ring: RingConfig::default(),
            hook: HookConfig::default(),
        }
    }
}

/// Something the line did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A caller-ID message (FSK or DTMF); its time is where the signal began.
    CallerId(CallerId),
    /// An FSK visual message-waiting indication.
    MessageWaiting {
        /// Lamp on.
        on: bool,
        /// The checksum matched.
        checksum_ok: bool,
    },
    /// The CPE alerting signal (2130 + 2750 Hz, caller ID on call waiting follows); its time is where it began.
    CasTone {
        /// Length, ms.
        ms: u32,
    },
    /// A DTMF digit (`0`-`9`, `*`, `#`, `A`-`D`) as ASCII; its time is where the tone began.
    Digit(u8),
    /// A ring began.
    RingStart,
    /// A ring ended.
    RingStop {
        /// How long it rang, ms.
        on_ms: u32,
        /// It (and the silence before it) fit the configured cadence.
        cadence_ok: bool,
    },
    /// Ringing is over (no ring within the cadence's silence).
    RingEnd {
        /// Rings in the sequence.
        rings: u16,
    },
    /// The hook state changed (also the first state settled).
    Hook(HookState),
    /// The line polarity reversed.
    PolarityReversal(Polarity),
}

/// An event and when it happened, in ms of the stream it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timed {
    /// Time, ms since the stream's first sample.
    pub at_ms: u64,
    /// What happened.
    pub event: Event,
}

/// All detectors of one line behind one streaming API.
#[derive(Clone)]
pub struct LineProcessor {
    cfg: Config,
    dc: dsp::DcBlock,
    fsk: fsk::FskReceiver,
    dtmf: dtmf::DtmfDetector,
    cas: cas::CasDetector,
    dcid: dtmf_cid::DtmfCidParser,
    ring: ring::RingDetector,
    hook: hook::HookMonitor,
    audio_n: u64,
}

impl LineProcessor {
    /// A processor with `cfg`.
    pub fn new(cfg: Config) -> Self {
        let hook_cfg = HookConfig {
            rate_hz: cfg.ring.rate_hz,
            ..cfg.hook
        };
        LineProcessor {
            cfg,
            dc: dsp::DcBlock::new(),
            fsk: fsk::FskReceiver::new(cfg.fsk_mode),
            dtmf: dtmf::DtmfDetector::new(),
            cas: cas::CasDetector::new(),
            dcid: dtmf_cid::DtmfCidParser::new(cfg.dtmf_cid_bare, dtmf_cid::DEFAULT_TIMEOUT_MS),
            ring: ring::RingDetector::new(cfg.ring),
            hook: hook::HookMonitor::new(hook_cfg),
            audio_n: 0,
        }
    }

    /// The hook state settled last (None before the first voltage samples).
    pub fn hook_state(&self) -> Option<HookState> {
        self.hook.state()
    }

    /// Whether ringing is on.
    pub fn ringing(&self) -> bool {
        self.ring.ringing()
    }

    /// The raw bytes of the last complete FSK message (type, length, data, checksum).
    pub fn last_fsk_raw(&self) -> &[u8] {
        self.fsk.last_raw()
    }

    /// Feeds audio samples (8 kHz); calls `sink` for every event.
    pub fn process_audio<F: FnMut(Timed)>(&mut self, samples: &[i16], mut sink: F) {
        for &s in samples {
            let x = self.dc.push(s);
            let n = self.audio_n;
            self.audio_n += 1;
            if let Some(m) = self.fsk.push(x) {
                let at_ms = m.start_sample / 8;
                let event = match m.message {
                    cid::Message::CallerId(c) => Event::CallerId(c),
                    cid::Message::MessageWaiting { on, checksum_ok } => {
                        Event::MessageWaiting { on, checksum_ok }
                    }
                };
                sink(Timed { at_ms, event });
            }
            if let Some(c) = self.cas.push(x) {
                sink(Timed {
                    at_ms: c.start_sample / 8,
                    event: Event::CasTone { ms: c.ms },
                });
            }
            if let Some(d) = self.dtmf.push(x) {
                let at_ms = d.start_sample / 8;
                sink(Timed {
                    at_ms,
                    event: Event::Digit(d.digit),
                });
                let gate = self.cfg.dtmf_cid && self.hook.state() != Some(HookState::OffHook);
                if gate {
                    if let Some((start, c)) = self.dcid.push(at_ms, d.digit) {
                        sink(Timed {
                            at_ms: start,
                            event: Event::CallerId(c),
                        });
                    }
                } else {
                    self.dcid.reset();
                }
            }
            if n.is_multiple_of(800) {
                self.dcid.tick(n / 8);
            }
        }
    }

    /// Feeds line-voltage samples in mV (at `ring.rate_hz`); calls `sink` for every event.
    pub fn process_voltage<F: FnMut(Timed)>(&mut self, mv: &[i32], mut sink: F) {
        for &v in mv {
            if let Some((at_ms, e)) = self.ring.push(v) {
                let event = match e {
                    ring::RingEvent::Start => Event::RingStart,
                    ring::RingEvent::Stop { on_ms, cadence_ok } => {
                        Event::RingStop { on_ms, cadence_ok }
                    }
                    ring::RingEvent::End { rings } => Event::RingEnd { rings },
                };
                sink(Timed { at_ms, event });
            }
            if let Some((at_ms, e)) = self.hook.push(v, self.ring.ac_present()) {
                let event = match e {
                    hook::HookEvent::State(s) => Event::Hook(s),
                    hook::HookEvent::Reversal(p) => Event::PolarityReversal(p),
                };
                sink(Timed { at_ms, event });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fixed_small_memory() {
        // All state is inline and fixed: no heap, nothing grows with the input.
        assert!(core::mem::size_of::<super::LineProcessor>() <= 1536);
        assert!(core::mem::size_of::<super::Timed>() <= 128);
    }
}
