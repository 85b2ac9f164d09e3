//! Integer test-signal synthesizer for the target (no floats): FSK, DTMF, white noise, speech-like audio, line
//! voltages. Levels: peak of a sine at a level in dBm0 (full-scale sine = +3.14 dBm0).

use linekeeper_dsp::tables::sin_q15;

/// Sine peak at -40, -35, ..., -5 dBm0.
pub const PEAK_DBM: [(i32, i32); 8] = [
    (-40, 227),
    (-35, 404),
    (-30, 718),
    (-25, 1277),
    (-20, 2271),
    (-15, 4038),
    (-10, 7180),
    (-5, 12769),
];

/// xorshift32.
pub struct Rng(pub u32);

impl Rng {
    pub fn next(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u32) -> u32 {
        self.next() % n
    }
    /// Approximately Gaussian, standard deviation `sigma` (sum of four uniforms).
    pub fn gauss(&mut self, sigma: i32) -> i32 {
        let mut s: i64 = 0;
        for _ in 0..4 {
            s += (self.next() >> 16) as i64 - 32768;
        }
        // std of s = 32768 * 2 / sqrt(3) = 37837
        (s * sigma as i64 / 37837) as i32
    }
}

/// Noise sigma for a sine of `peak` at `snr_db` (10 .. 40, in steps of 5): peak / sqrt(2) / 10^(snr/20).
pub fn sigma_for(peak: i32, snr_db: i32) -> i32 {
    // 1e4 / sqrt(2) / 10^(snr/20)
    let k = match snr_db {
        10 => 2236,
        15 => 1257,
        20 => 707,
        25 => 398,
        30 => 224,
        _ => 71,
    };
    peak * k / 10_000
}

pub fn phase_inc(hz_milli: u64) -> u32 {
    ((hz_milli << 32) / 8_000_000) as u32
}

/// Phase-continuous FSK of seizure + mark + framed bytes + 4 marks, streamed sample by sample.
pub struct FskGen<'a> {
    bytes: &'a [u8],
    seizure: u32,
    mark_bits: u32,
    inc_mark: u32,
    inc_space: u32,
    phase: u32,
    n: u64,
    baud_milli: u64,
    total_bits: u32,
    pub peak: i32,
}

impl<'a> FskGen<'a> {
    /// `err_ppm` is the tone frequency error and `baud_ppm` the bit-rate error, parts per million.
    pub fn new(
        bytes: &'a [u8],
        v23: bool,
        peak: i32,
        err_ppm: i64,
        baud_ppm: i64,
        seizure: u32,
        mark_bits: u32,
    ) -> Self {
        let (m, s) = if v23 {
            (1300u64, 2100u64)
        } else {
            (1200, 2200)
        };
        let scale = |f: u64| ((f * 1000) as i64 * (1_000_000 + err_ppm) / 1_000_000) as u64;
        FskGen {
            bytes,
            seizure,
            mark_bits,
            inc_mark: phase_inc(scale(m)),
            inc_space: phase_inc(scale(s)),
            phase: 0x1234_5678,
            n: 0,
            baud_milli: (1_200_000i64 * (1_000_000 + baud_ppm) / 1_000_000) as u64,
            total_bits: seizure * 10 + mark_bits + bytes.len() as u32 * 10 + 4,
            peak,
        }
    }

    fn bit(&self, i: u32) -> bool {
        let framed = |b: u8, k: u32| match k {
            0 => false,
            9 => true,
            _ => (b >> (k - 1)) & 1 == 1,
        };
        if i < self.seizure * 10 {
            return framed(0x55, i % 10);
        }
        let i = i - self.seizure * 10;
        if i < self.mark_bits {
            return true;
        }
        let i = i - self.mark_bits;
        match self.bytes.get((i / 10) as usize) {
            Some(&b) => framed(b, i % 10),
            None => true,
        }
    }

    /// The next sample, or None at the end.
    pub fn next(&mut self) -> Option<i32> {
        let bit = (self.n * self.baud_milli / 8_000_000) as u32;
        if bit >= self.total_bits {
            return None;
        }
        self.n += 1;
        self.phase = self.phase.wrapping_add(if self.bit(bit) {
            self.inc_mark
        } else {
            self.inc_space
        });
        Some((sin_q15(self.phase) * self.peak) >> 15)
    }
}

