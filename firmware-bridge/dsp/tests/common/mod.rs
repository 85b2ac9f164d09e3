//! Test-signal synthesizer (floats are fine here: this runs on the host only).
#![allow(dead_code)]

use linekeeper_dsp::cid::checksum_for;
use linekeeper_dsp::{Config, Event, LineProcessor, Timed};
use std::f64::consts::PI;

pub const FS: f64 = 8000.0;

/// Seeded PRNG (splitmix64), deterministic.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn f(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f()
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// Standard normal (Box-Muller).
    pub fn gauss(&mut self) -> f64 {
        let u = self.f().max(1e-12);
        let v = self.f();
        (-2.0 * u.ln()).sqrt() * (2.0 * PI * v).cos()
    }
}

/// Peak of a sine at `dbm` (full-scale sine = +3.14 dBm0, so 0 dBm0 = 22706 peak).
pub fn peak(dbm: f64) -> f64 {
    22706.0 * 10f64.powf(dbm / 20.0)
}

#[derive(Clone, Copy, Debug)]
pub struct Fsk {
    pub mark_hz: f64,
    pub space_hz: f64,
    /// Relative frequency error applied to both tones, e.g. 0.015.
    pub freq_err: f64,
    /// Relative bit-rate error.
    pub baud_err: f64,
    pub level_dbm: f64,
    pub seizure_bytes: usize,
    pub mark_bits: usize,
    /// Space level minus mark level, dB (line tilt).
    pub twist_db: f64,
}

impl Fsk {
    pub fn bell202(level_dbm: f64) -> Self {
        Fsk {
            mark_hz: 1200.0,
            space_hz: 2200.0,
            freq_err: 0.0,
            baud_err: 0.0,
            level_dbm,
            seizure_bytes: 30,
            mark_bits: 180,
            twist_db: 0.0,
        }
    }
    pub fn v23(level_dbm: f64) -> Self {
        Fsk {
            mark_hz: 1300.0,
            space_hz: 2100.0,
            mark_bits: 80,
            ..Fsk::bell202(level_dbm)
        }
    }
}

/// Bits on the wire: seizure (0x55 bytes), mark, then each byte framed (start 0, 8 data LSB first, stop 1),
/// then a few trailing mark bits.
pub fn fsk_bits(p: &Fsk, msg: &[u8]) -> Vec<bool> {
    let mut bits = Vec::new();
    let byte = |bits: &mut Vec<bool>, b: u8| {
        bits.push(false);
        for i in 0..8 {
            bits.push(b >> i & 1 == 1);
        }
        bits.push(true);
    };
    for _ in 0..p.seizure_bytes {
        byte(&mut bits, 0x55);
    }
    bits.extend(std::iter::repeat_n(true, p.mark_bits));
    for &b in msg {
        byte(&mut bits, b);
    }
    bits.extend(std::iter::repeat_n(true, 4));
    bits
}

/// Phase-continuous FSK at 8 kHz, `phase0` random start phase.
pub fn fsk_signal(p: &Fsk, msg: &[u8], phase0: f64) -> Vec<f64> {
    fsk_signal_at(p, msg, phase0, FS)
}

/// Phase-continuous FSK at sample rate `fs`.
pub fn fsk_signal_at(p: &Fsk, msg: &[u8], phase0: f64, fs: f64) -> Vec<f64> {
    let bits = fsk_bits(p, msg);
    let baud = 1200.0 * (1.0 + p.baud_err);
    let n = (bits.len() as f64 * fs / baud).ceil() as usize;
    let a = peak(p.level_dbm);
    let a_space = peak(p.level_dbm + p.twist_db);
    let mut ph = phase0;
    (0..n)
        .map(|i| {
            let b = ((i as f64 * baud / fs) as usize).min(bits.len() - 1);
            let f = if bits[b] { p.mark_hz } else { p.space_hz } * (1.0 + p.freq_err);
            ph += 2.0 * PI * f / fs;
            (if bits[b] { a } else { a_space }) * ph.sin()
        })
        .collect()
}

pub fn frame(ty: u8, data: &[u8]) -> Vec<u8> {
    let mut v = vec![ty, data.len() as u8];
    v.extend_from_slice(data);
    v.push(checksum_for(&v));
    v
}

pub fn sdmf(datetime: &str, number: &str) -> Vec<u8> {
    let mut d = datetime.as_bytes().to_vec();
    d.extend_from_slice(number.as_bytes());
    frame(0x04, &d)
}

