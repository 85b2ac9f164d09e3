//! FSK caller-ID receiver: Bell 202 (1200 / 2200 Hz) and ITU V.23 (1300 / 2100 Hz) at 1200 baud, 8 kHz samples.
//!
//! How it works, all in integer arithmetic:
//!
//! * two quadrature correlators (one per tone) over a sliding window of about one bit (6 samples) give the energy at
//!   the mark and at the space frequency; the bit is mark when the mark energy is the larger;
//! * the carrier detector compares the tonal energy with the total power (smoothed over 4 ms) and requires a
//!   minimum level (about -48 dBm0), with hysteresis and debounce;
//! * the receiver waits for at least [`MARK_MIN_BITS`] continuous mark bits (the channel-seizure pattern `0x55`
//!   does not count), then frames bytes asynchronously (start bit, 8 data bits LSB first, stop bit), resyncing on
//!   each start bit, and collects `type, length, data, checksum`;
//! * in [`FskMode::Auto`] the correlators sit between the two standards (1250 / 2150 Hz, which demodulates both)
//!   and two Goertzel filters at 1200 and 1300 Hz measure the mark signal to tell Bell 202 from V.23.
//!
//! A framing error, an unknown message type, a gap of more than [`GAP_MAX_BITS`] between bytes or the loss of the
//! carrier abandons the message: nothing is reported for it.

use crate::cid::{self, CidFormat, Message, MAX_MESSAGE};
use crate::dsp::{goertzel_energy, mul_q14};
use crate::tables::{cos_q15, sin_q15, MARK_COEF_Q14};

/// The sample rate the receiver expects.
pub const SAMPLE_RATE: u32 = 8000;
/// Minimum run of continuous mark bits before a message is accepted (GR-30 sends 180, 80 on call waiting; ETSI
/// sends 80 +/- 25).
pub const MARK_MIN_BITS: u32 = 50;
/// Longest mark gap tolerated between two bytes of one message.
pub const GAP_MAX_BITS: u32 = 40;

const WIN: usize = 6;
/// One bit in 1/256 samples: 8000 / 1200 * 256.
const BIT_Q8: u32 = 1707;
const MARK_MIN_SAMPLES: u32 = MARK_MIN_BITS * 20 / 3;
const GAP_MAX_SAMPLES: u32 = GAP_MAX_BITS * 20 / 3;
/// Carrier: tonal / power ratio (x8) to switch on and to stay on. FSK (clean or at 20 dB SNR) gives 20-23, white
/// noise mostly 12-19, speech 6-18: the carrier gate only keeps the receiver idle on most non-FSK input.
const CARRIER_ON_X8: u32 = 20;
const CARRIER_OFF_X8: u32 = 18;
/// Minimum smoothed power (about -48 dBm0 for a tone).
const LEVEL_MIN: u32 = 500;
const CARRIER_ON_SAMPLES: u16 = 24;
const CARRIER_OFF_SAMPLES: u16 = 48;
const CLASS_BLOCK: u16 = 160;

/// Which FSK standard to receive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FskMode {
    /// Bell 202 only (reported as `bell202`).
    Bell202,
    /// V.23 only (reported as `v23`).
    V23,
    /// Both; the mark frequency decides what is reported.
    Auto,
}

const fn phase_inc(hz: u32) -> u32 {
    (((hz as u64) << 32) / SAMPLE_RATE as u64) as u32
}

#[derive(Clone)]
struct Correlator {
    phase: u32,
    inc: u32,
    bi: [i32; WIN],
    bq: [i32; WIN],
    si: i32,
    sq: i32,
}

impl Correlator {
    fn new(hz: u32) -> Self {
        Correlator {
            phase: 0,
            inc: phase_inc(hz),
            bi: [0; WIN],
            bq: [0; WIN],
            si: 0,
            sq: 0,
        }
    }

    /// Adds sample `x` (|x| <= 32767) at ring position `pos`; returns the energy over the window.
    #[inline]
    fn step(&mut self, x: i32, pos: usize) -> u32 {
        self.phase = self.phase.wrapping_add(self.inc);
        let i = (x * cos_q15(self.phase)) >> 15;
        let q = (x * sin_q15(self.phase)) >> 15;
        // `pos` is always < WIN (the caller wraps it); `get_mut` keeps the code panic-free regardless.
        if let (Some(oi), Some(oq)) = (self.bi.get_mut(pos), self.bq.get_mut(pos)) {
            self.si += i - *oi;
            self.sq += q - *oq;
            *oi = i;
            *oq = q;
        }
        let a = (self.si >> 3).unsigned_abs();
        let b = (self.sq >> 3).unsigned_abs();
        a * a + b * b
    }
}

