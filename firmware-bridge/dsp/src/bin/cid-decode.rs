//! `cid-decode FILE.wav`: runs the bridge's caller-ID decoding on a recording and prints one JSON object per
//! caller-ID message found (nothing for audio without caller ID).
//!
//! Input: a mono PCM WAV (8, 16, 24 or 32-bit integer, or 32-bit float) at 8 kHz or more; other rates are
//! resampled to 8 kHz (windowed-sinc, 3.6 kHz cut-off) before the same fixed-point code the firmware runs.
//!
//! Output lines: `{"at_s": 1.234, "format": "bell202" | "v23" | "dtmf", "number": "..." | null, "name": "..." |
//! null, "presentation": "available" | "private" | "unavailable", "datetime": "MMDDHHMM" | null,
//! "checksum_ok": true}`. `at_s` is where the signal of the message began (FSK: the mark before the message;
//! DTMF: the first digit).
//!
//! Options: `--fsk auto|bell202|v23` (default auto), `--dtmf-bare` (also accept DTMF `<number>#`).
//! Exit status: 0 decoded (even if nothing was found), 1 the file could not be read, 2 bad arguments.

use linekeeper_dsp::{CallerId, Config, Event, FskMode, LineProcessor};
use std::f64::consts::PI;
use std::process::ExitCode;

const USAGE: &str = "usage: cid-decode [--fsk auto|bell202|v23] [--dtmf-bare] FILE.wav";

fn main() -> ExitCode {
    let mut cfg = Config::default();
    let mut file = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--fsk" => {
                cfg.fsk_mode = match args.next().as_deref() {
                    Some("auto") => FskMode::Auto,
                    Some("bell202") => FskMode::Bell202,
                    Some("v23") => FskMode::V23,
                    other => {
                        eprintln!(
                            "cid-decode: --fsk wants auto, bell202 or v23, not {other:?}\n{USAGE}"
                        );
                        return ExitCode::from(2);
                    }
                }
            }
            "--dtmf-bare" => cfg.dtmf_cid_bare = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ if a.starts_with("--") => {
                eprintln!("cid-decode: unknown option {a}\n{USAGE}");
                return ExitCode::from(2);
            }
            _ if file.is_none() => file = Some(a),
            _ => {
                eprintln!("cid-decode: one file at a time ({a} is extra)\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(file) = file else {
        eprintln!("cid-decode: no file given\n{USAGE}");
        return ExitCode::from(2);
    };
    let (rate, samples) = match read_wav(&file) {
        Ok(v) => v,
        Err(e) => {
            eprintln!(
                "cid-decode: cannot read {file}: {e}.\n  Give a mono PCM WAV recording at 8 kHz or more, e.g. convert \
                 with `sox IN -c 1 -b 16 -r 8000 OUT.wav`."
            );
            return ExitCode::from(1);
        }
    };
    let audio = resample_to_8k(&samples, rate);
    let pcm: Vec<i16> = audio
        .iter()
        .map(|v| v.round().clamp(-32768.0, 32767.0) as i16)
        .collect();
    let mut lp = LineProcessor::new(cfg);
    let mut out = String::new();
    for blk in pcm.chunks(160) {
        lp.process_audio(blk, |t| {
            if let Event::CallerId(c) = &t.event {
                out.push_str(&json_line(t.at_ms, c));
                out.push('\n');
            }
        });
    }
    print!("{out}");
    ExitCode::SUCCESS
}

/// Reads a mono WAV into samples scaled to i16 full scale.
fn read_wav(path: &str) -> Result<(u32, Vec<f64>), String> {
    let mut r = hound::WavReader::open(path).map_err(|e| match e {
        hound::Error::IoError(io) => io.to_string(),
        other => format!("not a readable WAV file ({other})"),
    })?;
    let spec = r.spec();
    if spec.channels != 1 {
        return Err(format!("it has {} channels, mono is needed", spec.channels));
    }
    if spec.sample_rate < 8000 {
        return Err(format!(
            "its sample rate is {} Hz, at least 8000 Hz is needed",
            spec.sample_rate
        ));
    }
    let v: Result<Vec<f64>, hound::Error> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => r
            .samples::<f32>()
            .map(|s| s.map(|v| v as f64 * 32768.0))
            .collect(),
        (hound::SampleFormat::Int, b @ 8..=32) => {
            let scale = 32768.0 / (1u64 << (b - 1)) as f64;
            r.samples::<i32>()
                .map(|s| s.map(|v| v as f64 * scale))
                .collect()
        }
        (f, b) => {
            return Err(format!(
                "its sample format ({f:?}, {b} bits) is not supported"
            ))
        }
    };
    let v = v.map_err(|e| format!("the audio data is damaged ({e})"))?;
    Ok((spec.sample_rate, v))
}

/// Windowed-sinc resampling to 8 kHz (identity at 8 kHz).
fn resample_to_8k(x: &[f64], rate: u32) -> Vec<f64> {
    if rate == 8000 {
        return x.to_vec();
    }
    let ratio = rate as f64 / 8000.0;
    let fc = 3600.0 / rate as f64; // cut-off, cycles per input sample
    let half = (16.0 * ratio).ceil() as i64;
    let n_out = (x.len() as f64 / ratio) as usize;
    (0..n_out)
        .map(|m| {
            let t = m as f64 * ratio;
            let c = t.floor() as i64;
            let mut acc = 0.0;
            for k in (c - half + 1)..=(c + half) {
                if k < 0 || k as usize >= x.len() {
                    continue;
                }
                let d = t - k as f64;
                let w = 0.5 + 0.5 * (PI * d / half as f64).cos();
                let s = if d.abs() < 1e-12 {
                    2.0 * fc
                } else {
                    (2.0 * PI * fc * d).sin() / (PI * d)
                };
                acc += x[k as usize] * s * w;
            }
            acc
        })
        .collect()
}

fn json_str(s: Option<&str>) -> String {
    match s {
        None => "null".to_string(),
        Some(s) => {
            let mut o = String::from("\"");
            for ch in s.chars() {
                match ch {
                    '"' => o.push_str("\\\""),
                    '\\' => o.push_str("\\\\"),
                    c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
                    c => o.push(c),
                }
            }
            o.push('"');
            o
        }
    }
}

fn json_line(at_ms: u64, c: &CallerId) -> String {
    format!(
        "{{\"at_s\": {:.3}, \"format\": \"{}\", \"number\": {}, \"name\": {}, \"presentation\": \"{}\", \"datetime\": {}, \
         \"checksum_ok\": {}}}",
        at_ms as f64 / 1000.0,
        c.format.as_str(),
        json_str(c.number.as_deref()),
        json_str(c.name.as_deref()),
        c.presentation.as_str(),
        json_str(c.datetime_str()),
        c.checksum_ok
    )
}