pub fn mdmf(
    datetime: &str,
    number: Option<&str>,
    reason: Option<u8>,
    name: Option<&str>,
) -> Vec<u8> {
    let mut d = Vec::new();
    let mut param = |code: u8, v: &[u8]| {
        d.push(code);
        d.push(v.len() as u8);
        d.extend_from_slice(v);
    };
    param(0x01, datetime.as_bytes());
    if let Some(n) = number {
        param(0x02, n.as_bytes());
    }
    if let Some(r) = reason {
        param(0x04, &[r]);
    }
    if let Some(n) = name {
        param(0x07, n.as_bytes());
    }
    frame(0x80, &d)
}

/// A random plausible caller: (datetime, number, name).
pub fn random_caller(r: &mut Rng) -> (String, String, String) {
    let dt = format!(
        "{:02}{:02}{:02}{:02}",
        1 + r.below(12),
        1 + r.below(28),
        r.below(24),
        r.below(60)
    );
    let len = 7 + r.below(9) as usize;
    let num: String = (0..len)
        .map(|_| char::from(b'0' + r.below(10) as u8))
        .collect();
    let names = [
        "WANG LI",
        "ZHANG WEI",
        "ALICE SMITH",
        "BOB",
        "LIU YANG",
        "CHEN JING",
        "O'BRIEN J",
    ];
    let name = names[r.below(names.len() as u64) as usize].to_string();
    (dt, num, name)
}

pub const DTMF_ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
pub const DTMF_COLS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
pub const KEYS: &[u8; 16] = b"123A456B789C*0#D";

#[derive(Clone, Copy, Debug)]
pub struct Dtmf {
    /// Level of the low-group tone.
    pub level_dbm: f64,
    /// High-group level minus low-group level, dB (positive = reverse twist).
    pub twist_db: f64,
    pub freq_err: f64,
    pub on_ms: f64,
    pub off_ms: f64,
}

impl Dtmf {
    pub fn new(level_dbm: f64) -> Self {
        Dtmf {
            level_dbm,
            twist_db: 0.0,
            freq_err: 0.0,
            on_ms: 60.0,
            off_ms: 60.0,
        }
    }
}

/// One digit's tone followed by its pause, at 8 kHz.
pub fn dtmf_digit(p: &Dtmf, d: u8, r: &mut Rng) -> Vec<f64> {
    dtmf_digit_at(p, d, r, FS)
}

/// One digit's tone followed by its pause, at sample rate `fs`.
pub fn dtmf_digit_at(p: &Dtmf, d: u8, r: &mut Rng, fs: f64) -> Vec<f64> {
    let i = KEYS.iter().position(|&k| k == d).expect("digit");
    let (fr, fc) = (
        DTMF_ROWS[i / 4] * (1.0 + p.freq_err),
        DTMF_COLS[i % 4] * (1.0 + p.freq_err),
    );
    let (ar, ac) = (peak(p.level_dbm), peak(p.level_dbm + p.twist_db));
    let (pr, pc) = (r.range(0.0, 2.0 * PI), r.range(0.0, 2.0 * PI));
    let on = (p.on_ms * fs / 1000.0) as usize;
    let off = (p.off_ms * fs / 1000.0) as usize;
    let mut v: Vec<f64> = (0..on)
        .map(|n| {
            let t = n as f64 / fs;
            ar * (2.0 * PI * fr * t + pr).sin() + ac * (2.0 * PI * fc * t + pc).sin()
        })
        .collect();
    v.extend(std::iter::repeat_n(0.0, off));
    v
}

pub fn dtmf_string(p: &Dtmf, s: &str, r: &mut Rng) -> Vec<f64> {
    s.bytes().flat_map(|d| dtmf_digit(p, d, r)).collect()
}

pub fn silence(ms: f64) -> Vec<f64> {
    vec![0.0; (ms * FS / 1000.0) as usize]
}

pub fn power(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum::<f64>() / x.len().max(1) as f64
}

/// Adds white Gaussian noise of power `signal_power / 10^(snr/10)`.
pub fn add_noise(x: &mut [f64], signal_power: f64, snr_db: f64, r: &mut Rng) {
    let sigma = (signal_power / 10f64.powf(snr_db / 10.0)).sqrt();
    for v in x.iter_mut() {
        *v += sigma * r.gauss();
    }
}

