//! DTMF digit detection (Goertzel) at 8 kHz.
//!
//! Eight Goertzel filters (697, 770, 852, 941, 1209, 1336, 1477, 1633 Hz) run over blocks of [`BLOCK`] samples
//! (12.75 ms). A block holds a digit when:
//!
//! * the strongest row and the strongest column each exceed the minimum level (about -46 dBm0 per tone),
//! * the twist is within limits: row (low group) at most [`NORMAL_TWIST_DB`] above the column, column at most
//!   [`REVERSE_TWIST_DB`] above the row,
//! * every other row (column) is at least 7.8 dB below the strongest row (column),
//! * the two tones carry at least half of the block's energy (speech and noise spread theirs).
//!
//! A digit is reported when two consecutive blocks agree (so tones of 40 ms and more are detected) and is released
//! after two blocks without it; a pause is needed between two equal digits.

use crate::dsp::{goertzel_energy, mul_q14};
use crate::tables::DTMF_COEF_Q14;

/// Samples per Goertzel block.
pub const BLOCK: u32 = 102;
/// Largest accepted normal twist (low group louder), dB.
pub const NORMAL_TWIST_DB: u32 = 8;
/// Largest accepted reverse twist (high group louder), dB.
pub const REVERSE_TWIST_DB: u32 = 6;

const KEYS: [[u8; 4]; 4] = [
    [b'1', b'2', b'3', b'A'],
    [b'4', b'5', b'6', b'B'],
    [b'7', b'8', b'9', b'C'],
    [b'*', b'0', b'#', b'D'],
];

/// Minimum Goertzel energy per tone: (A * N / 2)^2 for A = 114 (about -46 dBm0).
const MIN_ENERGY: u64 = 33_000_000;

/// A detected digit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DtmfDigit {
    /// Sample index (of the stream given to [`DtmfDetector::push`]) where the digit's first block began.
    pub start_sample: u64,
    /// `0`-`9`, `*`, `#`, `A`-`D`.
    pub digit: u8,
}

/// The streaming DTMF detector.
#[derive(Clone)]
pub struct DtmfDetector {
    s: [[i32; 2]; 8],
    energy: u64,
    k: u32,
    n: u64,
    prev: Option<u8>,
    prev_start: u64,
    current: Option<u8>,
}

impl Default for DtmfDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl DtmfDetector {
    /// A detector at rest.
    pub fn new() -> Self {
        DtmfDetector {
            s: [[0; 2]; 8],
            energy: 0,
            k: 0,
            n: 0,
            prev: None,
            prev_start: 0,
            current: None,
        }
    }

    /// The digit held now, if any.
    pub fn current(&self) -> Option<u8> {
        self.current
    }

    /// Feeds one DC-free sample (|x| <= 32767); returns a digit when one has just been recognised.
    pub fn push(&mut self, x: i32) -> Option<DtmfDigit> {
        let x = x.clamp(-32767, 32767);
        for (st, &c) in self.s.iter_mut().zip(DTMF_COEF_Q14.iter()) {
            let v = x + mul_q14(c, st[0]) - st[1];
            st[1] = st[0];
            st[0] = v;
        }
        self.energy += (x * x) as u64;
        self.k += 1;
        self.n += 1;
        if self.k < BLOCK {
            return None;
        }
        let block_start = self.n - BLOCK as u64;
        let d = self.decide();
        self.s = [[0; 2]; 8];
        self.energy = 0;
        self.k = 0;
        let mut out = None;
        if d == self.prev && d != self.current {
            if let Some(digit) = d {
                out = Some(DtmfDigit {
                    start_sample: self.prev_start,
                    digit,
                });
            }
            self.current = d;
        }
        if d != self.prev {
            self.prev_start = block_start;
        }
        self.prev = d;
        out
    }

    fn decide(&self) -> Option<u8> {
        let mut e = [0u64; 8];
        for (i, (st, &c)) in self.s.iter().zip(DTMF_COEF_Q14.iter()).enumerate() {
            e[i] = goertzel_energy(c, st[0], st[1]);
        }
        let (r, er) = strongest(&e[..4]);
        let (c, ec) = strongest(&e[4..]);
        if er < MIN_ENERGY || ec < MIN_ENERGY {
            return None;
        }
        // Twist: 8 dB = x6.31, 6 dB = x3.98.
        if er * 100 > ec * 631 || ec * 100 > er * 398 {
            return None;
        }
        // Relative peaks: 7.8 dB = x6.
        for (i, &v) in e[..4].iter().enumerate() {
            if i != r && v * 6 > er {
                return None;
            }
        }
        for (i, &v) in e[4..].iter().enumerate() {
            if i != c && v * 6 > ec {
                return None;
            }
        }
        // A pure tone pair gives (er + ec) = N * energy / 2; require at least half of that.
        if (er + ec) * 4 < self.energy * BLOCK as u64 {
            return None;
        }
        KEYS.get(r).and_then(|row| row.get(c)).copied()
    }
}

fn strongest(e: &[u64]) -> (usize, u64) {
    let mut best = (0, 0);
    for (i, &v) in e.iter().enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best
}
