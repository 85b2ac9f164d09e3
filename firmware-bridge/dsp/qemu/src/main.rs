//! The linekeeper-dsp detection tests on a Cortex-M3 (qemu lm3s6965evb) or a Cortex-M0 (qemu microbit; ARMv6-M,
//! the RP2040's instruction set), with instructions per sample.
//!
//! Run with `cargo run --release` (Cortex-M3) or `cargo run --release --target thumbv6m-none-eabi` (Cortex-M0)
//! from this folder (the runners in `.cargo/config.toml` start qemu with
//! `-icount shift=0`, one instruction per ns of virtual time; SysTick, calibrated against a loop of known length,
//! then counts instructions). Prints `RATE` and `PERF` lines; exits with status 1 when a required figure is not
//! met, 0 when all are.

#![no_std]
#![no_main]

mod synth;

use core::fmt::Write as _;
use cortex_m::peripheral::{syst::SystClkSource, SYST};
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use linekeeper_dsp::cid::{checksum_for, MAX_MESSAGE};
use linekeeper_dsp::{CidFormat, Config, Event, LineProcessor, Timed};
use synth::{sigma_for, DtmfGen, FskGen, Rng, Speech, PEAK_DBM};

/// RP2040 at 125 MHz, 8 kHz: cycles per sample.
const BUDGET: u32 = 15_625;
/// Cycles per instruction allowed for the Cortex-M0+ (Thumb-1 needs more instructions, loads and branches take two
/// cycles): the measured Cortex-M3 instruction count times this must stay under 25 % of the budget.
const CPI_ALLOWANCE: u32 = 2;

const BLOCK: usize = 80;

struct Meter {
    syst: SYST,
    ticks: u64,
    samples: u64,
    worst_block: u32,
}

impl Meter {
    fn now(&self) -> u32 {
        SYST::get_current()
    }
    fn since(&self, start: u32) -> u32 {
        start.wrapping_sub(SYST::get_current()) & 0x00FF_FFFF
    }
}

#[inline(never)]
fn spin(n: u32) {
    // Two instructions per iteration.
    unsafe {
        core::arch::asm!("1:", "subs r0, #1", "bne 1b", inout("r0") n => _, options(nomem, nostack));
    }
}

/// Runs `src` through `lp` in blocks, timing only the decoder; returns events in `out`.
fn run(
    lp: &mut LineProcessor,
    m: &mut Meter,
    mut src: impl FnMut() -> Option<i32>,
    out: &mut heapless::Vec<Timed, 16>,
) {
    let mut buf = [0i16; BLOCK];
    loop {
        let mut n = 0;
        while n < BLOCK {
            match src() {
                Some(v) => {
                    buf[n] = v.clamp(-32768, 32767) as i16;
                    n += 1;
                }
                None => break,
            }
        }
        if n == 0 {
            return;
        }
        let t0 = m.now();
        lp.process_audio(&buf[..n], |t| {
            let _ = out.push(t);
        });
        let dt = m.since(t0);
        m.ticks += dt as u64;
        m.samples += n as u64;
        if n == BLOCK {
            m.worst_block = m.worst_block.max(dt);
        }
        if n < BLOCK {
            return;
        }
    }
}

fn mdmf(buf: &mut heapless::Vec<u8, MAX_MESSAGE>, r: &mut Rng, number: &mut heapless::String<16>) {
    buf.clear();
    number.clear();
    let len = 7 + r.below(9);
    for _ in 0..len {
        let _ = number.push((b'0' + r.below(10) as u8) as char);
    }
    let name: &[u8] = [&b"WANG LI"[..], b"ZHANG WEI", b"ALICE SMITH", b"BOB"][r.below(4) as usize];
    let _ = buf.extend_from_slice(&[0x80, 0]);
    let _ = buf.extend_from_slice(&[0x01, 8]);
    let _ = buf.extend_from_slice(b"11281200");
    let _ = buf.extend_from_slice(&[0x02, number.len() as u8]);
    let _ = buf.extend_from_slice(number.as_bytes());
    let _ = buf.extend_from_slice(&[0x07, name.len() as u8]);
    let _ = buf.extend_from_slice(name);
    buf[1] = (buf.len() - 2) as u8;
    let ck = checksum_for(buf);
    let _ = buf.push(ck);
}

