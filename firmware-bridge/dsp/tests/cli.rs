//! The host tool `cid-decode` on synthesized WAV files at 8, 16 and 44.1 kHz.
mod common;
use common::*;
use std::path::PathBuf;
use std::process::Command;

fn write_wav(path: &PathBuf, rate: u32, x: &[f64]) {
    let data: Vec<u8> = x
        .iter()
        .flat_map(|v| (v.round().clamp(-32768.0, 32767.0) as i16).to_le_bytes())
        .collect();
    let mut w = Vec::new();
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes()); // PCM
    w.extend_from_slice(&1u16.to_le_bytes()); // mono
    w.extend_from_slice(&rate.to_le_bytes());
    w.extend_from_slice(&(rate * 2).to_le_bytes());
    w.extend_from_slice(&2u16.to_le_bytes());
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&(data.len() as u32).to_le_bytes());
    w.extend_from_slice(&data);
    std::fs::write(path, w).expect("write wav");
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cid-decode-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir.join(name)
}

fn run(path: &PathBuf) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cid-decode"))
        .arg(path)
        .output()
        .expect("run cid-decode");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn pad(x: &mut Vec<f64>, until_s: f64, fs: f64) {
    let n = (until_s * fs) as usize;
    if x.len() < n {
        x.resize(n, 0.0);
    }
}

/// A recording with a Bell 202 MDMF message at 0.5 s, a V.23 SDMF withheld-number message at 2.5 s and a DTMF
/// caller ID at 4.0 s, over 30 dB SNR noise, then 2 s of speech-like audio.
fn recording(fs: f64) -> Vec<f64> {
    let mut r = Rng::new(fs as u64);
    let mut x = Vec::new();
    pad(&mut x, 0.5, fs);
    x.extend(fsk_signal_at(
        &Fsk::bell202(-12.0),
        &mdmf("12251830", Some("13800138000"), None, Some("WANG \"LI\"")),
        0.0,
        fs,
    ));
    pad(&mut x, 2.5, fs);
    let mut v23 = Fsk::v23(-20.0);
    v23.seizure_bytes = 0;
    x.extend(fsk_signal_at(&v23, &sdmf("01020304", "P"), 1.0, fs));
    pad(&mut x, 4.0, fs);
    for d in "A02787654321C".bytes() {
        x.extend(dtmf_digit_at(&Dtmf::new(-15.0), d, &mut r, fs));
    }
    pad(&mut x, 6.0, fs);
    let sigma = peak(-42.0) / 2f64.sqrt();
    for v in x.iter_mut() {
        *v += sigma * r.gauss();
    }
    // Speech at 8 kHz, repeated to the file's rate (crude, it only needs to be speech-like).
    let sp = speech(2000.0, -15.0, &mut r);
    let k = fs / 8000.0;
    x.extend((0..(2.0 * fs) as usize).map(|i| sp[((i as f64 / k) as usize).min(sp.len() - 1)]));
    x
}

fn check_line(line: &str, at_s: f64, rest: &str) {
    let at: f64 = line
        .strip_prefix("{\"at_s\": ")
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no at_s in {line}"));
    assert!((at - at_s).abs() < 0.05, "at_s {at} != {at_s} in {line}");
    assert!(line.ends_with(rest), "{line}\n  does not end with\n{rest}");
}

#[test]
fn decodes_wav_at_8k_16k_44k1() {
    for rate in [8000u32, 16000, 44100] {
        let path = tmp(&format!("rec-{rate}.wav"));
        write_wav(&path, rate, &recording(rate as f64));
        let (code, out, err) = run(&path);
        assert_eq!(code, 0, "{err}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "rate {rate}: {out}");
        // The mark begins after the 30-byte seizure: 0.5 s + 300 bits / 1200.
        check_line(
            lines[0],
            0.75,
            "\"format\": \"bell202\", \"number\": \"13800138000\", \"name\": \"WANG \\\"LI\\\"\", \
             \"presentation\": \"available\", \"datetime\": \"12251830\", \"checksum_ok\": true}",
        );
        check_line(
            lines[1],
            2.5,
            "\"format\": \"v23\", \"number\": null, \"name\": null, \"presentation\": \"private\", \
             \"datetime\": \"01020304\", \"checksum_ok\": true}",
        );
        check_line(
            lines[2],
            4.0,
            "\"format\": \"dtmf\", \"number\": \"02787654321\", \"name\": null, \"presentation\": \"available\", \
             \"datetime\": null, \"checksum_ok\": true}",
        );
        println!("rate {rate}: ok\n{out}");
    }
}

#[test]
fn nothing_for_audio_without_caller_id() {
    let mut r = Rng::new(5);
    let mut x = noise(3000.0, -30.0, &mut r);
    x.extend(speech(5000.0, -12.0, &mut r));
    let path = tmp("plain.wav");
    write_wav(&path, 8000, &x);
    let (code, out, err) = run(&path);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
}

#[test]
fn clear_error_for_unreadable_files() {
    let garbage = tmp("garbage.wav");
    std::fs::write(&garbage, b"this is not a wav file at all").expect("write");
    let missing = tmp("does-not-exist.wav");
    let low = tmp("low-rate.wav");
    write_wav(&low, 4000, &[0.0; 400]);
    for p in [&garbage, &missing, &low] {
        let (code, out, err) = run(p);
        assert_eq!(code, 1, "{p:?}: {err}");
        assert!(out.is_empty());
        assert!(
            err.contains(&p.display().to_string()),
            "names the file: {err}"
        );
        assert!(err.contains("mono PCM WAV"), "says what to do: {err}");
    }
    let (code, _, err) = {
        let out = Command::new(env!("CARGO_BIN_EXE_cid-decode"))
            .output()
            .expect("run");
        (
            out.status.code(),
            (),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(code, Some(2));
    assert!(err.contains("usage"));
}
