//! CAS (2130 + 2750 Hz alerting signal before caller ID on call waiting).
mod common;
use common::*;
use linekeeper_dsp::{Event, Timed};
use std::f64::consts::TAU;

fn cas(ms: f64, dbm: f64, twist_db: f64, err: f64, r: &mut Rng) -> Vec<f64> {
    let (a, b) = (peak(dbm), peak(dbm + twist_db));
    let (p, q) = (r.range(0.0, TAU), r.range(0.0, TAU));
    (0..(ms * 8.0) as usize)
        .map(|n| {
            let t = n as f64 / 8000.0;
            a * (TAU * 2130.0 * (1.0 + err) * t + p).sin()
                + b * (TAU * 2750.0 * (1.0 + err) * t + q).sin()
        })
        .collect()
}

fn cas_events(ev: &[Timed]) -> Vec<(u64, u32)> {
    ev.iter()
        .filter_map(|t| match t.event {
            Event::CasTone { ms } => Some((t.at_ms, ms)),
            _ => None,
        })
        .collect()
}

#[test]
fn cas_detected_levels_twist_noise() {
    // >= 99 % of 200 tones of 80 .. 110 ms, -40 .. -10 dBm per tone, twist +/-3 dB, +/-1 % frequency error,
    // 20 dB SNR; reported once, at the tone's start (+/-20 ms).
    let mut r = Rng::new(31);
    let n = 200;
    let mut ok = 0;
    for _ in 0..n {
        let lead = r.range(50.0, 150.0);
        let lvl = r.range(-40.0, -10.0);
        let mut x = silence(lead);
        x.extend(cas(
            r.range(80.0, 110.0),
            lvl,
            r.range(-3.0, 3.0),
            r.range(-0.01, 0.01),
            &mut r,
        ));
        x.extend(silence(100.0));
        add_noise(&mut x, peak(lvl).powi(2) / 2.0, 20.0, &mut r);
        let c = cas_events(&decode(&x));
        ok += (c.len() == 1 && (c[0].0 as f64 - lead).abs() < 20.0) as usize;
    }
    require_rate("cas 80..110 ms, -40..-10 dBm, 20 dB SNR", ok, n, 99.0);
}

#[test]
fn cas_over_speech() {
    // Call waiting happens during a conversation: CAS at -20 dBm over speech-like audio at -26 dBm: >= 95 % of 100.
    let mut r = Rng::new(32);
    let n = 100;
    let mut ok = 0;
    for _ in 0..n {
        let mut x = silence(200.0);
        x.extend(cas(95.0, -20.0, 0.0, 0.0, &mut r));
        x.extend(silence(200.0));
        let s = speech(x.len() as f64 / 8.0, -26.0, &mut r);
        for (a, b) in x.iter_mut().zip(s) {
            *a += b;
        }
        ok += (cas_events(&decode(&x)).len() == 1) as usize;
    }
    require_rate("cas over speech 6 dB below", ok, n, 95.0);
}

#[test]
fn no_cas_from_speech_dtmf_fsk_or_long_tones() {
    // 10 min of speech-like audio, 200 DTMF digits, FSK messages, and 2130 + 2750 Hz held for 500 ms (too long):
    // ZERO CAS reports.
    let mut r = Rng::new(33);
    let mut false_cas = 0;
    for _ in 0..60 {
        false_cas += cas_events(&decode(&speech(10_000.0, r.range(-30.0, -8.0), &mut r))).len();
    }
    let digits: String = (0..200)
        .map(|_| KEYS[r.below(16) as usize] as char)
        .collect();
    false_cas += cas_events(&decode(&dtmf_string(&Dtmf::new(-10.0), &digits, &mut r))).len();
    for _ in 0..10 {
        let (dt, num, name) = random_caller(&mut r);
        let x = fsk_signal(
            &Fsk::bell202(-10.0),
            &mdmf(&dt, Some(&num), None, Some(&name)),
            0.0,
        );
        false_cas += cas_events(&decode(&x)).len();
    }
    let mut x = cas(500.0, -15.0, 0.0, 0.0, &mut r);
    x.extend(silence(100.0));
    false_cas += cas_events(&decode(&x)).len();
    println!("RATE false CAS: {false_cas} (required 0)");
    assert_eq!(false_cas, 0);
}