/// White noise at `dbm` rms (relative to the 0 dBm0 sine power).
pub fn noise(ms: f64, dbm: f64, r: &mut Rng) -> Vec<f64> {
    let sigma = peak(dbm) / 2f64.sqrt();
    (0..(ms * FS / 1000.0) as usize)
        .map(|_| sigma * r.gauss())
        .collect()
}

/// Speech-like audio: a glottal pulse train (pitch 85-260 Hz, gliding) through three formant resonators that move
/// per syllable, syllables of 120-300 ms with pauses, some unvoiced (noise) segments. Scaled to `dbm` rms.
pub fn speech(ms: f64, dbm: f64, r: &mut Rng) -> Vec<f64> {
    let n = (ms * FS / 1000.0) as usize;
    let mut out = Vec::with_capacity(n);
    let mut res = [[0.0f64; 2]; 3];
    let mut phase = 0.0;
    while out.len() < n {
        let syl = (r.range(120.0, 300.0) * FS / 1000.0) as usize;
        let voiced = r.f() < 0.8;
        let f0a = r.range(85.0, 260.0);
        let f0b = f0a * r.range(0.8, 1.25);
        let formants = [
            r.range(300.0, 900.0),
            r.range(900.0, 2400.0),
            r.range(2300.0, 3400.0),
        ];
        let bw = [80.0, 120.0, 180.0];
        let coefs: Vec<(f64, f64)> = formants
            .iter()
            .zip(bw)
            .map(|(&f, b)| {
                let rr = (-PI * b / FS).exp();
                (2.0 * rr * (2.0 * PI * f / FS).cos(), -rr * rr)
            })
            .collect();
        for i in 0..syl {
            let t = i as f64 / syl as f64;
            let env = (PI * t).sin();
            let exc = if voiced {
                let f0 = f0a + (f0b - f0a) * t;
                phase += f0 / FS;
                if phase >= 1.0 {
                    phase -= 1.0;
                    1.0
                } else {
                    0.0
                }
            } else {
                0.3 * r.gauss()
            };
            let mut y = 0.0;
            for (k, &(a1, a2)) in coefs.iter().enumerate() {
                let v = exc + a1 * res[k][0] + a2 * res[k][1];
                res[k][1] = res[k][0];
                res[k][0] = v;
                y += v * [1.0, 0.6, 0.3][k];
            }
            out.push(y * env);
        }
        let gap = (r.range(30.0, 200.0) * FS / 1000.0) as usize;
        out.extend(std::iter::repeat_n(0.0, gap));
    }
    out.truncate(n);
    let p = power(&out).max(1e-9);
    let target = peak(dbm).powi(2) / 2.0;
    let g = (target / p).sqrt();
    out.iter().map(|v| v * g).collect()
}

pub fn to_i16(x: &[f64]) -> Vec<i16> {
    x.iter()
        .map(|v| v.round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}

/// Runs the audio through a fresh processor, in blocks of 80 samples.
pub fn decode_with(cfg: Config, x: &[f64]) -> Vec<Timed> {
    let mut lp = LineProcessor::new(cfg);
    let mut out = Vec::new();
    for blk in to_i16(x).chunks(80) {
        lp.process_audio(blk, |t| out.push(t));
    }
    out
}

pub fn decode(x: &[f64]) -> Vec<Timed> {
    decode_with(Config::default(), x)
}

pub fn caller_ids(ev: &[Timed]) -> Vec<(u64, linekeeper_dsp::CallerId)> {
    ev.iter()
        .filter_map(|t| match &t.event {
            Event::CallerId(c) => Some((t.at_ms, c.clone())),
            _ => None,
        })
        .collect()
}

pub fn digits(ev: &[Timed]) -> String {
    ev.iter()
        .filter_map(|t| match t.event {
            Event::Digit(d) => Some(d as char),
            _ => None,
        })
        .collect()
}

/// Asserts `ok` of `n` trials is at least `min_pct` percent, printing the figure.
pub fn require_rate(what: &str, ok: usize, n: usize, min_pct: f64) {
    let pct = 100.0 * ok as f64 / n as f64;
    println!("RATE {what}: {ok}/{n} = {pct:.1} % (required >= {min_pct} %)");
    assert!(
        pct >= min_pct,
        "{what}: detection {ok}/{n} = {pct:.1} % < {min_pct} %"
    );
}