#[derive(Clone, Copy)]
enum Rx {
    /// Waiting for a long enough run of mark.
    Hunt,
    /// Mark seen; waiting for the start bit of the next byte (`gap` samples of mark so far).
    Wait { gap: u32 },
    /// Inside a byte: `t` in 1/256 samples since the start edge, next bit `bit` (0 = start, 9 = stop).
    Byte {
        t: u32,
        bit: u8,
        val: u16,
        votes: u8,
    },
}

/// A complete FSK message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FskMessage {
    /// Sample index (of the stream given to [`FskReceiver::push`]) where the mark signal before the message
    /// began (after the channel seizure, when there is one).
    pub start_sample: u64,
    /// What the message said.
    pub message: Message,
}

/// The streaming FSK receiver. Feed it one DC-free sample at a time with [`FskReceiver::push`].
#[derive(Clone)]
pub struct FskReceiver {
    mode: FskMode,
    mark: Correlator,
    space: Correlator,
    pre: [i32; 2],
    pos: usize,
    pow_s: u32,
    ton_s: u32,
    carrier: bool,
    cd_count: u16,
    mark_start: u64,
    run: u32,
    prev_bit_space: bool,
    rx: Rx,
    buf: [u8; MAX_MESSAGE],
    len: usize,
    last_len: usize,
    g: [[i32; 2]; 2],
    g_n: u16,
    acc: [u64; 2],
    n: u64,
}

impl FskReceiver {
    /// A receiver for `mode`.
    pub fn new(mode: FskMode) -> Self {
        let (m, s) = match mode {
            FskMode::Bell202 => (1200, 2200),
            FskMode::V23 => (1300, 2100),
            FskMode::Auto => (1250, 2150),
        };
        FskReceiver {
            mode,
            mark: Correlator::new(m),
            space: Correlator::new(s),
            pre: [0; 2],
            pos: 0,
            pow_s: 0,
            ton_s: 0,
            carrier: false,
            cd_count: 0,
            mark_start: 0,
            run: 0,
            prev_bit_space: false,
            rx: Rx::Hunt,
            buf: [0; MAX_MESSAGE],
            len: 0,
            last_len: 0,
            g: [[0; 2]; 2],
            g_n: 0,
            acc: [0; 2],
            n: 0,
        }
    }

    /// The carrier detector's smoothed tonal energy and power (for tuning and tests).
    #[doc(hidden)]
    pub fn carrier_metric(&self) -> (u32, u32) {
        (self.ton_s, self.pow_s)
    }