fn count_ids(ev: &[Timed]) -> usize {
    ev.iter()
        .filter(|t| matches!(t.event, Event::CallerId(_)))
        .count()
}

struct Report {
    failed: bool,
}

impl Report {
    fn rate(&mut self, what: &str, ok: u32, n: u32, min_pct: u32) {
        let pass = ok * 100 >= min_pct * n;
        hprintln!(
            "RATE {}: {}/{} = {}.{} % (required >= {} %) {}",
            what,
            ok,
            n,
            ok * 100 / n,
            (ok * 1000 / n) % 10,
            min_pct,
            if pass { "ok" } else { "FAILED" }
        );
        self.failed |= !pass;
    }
}

fn fsk_test(v23: bool, trials: u32, m: &mut Meter, rep: &mut Report) {
    let mut r = Rng(if v23 { 0x2323 } else { 0x202 });
    let mut ok = 0;
    let mut msg = heapless::Vec::<u8, MAX_MESSAGE>::new();
    let mut number = heapless::String::<16>::new();
    for i in 0..trials {
        mdmf(&mut msg, &mut r, &mut number);
        let (_, peak) = PEAK_DBM[(i % 8) as usize];
        let err = r.below(30_001) as i64 - 15_000;
        let baud = r.below(20_001) as i64 - 10_000;
        let seizure = if v23 { 0 } else { 30 };
        let mut g = FskGen::new(
            &msg,
            v23,
            peak,
            err,
            baud,
            seizure,
            if v23 { 80 } else { 180 },
        );
        let sigma = sigma_for(peak, 20);
        let mut lead = 800 + r.below(800);
        let mut tail = 1600;
        let mut noise = Rng(r.next() | 1);
        let mut lp = LineProcessor::new(Config::default());
        let mut ev = heapless::Vec::new();
        run(
            &mut lp,
            m,
            || {
                let s = if lead > 0 {
                    lead -= 1;
                    0
                } else if let Some(v) = g.next() {
                    v
                } else if tail > 0 {
                    tail -= 1;
                    0
                } else {
                    return None;
                };
                Some(s + noise.gauss(sigma))
            },
            &mut ev,
        );
        let want = if v23 {
            CidFormat::V23
        } else {
            CidFormat::Bell202
        };
        let good = ev.len() == 1
            && matches!(&ev[0].event, Event::CallerId(c)
                if c.checksum_ok && c.format == want && c.number.as_deref() == Some(number.as_str())
                    && c.datetime_str() == Some("11281200"));
        ok += good as u32;
    }
    let what = if v23 {
        "qemu v23 20 dB SNR +/-1.5 % -40..-5 dBm"
    } else {
        "qemu bell202 20 dB SNR +/-1.5 % -40..-5 dBm"
    };
    rep.rate(what, ok, trials, 99);
}

fn dtmf_test(trials: u32, m: &mut Meter, rep: &mut Report) {
    let mut r = Rng(0xD7F);
    let mut ok = 0;
    for i in 0..trials {
        let mut s = heapless::String::<24>::new();
        let mut number = heapless::String::<16>::new();
        let _ = s.push('A');
        for _ in 0..(6 + r.below(8)) {
            let d = (b'0' + r.below(10) as u8) as char;
            let _ = s.push(d);
            let _ = number.push(d);
        }
        let _ = s.push('C');
        let (_, peak) = PEAK_DBM[(2 + i % 6) as usize];
        let mut g = DtmfGen::new(s.as_bytes(), peak, 400 + r.below(240), 400 + r.below(240));
        let sigma = sigma_for(peak, 20);
        let mut noise = Rng(r.next() | 1);
        let mut tail = 4000;
        let mut lp = LineProcessor::new(Config::default());
        let mut ev = heapless::Vec::new();
        run(
            &mut lp,
            m,
            || {
                let v = match g.next() {
                    Some(v) => v,
                    None if tail > 0 => {
                        tail -= 1;
                        0
                    }
                    None => return None,
                };
                Some(v + noise.gauss(sigma))
            },
            &mut ev,
        );
        let good = ev.iter().any(|t| {
            matches!(&t.event, Event::CallerId(c)
            if c.format == CidFormat::Dtmf && c.number.as_deref() == Some(number.as_str()))
        });
        ok += (good && count_ids(&ev) == 1) as u32;
    }
    rep.rate("qemu dtmf caller id 20 dB SNR -30..-5 dBm", ok, trials, 98);
}

