//! Ring detection and cadence from line-voltage samples (mV, signed: tip minus ring).
//!
//! Ringing is a large AC voltage (75-90 V rms at 16-60 Hz) on top of the line's DC. The detector removes the DC
//! (a 200 ms mean), and every 10 ms tick looks back over the last 100 ms: ringing is present when the AC peak is
//! at least [`RingConfig::threshold_mv`] and the AC crossed zero (with hysteresis of half the threshold) as often
//! as a ring of `min_hz`..`max_hz` would. A step (polarity reversal, hook change) crosses at most once, so it is
//! never taken for ringing. A ring starts after `min_on_ms` of ringing and stops after 50 ms without.
//!
//! Cadence: each ring's on-time, and the silence before it, are matched against [`Cadence`]; `RingEnd` comes when
//! no ring follows within the longest silence of the cadence plus its tolerance.

use crate::dsp::ilog2;

/// A ring cadence: up to 4 on/off pairs in ms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cadence {
    /// On-times, ms.
    pub on_ms: [u16; 4],
    /// Off-times after each on-time, ms.
    pub off_ms: [u16; 4],
    /// How many pairs are used (1..=4).
    pub len: u8,
    /// Tolerance on every time, percent.
    pub tolerance_pct: u8,
}

impl Cadence {
    /// Mainland China: 1 s on, 4 s off (the default).
    pub const CHINA: Cadence = Cadence::single(1000, 4000);
    /// North America: 2 s on, 4 s off.
    pub const US: Cadence = Cadence::single(2000, 4000);
    /// UK: 0.4 on, 0.2 off, 0.4 on, 2 s off.
    pub const UK: Cadence = Cadence {
        on_ms: [400, 400, 0, 0],
        off_ms: [200, 2000, 0, 0],
        len: 2,
        tolerance_pct: 25,
    };

    /// One on/off pair with 25 % tolerance.
    pub const fn single(on_ms: u16, off_ms: u16) -> Self {
        Cadence {
            on_ms: [on_ms, 0, 0, 0],
            off_ms: [off_ms, 0, 0, 0],
            len: 1,
            tolerance_pct: 25,
        }
    }

    fn pairs(&self) -> usize {
        (self.len as usize).clamp(1, 4)
    }

    fn near(&self, want: u16, got: u32) -> bool {
        let want = want as u32;
        let tol = want * self.tolerance_pct as u32 / 100 + 60;
        got + tol >= want && got <= want + tol
    }

    /// Whether an on-time `on` after a silence `off_before` (None for the first ring) fits the cadence.
    pub fn matches(&self, on: u32, off_before: Option<u32>) -> bool {
        let n = self.pairs();
        (0..n).any(|i| {
            let prev_off = self.off_ms[(i + n - 1) % n];
            self.near(self.on_ms[i], on) && off_before.is_none_or(|o| self.near(prev_off, o))
        })
    }

    fn longest_off(&self) -> u32 {
        let n = self.pairs();
        let m = self.off_ms[..n].iter().copied().max().unwrap_or(4000) as u32;
        m + m * self.tolerance_pct as u32 / 100 + 500
    }
}

/// Ring detector settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingConfig {
    /// Rate of the voltage samples, Hz (500..=16000).
    pub rate_hz: u32,
    /// Minimum AC peak of ringing, mV.
    pub threshold_mv: i32,
    /// Ringing frequency range, Hz.
    pub min_hz: u32,
    /// Ringing frequency range, Hz.
    pub max_hz: u32,
    /// Ringing must be seen this long before a ring starts (bursts up to about this long are transients), ms.
    pub min_on_ms: u32,
    /// Expected cadence.
    pub cadence: Cadence,
}

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig {
            rate_hz: 8000,
            threshold_mv: 25_000,
            min_hz: 14,
            max_hz: 70,
            min_on_ms: 150,
            cadence: Cadence::CHINA,
        }
    }
}

/// What the ring detector reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingEvent {
    /// A ring began (time: when ringing was first seen).
    Start,
    /// A ring ended after `on_ms`; `cadence_ok` when it (and the silence before it) fit the cadence.
    Stop {
        /// How long it rang, ms.
        on_ms: u32,
        /// It fit the cadence.
        cadence_ok: bool,
    },
    /// No ring came within the cadence's longest silence: the ringing is over after `rings` rings.
    End {
        /// Rings in the sequence.
        rings: u16,
    },
}

const TICK_MS: u32 = 10;
const WINDOW: usize = 10;
const OFF_TICKS: u32 = 5;

/// The streaming ring detector.
#[derive(Clone, Debug)]
pub struct RingDetector {
    cfg: RingConfig,
    tick_len: u32,
    k: u32,
    mean_q8: i32,
    primed: bool,
    pos_side: bool,
    tick_cross: u8,
    tick_peak: i32,
    in_tick: u32,
    hist_cross: [u8; WINDOW],
    hist_peak: [i32; WINDOW],
    hist_pos: usize,
    ticks: u64,
    raw_since: Option<u64>,
    raw_off: u32,
    ringing: bool,
    ring_start: u64,
    last_stop: Option<u64>,
    rings: u16,
}