    /// The bytes of the message being received (for tests).
    #[doc(hidden)]
    pub fn partial(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// Whether a carrier is present now.
    pub fn carrier(&self) -> bool {
        self.carrier
    }

    /// The raw bytes (type, length, data, checksum) of the last complete message, for logging (`CIDRAW`).
    pub fn last_raw(&self) -> &[u8] {
        self.buf.get(..self.last_len).unwrap_or(&[])
    }

    fn abandon(&mut self) {
        self.rx = Rx::Hunt;
        self.run = 0;
        self.len = 0;
        self.acc = [0; 2];
    }

    fn format(&self) -> CidFormat {
        match self.mode {
            FskMode::Bell202 => CidFormat::Bell202,
            FskMode::V23 => CidFormat::V23,
            FskMode::Auto => {
                if self.acc[1] > self.acc[0] {
                    CidFormat::V23
                } else {
                    CidFormat::Bell202
                }
            }
        }
    }

    /// Feeds one sample (already DC-free, |x| <= 32767). Returns a message when one has just completed.
    pub fn push(&mut self, x: i32) -> Option<FskMessage> {
        // Pre-filter (1 - z^-2) / 2: zeros at 0 Hz and 4 kHz, peak at 2 kHz; speech at 300 Hz is 11 dB down
        // relative to the 1200 Hz mark.
        let x = x.clamp(-32767, 32767);
        let [x1, x2] = self.pre;
        self.pre = [x, x1];
        let x = (x - x2) >> 1;
        let n = self.n;
        self.n += 1;
        let em = self.mark.step(x, self.pos);
        let es = self.space.step(x, self.pos);
        self.pos += 1;
        if self.pos == WIN {
            self.pos = 0;
        }
        let bit = em > es;

        // Carrier detection.
        let p = ((x * x) as u32) >> 8;
        self.pow_s = self.pow_s - (self.pow_s >> 5) + p;
        let t = (em >> 5).saturating_add(es >> 5);
        self.ton_s = self.ton_s - (self.ton_s >> 5) + t;
        let level = self.pow_s >= LEVEL_MIN;
        let ratio_x8 = |k: u32| self.ton_s.saturating_mul(8) >= self.pow_s.saturating_mul(k);
        let want = if self.carrier {
            level && ratio_x8(CARRIER_OFF_X8)
        } else {
            level && ratio_x8(CARRIER_ON_X8)
        };
        if want != self.carrier {
            self.cd_count += 1;
            let need = if self.carrier {
                CARRIER_OFF_SAMPLES
            } else {
                CARRIER_ON_SAMPLES
            };
            if self.cd_count >= need {
                self.carrier = want;
                self.cd_count = 0;
                if !want {
                    self.abandon();
                }
            }
        } else {
            self.cd_count = 0;
        }
        if !self.carrier {
            return None;
        }

        // Mark-frequency classification (Auto): Goertzel blocks that lie wholly inside a mark run.
        if self.mode == FskMode::Auto && !matches!(self.rx, Rx::Byte { .. }) {
            for (k, g) in self.g.iter_mut().enumerate() {
                let c = MARK_COEF_Q14.get(k).copied().unwrap_or(0);
                let s = x + mul_q14(c, g[0]) - g[1];
                g[1] = g[0];
                g[0] = s;
            }
            self.g_n += 1;
            if self.g_n == CLASS_BLOCK {
                if self.run >= CLASS_BLOCK as u32 {
                    for ((acc, g), &c) in self
                        .acc
                        .iter_mut()
                        .zip(self.g.iter())
                        .zip(MARK_COEF_Q14.iter())
                    {
                        let e = goertzel_energy(c, g[0], g[1]);
                        *acc = acc.saturating_add(e >> 8);
                    }
                }
                self.g = [[0; 2]; 2];
                self.g_n = 0;
            }
        }

        // Two space decisions in a row are a real space (one alone is a noise glitch, which a mark run survives).
        let space2 = !bit && self.prev_bit_space;
        self.prev_bit_space = !bit;
        if bit {
            self.run = self.run.saturating_add(1);
        } else if space2 {
            self.run = 0;
        }

        match self.rx {
            Rx::Hunt => {
                if self.run >= MARK_MIN_SAMPLES {
                    self.rx = Rx::Wait { gap: 0 };
                    self.len = 0;
                    // The decision lags the line by about half the window plus the pre-filter's sample.
                    self.mark_start = (n + 1).saturating_sub(self.run as u64 + WIN as u64 / 2 + 1);
                } else if space2 {
                    self.acc = [0; 2];
                }
                None
            }
            Rx::Wait { gap } => {
                // A start edge needs two space decisions in a row; its time is the first.
                if space2 {
                    // Time since the first space decision: one sample elapsed, plus one sample of the decision's lag measured
                    // against clean signals (sampling 2 samples later or earlier raises the error rate at 20 dB SNR).
                    self.rx = Rx::Byte {
                        t: 512,
                        bit: 0,
                        val: 0,
                        votes: 0,
                    };
                } else if self.len > 0 && gap >= GAP_MAX_SAMPLES {
                    self.abandon();
                } else {
                    self.rx = Rx::Wait {
                        gap: gap.saturating_add(1),
                    };
                }
                None
            }
            Rx::Byte {
                t,
                bit: b,
                val,
                votes,
            } => {
                // Each bit is the majority of three decisions around its centre.
                let t = t + 256;
                let center = (2 * b as u32 + 1) * BIT_Q8 / 2;
                let votes = if t + 384 >= center && t < center + 384 {
                    votes + bit as u8
                } else {
                    votes
                };
                if t < center + 384 {
                    self.rx = Rx::Byte {
                        t,
                        bit: b,
                        val,
                        votes,
                    };
                    return None;
                }
                let one = votes >= 2;
                match b {
                    0 if one => {
                        // Not a start bit after all (a glitch in the mark).
                        self.rx = Rx::Wait { gap: 0 };
                        None
                    }
                    9 => {
                        if !one {
                            self.abandon();
                            return None;
                        }
                        self.rx = Rx::Wait { gap: 0 };
                        self.byte((val & 0xFF) as u8)
                    }
                    _ => {
                        let val = if b >= 1 && one {
                            val | (1 << (b - 1))
                        } else {
                            val
                        };
                        self.rx = Rx::Byte {
                            t,
                            bit: b + 1,
                            val,
                            votes: 0,
                        };
                        None
                    }
                }
            }
        }
    }

    fn byte(&mut self, v: u8) -> Option<FskMessage> {
        if self.len == 0 && !cid::known_type(v) {
            self.abandon();
            return None;
        }
        if self.len == 1 && v == 0 {
            self.abandon();
            return None;
        }
        let slot = self.buf.get_mut(self.len)?;
        *slot = v;
        self.len += 1;
        let want = self
            .buf
            .get(1)
            .map(|&l| l as usize + 3)
            .unwrap_or(usize::MAX);
        if self.len < 2 || self.len < want {
            return None;
        }
        let format = self.format();
        let msg = self.buf.get(..self.len).and_then(|m| cid::parse(format, m));
        self.last_len = self.len;
        let start = self.mark_start;
        self.abandon();
        msg.map(|message| FskMessage {
            start_sample: start,
            message,
        })
    }
}
