//! Any input stream never panics (run this in debug too: overflow checks are on there).
use linekeeper_dsp::cid::{self, CidFormat};
use linekeeper_dsp::dtmf_cid::DtmfCidParser;
use linekeeper_dsp::{Cadence, Config, FskMode, LineProcessor, RingConfig};
use proptest::prelude::*;

fn tone_stream(seed: u64, len: usize) -> Vec<i16> {
    // Bursts of full-scale tones, square waves and silence, picked by a tiny LCG: exercises the FSK and DTMF
    // state machines far more than uniform noise does.
    let mut s = seed | 1;
    let mut out = Vec::with_capacity(len);
    let mut ph: u32 = 0;
    while out.len() < len {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let f = [1200u32, 2200, 1300, 2100, 697, 1209, 941, 1633, 4000, 0][(s >> 33) as usize % 10];
        let n = 1 + (s >> 45) as usize % 400;
        let amp = ((s >> 20) % 32768) as i32;
        for _ in 0..n {
            ph = ph.wrapping_add(f.wrapping_mul(536_871));
            let v = if (s >> 19) & 1 == 1 {
                (linekeeper_dsp::tables::sin_q15(ph) * amp) >> 15
            } else if ph & 0x8000_0000 != 0 {
                amp
            } else {
                -amp
            };
            out.push(v.clamp(-32768, 32767) as i16);
        }
    }
    out.truncate(len);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn audio_never_panics(samples in proptest::collection::vec(any::<i16>(), 0..20_000), blk in 1usize..500,
                          mode in 0u8..3) {
        let cfg = Config {
            fsk_mode: [FskMode::Auto, FskMode::Bell202, FskMode::V23][mode as usize],
            dtmf_cid_bare: blk % 2 == 0,
            ..Config::default()
        };
        let mut lp = LineProcessor::new(cfg);
        for b in samples.chunks(blk) {
            lp.process_audio(b, |_| {});
        }
    }

    #[test]
    fn tone_bursts_never_panic(seed in any::<u64>(), len in 0usize..60_000) {
        let mut lp = LineProcessor::new(Config::default());
        let x = tone_stream(seed, len);
        lp.process_audio(&x, |_| {});
        let _ = lp.last_fsk_raw();
    }

    #[test]
    fn voltage_never_panics(mv in proptest::collection::vec(any::<i32>(), 0..20_000), rate in 0u32..40_000,
                            blk in 1usize..300) {
        let cfg = Config {
            ring: RingConfig { rate_hz: rate, cadence: Cadence::UK, ..RingConfig::default() },
            ..Config::default()
        };
        let mut lp = LineProcessor::new(cfg);
        for b in mv.chunks(blk) {
            lp.process_voltage(b, |_| {});
        }
    }

    #[test]
    fn message_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = cid::parse(CidFormat::Bell202, &bytes);
        // And a well-framed message with random content.
        if bytes.len() >= 2 {
            let mut m = vec![bytes[0] & 0x86, (bytes.len() - 2) as u8];
            m.extend_from_slice(&bytes[2..]);
            m.push(cid::checksum_for(&m));
            let _ = cid::parse(CidFormat::V23, &m);
        }
    }

    #[test]
    fn dtmf_cid_parser_never_panics(d in proptest::collection::vec(0usize..16, 0..200), gaps in any::<u64>()) {
        let keys = b"0123456789*#ABCD";
        let mut p = DtmfCidParser::new(gaps % 2 == 0, 500);
        let mut t = 0u64;
        for (i, k) in d.iter().enumerate() {
            t += (gaps >> (i % 60)) % 900;
            let _ = p.push(t, keys[*k]);
        }
    }
}