const ROWS: [u64; 4] = [697, 770, 852, 941];
const COLS: [u64; 4] = [1209, 1336, 1477, 1633];
const KEYS: &[u8; 16] = b"123A456B789C*0#D";

/// DTMF of a string, `on`/`off` samples per digit, streamed.
pub struct DtmfGen<'a> {
    digits: &'a [u8],
    on: u32,
    off: u32,
    n: u32,
    ph: [u32; 2],
    pub peak: i32,
}

impl<'a> DtmfGen<'a> {
    pub fn new(digits: &'a [u8], peak: i32, on: u32, off: u32) -> Self {
        DtmfGen {
            digits,
            on,
            off,
            n: 0,
            ph: [0, 0x4000_0000],
            peak,
        }
    }

    pub fn next(&mut self) -> Option<i32> {
        let per = self.on + self.off;
        let idx = (self.n / per) as usize;
        let d = *self.digits.get(idx)?;
        let k = self.n % per;
        self.n += 1;
        if k >= self.on {
            return Some(0);
        }
        let i = KEYS.iter().position(|&x| x == d).unwrap_or(0);
        self.ph[0] = self.ph[0].wrapping_add(phase_inc(ROWS[i / 4] * 1000));
        self.ph[1] = self.ph[1].wrapping_add(phase_inc(COLS[i % 4] * 1000));
        Some(((sin_q15(self.ph[0]) + sin_q15(self.ph[1])) * self.peak) >> 15)
    }
}

/// Speech-like audio: a pulse train (pitch 90..250 Hz) through two resonators whose formants change every
/// syllable (150..300 ms), with pauses; Q14 integer IIR.
pub struct Speech {
    rng: Rng,
    n: u32,
    syl_left: u32,
    pause_left: u32,
    pitch_period: u32,
    pitch_ctr: u32,
    a: [(i32, i32); 2],
    y: [[i32; 2]; 2],
    gain: i32,
}

impl Speech {
    pub fn new(seed: u32, gain: i32) -> Self {
        Speech {
            rng: Rng(seed | 1),
            n: 0,
            syl_left: 0,
            pause_left: 0,
            pitch_period: 50,
            pitch_ctr: 0,
            a: [(0, 0); 2],
            y: [[0; 2]; 2],
            gain,
        }
    }

    pub fn next(&mut self) -> i32 {
        self.n += 1;
        if self.syl_left == 0 {
            if self.pause_left > 0 {
                self.pause_left -= 1;
                return 0;
            }
            self.syl_left = 1200 + self.rng.below(1200);
            self.pause_left = 200 + self.rng.below(1400);
            self.pitch_period = 32 + self.rng.below(57);
            let f1 = 300 + self.rng.below(600);
            let f2 = 900 + self.rng.below(1500);
            for (k, f) in [f1, f2].into_iter().enumerate() {
                // r = 0.97: 2 r cos(w) and r^2 in Q14
                let c = linekeeper_dsp::tables::cos_q15(phase_inc(f as u64 * 1000));
                self.a[k] = ((2 * 15892 * c) >> 15, 15415);
            }
        }
        self.syl_left -= 1;
        self.pitch_ctr += 1;
        let exc = if self.pitch_ctr >= self.pitch_period {
            self.pitch_ctr = 0;
            4096
        } else {
            0
        };
        let mut out = 0;
        for k in 0..2 {
            let (a1, a2) = self.a[k];
            let v = exc as i64 + ((a1 as i64 * self.y[k][0] as i64) >> 14)
                - ((a2 as i64 * self.y[k][1] as i64) >> 14);
            let v = v.clamp(-1 << 20, 1 << 20) as i32;
            self.y[k][1] = self.y[k][0];
            self.y[k][0] = v;
            out += v;
        }
        ((out as i64 * self.gain as i64) >> 12).clamp(-32767, 32767) as i32
    }
}