fn cas_test(trials: u32, m: &mut Meter, rep: &mut Report) {
    let mut r = Rng(0xCA5);
    let mut ok = 0;
    for i in 0..trials {
        let (_, peak) = PEAK_DBM[(i % 7) as usize];
        let len = 640 + r.below(240); // 80 .. 110 ms
        let (i1, i2) = (synth::phase_inc(2_130_000), synth::phase_inc(2_750_000));
        let (mut p1, mut p2) = (r.next(), r.next());
        let sigma = sigma_for(peak, 20);
        let mut noise = Rng(r.next() | 1);
        let mut k = 0u32;
        let total = 800 + len + 800;
        let mut lp = LineProcessor::new(Config::default());
        let mut ev = heapless::Vec::new();
        run(
            &mut lp,
            m,
            || {
                if k >= total {
                    return None;
                }
                k += 1;
                let tone = if k > 800 && k <= 800 + len {
                    p1 = p1.wrapping_add(i1);
                    p2 = p2.wrapping_add(i2);
                    ((linekeeper_dsp::tables::sin_q15(p1) + linekeeper_dsp::tables::sin_q15(p2))
                        * peak)
                        >> 15
                } else {
                    0
                };
                Some(tone + noise.gauss(sigma))
            },
            &mut ev,
        );
        let n = ev
            .iter()
            .filter(|t| matches!(t.event, Event::CasTone { .. }))
            .count();
        ok += (n == 1) as u32;
    }
    rep.rate("qemu cas 80..110 ms -40..-10 dBm 20 dB SNR", ok, trials, 98);
}

fn false_positive_test(seconds: u32, m: &mut Meter, rep: &mut Report) {
    let mut r = Rng(0xFA15E);
    let mut false_ids = 0u32;
    let mut lp = LineProcessor::new(Config::default());
    for s in 0..seconds {
        let mut n = 8000;
        let mut ev = heapless::Vec::new();
        if s % 2 == 0 {
            let sigma = sigma_for(PEAK_DBM[r.below(8) as usize].1, 0);
            let mut noise = Rng(r.next() | 1);
            run(
                &mut lp,
                m,
                || {
                    (n > 0).then(|| {
                        n -= 1;
                        noise.gauss(sigma * 14)
                    })
                },
                &mut ev,
            );
        } else {
            let mut sp = Speech::new(r.next(), 64 + r.below(2000) as i32);
            run(
                &mut lp,
                m,
                || {
                    (n > 0).then(|| {
                        n -= 1;
                        sp.next()
                    })
                },
                &mut ev,
            );
        }
        false_ids += count_ids(&ev) as u32;
        false_ids += ev
            .iter()
            .filter(|t| matches!(t.event, Event::CasTone { .. }))
            .count() as u32;
    }
    hprintln!(
        "RATE qemu false caller IDs / CAS in {} s of noise + speech-like audio: {} (required 0)",
        seconds,
        false_ids
    );
    rep.failed |= false_ids != 0;
}

fn ring_test(m: &Meter, ticks_per_m_insn: u64, rep: &mut Report) {
    let mut vticks = 0u64;
    let mut lp = LineProcessor::new(Config::default());
    let mut rings_ok = 0u32;
    let mut ends = 0u32;
    let mut ph: u32 = 0;
    let inc = synth::phase_inc(25_000);
    let mut buf = [0i32; 80];
    let total = 8 * 16_000u32;
    for blk in 0..(total / 80) {
        for (k, v) in buf.iter_mut().enumerate() {
            let t = blk * 80 + k as u32;
            let ms = t / 8;
            let ringing = ms >= 1000 && (ms - 1000) % 5000 < 1000 && ms < 11_000;
            ph = ph.wrapping_add(inc);
            *v = 48_000
                + if ringing {
                    linekeeper_dsp::tables::sin_q15(ph) * 110 / 32
                } else {
                    0
                };
        }
        let t0 = m.now();
        lp.process_voltage(&buf, |t| match t.event {
            Event::RingStop { on_ms, cadence_ok } if cadence_ok && on_ms.abs_diff(1000) < 120 => {
                rings_ok += 1
            }
            Event::RingEnd { rings: 2 } => ends += 1,
            _ => {}
        });
        vticks += m.since(t0) as u64;
    }
    hprintln!(
        "PERF voltage path (ring + hook) at 8 kHz: {} instructions/sample on average",
        vticks * 1_000_000 / ticks_per_m_insn / total as u64
    );
    let pass = rings_ok == 2 && ends == 1;
    hprintln!(
        "RATE qemu ring cadence (2 rings, China): {} rings ok, {} end (required 2, 1) {}",
        rings_ok,
        ends,
        if pass { "ok" } else { "FAILED" }
    );
    rep.failed |= !pass;
}

