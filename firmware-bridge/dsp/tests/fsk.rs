//! FSK caller ID (Bell 202, V.23) against synthesized waveforms.
mod common;
use common::*;
use linekeeper_dsp::{CidFormat, Presentation};

/// One trial: a random MDMF message in `p`, with noise at `snr_db` (None: clean), framed by silence; returns
/// whether exactly that caller ID came out, with the right format, fields and checksum.
fn trial(p: &Fsk, snr_db: Option<f64>, want: CidFormat, r: &mut Rng) -> bool {
    let (dt, num, name) = random_caller(r);
    let msg = mdmf(&dt, Some(&num), None, Some(&name));
    let lead = r.range(100.0, 300.0);
    let mut x = silence(lead);
    let sig = fsk_signal(p, &msg, r.range(0.0, std::f64::consts::TAU));
    let sp = power(&sig);
    x.extend(sig);
    x.extend(silence(200.0));
    if let Some(snr) = snr_db {
        add_noise(&mut x, sp, snr, r);
    }
    let ids = caller_ids(&decode(&x));
    if ids.len() != 1 {
        return false;
    }
    let (at, c) = &ids[0];
    let at_ok = (*at as f64 - lead).abs() < 60.0;
    c.format == want
        && c.checksum_ok
        && c.number.as_deref() == Some(num.as_str())
        && c.name.as_deref() == Some(name.as_str())
        && c.datetime_str() == Some(dt.as_str())
        && c.presentation == Presentation::Available
        && at_ok
}

fn rate(
    what: &str,
    n: usize,
    min_pct: f64,
    mut mk: impl FnMut(&mut Rng) -> (Fsk, Option<f64>, CidFormat),
) {
    let mut r = Rng::new(0x5EED ^ what.len() as u64);
    let ok = (0..n)
        .filter(|_| {
            let (p, snr, want) = mk(&mut r);
            trial(&p, snr, want, &mut r)
        })
        .count();
    require_rate(what, ok, n, min_pct);
}

#[test]
fn bell202_clean_levels_minus40_to_minus5() {
    // >= 100 % of 100 clean messages at levels drawn from -40 .. -5 dBm.
    rate("bell202 clean -40..-5 dBm", 100, 100.0, |r| {
        (Fsk::bell202(r.range(-40.0, -5.0)), None, CidFormat::Bell202)
    });
}

#[test]
fn v23_clean_levels_minus40_to_minus5() {
    rate("v23 clean -40..-5 dBm", 100, 100.0, |r| {
        (Fsk::v23(r.range(-40.0, -5.0)), None, CidFormat::V23)
    });
}

#[test]
fn bell202_20db_snr_freq_error() {
    // >= 99 % of 200 messages at 20 dB SNR, +/-1.5 % tone error, +/-1 % bit-rate error, -40 .. -5 dBm.
    rate("bell202 20 dB SNR +/-1.5 %", 200, 99.0, |r| {
        let mut p = Fsk::bell202(r.range(-40.0, -5.0));
        p.freq_err = r.range(-0.015, 0.015);
        p.baud_err = r.range(-0.01, 0.01);
        (p, Some(20.0), CidFormat::Bell202)
    });
}

#[test]
fn v23_20db_snr_freq_error() {
    rate("v23 20 dB SNR +/-1.5 %", 200, 99.0, |r| {
        let mut p = Fsk::v23(r.range(-40.0, -5.0));
        p.freq_err = r.range(-0.015, 0.015);
        p.baud_err = r.range(-0.01, 0.01);
        p.seizure_bytes = 0; // ETSI after a polarity reversal: mark only
        (p, Some(20.0), CidFormat::V23)
    });
}