impl RingDetector {
    /// A detector with `cfg`.
    pub fn new(cfg: RingConfig) -> Self {
        let rate = cfg.rate_hz.clamp(500, 16_000);
        RingDetector {
            cfg: RingConfig {
                rate_hz: rate,
                ..cfg
            },
            tick_len: rate * TICK_MS / 1000,
            k: ilog2(rate / 5).max(1),
            mean_q8: 0,
            primed: false,
            pos_side: true,
            tick_cross: 0,
            tick_peak: 0,
            in_tick: 0,
            hist_cross: [0; WINDOW],
            hist_peak: [0; WINDOW],
            hist_pos: 0,
            ticks: 0,
            raw_since: None,
            raw_off: 0,
            ringing: false,
            ring_start: 0,
            last_stop: None,
            rings: 0,
        }
    }

    /// Whether ringing is on now (debounced).
    pub fn ringing(&self) -> bool {
        self.ringing
    }

    /// Whether ringing-like AC is seen now (before debounce); the hook monitor holds its state meanwhile.
    pub fn ac_present(&self) -> bool {
        self.raw_since.is_some() || self.ringing
    }

    /// Feeds one voltage sample in mV. Returns `(time in ms of this stream, event)` when something happened.
    pub fn push(&mut self, mv: i32) -> Option<(u64, RingEvent)> {
        let mv = mv.clamp(-400_000, 400_000);
        if !self.primed {
            self.mean_q8 = mv << 8;
            self.primed = true;
        }
        self.mean_q8 += ((mv << 8) - self.mean_q8) >> self.k;
        let ac = mv - (self.mean_q8 >> 8);
        let hyst = self.cfg.threshold_mv / 2;
        if self.pos_side && ac < -hyst {
            self.pos_side = false;
            self.tick_cross = self.tick_cross.saturating_add(1);
        } else if !self.pos_side && ac > hyst {
            self.pos_side = true;
            self.tick_cross = self.tick_cross.saturating_add(1);
        }
        self.tick_peak = self.tick_peak.max(ac.abs());
        self.in_tick += 1;
        if self.in_tick < self.tick_len {
            return None;
        }
        self.in_tick = 0;
        self.tick()
    }

    fn tick(&mut self) -> Option<(u64, RingEvent)> {
        if let (Some(c), Some(p)) = (
            self.hist_cross.get_mut(self.hist_pos),
            self.hist_peak.get_mut(self.hist_pos),
        ) {
            *c = self.tick_cross;
            *p = self.tick_peak;
        }
        self.hist_pos = (self.hist_pos + 1) % WINDOW;
        self.tick_cross = 0;
        self.tick_peak = 0;
        self.ticks += 1;
        let now = self.ticks * TICK_MS as u64;

        let crossings: u32 = self.hist_cross.iter().map(|&c| c as u32).sum();
        let peak = self.hist_peak.iter().copied().max().unwrap_or(0);
        let window_ms = (WINDOW as u32) * TICK_MS;
        let min_c = (2 * self.cfg.min_hz * window_ms).div_ceil(1000).max(2);
        let max_c = 2 * self.cfg.max_hz * window_ms / 1000 + 2;
        let raw = peak >= self.cfg.threshold_mv && crossings >= min_c && crossings <= max_c;

        if raw {
            self.raw_off = 0;
            let since = *self.raw_since.get_or_insert(now);
            if !self.ringing && now.saturating_sub(since) >= self.cfg.min_on_ms as u64 {
                // The window needed about half its length of ringing before it said so.
                let start = since.saturating_sub(window_ms as u64 / 2);
                self.ringing = true;
                self.ring_start = start;
                return Some((start, RingEvent::Start));
            }
            return None;
        }
        if self.raw_since.is_some() {
            self.raw_off += 1;
            if self.raw_off < OFF_TICKS {
                return None;
            }
            self.raw_since = None;
            if self.ringing {
                self.ringing = false;
                // The window kept "ringing" about half a window after the ringing ended.
                let stop = now.saturating_sub((OFF_TICKS * TICK_MS + window_ms / 2) as u64);
                let on_ms = stop.saturating_sub(self.ring_start) as u32;
                let off_before = self
                    .last_stop
                    .map(|s| self.ring_start.saturating_sub(s) as u32);
                let cadence_ok = self.cfg.cadence.matches(on_ms, off_before);
                self.last_stop = Some(stop);
                self.rings = self.rings.saturating_add(1);
                return Some((stop, RingEvent::Stop { on_ms, cadence_ok }));
            }
            return None;
        }
        if let Some(s) = self.last_stop {
            if now.saturating_sub(s) > self.cfg.cadence.longest_off() as u64 {
                let rings = self.rings;
                self.last_stop = None;
                self.rings = 0;
                return Some((now, RingEvent::End { rings }));
            }
        }
        None
    }
}
