//! CAS detection: the CPE alerting signal 2130 + 2750 Hz (GR-30 caller ID on call waiting; BT's tone alert signal),
//! 80 to 110 ms.
//!
//! Two Goertzel filters over the DTMF block length (102 samples, 12.75 ms). A block holds CAS when both tones exceed
//! about -46 dBm0, neither is more than 6 dB above the other, and the pair carries at least half the block's energy.
//! A run of 5 to 11 such blocks (about 64 to 140 ms of tone) is reported when it ends. The bridge then has 100 ms
//! to mute the handset and acknowledge (DTMF `D` on GR-30) before the FSK message comes.

use crate::dsp::{goertzel_energy, mul_q14};
use crate::tables::CAS_COEF_Q14;

const BLOCK: u32 = crate::dtmf::BLOCK;
const MIN_ENERGY: u64 = 33_000_000;
const MIN_BLOCKS: u32 = 5;
const MAX_BLOCKS: u32 = 11;

/// A detected alerting signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CasTone {
    /// Sample index (of the stream given to [`CasDetector::push`]) where the first block of the tone began.
    pub start_sample: u64,
    /// Length of the tone, ms (in block steps of 12.75 ms).
    pub ms: u32,
}

/// The streaming CAS detector.
#[derive(Clone, Debug, Default)]
pub struct CasDetector {
    s: [[i32; 2]; 2],
    energy: u64,
    k: u32,
    n: u64,
    run: u32,
    run_start: u64,
}

impl CasDetector {
    /// A detector at rest.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one DC-free sample (|x| <= 32767); returns the tone when one has just ended.
    pub fn push(&mut self, x: i32) -> Option<CasTone> {
        let x = x.clamp(-32767, 32767);
        for (st, &c) in self.s.iter_mut().zip(CAS_COEF_Q14.iter()) {
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
        let e0 = goertzel_energy(CAS_COEF_Q14[0], self.s[0][0], self.s[0][1]);
        let e1 = goertzel_energy(CAS_COEF_Q14[1], self.s[1][0], self.s[1][1]);
        let hit = e0 >= MIN_ENERGY
            && e1 >= MIN_ENERGY
            && e0 <= e1 * 4
            && e1 <= e0 * 4
            && (e0 + e1) * 4 >= self.energy * BLOCK as u64;
        let block_start = self.n - BLOCK as u64;
        self.s = [[0; 2]; 2];
        self.energy = 0;
        self.k = 0;
        if hit {
            if self.run == 0 {
                self.run_start = block_start;
            }
            self.run = self.run.saturating_add(1);
            return None;
        }
        let run = core::mem::take(&mut self.run);
        if (MIN_BLOCKS..=MAX_BLOCKS).contains(&run) {
            return Some(CasTone {
                start_sample: self.run_start,
                ms: run * BLOCK * 1000 / 8000,
            });
        }
        None
    }
}