#[entry]
fn main() -> ! {
    let Some(p) = cortex_m::Peripherals::take() else {
        hprintln!("no peripherals");
        debug::exit(debug::EXIT_FAILURE);
        loop {
            cortex_m::asm::wfi();
        }
    };
    let mut syst = p.SYST;
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(0x00FF_FFFF);
    syst.clear_current();
    syst.enable_counter();
    let mut m = Meter {
        syst,
        ticks: 0,
        samples: 0,
        worst_block: 0,
    };

    // Calibrate: ticks per million instructions.
    let t0 = m.now();
    spin(500_000);
    let a = m.since(t0);
    let t0 = m.now();
    spin(1_500_000);
    let b = m.since(t0);
    let ticks_per_m_insn = (b.saturating_sub(a) as u64).max(1) / 2; // 2 M instructions more
    hprintln!(
        "calibration: {} SysTick ticks per million instructions",
        ticks_per_m_insn
    );
    let core = if env!("DSP_QEMU_TARGET").starts_with("thumbv6m") {
        "Cortex-M0 (ARMv6-M, the RP2040's instruction set), qemu microbit"
    } else {
        "Cortex-M3 (ARMv7-M), qemu lm3s6965evb"
    };
    hprintln!("core: {}", core);

    let mut rep = Report { failed: false };
    fsk_test(false, 100, &mut m, &mut rep);
    fsk_test(true, 100, &mut m, &mut rep);
    dtmf_test(50, &mut m, &mut rep);
    cas_test(50, &mut m, &mut rep);
    false_positive_test(60, &mut m, &mut rep);
    ring_test(&m, ticks_per_m_insn, &mut rep);

    let insn_x100 = m.ticks * 100_000_000 / ticks_per_m_insn / m.samples.max(1);
    let worst = m.worst_block as u64 * 1_000_000 / ticks_per_m_insn / BLOCK as u64;
    let limit = BUDGET / 4 / CPI_ALLOWANCE;
    let pct_x100 = insn_x100 * CPI_ALLOWANCE as u64 * 100 / BUDGET as u64;
    let worst_pct_x100 = worst * CPI_ALLOWANCE as u64 * 10_000 / BUDGET as u64;
    let mut line = heapless::String::<400>::new();
    let _ = write!(
        line,
        "PERF audio path: {}.{:02} instructions/sample on average over {} samples, worst 80-sample block {} \
         instructions/sample; RP2040 budget {} cycles/sample at 125 MHz; with a x{} CPI allowance the average is \
         {}.{:02} % and the worst block {}.{:02} % of the budget (required < 25 %, i.e. < {} instructions/sample)",
        insn_x100 / 100,
        insn_x100 % 100,
        m.samples,
        worst,
        BUDGET,
        CPI_ALLOWANCE,
        pct_x100 / 100,
        pct_x100 % 100,
        worst_pct_x100 / 100,
        worst_pct_x100 % 100,
        limit
    );
    hprintln!("{}", line.as_str());
    let _ = &m.syst;
    if worst >= limit as u64 {
        hprintln!("PERF FAILED: worst block over the limit");
        rep.failed = true;
    }
    if rep.failed {
        hprintln!("qemu: FAILED");
        debug::exit(debug::EXIT_FAILURE);
    } else {
        hprintln!("qemu: all passed");
        debug::exit(debug::EXIT_SUCCESS);
    }
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    hprintln!("PANIC: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
