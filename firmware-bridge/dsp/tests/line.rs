//! Ring cadence and hook state from synthesized line voltages (mV).
mod common;
use common::Rng;
use linekeeper_dsp::{
    Cadence, Config, Event, HookState, LineProcessor, Polarity, RingConfig, Timed,
};
use std::f64::consts::PI;

/// Builds a voltage waveform at `rate` Hz, piece by piece.
struct Line {
    rate: f64,
    v: Vec<f64>,
    phase: f64,
}

impl Line {
    fn new(rate: f64) -> Self {
        Line {
            rate,
            v: Vec::new(),
            phase: 0.0,
        }
    }
    fn dc(&mut self, mv: f64, ms: f64) -> &mut Self {
        let n = (ms * self.rate / 1000.0) as usize;
        self.v.extend(std::iter::repeat_n(mv, n));
        self
    }
    fn ring(&mut self, dc_mv: f64, vrms: f64, hz: f64, ms: f64) -> &mut Self {
        let n = (ms * self.rate / 1000.0) as usize;
        for _ in 0..n {
            self.phase += 2.0 * PI * hz / self.rate;
            self.v.push(dc_mv + vrms * 1414.2 * self.phase.sin());
        }
        self
    }
    /// Adds noise (mV rms) and 50 Hz hum (mV peak).
    fn dirty(&mut self, noise_mv: f64, hum_mv: f64, r: &mut Rng) -> &mut Self {
        for (i, v) in self.v.iter_mut().enumerate() {
            *v += noise_mv * r.gauss() + hum_mv * (2.0 * PI * 50.0 * i as f64 / self.rate).sin();
        }
        self
    }
    fn run(&self, cfg: Config) -> Vec<Timed> {
        let mut lp = LineProcessor::new(cfg);
        let mut out = Vec::new();
        let s: Vec<i32> = self.v.iter().map(|&v| v.round() as i32).collect();
        for blk in s.chunks(64) {
            lp.process_voltage(blk, |t| out.push(t));
        }
        out
    }
}

fn cfg_rate(rate: u32, cadence: Cadence) -> Config {
    Config {
        ring: RingConfig {
            rate_hz: rate,
            cadence,
            ..RingConfig::default()
        },
        ..Config::default()
    }
}

fn rings(ev: &[Timed]) -> Vec<(u64, u32, bool)> {
    let mut starts = ev
        .iter()
        .filter(|t| t.event == Event::RingStart)
        .map(|t| t.at_ms);
    ev.iter()
        .filter_map(|t| match t.event {
            Event::RingStop { on_ms, cadence_ok } => {
                Some((starts.next().unwrap_or(u64::MAX), on_ms, cadence_ok))
            }
            _ => None,
        })
        .collect()
}

fn hooks(ev: &[Timed]) -> Vec<(u64, HookState)> {
    ev.iter()
        .filter_map(|t| match t.event {
            Event::Hook(s) => Some((t.at_ms, s)),
            _ => None,
        })
        .collect()
}

#[test]
fn china_cadence_three_rings() {
    // >= 100 % of 60 ring sequences (3 rings, 1 s on / 4 s off), ringing 16..60 Hz, 45..90 V rms, on 0 or 48 V DC,
    // with 1 V noise and 2 V hum, at 8 kHz and 1 kHz voltage sampling: 3 starts, 3 stops with on-time within
    // 120 ms and cadence_ok, one RingEnd{3}, and the hook state stays on-hook throughout.
    let mut r = Rng::new(21);
    let n = 60;
    let mut ok = 0;
    for i in 0..n {
        let rate = if i % 2 == 0 { 8000.0 } else { 1000.0 };
        let hz = r.range(16.0, 60.0);
        let vrms = r.range(45.0, 90.0);
        let dc = if i % 3 == 0 { 0.0 } else { 48_000.0 };
        let mut l = Line::new(rate);
        l.dc(48_000.0, 1000.0);
        let mut starts = Vec::new();
        for _ in 0..3 {
            starts.push((l.v.len() as f64 * 1000.0 / rate) as u64);
            l.ring(dc, vrms, hz, 1000.0).dc(48_000.0, 4000.0);
        }
        l.dc(48_000.0, 2000.0).dirty(1000.0, 2000.0, &mut r);
        let ev = l.run(cfg_rate(rate as u32, Cadence::CHINA));
        let rg = rings(&ev);
        let good = rg.len() == 3
            && rg.iter().zip(&starts).all(|(&(at, on, cad), &s)| {
                (at as i64 - s as i64).abs() < 120 && (on as i64 - 1000).abs() < 120 && cad
            })
            && ev
                .iter()
                .filter(|t| t.event == Event::RingEnd { rings: 3 })
                .count()
                == 1
            && hooks(&ev) == vec![(0, HookState::OnHook)];
        if !good && ok == i {
            println!(
                "first failure {i}: rate {rate} hz {hz:.1} vrms {vrms:.0} dc {dc}: {rg:?} {:?}",
                hooks(&ev)
            );
        }
        ok += good as usize;
    }
    common::require_rate("ring cadence china", ok, n, 100.0);
}

