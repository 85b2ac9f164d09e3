//! DTMF digits and DTMF caller ID against synthesized waveforms.
mod common;
use common::*;
use linekeeper_dsp::{Config, Event, LineProcessor, Presentation};

fn one_digit(r: &mut Rng, p: &Dtmf, snr_db: f64) -> (u8, String) {
    let d = KEYS[r.below(16) as usize];
    let mut x = silence(r.range(20.0, 80.0));
    let tone = dtmf_digit(p, d, r);
    let sp = peak(p.level_dbm).powi(2) / 2.0;
    x.extend(tone);
    x.extend(silence(50.0));
    add_noise(&mut x, sp, snr_db, r);
    (d, digits(&decode(&x)))
}

#[test]
fn digits_levels_twist_freq_error_noise() {
    // >= 99 % of 500 single digits (all 16 keys), -40 .. -5 dBm per tone, twist -6 .. +4 dB, +/-1.5 % frequency
    // error, 50 ms tones, 20 dB SNR (relative to the low-group tone).
    let mut r = Rng::new(11);
    let n = 500;
    let mut ok = 0;
    for _ in 0..n {
        let mut p = Dtmf::new(r.range(-40.0, -5.0));
        p.twist_db = r.range(-6.0, 4.0);
        p.freq_err = r.range(-0.015, 0.015);
        p.on_ms = 50.0;
        let (d, got) = one_digit(&mut r, &p, 20.0);
        if got == (d as char).to_string() {
            ok += 1;
        }
    }
    require_rate(
        "dtmf digits -40..-5 dBm, twist -6..+4 dB, +/-1.5 %, 20 dB SNR",
        ok,
        n,
        99.0,
    );
}

#[test]
fn fast_sequences_40ms() {
    // 40 ms tones with 40 ms pauses (the ITU minimum): >= 98 % of 100 ten-digit strings exactly right, -25 dBm,
    // 25 dB SNR.
    let mut r = Rng::new(12);
    let n = 100;
    let mut ok = 0;
    for _ in 0..n {
        let s: String = (0..10)
            .map(|_| KEYS[r.below(16) as usize] as char)
            .collect();
        let mut p = Dtmf::new(-25.0);
        p.on_ms = 40.0;
        p.off_ms = 40.0;
        let mut x = silence(30.0);
        x.extend(dtmf_string(&p, &s, &mut r));
        let sp = peak(-25.0).powi(2) / 2.0;
        add_noise(&mut x, sp, 25.0, &mut r);
        if digits(&decode(&x)) == s {
            ok += 1;
        }
    }
    require_rate("dtmf 40/40 ms strings", ok, n, 98.0);
}

#[test]
fn rejects_excess_twist_and_single_tones() {
    // Twist of 12 dB either way, or one tone alone: >= 99 % of 200 rejected.
    let mut r = Rng::new(13);
    let n = 200;
    let mut rejected = 0;
    for i in 0..n {
        let mut p = Dtmf::new(-15.0);
        p.twist_db = match i % 4 {
            0 => 12.0,
            1 => -12.0,
            2 => 60.0,  // column tone alone (row 60 dB down)
            _ => -60.0, // row tone alone
        };
        if i % 4 >= 2 {
            p.level_dbm = if i % 4 == 2 { -75.0 } else { -15.0 };
        }
        let (_, got) = one_digit(&mut r, &p, 30.0);
        if got.is_empty() {
            rejected += 1;
        }
    }
    require_rate(
        "dtmf excess twist / single tone rejected",
        rejected,
        n,
        99.0,
    );
}

#[test]
fn digits_on_speech_are_rare() {
    // 10 minutes of speech-like audio at -30 .. -8 dBm: at most 10 false digits (talk-off), reported.
    let mut r = Rng::new(14);
    let mut false_digits = 0;
    for _ in 0..60 {
        let x = speech(10_000.0, r.range(-30.0, -8.0), &mut r);
        false_digits += digits(&decode(&x)).len();
    }
    println!("RATE dtmf talk-off: {false_digits} false digits in 10 min of speech-like audio (allowed <= 10)");
    assert!(false_digits <= 10);
}

fn cid_trial(r: &mut Rng, seq: &str, snr: f64) -> Vec<(u64, linekeeper_dsp::CallerId)> {
    let mut p = Dtmf::new(r.range(-30.0, -8.0));
    p.twist_db = r.range(-3.0, 2.0);
    p.freq_err = r.range(-0.01, 0.01);
    p.on_ms = r.range(50.0, 80.0);
    p.off_ms = r.range(50.0, 80.0);
    let mut x = silence(300.0);
    x.extend(dtmf_string(&p, seq, r));
    x.extend(silence(500.0));
    let sp = peak(p.level_dbm).powi(2) / 2.0;
    add_noise(&mut x, sp, snr, r);
    caller_ids(&decode(&x))
}

#[test]
fn dtmf_caller_id_variants() {
    // >= 99 % of 200 DTMF caller IDs (variants 1, 2, 3, random numbers) at 20 dB SNR, -30 .. -8 dBm.
    let mut r = Rng::new(15);
    let n = 200;
    let mut ok = 0;
    for i in 0..n {
        let num: String = (0..(6 + r.below(8)))
            .map(|_| char::from(b'0' + r.below(10) as u8))
            .collect();
        let seq = match i % 3 {
            0 => format!("A{num}C"),
            1 => format!("A{num}#"),
            _ => format!("D{num}C"),
        };
        let ids = cid_trial(&mut r, &seq, 20.0);
        if ids.len() == 1
            && ids[0].1.number.as_deref() == Some(num.as_str())
            && ids[0].1.format == linekeeper_dsp::CidFormat::Dtmf
            && (ids[0].0 as i64 - 300).abs() < 30
        {
            ok += 1;
        }
    }
    require_rate("dtmf caller id variants 1-3 at 20 dB SNR", ok, n, 99.0);
}

#[test]
fn dtmf_caller_id_presentation_codes() {
    let mut r = Rng::new(16);
    for (seq, pres) in [
        ("D1#", Presentation::Private),
        ("D3#", Presentation::Unavailable),
        ("AB10C", Presentation::Private),
        ("AB00C", Presentation::Unavailable),
    ] {
        let ids = cid_trial(&mut r, seq, 30.0);
        assert_eq!(ids.len(), 1, "{seq}");
        assert_eq!(ids[0].1.presentation, pres, "{seq}");
        assert!(ids[0].1.number.is_none());
    }
    let ids = cid_trial(&mut r, "A0123456D7654B10C", 30.0);
    assert_eq!(ids[0].1.number.as_deref(), Some("0123456"));
}

#[test]
fn dialled_digits_off_hook_are_not_caller_id() {
    // Off-hook (line at 8 V), the subscriber dials "A123C": digits yes, caller ID no.
    let mut lp = LineProcessor::new(Config::default());
    let mut ev = Vec::new();
    lp.process_voltage(&vec![8_000; 4000], |t| ev.push(t));
    let mut r = Rng::new(17);
    let x = to_i16(&dtmf_string(&Dtmf::new(-10.0), "A123C", &mut r));
    lp.process_audio(&x, |t| ev.push(t));
    assert!(ev
        .iter()
        .any(|t| t.event == Event::Hook(linekeeper_dsp::HookState::OffHook)));
    assert_eq!(digits(&ev), "A123C");
    assert!(caller_ids(&ev).is_empty());
}
