//! Hook state and polarity from the line's DC voltage (mV, signed: tip minus ring).
//!
//! The voltage is smoothed (about 4 ms) and its magnitude put in bands, with a dead zone between bands as
//! hysteresis: on-hook at or above `on_hook_min_mv` (line idle, about 48 V), off-hook between `off_hook_min_mv`
//! and `off_hook_max_mv` (a few volts), line lost at or below `lost_max_mv` (about 0 V). A new state must hold for
//! `debounce_ms` before it is reported; so must a new polarity (sign of the voltage), which reports a polarity
//! reversal. While ringing is present the state is held.

use crate::dsp::ilog2;

/// The line's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookState {
    /// Idle line voltage: every phone on the line is on-hook.
    OnHook,
    /// Loop closed: a phone is off-hook.
    OffHook,
    /// No voltage: the line is cut or unplugged.
    LineLost,
}

impl HookState {
    /// `onhook`, `offhook`, `lost`.
    pub fn as_str(self) -> &'static str {
        match self {
            HookState::OnHook => "onhook",
            HookState::OffHook => "offhook",
            HookState::LineLost => "lost",
        }
    }
}

/// The sign of the line voltage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Polarity {
    /// Tip positive relative to ring.
    Normal,
    /// Reversed (the exchange reversed the battery, e.g. on answer or before ETSI caller ID).
    Reversed,
}

/// Hook monitor settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HookConfig {
    /// Rate of the voltage samples, Hz (500..=16000).
    pub rate_hz: u32,
    /// On-hook at or above this magnitude, mV.
    pub on_hook_min_mv: i32,
    /// Off-hook at or below this magnitude (and above `off_hook_min_mv`), mV.
    pub off_hook_max_mv: i32,
    /// Off-hook at or above this magnitude, mV.
    pub off_hook_min_mv: i32,
    /// Line lost at or below this magnitude, mV.
    pub lost_max_mv: i32,
    /// How long a new state or polarity must hold, ms.
    pub debounce_ms: u32,
}

impl Default for HookConfig {
    fn default() -> Self {
        HookConfig {
            rate_hz: 8000,
            on_hook_min_mv: 30_000,
            off_hook_max_mv: 20_000,
            off_hook_min_mv: 2_500,
            lost_max_mv: 1_500,
            debounce_ms: 60,
        }
    }
}

/// What the hook monitor reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookEvent {
    /// The state changed (also the first state seen).
    State(HookState),
    /// The polarity changed.
    Reversal(Polarity),
}

/// The streaming hook monitor.
#[derive(Clone, Debug)]
pub struct HookMonitor {
    cfg: HookConfig,
    k: u32,
    lp_q8: i32,
    primed: bool,
    debounce: u32,
    state: Option<HookState>,
    cand: Option<HookState>,
    cand_n: u32,
    polarity: Option<Polarity>,
    pcand: Option<Polarity>,
    pcand_n: u32,
    n: u64,
    pending: Option<(u64, HookEvent)>,
}

impl HookMonitor {
    /// A monitor with `cfg`.
    pub fn new(cfg: HookConfig) -> Self {
        let rate = cfg.rate_hz.clamp(500, 16_000);
        HookMonitor {
            cfg: HookConfig {
                rate_hz: rate,
                ..cfg
            },
            k: ilog2(rate / 250).max(1),
            lp_q8: 0,
            primed: false,
            debounce: (cfg.debounce_ms.saturating_mul(rate) / 1000).max(1),
            state: None,
            cand: None,
            cand_n: 0,
            polarity: None,
            pcand: None,
            pcand_n: 0,
            n: 0,
            pending: None,
        }
    }

    /// The debounced state (None until the first state is settled).
    pub fn state(&self) -> Option<HookState> {
        self.state
    }

    /// The debounced polarity.
    pub fn polarity(&self) -> Option<Polarity> {
        self.polarity
    }

    fn ms(&self, samples: u64) -> u64 {
        samples * 1000 / self.cfg.rate_hz as u64
    }

    /// Feeds one voltage sample in mV; `hold` (ringing present) freezes the state. Returns `(time in ms of this
    /// stream, event)`; when a state change and a reversal settle on the same sample the reversal follows on the
    /// next call.
    pub fn push(&mut self, mv: i32, hold: bool) -> Option<(u64, HookEvent)> {
        let mv = mv.clamp(-400_000, 400_000);
        if !self.primed {
            self.lp_q8 = mv << 8;
            self.primed = true;
        }
        self.lp_q8 += ((mv << 8) - self.lp_q8) >> self.k;
        self.n += 1;
        if let Some(p) = self.pending.take() {
            return Some(p);
        }
        if hold {
            self.cand_n = 0;
            self.pcand_n = 0;
            return None;
        }
        let v = self.lp_q8 >> 8;
        let a = v.abs();
        let c = self.cfg;
        let class = if a >= c.on_hook_min_mv {
            Some(HookState::OnHook)
        } else if a >= c.off_hook_min_mv && a <= c.off_hook_max_mv {
            Some(HookState::OffHook)
        } else if a <= c.lost_max_mv {
            Some(HookState::LineLost)
        } else {
            None
        };
        let pol = if a >= c.off_hook_min_mv {
            Some(if v >= 0 {
                Polarity::Normal
            } else {
                Polarity::Reversed
            })
        } else {
            None
        };
        let mut out = None;
        if let Some(s) = class {
            if Some(s) != self.state {
                if self.cand != Some(s) {
                    self.cand = Some(s);
                    self.cand_n = 0;
                }
                self.cand_n += 1;
                if self.cand_n >= self.debounce {
                    self.state = Some(s);
                    let at = self.ms(self.n.saturating_sub(self.debounce as u64));
                    out = Some((at, HookEvent::State(s)));
                }
            } else {
                self.cand = None;
                self.cand_n = 0;
            }
        }
        if let Some(p) = pol {
            if Some(p) != self.polarity {
                if self.pcand != Some(p) {
                    self.pcand = Some(p);
                    self.pcand_n = 0;
                }
                self.pcand_n += 1;
                if self.pcand_n >= self.debounce {
                    let first = self.polarity.is_none();
                    self.polarity = Some(p);
                    if !first {
                        let at = self.ms(self.n.saturating_sub(self.debounce as u64));
                        let ev = (at, HookEvent::Reversal(p));
                        if out.is_some() {
                            self.pending = Some(ev);
                        } else {
                            out = Some(ev);
                        }
                    }
                }
            } else {
                self.pcand = None;
                self.pcand_n = 0;
            }
        }
        out
    }
}