#[test]
fn uk_double_ring_and_wrong_cadence() {
    let mut l = Line::new(8000.0);
    l.dc(50_000.0, 500.0);
    for _ in 0..2 {
        l.ring(50_000.0, 75.0, 25.0, 400.0)
            .dc(50_000.0, 200.0)
            .ring(50_000.0, 75.0, 25.0, 400.0)
            .dc(50_000.0, 2000.0);
    }
    let rg = rings(&l.run(cfg_rate(8000, Cadence::UK)));
    assert_eq!(rg.len(), 4, "{rg:?}");
    assert!(
        rg.iter()
            .all(|&(_, on, cad)| (on as i64 - 400).abs() < 100 && cad),
        "{rg:?}"
    );
    // The same line judged against the China cadence: not ok.
    let rg = rings(&l.run(cfg_rate(8000, Cadence::CHINA)));
    assert!(rg.iter().all(|&(_, _, cad)| !cad), "{rg:?}");
    // US 2 s rings against China: not ok either.
    let mut l = Line::new(8000.0);
    l.dc(48_000.0, 500.0)
        .ring(48_000.0, 80.0, 20.0, 2000.0)
        .dc(48_000.0, 1000.0);
    let rg = rings(&l.run(cfg_rate(8000, Cadence::CHINA)));
    assert_eq!(rg.len(), 1);
    assert!(!rg[0].2 && (rg[0].1 as i64 - 2000).abs() < 120, "{rg:?}");
}

#[test]
fn transients_are_not_rings() {
    // 100 random transient trains: polarity reversals, hook flashes, 1 ms spikes of up to 200 V, ring bursts of
    // 30..100 ms. ZERO ring starts; every reversal reported.
    let mut r = Rng::new(22);
    let mut false_rings = 0;
    let mut missed_reversals = 0;
    for _ in 0..100 {
        let mut l = Line::new(8000.0);
        let mut pol = 1.0;
        let mut reversals = 0;
        l.dc(48_000.0, 500.0);
        for _ in 0..6 {
            match r.below(4) {
                0 => {
                    pol = -pol;
                    reversals += 1;
                    l.dc(48_000.0 * pol, 600.0);
                }
                1 => {
                    l.dc(6_000.0 * pol, r.range(80.0, 400.0))
                        .dc(48_000.0 * pol, 600.0);
                }
                2 => {
                    let spike = r.range(-200_000.0, 200_000.0);
                    l.dc(spike, 1.0).dc(48_000.0 * pol, 600.0);
                }
                _ => {
                    l.ring(48_000.0 * pol, 80.0, 25.0, r.range(30.0, 100.0))
                        .dc(48_000.0 * pol, 600.0);
                }
            }
        }
        l.dirty(500.0, 1000.0, &mut r);
        let ev = l.run(Config::default());
        false_rings += ev.iter().filter(|t| t.event == Event::RingStart).count();
        let got = ev
            .iter()
            .filter(|t| matches!(t.event, Event::PolarityReversal(_)))
            .count();
        missed_reversals += reversals - got.min(reversals);
    }
    println!("RATE transients: {false_rings} false rings, {missed_reversals} missed reversals");
    assert_eq!(false_rings, 0);
    assert_eq!(missed_reversals, 0);
}

#[test]
fn hook_states_with_bounce_noise_and_reversal() {
    let mut r = Rng::new(23);
    let mut l = Line::new(8000.0);
    l.dc(48_000.0, 500.0);
    // Off-hook with 20 ms of contact bounce.
    for _ in 0..4 {
        l.dc(6_000.0, 3.0).dc(48_000.0, 2.0);
    }
    l.dc(6_000.0, 1000.0);
    // Exchange reverses polarity on answer while off-hook.
    l.dc(-6_000.0, 1000.0);
    // Back on-hook (reversed idle), then line cut, then restored.
    l.dc(-48_000.0, 1000.0).dc(0.0, 1000.0).dc(48_000.0, 1000.0);
    l.dirty(300.0, 800.0, &mut r);
    let ev = l.run(Config::default());
    let h = hooks(&ev);
    let states: Vec<HookState> = h.iter().map(|x| x.1).collect();
    assert_eq!(
        states,
        vec![
            HookState::OnHook,
            HookState::OffHook,
            HookState::OnHook,
            HookState::LineLost,
            HookState::OnHook
        ],
        "{h:?}"
    );
    // Off-hook reported within 120 ms of the first bounce (at 500 ms).
    assert!(h[1].0 >= 500 && h[1].0 < 620, "{h:?}");
    let rev: Vec<Polarity> = ev
        .iter()
        .filter_map(|t| match t.event {
            Event::PolarityReversal(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(rev, vec![Polarity::Reversed, Polarity::Normal], "{ev:?}");
}

#[test]
fn ring_trip_goes_off_hook() {
    // Answered during a ring: ringing stops, the line drops to off-hook voltage.
    let mut l = Line::new(8000.0);
    l.dc(48_000.0, 500.0)
        .ring(48_000.0, 80.0, 25.0, 600.0)
        .dc(7_000.0, 1000.0);
    let ev = l.run(Config::default());
    let rg = rings(&ev);
    assert_eq!(rg.len(), 1);
    assert!(!rg[0].2, "a 600 ms ring is not the China cadence");
    assert_eq!(
        hooks(&ev).iter().map(|x| x.1).collect::<Vec<_>>(),
        vec![HookState::OnHook, HookState::OffHook]
    );
}
